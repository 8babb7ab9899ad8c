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
    bold_arr = b_src = None
    if bold is not None:
        bold_arr, _, b_src = _array_or_file(bold, "bold")
    subject = Subject(
        id=sid, weights=weights, lengths=lengths, bold=bold_arr, tr=tr, labels=labels,
        source=str(path), sources={"bold": b_src},
    )
    cohort = Cohort([subject], name=name or _stem(path), info={"regions": regions})
    return _finish(cohort, preprocessing)
