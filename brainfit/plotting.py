r"""Figures of a fit: empirical vs simulated FC and FCD, loss curves, fitted parameters, BOLD.

Every function takes NumPy arrays, Python lists or tensors, draws one figure, writes
it to ``path`` as a PNG at :data:`DPI` dots per inch and returns ``path`` as a
:class:`~pathlib.Path`.
Figures are built on :class:`matplotlib.figure.Figure` directly, never through ``pyplot``: no
backend is selected, no window opens, no global figure state is touched, so the functions are safe
in scripts, in notebooks and on headless cluster nodes. Missing parent directories of ``path`` are
created.

Conventions of the figures:

- Functional connectivity (FC, Pearson correlation of BOLD between regions, unitless) is drawn with
  the diverging colour map :data:`FC_CMAP` on fixed limits [-1, 1], so white means r = 0 and colours
  are comparable between panels, subjects and runs.
- Figures with one panel (or row) per subject show at most :data:`MAX_SUBJECTS` subjects, the first
  ones in the order given, and say so in the figure title when subjects were left out.
- The similarity of two FC matrices is the Pearson correlation of their upper triangles (diagonal
  excluded), the score used throughout the FC-fitting literature (e.g. Honey et al. 2009,
  PNAS 106:2035; Deco et al. 2013, J Neurosci 33:11239). The FCD distributions are compared with the
  Kolmogorov-Smirnov distance :math:`D = \sup_x |F_{emp}(x) - F_{sim}(x)|` (Hansen et al. 2015,
  NeuroImage 105:525). Scores not passed in are computed by the functions that score a fit,
  :func:`brainfit.metrics.fc_similarity`, :func:`brainfit.metrics.ks_distance` and
  :func:`brainfit.metrics.ks_distance_hist`.
- Bad input (mismatched subjects, wrong shapes, non-finite values) raises ``ValueError`` naming what
  was expected and what was received; an argument of the wrong kind raises ``TypeError``.
"""

from __future__ import annotations

import math
import numbers
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from brainfit import metrics

__all__ = [
    "DPI",
    "FC_CMAP",
    "MAX_SUBJECTS",
    "plot_baselines",
    "plot_bold",
    "plot_connectivity",
    "plot_fc_comparison",
    "plot_fcd_histograms",
    "plot_loss_curves",
    "plot_parameters",
]

#: resolution of every saved figure, dots per inch
DPI = 120
#: most subjects drawn in a per-subject figure; the rest are left out (and the title says so)
MAX_SUBJECTS = 10
#: diverging colour map for correlation matrices, drawn on [-1, 1]
FC_CMAP = "RdBu_r"

#: FCD histograms use bins of this width (correlation units) on a grid aligned to [-1, 1]
_FCD_BIN = 1.0 / 30.0
#: history keys drawn in the optimiser panel of :func:`plot_loss_curves`
_OPTIMISER_KEYS = ("lr", "grad_norm")
#: history keys drawn in the loss panel of :func:`plot_loss_curves`
_LOSS_KEYS = ("loss", "eval/loss")

# figure geometry, inches (the docstrings state the resulting sizes)
# the FC figure is laid out by hand (fast for many rows): per row a title band, a square panel
# and a band for the x labels; x positions of the empirical, simulated, colour bar, scatter panels
_FC_WIDTH, _FC_ROW, _FC_HEAD = 11.75, 3.3, 0.5
_FC_PANEL, _FC_TITLE = 2.5, 0.35
_FC_X = {"empirical": 0.95, "simulated": 4.3, "cbar": 6.92, "scatter": 8.75}
_FC_CBAR_WIDTH = 0.15
_FCD_COL, _FCD_ROW, _FCD_HEAD = 3.4, 2.9, 0.7
_LOSS_WIDTH, _LOSS_PANEL, _LOSS_HEAD = 11.0, 3.2, 0.5
_PAR_WIDTH, _PAR_PANEL, _PAR_HEAD = 12.0, 2.6, 0.6
_PAR_TABLE_HEAD, _PAR_TABLE_ROW = 0.5, 0.24
_BOLD_SIZE = (11.0, 6.5)


# ----------------------------------------------------------------------------- helpers


def _new_figure(width: float, height: float, layout: str | None = "constrained"):
    """A pyplot-free figure, by default with constrained layout (no backend, no global state)."""
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=DPI, layout=layout)


def _save(fig, path: str | os.PathLike) -> Path:
    """Write ``fig`` to ``path`` (PNG unless the suffix names another format) and return it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fmt = None if path.suffix else "png"
    fig.savefig(path, dpi=DPI, format=fmt, facecolor="white")
    return path


def _check_path(path: object) -> None:
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a str or os.PathLike naming the PNG to write, got "
                        f"{type(path).__name__}")


def _array(x: object, name: str) -> np.ndarray:
    """``x`` as a float64 array, with a clear error for things that are not numbers."""
    if hasattr(x, "detach"):  # a torch tensor slipped in: accept it on the CPU
        x = x.detach().cpu().numpy()
    try:
        a = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{name} must be an array of numbers, got {type(x).__name__} that does "
                         f"not convert to float ({err})") from None
    return a


def _finite(a: np.ndarray, name: str) -> np.ndarray:
    if not np.all(np.isfinite(a)):
        bad = int(np.size(a) - np.count_nonzero(np.isfinite(a)))
        raise ValueError(f"{name} has {bad} non-finite value(s) (NaN or inf); remove them or fix "
                         f"the computation that produced them")
    return a


def _subjects(empirical: object, simulated: object) -> list[Any]:
    """The common subject ids (order of ``empirical``); a ValueError names any mismatch."""
    for name, d in (("empirical", empirical), ("simulated", simulated)):
        if not isinstance(d, Mapping):
            raise TypeError(f"{name} must be a dict mapping subject id -> array, got "
                            f"{type(d).__name__}")
        if len(d) == 0:
            raise ValueError(f"{name} is empty; give at least one subject")
    missing = [k for k in empirical if k not in simulated]
    extra = [k for k in simulated if k not in empirical]
    if missing or extra:
        raise ValueError(f"empirical and simulated must have the same subject keys; missing from "
                         f"simulated: {missing}, missing from empirical: {extra}")
    return list(empirical)


def _cap_note(n_total: int, n_shown: int) -> str:
    return f" (first {n_shown} of {n_total} subjects shown)" if n_shown < n_total else ""


def _optional_scores(scores: object, name: str) -> Mapping:
    if scores is None:
        return {}
    if not isinstance(scores, Mapping):
        raise TypeError(f"{name} must be a dict mapping subject id -> float, or None; got "
                        f"{type(scores).__name__}")
    return scores


def _score(scores: Mapping, key: Any, name: str) -> float | None:
    """The finite score given for ``key``, or None (missing or NaN: compute it here)."""
    if key not in scores or scores[key] is None:
        return None
    try:
        v = float(scores[key])
    except (TypeError, ValueError):
        raise ValueError(f"{name}[{key!r}] must be a number, got {scores[key]!r}") from None
    return v if math.isfinite(v) else None


def _upper(m: np.ndarray) -> np.ndarray:
    return m[np.triu_indices(m.shape[0], k=1)]


def _fc_similarity(e: np.ndarray, s: np.ndarray) -> float:
    """:func:`brainfit.metrics.fc_similarity` of two FC matrices; NaN (drawn as "n/a") where r is
    undefined: a single region pair (N = 2) or a constant upper triangle."""
    ue, us = _upper(e), _upper(s)
    if ue.size < 2 or np.ptp(ue) == 0 or np.ptp(us) == 0:
        return float("nan")
    return float(metrics.fc_similarity(torch.as_tensor(e), torch.as_tensor(s)))


def _ks_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Two-sample KS distance, :func:`brainfit.metrics.ks_distance`."""
    return float(metrics.ks_distance(torch.as_tensor(a), torch.as_tensor(b)))


def _ks_distance_hist(values: np.ndarray, edges: np.ndarray, counts: np.ndarray) -> float:
    """One-sample KS distance against a histogram, :func:`brainfit.metrics.ks_distance_hist`."""
    return float(metrics.ks_distance_hist(torch.as_tensor(values), edges, counts))


def _n_subjects(n: int) -> str:
    return f"{n} subject" + ("" if n == 1 else "s")


def _fmt(v: float) -> str:
    return "n/a" if v is None or not math.isfinite(v) else f"{v:.3f}"


def _subject_colors(n: int) -> list:
    import matplotlib

    cmap = matplotlib.colormaps["tab10" if n <= 10 else "tab20"]
    return [cmap(i % cmap.N) for i in range(n)]


# ----------------------------------------------------------------------------- FC


def plot_fc_comparison(empirical: dict[str, np.ndarray], simulated: dict[str, np.ndarray],
                       scores: dict[str, float] | None, path: str | os.PathLike) -> Path:
    """Empirical vs simulated functional connectivity, one row per subject.

    Each row (labelled with the subject id) shows the empirical FC matrix, the simulated one (both
    on the fixed colour limits [-1, 1] of :data:`FC_CMAP`, with one shared colour bar) and a
    scatter of the simulated against the empirical upper-triangle entries (diagonal excluded) with
    the identity line. The scatter's title gives the FC similarity r, the Pearson correlation of
    the two upper triangles (Honey et al. 2009, PNAS 106:2035). At most :data:`MAX_SUBJECTS` rows
    are drawn.

    The figure is 11.75 in wide and ``0.5 + 3.3 * rows`` in tall (at :data:`DPI` dots per inch).

    Args:
        empirical: subject id -> empirical FC (N, N), Pearson correlations (unitless).
        simulated: subject id -> simulated FC (N, N); the same subject ids as ``empirical``.
            N may differ between subjects but not between a subject's two matrices.
        scores: subject id -> FC similarity r shown in the titles (e.g. the held-out score of the
            fit), or None. Subjects missing from it, or with a NaN score, get r computed here from
            the matrices.
        path: where to write the PNG.

    Returns:
        ``path`` as a Path.

    Raises:
        TypeError: ``empirical``/``simulated`` are not dicts, ``scores`` is neither a dict nor None.
        ValueError: the subject keys differ, a matrix is not square 2-D, the two matrices of a
            subject differ in shape, or a matrix has non-finite entries.
    """
    _check_path(path)
    keys = _subjects(empirical, simulated)
    scores = _optional_scores(scores, "scores")
    mats = []
    for k in keys:
        e = _array(empirical[k], f"empirical[{k!r}]")
        s = _array(simulated[k], f"simulated[{k!r}]")
        if e.ndim != 2 or e.shape[0] != e.shape[1] or e.shape[0] < 2:
            raise ValueError(f"empirical[{k!r}] must be a square FC matrix (N, N) with N >= 2, got "
                             f"shape {e.shape}")
        if s.shape != e.shape:
            raise ValueError(f"simulated[{k!r}] must have the shape of empirical[{k!r}] {e.shape}, "
                             f"got {s.shape}")
        _finite(e, f"empirical[{k!r}]")
        _finite(s, f"simulated[{k!r}]")
        given = _score(scores, k, "scores")
        r = given if given is not None else _fc_similarity(e, s)
        mats.append((k, e, s, r))

    shown = mats[:MAX_SUBJECTS]
    rows = len(shown)
    height = _FC_HEAD + _FC_ROW * rows
    fig = _new_figure(_FC_WIDTH, height, layout=None)

    def box(x: float, top: float, w: float, h: float):  # inches from the left and from the top
        return fig.add_axes((x / _FC_WIDTH, (height - top - h) / height, w / _FC_WIDTH, h / height))

    image = None
    for i, (k, e, s, r) in enumerate(shown):
        n = e.shape[0]
        top = _FC_HEAD + i * _FC_ROW + _FC_TITLE
        for what, m in (("empirical", e), ("simulated", s)):
            ax = box(_FC_X[what], top, _FC_PANEL, _FC_PANEL)
            image = ax.imshow(m, cmap=FC_CMAP, vmin=-1.0, vmax=1.0, interpolation="nearest")
            ax.set_title(f"{what} FC ({n} regions)", fontsize=10)
            ax.set_xlabel("region (index)")
            ax.set_ylabel(f"{k}\nregion (index)" if what == "empirical" else "region (index)",
                          fontweight="bold" if what == "empirical" else None)
        ax = box(_FC_X["scatter"], top, _FC_PANEL, _FC_PANEL)
        ue, us = _upper(e), _upper(s)
        many = ue.size > 500
        ax.scatter(ue, us, s=3 if many else 8, alpha=0.35 if many else 0.7, color="tab:blue",
                   edgecolors="none", label="region pairs")
        ax.plot([-1, 1], [-1, 1], color="0.3", lw=0.8, ls="--", label="identity")
        lo = max(-1.05, min(-0.2, float(ue.min()), float(us.min())) - 0.05)
        ax.set_xlim(lo, 1.05)
        ax.set_ylim(lo, 1.05)
        ax.grid(alpha=0.3)
        ax.set_title(f"{k}: r = {_fmt(r)}", fontsize=10)
        ax.set_xlabel("empirical FC (Pearson r)")
        ax.set_ylabel("simulated FC (Pearson r)")
        if i == 0:
            ax.legend(loc="upper left", fontsize=8, frameon=False)
    span = min(rows, 2)
    cax = box(_FC_X["cbar"], _FC_HEAD + _FC_TITLE, _FC_CBAR_WIDTH,
              _FC_PANEL + (span - 1) * _FC_ROW)
    cbar = fig.colorbar(image, cax=cax)
    cbar.set_label("FC, Pearson correlation r (unitless)")
    rs = [r for *_, r in mats if math.isfinite(r)]
    mean = f"; mean r = {np.mean(rs):.3f} over {_n_subjects(len(rs))}" if rs else ""
    fig.suptitle(f"Empirical vs simulated FC{_cap_note(len(mats), rows)}{mean}", fontsize=12,
                 y=1.0 - 0.12 / height, va="top")
    return _save(fig, path)


# ----------------------------------------------------------------------------- FCD


def _is_histogram(x: object) -> bool:
    return (isinstance(x, (tuple, list)) and len(x) == 2
            and all(np.ndim(_array(p, "histogram part")) == 1 for p in x))


def _fcd_histogram(x: object, name: str) -> tuple[np.ndarray, np.ndarray]:
    edges = _finite(_array(x[0], f"{name} edges"), f"{name} edges")
    counts = _finite(_array(x[1], f"{name} counts"), f"{name} counts")
    if edges.size < 2 or counts.size != edges.size - 1:
        raise ValueError(f"{name} given as a histogram must be (edges (E+1,), counts (E,)), got "
                         f"edges of length {edges.size} and counts of length {counts.size}")
    if np.any(np.diff(edges) <= 0):
        raise ValueError(f"{name} histogram edges must be strictly increasing")
    if np.any(counts < 0) or counts.sum() <= 0:
        raise ValueError(f"{name} histogram counts must be non-negative and not all zero")
    return edges, counts


def _fcd_values(x: object, name: str) -> np.ndarray:
    v = _array(x, name)
    if v.ndim != 1 or v.size < 1:
        hint = (" (this looks like an FCD matrix; pass its upper triangle, e.g. "
                "brainfit.metrics.fcd_values)" if v.ndim == 2 and v.shape[0] == v.shape[1] else "")
        raise ValueError(f"{name} must be a 1-D array of FCD values (correlations in [-1, 1]), got "
                         f"shape {v.shape}{hint}")
    return _finite(v, name)


def plot_fcd_histograms(empirical: dict[str, Any], simulated: dict[str, np.ndarray],
                        path: str | os.PathLike, ks: dict[str, float] | None = None) -> Path:
    """Empirical vs simulated FCD distributions, one panel per subject.

    The functional connectivity dynamics (FCD) values are the correlations between the FC of
    sliding windows (Hansen et al. 2015, NeuroImage 105:525), unitless in [-1, 1]. Each panel
    overlays their probability densities (bins of width 1/30 on [-1, 1], values clipped to it; the
    x range, shared by all panels, spans the data) and gives the Kolmogorov-Smirnov distance in its
    title. At most :data:`MAX_SUBJECTS` panels, four per row.

    The figure is ``0.6 + 3.4 * cols`` in wide and ``0.7 + 2.9 * rows`` in tall, with
    ``cols = min(subjects, 4)`` and ``rows = ceil(subjects / cols)`` (subjects capped).

    Args:
        empirical: subject id -> FCD values (M,), or a precomputed histogram ``(edges (E+1,),
            counts (E,))`` (counts are masses per bin; they are normalised to a density).
        simulated: subject id -> simulated FCD values (M',); the same subject ids.
        path: where to write the PNG.
        ks: subject id -> KS distance shown in the titles, or None. Subjects missing from it, or
            with a NaN value, get it computed here: the two-sample statistic for values, the
            one-sample statistic against the histogram's piecewise-linear CDF for a histogram.

    Returns:
        ``path`` as a Path.

    Raises:
        TypeError: ``empirical``/``simulated`` are not dicts, ``ks`` is neither a dict nor None.
        ValueError: the subject keys differ, values are not 1-D or not finite, or a histogram has
            inconsistent lengths, non-increasing edges or negative counts.
    """
    _check_path(path)
    keys = _subjects(empirical, simulated)
    ks = _optional_scores(ks, "ks")
    data = []
    for k in keys:
        e = empirical[k]
        if _is_histogram(e):
            edges, counts = _fcd_histogram(e, f"empirical[{k!r}]")
            sim = _fcd_values(simulated[k], f"simulated[{k!r}]")
            d = _score(ks, k, "ks")
            d = d if d is not None else _ks_distance_hist(sim, edges, counts)
            data.append((k, (edges, counts), sim, d))
        else:
            emp = _fcd_values(e, f"empirical[{k!r}]")
            sim = _fcd_values(simulated[k], f"simulated[{k!r}]")
            d = _score(ks, k, "ks")
            d = d if d is not None else _ks_distance(emp, sim)
            data.append((k, emp, sim, d))

    shown = data[:MAX_SUBJECTS]
    # a common x range: where any drawn distribution has mass, padded, on the bin grid
    lows, highs = [], []
    for _, emp, sim, _ in shown:
        if isinstance(emp, tuple):
            edges, counts = emp
            nz = np.flatnonzero(counts)
            lows.append(edges[nz[0]])
            highs.append(edges[nz[-1] + 1])
        else:
            lows.append(emp.min())
            highs.append(emp.max())
        lows.append(sim.min())
        highs.append(sim.max())
    pad = 0.05
    lo = max(-1.0, float(min(lows)) - pad)
    hi = min(1.0, float(max(highs)) + pad)
    bins = np.linspace(-1.0, 1.0, int(round(2.0 / _FCD_BIN)) + 1)

    n = len(shown)
    cols = min(n, 4)
    rows = math.ceil(n / cols)
    fig = _new_figure(0.6 + _FCD_COL * cols, _FCD_HEAD + _FCD_ROW * rows)
    axes = fig.subplots(rows, cols, squeeze=False, sharex=True)
    for i, (k, emp, sim, d) in enumerate(shown):
        ax = axes[i // cols][i % cols]
        if isinstance(emp, tuple):
            edges, counts = emp
            dens = counts / counts.sum() / np.diff(edges)
            ax.stairs(dens, edges, fill=True, color="0.6", alpha=0.6,
                      label="empirical (histogram)")
        else:
            ax.hist(np.clip(emp, -1.0, 1.0), bins=bins, density=True, color="0.6", alpha=0.6,
                    label=f"empirical (n = {emp.size})")
        ax.hist(np.clip(sim, -1.0, 1.0), bins=bins, density=True, histtype="step",
                color="tab:red", lw=1.5, label=f"simulated (n = {sim.size})")
        ax.set_xlim(lo, hi)
        ax.set_title(f"{k}: KS = {_fmt(d)}", fontsize=10)
        ax.set_xlabel("FCD value (Pearson r)")
        if i % cols == 0:
            ax.set_ylabel("probability density")
        ax.tick_params(labelbottom=True)
        ax.legend(fontsize=7, frameon=False, loc="upper left")
        ax.grid(alpha=0.3)
    for j in range(n, rows * cols):
        axes[j // cols][j % cols].set_visible(False)
    ds = [d for *_, d in data if math.isfinite(d)]
    mean = f"; mean KS = {np.mean(ds):.3f} over {_n_subjects(len(ds))}" if ds else ""
    fig.suptitle(f"FCD distributions, empirical vs simulated{_cap_note(len(data), n)}{mean}",
                 fontsize=12)
    return _save(fig, path)


# ----------------------------------------------------------------------------- loss curves


def _history_series(history: Sequence[Mapping]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """key -> (epochs, values) at the rows where the key has a finite number, in key order."""
    series: dict[str, tuple[list, list]] = {}
    for i, row in enumerate(history):
        if not isinstance(row, Mapping):
            raise TypeError(f"history[{i}] must be a dict of numbers, got {type(row).__name__}")
        if "epoch" not in row:
            raise ValueError(f"history[{i}] has no 'epoch' key (keys: {sorted(map(str, row))}); "
                             f"every row needs the epoch it was recorded at")
        try:
            epoch = float(row["epoch"])
        except (TypeError, ValueError):
            raise ValueError(f"history[{i}]['epoch'] must be a number, got "
                             f"{row['epoch']!r}") from None
        for key, v in row.items():
            if key == "epoch" or isinstance(v, (bool, np.bool_)):
                continue
            if not isinstance(v, numbers.Real) or not math.isfinite(float(v)):
                continue  # strings, None, NaN: nothing to draw at this epoch
            xs, ys = series.setdefault(str(key), ([], []))
            xs.append(epoch)
            ys.append(float(v))
    return {k: (np.asarray(x), np.asarray(y)) for k, (x, y) in series.items()}


def _draw_series(ax, series: dict, keys: list[str], log_if_positive: bool) -> None:
    import matplotlib

    cmap = matplotlib.colormaps["tab10" if len(keys) <= 10 else "tab20"]
    for j, key in enumerate(keys):
        x, y = series[key]
        order = np.argsort(x, kind="stable")
        x, y = x[order], y[order]
        if key.startswith("eval/"):
            ax.plot(x, y, ls="--", marker="o", ms=4, lw=1.2, color=cmap(j % cmap.N), label=key)
        else:
            ax.plot(x, y, lw=1.4, color=cmap(j % cmap.N), label=key,
                    marker="." if x.size < 30 else None)
    if log_if_positive and all(np.all(series[k][1] > 0) for k in keys):
        ax.set_yscale("log")
        values = np.concatenate([series[k][1] for k in keys])
        if np.log10(values.max() / values.min()) < 0.5:
            # a narrow range on a log axis: plain numbers read better than 9.1 x 10^-1
            from matplotlib.ticker import FuncFormatter

            plain = FuncFormatter(lambda v, _: f"{v:.3g}")
            ax.yaxis.set_major_formatter(plain)
            ax.yaxis.set_minor_formatter(plain)
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)


def plot_loss_curves(history: list[dict[str, float]], path: str | os.PathLike) -> Path:
    """Training loss and metrics per epoch.

    Panels, each only when it has something to show: the training loss (``loss``, and
    ``eval/loss`` if recorded; logarithmic y axis when every value is positive); the metric series
    (every other numeric key: loss terms such as ``fc_corr`` or ``fcd``, similarities such as
    ``fc_similarity``, held-out ``eval/...`` scores); the optimiser diagnostics ``lr`` and
    ``grad_norm`` (log y when positive). Training series are solid lines; ``eval/`` series are
    dashed with markers and drawn only at the epochs where they were recorded. Non-numeric values
    and NaN are skipped. An empty history gives a figure that says so, so a run with no epochs still
    leaves its figure.

    The figure is 11 in wide and ``0.5 + 3.2 * panels`` in tall (one panel when the history is
    empty).

    Args:
        history: one dict per logged epoch, each with ``"epoch"`` and any numeric keys.
        path: where to write the PNG.

    Returns:
        ``path`` as a Path.

    Raises:
        TypeError: ``history`` is not a list of dicts.
        ValueError: a row has no numeric ``"epoch"``, or no row has any other numeric value.
    """
    _check_path(path)
    if isinstance(history, (str, bytes, Mapping)) or not isinstance(history, Sequence):
        raise TypeError(f"history must be a list of dicts (one per epoch), got "
                        f"{type(history).__name__}")
    series = _history_series(history)
    if history and not series:
        raise ValueError("history has no numeric values besides 'epoch'; nothing to plot")
    loss_keys = [k for k in _LOSS_KEYS if k in series]
    opt_keys = [k for k in _OPTIMISER_KEYS if k in series]
    metric_keys = [k for k in series if k not in loss_keys and k not in opt_keys]
    panels = [(title, keys, log) for title, keys, log in (
        ("training loss", loss_keys, True),
        ("loss terms and similarity metrics (eval/: held-out)", metric_keys, False),
        ("optimiser: learning rate and gradient norm", opt_keys, True),
    ) if keys]

    fig = _new_figure(_LOSS_WIDTH, _LOSS_HEAD + _LOSS_PANEL * max(1, len(panels)))
    if not panels:
        ax = fig.subplots()
        ax.text(0.5, 0.5, "no training epochs recorded", ha="center", va="center",
                transform=ax.transAxes, fontsize=14)
        ax.set_xlabel("epoch")
        ax.set_yticks([])
        fig.suptitle("Loss curves")
        return _save(fig, path)
    axes = fig.subplots(len(panels), 1, squeeze=False, sharex=True)[:, 0]
    for ax, (title, keys, log) in zip(axes, panels):
        _draw_series(ax, series, keys, log)
        ax.set_title(title, fontsize=10)
        ax.tick_params(labelbottom=True)
        if keys is loss_keys:
            ax.set_ylabel("loss (unitless)" + (", log scale" if ax.get_yscale() == "log" else ""))
        elif keys is opt_keys:
            ax.set_ylabel("value" + (" (log scale)" if ax.get_yscale() == "log" else ""))
        else:
            ax.set_ylabel("value (unitless)")
    axes[-1].set_xlabel("epoch")
    n_epochs = len({float(r["epoch"]) for r in history})
    fig.suptitle(f"Training history ({n_epochs} epochs logged)", fontsize=12)
    return _save(fig, path)


# ----------------------------------------------------------------------------- parameters


def _region_key(region: object, i: int) -> int | str | None:
    """None for a non-regional row, else a region index (int) or name (str)."""
    if region is None:
        return None
    if isinstance(region, str):
        s = region.strip()
        if not s:
            return None
        return int(s) if s.lstrip("-").isdigit() else s  # "3" as read back from a CSV
    if isinstance(region, (bool, np.bool_)):
        raise ValueError(f"rows[{i}]['region'] must be a region index, a region name, None or "
                         f"'', got {region!r}")
    if isinstance(region, numbers.Integral):
        return int(region)
    if isinstance(region, numbers.Real):
        if math.isnan(float(region)):
            return None
        if float(region).is_integer():
            return int(region)
    raise ValueError(f"rows[{i}]['region'] must be a region index, a region name, None or '', got "
                     f"{region!r}")


def plot_parameters(rows: list[dict], path: str | os.PathLike,
                    labels: list[str] | None = None) -> Path:
    """Fitted parameters per subject, in natural units.

    One panel per regional parameter (the rows with a region) shows its value per region, one line
    per subject (a single black line when all subjects share the values, as group-level parameters
    do). The non-regional parameters (rows whose region is None, ``""`` or missing) go in a
    last panel as a table (parameters x subjects), since their units and scales differ. The unit of
    each parameter is in its axis label or table row. At most :data:`MAX_SUBJECTS` subjects.

    The figure is 12 in wide and ``0.6 + 2.6 * regional + table`` in tall, where ``table`` is
    ``0.5 + 0.24 * (scalar parameters + 1)`` in when there are non-regional parameters, else 0;
    when region names are drawn, the figure grows by the room their rotated text needs.

    Args:
        rows: dicts with ``"subject"``, ``"parameter"``, ``"value"`` (a number) and optionally
            ``"region"`` (an index, a region name from ``labels``, or None/"" for a non-regional
            value), ``"unit"`` and ``"trainable"`` (a parameter with ``trainable`` False, or
            ``"False"`` as read from a CSV, is marked "fixed"); other keys are ignored. The rows
            of ``fitted_params.csv`` fit as they are.
        path: where to write the PNG.
        labels: region names (N,). Given, the x axis names the regions and a region may be given
            by index into ``labels`` or by name; without it, regions are indices (or names, placed
            in order of first appearance).

    Returns:
        ``path`` as a Path.

    Raises:
        TypeError: ``rows`` is not a list of dicts, ``labels`` not a list of strings.
        ValueError: no rows, a required key missing, a non-numeric value, a region not in
            ``labels`` (or out of its range), a parameter given with two different units, a
            (subject, parameter, region) given twice, or region indices mixed with names without
            ``labels``.
    """
    _check_path(path)
    if isinstance(rows, (str, bytes, Mapping)) or not isinstance(rows, Sequence):
        raise TypeError(f"rows must be a list of dicts, got {type(rows).__name__}")
    if len(rows) == 0:
        raise ValueError("rows is empty; give at least one parameter value")
    if labels is not None:
        if isinstance(labels, (str, bytes)) or not isinstance(labels, Sequence):
            raise TypeError(f"labels must be a list of region names or None, got "
                            f"{type(labels).__name__}")
        labels = [str(x) for x in labels]
    subjects: list[Any] = []
    units: dict[str, str] = {}
    fixed: set[str] = set()
    regional: dict[str, dict[Any, dict[int | str, float]]] = {}
    scalar: dict[str, dict[Any, float]] = {}
    for i, row in enumerate(rows):
        if not isinstance(row, Mapping):
            raise TypeError(f"rows[{i}] must be a dict, got {type(row).__name__}")
        missing = [k for k in ("subject", "parameter", "value") if k not in row]
        if missing:
            raise ValueError(f"rows[{i}] lacks key(s) {missing}; each row needs 'subject', "
                             f"'parameter', 'value' (and optionally 'region', 'unit')")
        subj, name = row["subject"], str(row["parameter"])
        try:
            value = float(row["value"])
        except (TypeError, ValueError):
            raise ValueError(f"rows[{i}]['value'] must be a number, got {row['value']!r}") from None
        if str(row.get("trainable", True)).strip().lower() in ("false", "0", "no"):
            fixed.add(name)
        unit = str(row.get("unit") or "").strip()
        if unit:
            if units.get(name, unit) != unit:
                raise ValueError(f"parameter {name!r} is given in two units, {units[name]!r} and "
                                 f"{unit!r} (rows[{i}]); convert to one unit")
            units[name] = unit
        if subj not in subjects:
            subjects.append(subj)
        region = _region_key(row.get("region"), i)
        if region is None:
            per = scalar.setdefault(name, {})
            if subj in per:
                raise ValueError(f"rows[{i}]: parameter {name!r} of subject {subj!r} is given "
                                 f"twice; give one row per (subject, parameter, region)")
            per[subj] = value
        else:
            per = regional.setdefault(name, {}).setdefault(subj, {})
            if region in per:
                raise ValueError(f"rows[{i}]: parameter {name!r} of subject {subj!r} at region "
                                 f"{region!r} is given twice; give one row per (subject, "
                                 f"parameter, region)")
            per[region] = value

    # region -> x position, and the tick labels
    all_regions = [r for per_p in regional.values() for per_s in per_p.values() for r in per_s]
    ticklabels: list[str] | None = None
    if labels is not None:
        index = {lab: j for j, lab in enumerate(labels)}
        pos: dict[int | str, int] = {}
        for r in all_regions:
            if isinstance(r, int):
                if not 0 <= r < len(labels):
                    raise ValueError(f"region index {r} is out of range for {len(labels)} labels")
                pos[r] = r
            elif r in index:
                pos[r] = index[r]
            else:
                raise ValueError(f"region {r!r} is not one of the {len(labels)} labels given "
                                 f"(e.g. {labels[:3]}); pass the matching labels or region indices")
        ticklabels = labels
    elif all(isinstance(r, int) for r in all_regions):
        pos = {r: r for r in all_regions}
    elif all(isinstance(r, str) for r in all_regions):
        names = list(dict.fromkeys(all_regions))
        pos = {r: j for j, r in enumerate(names)}
        ticklabels = names
    else:
        raise ValueError("rows mix region indices and region names; pass labels= to place the "
                         "names, or use one kind")

    shown = subjects[:MAX_SUBJECTS]
    colors = dict(zip(shown, _subject_colors(len(shown))))
    reg_names = list(regional)
    reg_h = _PAR_PANEL * len(reg_names)
    tick_fontsize = 9.0
    if reg_names and ticklabels is not None:
        # room below the panels for the rotated region names
        tick_fontsize = float(np.clip(700.0 / max(len(ticklabels), 1), 4.0, 9.0))
        reg_h += 0.6 * tick_fontsize / 72.0 * max(len(t) for t in ticklabels)
    table_h = _PAR_TABLE_HEAD + _PAR_TABLE_ROW * (len(scalar) + 1) if scalar else 0.0
    fig = _new_figure(_PAR_WIDTH, _PAR_HEAD + reg_h + table_h)
    # separate sub-figures, so the table's row labels do not push the panels' margins
    parts = [h for h in (reg_h, table_h) if h > 0]
    subfigs = list(np.atleast_1d(fig.subfigures(len(parts), 1, height_ratios=parts)))
    if reg_names:
        reg_axes = list(subfigs[0].subplots(len(reg_names), 1, squeeze=False, sharex=True)[:, 0])
        subject_legend = False  # the first panel with one line per subject carries the legend
        for ax, name in zip(reg_axes, reg_names):
            per_subject = [regional[name].get(subj) for subj in shown]
            shared = len(shown) > 1 and all(p == per_subject[0] for p in per_subject)
            for subj, per in zip(shown, per_subject[:1] if shared else per_subject):
                if not per:
                    continue
                xs = np.array([pos[r] for r in per])
                ys = np.array(list(per.values()))
                order = np.argsort(xs)
                ax.plot(xs[order], ys[order], marker="o", ms=3, lw=1.0,
                        color="k" if shared else colors[subj],
                        label="all subjects (shared)" if shared else str(subj))
            unit = units.get(name, "")
            ax.set_ylabel(f"{name} [{unit}]" if unit else name)
            ax.set_title(f"{name}: regional values{' (fixed)' if name in fixed else ''}",
                         fontsize=10)
            ax.grid(alpha=0.3)
            if ax.get_lines() and (shared or not subject_legend):
                subject_legend = subject_legend or not shared
                ax.legend(title="subject", fontsize=8, title_fontsize=8, frameon=False,
                          loc="upper left", bbox_to_anchor=(1.01, 1.0))
        n_pos = len(ticklabels) if ticklabels is not None else max(pos.values()) + 1
        reg_axes[-1].set_xlim(-0.5, n_pos - 0.5)
        if ticklabels is not None:
            reg_axes[-1].set_xticks(range(len(ticklabels)))
            reg_axes[-1].set_xticklabels(ticklabels, rotation=90, fontsize=tick_fontsize)
            reg_axes[-1].set_xlabel("region")
        else:
            reg_axes[-1].set_xlabel("region (index)")
    if scalar:
        ax = subfigs[-1].subplots()
        ax.axis("off")
        names = list(scalar)
        cells = [[f"{scalar[p][s]:.4g}" if s in scalar[p] else "-" for s in shown] for p in names]
        row_labels = [(f"{p} [{units[p]}]" if units.get(p) else p)
                      + (" (fixed)" if p in fixed else "") for p in names]
        table = ax.table(cellText=cells, rowLabels=row_labels,
                         colLabels=[str(s) for s in shown], loc="upper center",
                         cellLoc="center", colWidths=[min(0.14, 0.85 / len(shown))] * len(shown))
        table.auto_set_font_size(False)
        table.set_fontsize(9)
        ax.set_title("non-regional parameters (value per subject)", fontsize=10)
    fig.suptitle(f"Fitted parameters, natural units{_cap_note(len(subjects), len(shown))}",
                 fontsize=12)
    return _save(fig, path)


# ----------------------------------------------------------------------------- BOLD


def plot_connectivity(structural: dict[str, np.ndarray], fitted: dict[str, np.ndarray],
                      path: str | os.PathLike) -> Path:
    """Structural vs fitted (effective) connectivity, one row per subject.

    Each row shows the structural weights, the fitted ones (both on the colour scale of the row's
    largest weight; ``W[i, j]`` is the connection from column j to row i) and a scatter of fitted
    against structural weights of the connections present in either, on log axes, with the
    identity line: points above it were strengthened by the fit, below it weakened. At most
    :data:`MAX_SUBJECTS` rows are drawn.

    Args:
        structural: subject id -> SC (N, N), non-negative.
        fitted: subject id -> fitted weights (N, N), the same subject ids.
        path: where to write the PNG.

    Returns:
        ``path`` as a Path.

    Raises:
        TypeError, ValueError: not dicts, different subjects, shapes or non-finite or negative
            weights.
    """
    _check_path(path)
    keys = _subjects(structural, fitted)
    pairs = []
    for k in keys:
        a = _finite(_array(structural[k], f"structural[{k!r}]"), f"structural[{k!r}]")
        b = _finite(_array(fitted[k], f"fitted[{k!r}]"), f"fitted[{k!r}]")
        if a.ndim != 2 or a.shape[0] != a.shape[1] or b.shape != a.shape:
            raise ValueError(f"structural[{k!r}] and fitted[{k!r}] must be square matrices of one "
                             f"shape, got {a.shape} and {b.shape}")
        if (a < 0).any() or (b < 0).any():
            raise ValueError(f"connectivity of {k!r} has negative weights")
        pairs.append((k, a, b))
    shown = pairs[:MAX_SUBJECTS]
    fig = _new_figure(12.0, 0.6 + 3.4 * len(shown))
    axes = fig.subplots(len(shown), 3, squeeze=False)
    for row, (k, a, b) in zip(axes, shown):
        top = max(float(a.max()), float(b.max()), 1e-30)
        for ax, m, title in ((row[0], a, "structural"), (row[1], b, "fitted")):
            im = ax.imshow(m, cmap="viridis", vmin=0.0, vmax=top, interpolation="nearest")
            ax.set_title(f"{k}: {title}")
            ax.set_xlabel("from region j")
            ax.set_ylabel("to region i")
        fig.colorbar(im, ax=row[:2], shrink=0.8, label="weight")
        sel = ((a > 0) | (b > 0)) & ~np.eye(a.shape[0], dtype=bool)
        x, y = a[sel], b[sel]
        floor = max(float(np.min(np.concatenate([x[x > 0], y[y > 0]]), initial=top)) * 0.5, 1e-30)
        ax = row[2]
        ax.scatter(np.maximum(x, floor), np.maximum(y, floor), s=4, alpha=0.4, color="C0")
        ax.plot([floor, top], [floor, top], color="0.3", lw=1)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("structural weight")
        ax.set_ylabel("fitted weight")
        r = np.corrcoef(np.log(np.maximum(x, floor)), np.log(np.maximum(y, floor)))[0, 1]
        ax.set_title(f"log-log r = {_fmt(r)}")
    fig.suptitle("Fitted vs structural connectivity" + _cap_note(len(pairs), len(shown)))
    return _save(fig, path)


def plot_baselines(subjects: Mapping[str, Mapping[str, float]], baselines: Mapping[str, str],
                   path: str | os.PathLike) -> Path:
    """What the fit is worth: each subject's held-out FC similarity beside the baselines.

    One column per subject (and their mean): the fit's held-out FC similarity (a filled dot) and
    each baseline that uses no model (open markers), e.g. the SC, log SC, leave-one-out group FC
    and the subject's own fitted-part FC (the ceiling;
    :data:`brainfit.fit.targets.BASELINES`). A fit worth having sits above the leave-one-out
    group FC.

    Args:
        subjects: subject id -> scores with ``fc_similarity`` and the baseline keys (as in
            ``metrics.json["held_out"]``).
        baselines: key -> label of the baselines drawn.
        path: where to write the PNG.

    Returns:
        ``path`` as a Path.

    Raises:
        TypeError: ``subjects`` is not a dict of dicts.
        ValueError: empty, or a subject without ``fc_similarity``.
    """
    _check_path(path)
    if not isinstance(subjects, Mapping) or not all(isinstance(v, Mapping)
                                                     for v in subjects.values()):
        raise TypeError("subjects must be a dict mapping subject id -> dict of scores")
    if not subjects:
        raise ValueError("subjects is empty; give at least one subject")
    for k, v in subjects.items():
        if "fc_similarity" not in v:
            raise ValueError(f"subjects[{k!r}] has no 'fc_similarity'")
    ids = list(subjects)
    mean = {}
    for key in ["fc_similarity", *baselines]:
        values = [float(subjects[k][key]) for k in ids if key in subjects[k]]
        mean[key] = float(np.mean(values)) if values else float("nan")
    cols = ids + (["mean"] if len(ids) > 1 else [])
    table = {**subjects, "mean": mean}
    fig = _new_figure(max(8.5, 3.5 + 0.7 * len(cols)), 4.5)
    ax = fig.subplots()
    xs = np.arange(len(cols))
    markers = ["s", "D", "^", "v", "<", ">"]
    for j, (key, label) in enumerate(baselines.items()):
        ys = [float(table[c].get(key, np.nan)) for c in cols]
        ax.scatter(xs, ys, marker=markers[j % len(markers)], facecolors="none",
                   edgecolors=f"C{j + 1}", s=45, label=label)
    ax.scatter(xs, [float(table[c]["fc_similarity"]) for c in cols], color="C0", s=60,
               zorder=3, label="fitted model (held-out FC similarity)")
    ax.set_xticks(xs, cols, rotation=45, ha="right")
    ax.set_ylabel("r with the held-out FC")
    ax.axhline(0.0, color="0.8", lw=0.8)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.set_title("Held-out FC: the fit beside predictions that use no model")
    return _save(fig, path)


def plot_bold(bold: np.ndarray, tr: float, path: str | os.PathLike, title: str = "") -> Path:
    """Carpet plot of a BOLD series and its global mean signal.

    Top: every region's signal, z-scored per region (a region with zero variance is drawn as 0), as
    an image of regions x time on colour limits [-3, 3] (the "carpet plot" of Power 2017,
    NeuroImage 154:150). Bottom: the global signal, the mean over regions of the signal as given.
    Sample k is drawn at time ``k * tr`` seconds.

    The figure is 11 x 6.5 in.

    Args:
        bold: BOLD time series (T, N): T samples, N regions, in the units of the data (a.u.).
        tr: repetition time, seconds (> 0).
        path: where to write the PNG.
        title: figure title (e.g. the subject id); a default names the size.

    Returns:
        ``path`` as a Path.

    Raises:
        ValueError: ``bold`` is not 2-D with T >= 2, has non-finite values, or ``tr`` is not a
            positive finite number of seconds.
    """
    _check_path(path)
    y = _array(bold, "bold")
    if y.ndim != 2 or y.shape[0] < 2 or y.shape[1] < 1:
        raise ValueError(f"bold must be a time series (T, N) with T >= 2 samples and N >= 1 "
                         f"regions, got shape {y.shape}")
    _finite(y, "bold")
    try:
        tr = float(tr)
    except (TypeError, ValueError):
        raise ValueError(f"tr must be the repetition time in seconds (> 0), got {tr!r}") from None
    if not (math.isfinite(tr) and tr > 0):
        raise ValueError(f"tr must be the repetition time in seconds (> 0), got {tr}")
    if not isinstance(title, str):
        raise TypeError(f"title must be a str, got {type(title).__name__}")
    t_len, n = y.shape
    sd = y.std(axis=0)
    scale = np.abs(y).max(axis=0)
    flat = sd <= 16 * np.finfo(np.float64).eps * np.maximum(scale, np.finfo(np.float64).tiny)
    z = np.where(flat, 0.0, (y - y.mean(axis=0)) / np.where(flat, 1.0, sd))
    time = np.arange(t_len) * tr

    fig = _new_figure(*_BOLD_SIZE)
    gs = fig.add_gridspec(2, 2, height_ratios=[3, 1.2], width_ratios=[1, 0.025])
    ax_c = fig.add_subplot(gs[0, 0])
    ax_m = fig.add_subplot(gs[1, 0], sharex=ax_c)
    cax = fig.add_subplot(gs[0, 1])
    image = ax_c.imshow(z.T, aspect="auto", cmap="RdBu_r", vmin=-3.0, vmax=3.0,
                        interpolation="nearest",
                        extent=(-tr / 2, (t_len - 0.5) * tr, n - 0.5, -0.5))
    ax_c.set_ylabel("region (index)")
    ax_c.set_title("carpet plot: BOLD per region, z-scored", fontsize=10)
    ax_c.tick_params(labelbottom=False)
    cbar = fig.colorbar(image, cax=cax)
    cbar.set_label("BOLD (z-score per region)")
    ax_m.plot(time, y.mean(axis=1), color="k", lw=1.0)
    ax_m.set_xlabel("time (s)")
    ax_m.set_ylabel("global mean BOLD (a.u.)")
    ax_m.set_title("global signal (mean over regions)", fontsize=10)
    ax_m.grid(alpha=0.3)
    ax_m.set_xlim(-tr / 2, (t_len - 0.5) * tr)
    fig.suptitle(title or f"BOLD: {n} regions, {t_len} volumes, TR = {tr:g} s", fontsize=12)
    return _save(fig, path)
