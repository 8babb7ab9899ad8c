"""TVB connectivity zips (one connectome).

Members, found by file name in any folder of the zip, each plain ``.txt`` or compressed
``.txt.bz2`` / ``.txt.gz``: ``weights.txt`` (N, N), ``tract_lengths.txt`` (N, N, mm; optional),
``centres.txt`` (rows ``label x y z`` or ``x y z``; optional), ``region_labels.txt`` (optional),
and TVB's other per-region members (``cortical.txt``, ``hemispheres.txt``, ``areas.txt``,
``average_orientations.txt``) where present.
"""

from __future__ import annotations

import bz2
import gzip
import re
import zipfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from brainfit.data.formats.readers import (
    PathLike,
    _array_or_file,
    _finish,
    _is_number,
    _parse_text_matrix,
    _require_file,
    _stem,
)
from brainfit.data.subject import Cohort, DataError, Subject

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
    members = _read_tvb_members(path)
    w_txt, l_txt = members["weights"], members["lengths"]
    weights = _parse_member(path, w_txt, "weights")
    lengths = None if l_txt is None else _parse_member(path, l_txt, "tract lengths")
    if transpose:
        weights = weights.T
        lengths = None if lengths is None else lengths.T
    regions, labels = _tvb_regions(path, members, weights.shape[0])
    sid = subject_id or _stem(path)
    bold_arr = b_src = None
    if bold is not None:
        bold_arr, _, b_src = _array_or_file(bold, "bold")
    subject = Subject(
        id=sid, weights=weights, lengths=lengths, bold=bold_arr, tr=tr, labels=labels,
        source=str(path), sources={"bold": b_src},
    )
    cohort = Cohort([subject], name=name or _stem(path), info={"regions": regions})
    return _finish(cohort, preprocessing)


#: The members read from a TVB zip: key -> the file names that hold it (the first present wins)
_TVB_MEMBERS = {
    "weights": ("weights.txt", "weights.csv", "weights"),
    "lengths": ("tract_lengths.txt", "tract_lengths.csv", "tract_lengths", "tracts.txt"),
    "centres": ("centres.txt", "centers.txt", "centres", "centers"),
    "labels": ("region_labels.txt", "labels.txt"),
    "cortical": ("cortical.txt",),
    "hemispheres": ("hemispheres.txt",),
    "areas": ("areas.txt",),
    "orientations": ("average_orientations.txt",),
}

_Member = tuple[str, str]  # (member name in the zip, its text)


def _read_tvb_members(path: Path) -> dict[str, _Member | None]:
    """The text of every member of :data:`_TVB_MEMBERS` in the zip at ``path`` (None: absent).

    Raises:
        FileNotFoundError: no weights in the zip.
        DataError: not a zip, a member given twice, an unreadable or corrupt member.
    """
    try:
        zf = zipfile.ZipFile(path)
    except zipfile.BadZipFile as err:
        raise DataError(
            f"TVB connectivity zip: {path} is not a valid zip file ({err}); it is corrupt or "
            "truncated: download or export it again"
        ) from err
    with zf:
        names = _tvb_member_names(zf, path)
        found = {}
        for key, files in _TVB_MEMBERS.items():
            found[key] = _read_tvb_member(zf, names, path, *files)
            if key == "weights" and found[key] is None:
                raise FileNotFoundError(
                    f"TVB connectivity zip {path}: no weights.txt inside (members: "
                    f"{sorted(names.values())}); a TVB connectivity needs weights.txt (plain, "
                    ".txt.bz2 or .txt.gz)"
                )
    return found


def _tvb_member_names(zf: zipfile.ZipFile, path: Path) -> dict[str, str]:
    """The zip's files by their name without .bz2/.gz, in lower case (folders, macOS metadata
    and hidden files left out).

    Raises:
        DataError: two files of the same name.
    """
    members: dict[str, str] = {}
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
    return members


def _read_tvb_member(zf: zipfile.ZipFile, members: dict[str, str], path: Path,
                     *names: str) -> _Member | None:
    """The first of ``names`` present in the zip, decompressed and decoded, or None."""
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


def _parse_member(path: Path, member: _Member, what: str) -> np.ndarray:
    return _parse_text_matrix(member[1], f"{path}:{member[0]}", what)[0]


def _tvb_regions(path: Path, members: dict[str, _Member | None], n: int
                 ) -> tuple[dict[str, np.ndarray], list[str] | None]:
    """The per-region members (``cohort.info["regions"]``) and the region labels (from
    region_labels.txt, else the centres' first column, else None)."""
    w_name = members["weights"][0]
    regions: dict[str, np.ndarray] = {}
    labels = None
    if members["labels"] is not None:
        labels = [ln.strip() for ln in members["labels"][1].splitlines() if ln.strip()]
    c_txt = members["centres"]
    if c_txt is not None:
        xyz, centre_labels = _tvb_centres(path, c_txt)
        regions["centres"] = _per_region(path, c_txt, xyz, "centres", n, w_name)
        labels = centre_labels if labels is None else labels
    for key in ("cortical", "hemispheres"):
        member = members[key]
        if member is not None:
            tokens = [t.lower() for t in member[1].split()]
            bad = [t for t in tokens if t not in _TVB_FLAGS]
            if bad:
                raise DataError(
                    f"TVB connectivity zip {path}: {member[0]} has the value {bad[0]!r}; "
                    f"{key} holds one flag per region, 1/0 (or true/false)"
                )
            regions[key] = _per_region(path, member, [_TVB_FLAGS[t] for t in tokens], key, n,
                                       w_name)
    if members["areas"] is not None:
        regions["areas"] = _per_region(
            path, members["areas"], _parse_member(path, members["areas"], "areas").reshape(-1),
            "areas", n, w_name)
    o_txt = members["orientations"]
    if o_txt is not None:
        orient = _parse_member(path, o_txt, "orientations")
        if orient.shape[1] != 3:
            raise DataError(
                f"TVB connectivity zip {path}: {o_txt[0]} has "
                f"{orient.shape[1]} columns; orientations are one 'x y z' row per region"
            )
        regions["orientations"] = _per_region(path, o_txt, orient, "orientations", n, w_name)
    return regions, labels


def _tvb_centres(path: Path, c_txt: _Member) -> tuple[np.ndarray, list[str] | None]:
    """The region centres (N, 3) of centres.txt, and the labels of its first column if it has
    them."""
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
    labels = [r[0] for r in rows] if rows and len(rows[0]) >= 4 else None
    return np.array(xyz, dtype=np.float64), labels


def _per_region(path: Path, member: _Member, values: Any, what: str, n: int,
                w_name: str) -> np.ndarray:
    """``values`` as an array of one entry per region, finite.

    Raises:
        DataError: another number of regions than the weights' ``n``, or non-finite values.
    """
    arr = np.asarray(values)
    if len(arr) != n:
        raise DataError(
            f"TVB connectivity zip {path}: {member[0]} has {len(arr)} regions but "
            f"{w_name} has {n}; the members must describe the same regions"
        )
    if arr.dtype != bool and not np.all(np.isfinite(arr)):
        raise DataError(
            f"TVB connectivity zip {path}: {member[0]} has non-finite {what}; fix the file "
            "or remove it from the zip"
        )
    return arr
