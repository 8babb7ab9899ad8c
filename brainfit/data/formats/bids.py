"""BIDS-like trees: ``sub-*/[ses-*/]func/*_bold.nii[.gz]`` + one atlas + SC files.

BOLD region means come from :func:`~brainfit.data.formats.nifti.from_nifti`; TR (s) from the
argument, a JSON sidecar's ``RepetitionTime`` or the NIfTI header; structural connectivity and
tract lengths (mm) from files whose names end in ``weights`` / ``lengths`` (per subject or for
the group) or from path templates with ``{subject}``.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from brainfit.data.formats.nifti import from_nifti
from brainfit.data.formats.readers import (
    _MATRIX_EXTS,
    PathLike,
    _finish,
    _select_dirs,
    read_matrix,
)
from brainfit.data.subject import Cohort, DataError, Subject

_NIFTI_RE = re.compile(r"\.nii(\.gz)?$")


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
    sub_dirs = _select_dirs(root, sorted(p for p in root.glob("sub-*") if p.is_dir()), subjects,
                            f"BIDS-like dataset {root}")
    if not sub_dirs:
        raise DataError(
            f"BIDS-like dataset {root} is empty: no sub-* folders; expected "
            "sub-<label>/func/sub-<label>_..._bold.nii.gz"
        )
    top = f"BIDS-like dataset {root}"
    group_sc = _find_one(root, "weights", top, False) if sc is None else None
    group_len = _find_one(root, "lengths", top, False) if lengths is None else None
    out = [_bids_subject(d, root, atlas, sc, lengths, labels, mask, tr, pattern, group_sc,
                         group_len) for d in sub_dirs]
    return _finish(Cohort(out, name=name or root.name), preprocessing)


def _bids_subject(d: Path, root: Path, atlas: Any, sc: Any, lengths: Any, labels: Any,
                  mask: Any, tr: float | None, pattern: str, group_sc: Path | None,
                  group_len: Path | None) -> Subject:
    """The subject of folder ``d`` (see :func:`load_bids` for the arguments; ``group_sc`` and
    ``group_len``: the files at the top of the tree, if any)."""
    sid = d.name
    where = f"BIDS-like subject {sid!r} ({d})"
    bold = _bids_bold(d, pattern, where)
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
    sub_tr = tr if tr is not None else _bids_sidecar_tr(bold, root)
    w, w_labels = read_matrix(f_sc, f"{where} weights")
    ln = None if f_len is None else read_matrix(f_len, f"{where} lengths")[0]
    s = from_nifti(bold, a, mask=m, labels=labels, tr=sub_tr, subject_id=sid)
    return s.replace(weights=w, lengths=ln, source=str(bold),
                     sources={"weights": f_sc, "lengths": f_len, "bold": bold})


def _bids_bold(d: Path, pattern: str, where: str) -> Path:
    """The one BOLD file of subject folder ``d`` (``func/`` or ``ses-*/func/``).

    Raises:
        FileNotFoundError: none.
        DataError: several.
    """
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
    return bolds[0]
