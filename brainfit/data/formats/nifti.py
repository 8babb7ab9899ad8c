"""4D BOLD NIfTI + 3D integer label atlas on the same grid (needs nibabel).

Region-mean BOLD (T, N) over the atlas's non-zero labels (optionally inside a brain mask); TR in
seconds from the header (``pixdim[4]`` in the unit of ``xyzt_units``) unless given.
"""

from __future__ import annotations

import math
import os
import re
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse

from brainfit.data.formats.readers import _array_or_file, _finish, _require_file, _stem
from brainfit.data.subject import Cohort, DataError, Subject


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

    _same_grid(img, where, aimg, awhere, a_shape, "atlas")
    tr_s = nifti_tr(img, where, tr)
    a = _atlas_values(aimg, awhere, a_shape)
    use = a != 0
    if mask is not None:
        mimg, mwhere = _load_nifti(mask, "mask NIfTI")
        m_shape = tuple(mimg.shape)[:3]
        _same_grid(img, where, mimg, mwhere, m_shape, "mask")
        use &= _nifti_data(mimg, mwhere, "mask NIfTI").reshape(m_shape) != 0
    values = np.unique(a[use])
    region_values, names = _label_table(labels, values, f"atlas NIfTI {awhere}")
    if not region_values:
        raise DataError(f"atlas NIfTI {awhere} has no labelled voxels (inside the mask)")
    series = _region_means(img, where, a, use, region_values, names,
                           f"atlas NIfTI {awhere}", mask is not None)
    sid = subject_id or (_stem(Path(bold)) if isinstance(bold, (str, os.PathLike)) else "subject")
    w = ln = w_src = l_src = None
    if weights is not None:
        w, _, w_src = _array_or_file(weights, "weights")
    if lengths is not None:
        ln, _, l_src = _array_or_file(lengths, "lengths")
    return Subject(
        id=sid, weights=w, lengths=ln, bold=series, tr=tr_s, labels=names, source=where,
        sources={"weights": w_src, "lengths": l_src},
    )


def _same_grid(img: Any, where: str, other: Any, other_where: str, other_shape: tuple,
               what: str) -> None:
    """Raise a DataError unless ``other`` (the atlas or the mask) is on the BOLD's grid."""
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


def _atlas_values(aimg: Any, awhere: str, a_shape: tuple) -> np.ndarray:
    """The atlas' labels as integers (X, Y, Z).

    Raises:
        DataError: values that are not integers.
    """
    a = _nifti_data(aimg, awhere, "atlas NIfTI").reshape(a_shape)
    if not np.all(np.isfinite(a)) or not np.allclose(a, np.round(a)):
        raise DataError(
            f"atlas NIfTI {awhere} has non-integer values; a label atlas holds one integer per "
            "voxel (was it resampled with linear interpolation? use nearest-neighbour)"
        )
    return np.round(a).astype(np.int64)


def _region_means(img: Any, where: str, a: np.ndarray, use: np.ndarray,
                  region_values: list[int], names: list[str], atlas_where: str,
                  masked: bool) -> np.ndarray:
    """Each region's mean BOLD over its voxels ``use``d, (T, R), read a block of volumes at a
    time.

    Raises:
        DataError: a region of the table without voxels.
    """
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
            f"{atlas_where}: region(s) {empty[:10]} of the label table have no voxels"
            f"{' inside the mask' if masked else ''}; remove them from the table or "
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
    return series


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
