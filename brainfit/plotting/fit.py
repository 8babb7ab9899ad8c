r"""How a fit went: its FC and FCD against the data, its held-out score beside the baselines, and
its training history.

- :func:`plot_fc_comparison`: empirical vs simulated FC, one row per subject, with the FC
  similarity (the Pearson correlation of the upper triangles; Honey et al. 2009, PNAS 106:2035).
- :func:`plot_fcd_histograms`: empirical vs simulated FCD distributions, one panel per subject,
  with the Kolmogorov-Smirnov distance :math:`D = \sup_x |F_{emp}(x) - F_{sim}(x)|` (Hansen et al.
  2015, NeuroImage 105:525).
- :func:`plot_baselines`: each subject's held-out FC similarity beside predictions that use no
  model.
- :func:`plot_loss_curves`: the loss, the scores and the optimiser's diagnostics per epoch.
"""

from __future__ import annotations

import math
import numbers
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from brainfit.plotting._common import (
    FC_CMAP,
    MAX_SUBJECTS,
    _array,
    _cap_note,
    _check_path,
    _fc_similarity,
    _finite,
    _fmt,
    _ks_distance,
    _ks_distance_hist,
    _n_subjects,
    _new_figure,
    _optional_scores,
    _save,
    _score,
    _subjects,
    _upper,
)
from brainfit.plotting.regions import _region_ticks, _regions

if TYPE_CHECKING:
    from matplotlib.figure import Figure

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


# ----------------------------------------------------------------------------- FC


def _fc_pairs(empirical: object, simulated: object, scores: object
              ) -> list[tuple[Any, np.ndarray, np.ndarray, float]]:
    """(subject, empirical FC, simulated FC, r) per subject, checked; r as given in ``scores``,
    else computed."""
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
    return mats


def _fc_axes(fig, height: float, x: float, top: float, w: float, h: float):
    """Axes at ``x`` inches from the left and ``top`` inches from the top of the FC figure."""
    return fig.add_axes((x / _FC_WIDTH, (height - top - h) / height, w / _FC_WIDTH, h / height))


def _draw_fc_matrices(fig, height: float, top: float, k: Any, e: np.ndarray, s: np.ndarray,
                      labels: Sequence[str] | None, groups: Sequence[str] | None):
    """A subject's empirical and simulated FC panels, ordered by group; returns the image."""
    n = e.shape[0]
    order, labs, grps = _regions(n, labels, groups)
    image = None
    for what, m in (("empirical", e), ("simulated", s)):
        ax = _fc_axes(fig, height, _FC_X[what], top, _FC_PANEL, _FC_PANEL)
        image = ax.imshow(m[np.ix_(order, order)], cmap=FC_CMAP, vmin=-1.0, vmax=1.0,
                          interpolation="nearest")
        ax.set_title(f"{what} FC ({n} regions)", fontsize=10)
        _region_ticks(ax, n, labs, grps, max_labels=24)
        if what == "empirical":
            ax.set_ylabel(f"{k}\n{ax.get_ylabel()}", fontweight="bold")
    return image


def _draw_fc_scatter(ax, k: Any, e: np.ndarray, s: np.ndarray, r: float, legend: bool) -> None:
    """Simulated against empirical upper-triangle entries, with the identity line."""
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
    if legend:
        ax.legend(loc="upper left", fontsize=8, frameon=False)


def plot_fc_comparison(empirical: dict[str, np.ndarray], simulated: dict[str, np.ndarray],
                       scores: dict[str, float] | None, path: str | os.PathLike | None,
                       labels: Sequence[str] | None = None,
                       groups: Sequence[str] | None = None) -> Path | Figure:
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
        path: where to write the PNG, or None to return the Figure.
        labels: region names (N,) or None. With at most 24 regions every region is named on the
            axes; with more, the axes name the ``groups``.
        groups: a group per region (N,), e.g. ``hemispheres(labels)`` or resting-state networks,
            or None. Given, the matrices are ordered by group (:func:`region_order`) with lines
            between groups. ``labels`` and ``groups`` need every subject to have N regions.

    Returns:
        ``path`` as a Path, or the Figure when ``path`` is None.

    Raises:
        TypeError: ``empirical``/``simulated`` are not dicts, ``scores`` is neither a dict nor
            None, ``labels``/``groups`` are not lists, or ``path`` is not a path or None.
        ValueError: the subject keys differ or are empty, a matrix is not square 2-D or not
            numbers, the two matrices of a subject differ in shape, a matrix has non-finite
            entries, a score is not a number, or ``labels``/``groups`` do not have one entry per
            region.
    """
    _check_path(path)
    mats = _fc_pairs(empirical, simulated, scores)
    shown = mats[:MAX_SUBJECTS]
    rows = len(shown)
    height = _FC_HEAD + _FC_ROW * rows
    fig = _new_figure(_FC_WIDTH, height, layout=None)
    image = None
    for i, (k, e, s, r) in enumerate(shown):
        top = _FC_HEAD + i * _FC_ROW + _FC_TITLE
        image = _draw_fc_matrices(fig, height, top, k, e, s, labels, groups)
        ax = _fc_axes(fig, height, _FC_X["scatter"], top, _FC_PANEL, _FC_PANEL)
        _draw_fc_scatter(ax, k, e, s, r, legend=i == 0)
    span = min(rows, 2)
    cax = _fc_axes(fig, height, _FC_X["cbar"], _FC_HEAD + _FC_TITLE, _FC_CBAR_WIDTH,
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


def _fcd_data(empirical: object, simulated: object, ks: object) -> list[tuple]:
    """(subject, empirical values or (edges, counts), simulated values, KS distance) per subject,
    checked; the distance as given in ``ks``, else computed."""
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
    return data


def _fcd_range(shown: list[tuple]) -> tuple[float, float]:
    """A common x range: where any drawn distribution has mass, padded, within [-1, 1]."""
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
    return lo, hi


def _draw_fcd_panel(ax, k: Any, emp: np.ndarray | tuple, sim: np.ndarray, d: float,
                    bins: np.ndarray, xlim: tuple[float, float], first_column: bool) -> None:
    """One subject's empirical and simulated FCD densities."""
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
    ax.set_xlim(*xlim)
    ax.set_title(f"{k}: KS = {_fmt(d)}", fontsize=10)
    ax.set_xlabel("FCD value (Pearson r)")
    if first_column:
        ax.set_ylabel("probability density")
    ax.tick_params(labelbottom=True)
    ax.legend(fontsize=7, frameon=False, loc="upper left")
    ax.grid(alpha=0.3)


def plot_fcd_histograms(empirical: dict[str, Any], simulated: dict[str, np.ndarray],
                        path: str | os.PathLike | None,
                        ks: dict[str, float] | None = None) -> Path | Figure:
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
        path: where to write the PNG, or None to return the Figure.
        ks: subject id -> KS distance shown in the titles, or None. Subjects missing from it, or
            with a NaN value, get it computed here: the two-sample statistic for values, the
            one-sample statistic against the histogram's piecewise-linear CDF for a histogram.

    Returns:
        ``path`` as a Path, or the Figure when ``path`` is None.

    Raises:
        TypeError: ``empirical``/``simulated`` are not dicts, ``ks`` is neither a dict nor None,
            or ``path`` is not a path or None.
        ValueError: the subject keys differ or are empty, values are not 1-D numbers or not
            finite, a KS distance is not a number, or a histogram has inconsistent lengths,
            non-increasing edges or negative counts.
    """
    _check_path(path)
    data = _fcd_data(empirical, simulated, ks)
    shown = data[:MAX_SUBJECTS]
    xlim = _fcd_range(shown)
    bins = np.linspace(-1.0, 1.0, int(round(2.0 / _FCD_BIN)) + 1)

    n = len(shown)
    cols = min(n, 4)
    rows = math.ceil(n / cols)
    fig = _new_figure(0.6 + _FCD_COL * cols, _FCD_HEAD + _FCD_ROW * rows)
    axes = fig.subplots(rows, cols, squeeze=False, sharex=True)
    for i, (k, emp, sim, d) in enumerate(shown):
        _draw_fcd_panel(axes[i // cols][i % cols], k, emp, sim, d, bins, xlim, i % cols == 0)
    for j in range(n, rows * cols):
        axes[j // cols][j % cols].set_visible(False)
    ds = [d for *_, d in data if math.isfinite(d)]
    mean = f"; mean KS = {np.mean(ds):.3f} over {_n_subjects(len(ds))}" if ds else ""
    fig.suptitle(f"FCD distributions, empirical vs simulated{_cap_note(len(data), n)}{mean}",
                 fontsize=12)
    return _save(fig, path)


# ----------------------------------------------------------------------------- baselines


def plot_baselines(subjects: Mapping[str, Mapping[str, float]], baselines: Mapping[str, str],
                   path: str | os.PathLike | None) -> Path | Figure:
    """What the fit is worth: each subject's held-out FC similarity beside the baselines.

    One column per subject (and their mean): the fit's held-out FC similarity (a filled dot) and
    each baseline that uses no model (open markers), e.g. the SC, log SC, leave-one-out group FC
    and the subject's own fitted-part FC (the ceiling;
    :data:`brainfit.fit.baselines.BASELINES`). A fit worth having sits above the leave-one-out
    group FC.

    Args:
        subjects: subject id -> scores with ``fc_similarity`` and the baseline keys (as in
            ``metrics.json["held_out"]``).
        baselines: key -> label of the baselines drawn.
        path: where to write the PNG, or None to return the Figure.

    Returns:
        ``path`` as a Path, or the Figure when ``path`` is None.

    Raises:
        TypeError: ``subjects`` is not a dict of dicts, or ``path`` is not a path or None.
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


def _draw_no_epochs(fig) -> None:
    """The figure of an empty history: it says so."""
    ax = fig.subplots()
    ax.text(0.5, 0.5, "no training epochs recorded", ha="center", va="center",
            transform=ax.transAxes, fontsize=14)
    ax.set_xlabel("epoch")
    ax.set_yticks([])
    fig.suptitle("Loss curves")


def plot_loss_curves(history: list[dict[str, float]],
                     path: str | os.PathLike | None) -> Path | Figure:
    """Training loss and metrics per epoch.

    Panels, each only when it has something to show: the training loss (``loss``, and
    ``eval/loss`` if recorded; logarithmic y axis when every value is positive); the metric series
    (every other numeric key: loss terms such as ``fc_corr`` or ``fcd``, similarities such as
    ``fc_similarity``, validation ``eval/...`` scores); the titles say which is which: training
    scores are measured on the part of each session the fit is fitted to, ``eval/`` scores on the
    validation part, which is not fitted and picks ``best.pt`` (the held-out scores, the ones to
    report, are in ``metrics.json``); the optimiser diagnostics ``lr`` and
    ``grad_norm`` (log y when positive). Training series are solid lines; ``eval/`` series are
    dashed with markers and drawn only at the epochs where they were recorded. Non-numeric values
    and NaN are skipped. An empty history gives a figure that says so, so a run with no epochs still
    leaves its figure.

    The figure is 11 in wide and ``0.5 + 3.2 * panels`` in tall (one panel when the history is
    empty).

    Args:
        history: one dict per logged epoch, each with ``"epoch"`` and any numeric keys.
        path: where to write the PNG, or None to return the Figure.

    Returns:
        ``path`` as a Path, or the Figure when ``path`` is None.

    Raises:
        TypeError: ``history`` is not a list of dicts, or ``path`` is not a path or None.
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
        ("training loss: on the fitted (training) part of each session", loss_keys, True),
        ("scores: solid = fitted part (what the fit sees); dashed eval/ = validation part "
         "(not fitted; it picks best.pt)", metric_keys, False),
        ("optimiser: learning rate and gradient norm", opt_keys, True),
    ) if keys]

    fig = _new_figure(_LOSS_WIDTH, _LOSS_HEAD + _LOSS_PANEL * max(1, len(panels)))
    if not panels:
        _draw_no_epochs(fig)
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
