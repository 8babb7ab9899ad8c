"""One subject's data (:class:`Subject`) and a set of subjects (:class:`Cohort`).

A :class:`Subject` is validated once, when it is built: every loader goes through it, so bad input
fails where it enters, with a message that names the subject, the file it came from and the fix.
A :class:`Cohort` checks that its subjects fit together (unique ids, one region count, one label
order) and turns them into batched tensors (:meth:`Cohort.batch`); it lives in
:mod:`brainfit.data.cohort` with :class:`CohortBatch` and :func:`as_cohort`, and is importable
from here as ever.

Arrays are NumPy (float64, BOLD float32 or float64) until :meth:`Cohort.batch` makes tensors.
Units: tract lengths in mm, TR in s; weights in whatever unit the source uses (streamline counts
for the bundled cohorts).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from torch import Tensor

from brainfit.checks import positive

# A TR above this many seconds is taken to be a unit mistake (milliseconds given for seconds).
_MAX_TR_S = 30.0


class DataError(ValueError):
    """Input data that cannot be used as given; the message names the file/subject and the fix."""


def _where(subject_id: str, source: str | None) -> str:
    return f"subject {subject_id!r}" + (f" (from {source})" if source else "")


def to_numpy(x: Any, name: str, where: str, dtype: Any = np.float64) -> np.ndarray:
    """Convert array-like ``x`` (NumPy, torch, nested lists) to a NumPy array of ``dtype``
    (``None``: keep the numeric dtype).

    Raises:
        TypeError: if ``x`` is not numeric.
    """
    if isinstance(x, Tensor):
        x = x.detach().cpu().numpy()
    try:
        arr = np.asarray(x)
    except Exception as err:  # ragged nested lists and the like
        raise TypeError(f"{where}: {name} must be a numeric array, got {type(x).__name__}") from err
    if arr.dtype == bool or not (np.issubdtype(arr.dtype, np.number)):
        raise TypeError(
            f"{where}: {name} must be a numeric array, got dtype {arr.dtype}; "
            "convert it to floats first"
        )
    return arr if dtype is None else arr.astype(dtype, copy=False)


def _require_finite_data(arr: np.ndarray, name: str, where: str) -> None:
    """Input validation (a DataError naming the first bad entry), not a divergence check."""
    bad = ~np.isfinite(arr)
    if bad.any():
        idx = tuple(int(i) for i in np.argwhere(bad)[0])
        raise DataError(
            f"{where}: {name} has {int(bad.sum())} non-finite value(s) (NaN or inf), the first at "
            f"index {idx}; fix the source file or replace them (e.g. np.nan_to_num) before loading"
        )


def _check_square(arr: np.ndarray, name: str, where: str) -> None:
    if arr.ndim != 2 or arr.shape[0] != arr.shape[1]:
        raise DataError(
            f"{where}: {name} must be a square (N, N) matrix, got shape {tuple(arr.shape)}; "
            "check that the file holds one connectome without header rows or index columns"
        )


@dataclass(eq=False)
class Subject:
    """One subject: structural connectome, resting-state BOLD and/or precomputed targets.

    Validated at construction; every problem raises :class:`DataError` (a ``ValueError``) or
    ``TypeError`` naming the subject and ``source``.

    Args:
        id: Subject identifier, unique within a cohort.
        weights: Structural connectivity (N, N), non-negative. ``weights[i, j]`` is the connection
            from region j to region i (brainfit's coupling convention). Unit of the source
            (streamline counts, or normalised, see :mod:`brainfit.data.preprocess`). None only for
            a subject that will get its connectome elsewhere (e.g. :func:`from_nifti` without one).
        lengths: Tract lengths (N, N) in mm, non-negative, or None (no conduction delays).
        bold: Region BOLD time series (T, N), time first, or None (targets-only subject).
        tr: Repetition time (sampling interval of ``bold``) in s; required when ``bold`` is given.
        labels: Region names, N unique strings, or None.
        maps: Spatial maps for ``map``-scope parameters: a dict name -> (N,), or an array (N,) or
            (K, N) (named ``map0``...), or None.
        fc_target: Precomputed FC (N, N) to fit against (e.g. a published group FC), or None.
        fcd_target: Precomputed FCD distribution as ``(edges (M + 1,), counts (M,))``, or None.
        source: Where the data came from (a path), quoted in error messages.
        sources: Where single arrays came from when they are separate files, e.g.
            ``{"weights": "sc.npy", "bold": "bold.npy"}``: an error about an array quotes its own
            file (``source`` for the arrays not named).

    Raises:
        DataError: non-square, NaN or negative weights; negative lengths; BOLD whose region count
            disagrees with the connectome; a region with zero variance; BOLD without a TR; ...
        TypeError: non-numeric arrays or a non-string id.
    """

    id: str
    weights: np.ndarray | None = None
    lengths: np.ndarray | None = None
    bold: np.ndarray | None = None
    tr: float | None = None
    labels: list[str] | None = None
    maps: dict[str, np.ndarray] | None = None
    fc_target: np.ndarray | None = None
    fcd_target: tuple[np.ndarray, np.ndarray] | None = None
    source: str | None = field(default=None, repr=False)
    sources: dict[str, str] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self._normalise_names()
        where = _where(self.id, self.source)
        n = self._check_weights()
        self._check_lengths()
        n = self._check_bold(n)
        self._check_tr(where)
        n = self._check_fc_target(where, n)
        if self.fcd_target is not None:
            self.fcd_target = _check_fcd_target(self.fcd_target, where)
        if n is None:
            raise DataError(
                f"{where}: a subject needs at least one of weights, bold or fc_target to define "
                "its regions"
            )
        self._check_labels(where, n)
        if self.maps is not None:
            self.maps = _check_maps(self.maps, n, where)

    # -- validation (each part of __post_init__) --------------------------------------------------
    def _normalise_names(self) -> None:
        """The id, ``source`` and ``sources`` as strings."""
        if isinstance(self.id, (int, np.integer)) and not isinstance(self.id, bool):
            self.id = str(self.id)
        if not isinstance(self.id, str) or not self.id:
            raise TypeError(f"subject id must be a non-empty string, got {self.id!r}")
        if self.source is not None:
            self.source = str(self.source)
        if self.sources is not None:
            self.sources = {str(k): str(v) for k, v in dict(self.sources).items() if v is not None}

    def _check_weights(self) -> int | None:
        """Validate the connectome; its region count (None without one)."""
        if self.weights is None:
            return None
        where_w = self.where("weights")
        w = to_numpy(self.weights, "weights", where_w)
        _check_square(w, "weights (structural connectivity)", where_w)
        _require_finite_data(w, "weights (structural connectivity)", where_w)
        if (w < 0).any():
            idx = tuple(int(i) for i in np.argwhere(w < 0)[0])
            raise DataError(
                f"{where_w}: weights (structural connectivity) has negative entries, the "
                f"first {w[idx]:g} at {idx}; connection strengths must be >= 0 (check the "
                "file, or take np.abs / clip at 0 if the sign is an artefact of your pipeline)"
            )
        self.weights = w
        return w.shape[0]

    def _check_lengths(self) -> None:
        """Validate the tract lengths against the connectome."""
        if self.lengths is None:
            return
        where_l = self.where("lengths")
        if self.weights is None:
            raise DataError(f"{where_l}: lengths given without weights; give both or neither")
        ln = to_numpy(self.lengths, "lengths", where_l)
        _check_square(ln, "lengths (tract lengths, mm)", where_l)
        if ln.shape != self.weights.shape:
            raise DataError(
                f"{where_l}: lengths has shape {ln.shape} but weights"
                f"{self._also('weights', 'lengths')} has {self.weights.shape}; "
                "both must describe the same regions"
            )
        _require_finite_data(ln, "lengths (tract lengths, mm)", where_l)
        if (ln < 0).any():
            idx = tuple(int(i) for i in np.argwhere(ln < 0)[0])
            raise DataError(
                f"{where_l}: lengths has negative tract lengths, the first {ln[idx]:g} at "
                f"{idx}; tract lengths are distances in mm and must be >= 0"
            )
        self.lengths = ln

    def _check_bold(self, n: int | None) -> int | None:
        """Validate the BOLD series against the connectome's ``n`` regions; the region count."""
        if self.bold is None:
            return n
        where_b = self.where("bold")
        b = to_numpy(self.bold, "bold", where_b, dtype=None)
        if b.dtype not in (np.float32, np.float64):
            b = b.astype(np.float64)
        if b.ndim != 2:
            raise DataError(
                f"{where_b}: bold must be a (T, N) matrix (time, regions), got shape "
                f"{tuple(b.shape)}"
            )
        if n is not None and b.shape[1] != n:
            if b.shape[0] == n:
                raise DataError(
                    f"{where_b}: bold has shape {tuple(b.shape)}, which looks like (N, T) "
                    f"with N = {n} regions first; brainfit wants time first: pass bold.T (or "
                    f"bold_layout='NT' to load_arrays, data.bold_layout=NT)"
                )
            raise DataError(
                f"{where_b}: the structural connectome{self._also('weights', 'bold')} has {n} "
                f"regions but bold has "
                f"{b.shape[1]} columns (shape {tuple(b.shape)}); SC and BOLD must come from "
                "the same parcellation, in the same region order"
            )
        if b.shape[0] < 3:
            raise DataError(
                f"{where_b}: bold has only {b.shape[0]} time points (shape {tuple(b.shape)}); "
                "need at least 3 (is it (N, T)? then pass bold.T)"
            )
        _require_finite_data(b, "bold", where_b)
        scale = np.maximum(np.abs(b).max(axis=0), 1.0)
        flat = b.std(axis=0) <= 10 * np.finfo(b.dtype).eps * scale
        if flat.any():
            regions = [int(i) for i in np.flatnonzero(flat)]
            named = ""
            if self.labels is not None and len(self.labels) == b.shape[1]:
                named = " (" + ", ".join(str(self.labels[i]) for i in regions[:5]) + ")"
            raise DataError(
                f"{where_b}: bold has zero variance in region(s) {regions[:10]}{named}"
                f"{' ...' if len(regions) > 10 else ''}; a constant region (outside the field "
                "of view or the brain mask?) has no FC; remove it from SC and BOLD, or fix "
                "the parcellation"
            )
        if self.tr is None:
            raise DataError(
                f"{where_b}: bold is given without a TR; pass tr= (the repetition time in s, "
                "e.g. tr=0.72 for HCP), or use a source that records it (NIfTI header, BIDS "
                "sidecar)"
            )
        self.bold = b
        return b.shape[1] if n is None else n

    def _check_tr(self, where: str) -> None:
        """Validate the TR (seconds)."""
        if self.tr is None:
            return
        tr = positive(self.tr, f"{where}: tr", "seconds", error=DataError,
                      fix="the repetition time, e.g. tr=0.72 for HCP")
        if tr > _MAX_TR_S:
            raise DataError(
                f"{where}: tr = {tr:g} s is implausibly long; TR is in seconds (did you give "
                f"milliseconds? then pass tr={tr / 1000:g})"
            )
        self.tr = tr

    def _check_fc_target(self, where: str, n: int | None) -> int | None:
        """Validate a precomputed FC against ``n`` regions; the region count."""
        if self.fc_target is None:
            return n
        fc = to_numpy(self.fc_target, "fc_target", where)
        _check_square(fc, "fc_target", where)
        _require_finite_data(fc, "fc_target", where)
        if n is not None and fc.shape[0] != n:
            raise DataError(
                f"{where}: fc_target is {fc.shape[0]} x {fc.shape[0]} but the subject has "
                f"{n} regions; FC and SC must use the same parcellation"
            )
        if not np.allclose(fc, fc.T, atol=1e-6):
            raise DataError(
                f"{where}: fc_target is not symmetric; an FC matrix of Pearson correlations "
                "is symmetric (symmetrise it with (fc + fc.T) / 2 if the asymmetry is rounding)"
            )
        self.fc_target = fc
        return fc.shape[0] if n is None else n

    def _check_labels(self, where: str, n: int) -> None:
        """Validate the region labels: one per region, unique."""
        if self.labels is None:
            return
        labels = [str(x) for x in self.labels]
        if len(labels) != n:
            raise DataError(
                f"{where}: {len(labels)} region labels for {n} regions; give one label per "
                "region, in the order of the matrix rows"
            )
        dup = sorted({x for x in labels if labels.count(x) > 1})
        if dup:
            raise DataError(
                f"{where}: duplicate region labels {dup[:5]}; labels must be unique"
            )
        self.labels = labels

    # -- properties -------------------------------------------------------------------------------
    @property
    def n_regions(self) -> int:
        """Number of regions N."""
        for a in (self.weights, self.bold, self.fc_target):
            if a is not None:
                return int(a.shape[-1])
        raise AssertionError("unreachable: validated at construction")

    @property
    def n_times(self) -> int | None:
        """Number of BOLD volumes T, or None without BOLD."""
        return None if self.bold is None else int(self.bold.shape[0])

    @property
    def duration(self) -> float | None:
        """Length of the BOLD recording in s (T * TR), or None."""
        if self.bold is None or self.tr is None:
            return None
        return self.n_times * self.tr

    def where(self, array: str | None = None) -> str:
        """``subject '<id>' (from <file>)`` for error messages: the file ``array`` came from."""
        return _where(self.id, (self.sources or {}).get(array or "", self.source))

    def _also(self, array: str, other: str) -> str:
        """`` (from <file>)`` when ``array`` came from another file than ``other``."""
        mine = (self.sources or {}).get(array, self.source)
        theirs = (self.sources or {}).get(other, self.source)
        return f" (from {mine})" if mine and mine != theirs else ""

    def replace(self, **changes: Any) -> Subject:
        """A copy with some fields changed, validated again."""
        return dataclasses.replace(self, **changes)

    def __repr__(self) -> str:
        parts = [f"id={self.id!r}", f"N={self.n_regions}"]
        if self.bold is not None:
            parts.append(f"T={self.n_times}, tr={self.tr:g} s")
        if self.lengths is not None:
            parts.append("lengths")
        if self.fc_target is not None:
            parts.append("fc_target")
        if self.fcd_target is not None:
            parts.append("fcd_target")
        return f"Subject({', '.join(parts)})"


def _check_fcd_target(fcd: Any, where: str) -> tuple[np.ndarray, np.ndarray]:
    if isinstance(fcd, Mapping):
        if "edges" not in fcd or "counts" not in fcd:
            raise DataError(
                f"{where}: fcd_target as a mapping needs keys 'edges' and 'counts', got "
                f"{sorted(fcd)}"
            )
        fcd = (fcd["edges"], fcd["counts"])
    if not isinstance(fcd, (tuple, list)) or len(fcd) != 2:
        raise DataError(
            f"{where}: fcd_target must be a pair (edges (M + 1,), counts (M,)) of a histogram of "
            "FCD values (e.g. np.histogram(values, bins))"
        )
    edges = to_numpy(fcd[0], "fcd_target edges", where)
    counts = to_numpy(fcd[1], "fcd_target counts", where)
    if edges.ndim != 1 or counts.ndim != 1 or edges.shape[0] != counts.shape[0] + 1:
        raise DataError(
            f"{where}: fcd_target needs edges of length M + 1 and counts of length M, got "
            f"edges {tuple(edges.shape)} and counts {tuple(counts.shape)}"
        )
    _require_finite_data(edges, "fcd_target edges", where)
    _require_finite_data(counts, "fcd_target counts", where)
    if counts.shape[0] < 1 or not (np.diff(edges) > 0).all():
        raise DataError(f"{where}: fcd_target edges must be strictly increasing (M >= 1 bins)")
    if (counts < 0).any() or counts.sum() <= 0:
        raise DataError(f"{where}: fcd_target counts must be >= 0 and not all zero")
    return edges, counts


def _check_maps(maps: Any, n: int, where: str) -> dict[str, np.ndarray]:
    if not isinstance(maps, Mapping):
        arr = to_numpy(maps, "maps", where)
        if arr.ndim == 1:
            arr = arr[None]
        if arr.ndim != 2:
            raise DataError(f"{where}: maps must be (N,) or (K, N), got shape {tuple(arr.shape)}")
        maps = {f"map{k}": arr[k] for k in range(arr.shape[0])}
    out = {}
    for name, m in maps.items():
        arr = to_numpy(m, f"map {name!r}", where)
        if arr.shape != (n,):
            raise DataError(
                f"{where}: map {name!r} has shape {tuple(arr.shape)}, expected ({n},): one value "
                "per region"
            )
        _require_finite_data(arr, f"map {name!r}", where)
        out[str(name)] = arr
    return out


# the cohort is built of subjects; its names are this module's too (imported last: cohort.py
# imports Subject from here)
from brainfit.data.cohort import Cohort, CohortBatch, as_cohort  # noqa: E402, F401
