"""Data and simulations as they are: a BOLD series as a carpet plot (:func:`plot_bold`), FC and
FCD matrices side by side (:func:`plot_fc`, :func:`plot_fcd`) and time series
(:func:`plot_timeseries`)."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from brainfit.checks import positive
from brainfit.plotting._common import (
    FC_CMAP,
    _array,
    _check_path,
    _fc_similarity,
    _finite,
    _fmt,
    _lines,
    _new_figure,
    _save,
    _time,
)
from brainfit.plotting.regions import _region_ticks, _regions

if TYPE_CHECKING:
    from matplotlib.figure import Figure

# figure geometry, inches (the docstrings state the resulting sizes)
_BOLD_SIZE = (11.0, 6.5)


# ----------------------------------------------------------------------------- BOLD


def plot_bold(bold: np.ndarray, tr: float, path: str | os.PathLike | None,
              title: str = "") -> Path | Figure:
    """Carpet plot of a BOLD series and its global mean signal.

    Top: every region's signal, z-scored per region (a region with zero variance is drawn as 0), as
    an image of regions x time on colour limits [-3, 3] (the "carpet plot" of Power 2017,
    NeuroImage 154:150). Bottom: the global signal, the mean over regions of the signal as given.
    Sample k is drawn at time ``k * tr`` seconds.

    The figure is 11 x 6.5 in.

    Args:
        bold: BOLD time series (T, N): T samples, N regions, in the units of the data (a.u.).
        tr: repetition time, seconds (> 0).
        path: where to write the PNG, or None to return the Figure.
        title: figure title (e.g. the subject id); a default names the size.

    Returns:
        ``path`` as a Path, or the Figure when ``path`` is None.

    Raises:
        TypeError: ``title`` is not a str, or ``path`` is not a path or None.
        ValueError: ``bold`` is not 2-D with T >= 2, is not numbers or has non-finite values, or
            ``tr`` is not a positive finite number of seconds.
    """
    _check_path(path)
    y = _array(bold, "bold")
    if y.ndim != 2 or y.shape[0] < 2 or y.shape[1] < 1:
        raise ValueError(f"bold must be a time series (T, N) with T >= 2 samples and N >= 1 "
                         f"regions, got shape {y.shape}")
    _finite(y, "bold")
    tr = positive(tr, "tr", "seconds", fix="give the repetition time of the BOLD series")
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


# ----------------------------------------------------------------------------- matrices


def _matrices(mats: object, name: str, square: bool = True) -> dict[str, np.ndarray]:
    """A non-empty dict title -> finite 2-D (square) array."""
    if not isinstance(mats, Mapping) or not mats:
        raise TypeError(f"{name} must be a non-empty dict mapping a panel title -> matrix, got "
                        f"{type(mats).__name__}")
    out = {}
    for k, m in mats.items():
        a = _finite(_array(m, f"{name}[{k!r}]"), f"{name}[{k!r}]")
        if a.ndim != 2 or (square and a.shape[0] != a.shape[1]) or a.shape[0] < 2:
            raise ValueError(f"{name}[{k!r}] must be a square matrix (N, N) with N >= 2, got "
                             f"shape {a.shape}")
        out[str(k)] = a
    return out


def plot_fc(matrices: Mapping[str, np.ndarray], path: str | os.PathLike | None = None,
            labels: Sequence[str] | None = None, groups: Sequence[str] | None = None,
            title: str = "") -> Path | Figure:
    """FC matrices side by side, ordered by group and labelled by region.

    One panel per matrix (e.g. ``{"empirical": fc_emp, "simulated": fc_sim}``) on the fixed colour
    limits [-1, 1] of :data:`FC_CMAP` with one colour bar; the title of each panel after the first
    gives its FC similarity with the first (Pearson r of the upper triangles). Each panel is 4.6 in
    square plus room for the region names.

    Args:
        matrices: panel title -> FC matrix (N, N), Pearson correlations; the same N for all.
        path: where to write the PNG, or None to return the Figure.
        labels: region names (N,): every region is named on both axes (up to 120 regions).
        groups: a group per region (N,), e.g. ``hemispheres(labels)``: regions are ordered by
            group with lines between groups.
        title: the figure title.

    Returns:
        ``path`` as a Path, or the Figure when ``path`` is None.

    Raises:
        TypeError: ``matrices`` is not a non-empty dict, ``labels``/``groups`` are not lists, or
            ``path`` is not a path or None.
        ValueError: a matrix is not square, not numbers or not finite, the matrices differ in
            size, or ``labels``/``groups`` do not have one entry per region.
    """
    _check_path(path)
    mats = _matrices(matrices, "matrices")
    sizes = {m.shape[0] for m in mats.values()}
    if len(sizes) > 1:
        raise ValueError(f"the matrices must all have N regions, got sizes {sorted(sizes)}")
    n = sizes.pop()
    order, labs, grps = _regions(n, labels, groups)
    room = 0.0 if labs is None else 0.07 * max(len(x) for x in labs) * np.clip(320 / n, 2.5, 8) / 8
    k = len(mats)
    fig = _new_figure(0.8 + 4.6 * k + room, 5.0 + room)
    axes = fig.subplots(1, k, squeeze=False)[0]
    first = next(iter(mats.values()))
    image = None
    for ax, (name, m) in zip(axes, mats.items()):
        image = ax.imshow(m[np.ix_(order, order)], cmap=FC_CMAP, vmin=-1.0, vmax=1.0,
                          interpolation="nearest")
        r = "" if m is first else f" (r = {_fmt(_fc_similarity(first, m))} with {next(iter(mats))})"
        ax.set_title(f"{name}{r}", fontsize=10)
        _region_ticks(ax, n, labs, grps)
    fig.colorbar(image, ax=list(axes), shrink=0.8, label="FC, Pearson correlation r (unitless)")
    fig.suptitle(title or f"Functional connectivity, {n} regions", fontsize=12)
    return _save(fig, path)


def plot_fcd(matrices: Mapping[str, np.ndarray], step: float,
             path: str | os.PathLike | None = None, window: float | None = None,
             title: str = "") -> Path | Figure:
    """FCD matrices side by side, in time.

    The functional connectivity dynamics (FCD) matrix holds the correlation between the FCs of
    every pair of sliding windows (Hansen et al. 2015, NeuroImage 105:525); blocks along the
    diagonal are epochs of stable FC, off-diagonal stripes recurring ones. Both axes are the
    windows' start times in seconds (window k starts at ``k * step``); the colour limits are
    shared, from the smallest value shown (at most 0) to 1.

    Args:
        matrices: panel title -> FCD matrix (W, W), e.g. from :func:`brainfit.metrics.fcd`.
        step: seconds between window starts (the ``step`` given to :func:`brainfit.metrics.fcd`).
        path: where to write the PNG, or None to return the Figure.
        window: the windows' length in seconds, named in the title.
        title: the figure title.

    Returns:
        ``path`` as a Path, or the Figure when ``path`` is None.

    Raises:
        TypeError: ``matrices`` is not a non-empty dict, or ``path`` is not a path or None.
        ValueError: a matrix is not square, not numbers or not finite, or ``step`` is not a
            positive finite number.
    """
    _check_path(path)
    mats = _matrices(matrices, "matrices")
    step = positive(step, "step", "seconds",
                    fix="give the seconds between window starts, as given to metrics.fcd")
    lo = min(0.0, min(float(m.min()) for m in mats.values()))
    k = len(mats)
    fig = _new_figure(0.8 + 4.2 * k, 4.6)
    axes = fig.subplots(1, k, squeeze=False)[0]
    image = None
    for ax, (name, m) in zip(axes, mats.items()):
        end = m.shape[0] * step
        image = ax.imshow(m, cmap="viridis", vmin=lo, vmax=1.0, interpolation="nearest",
                          extent=(-step / 2, end - step / 2, end - step / 2, -step / 2))
        ax.set_title(f"{name} ({m.shape[0]} windows)", fontsize=10)
        ax.set_xlabel("window start (s)")
        ax.set_ylabel("window start (s)")
    fig.colorbar(image, ax=list(axes), shrink=0.8, label="FC(t1) vs FC(t2), Pearson r")
    win = f", {window:g} s windows" if window else ""
    fig.suptitle(title or f"Functional connectivity dynamics{win}, every {step:g} s",
                 fontsize=12)
    return _save(fig, path)


# ----------------------------------------------------------------------------- time series


def _draw_lines(ax, x: np.ndarray, series: dict[str, np.ndarray], max_lines: int = 10) -> None:
    for j, (k, y) in enumerate(series.items()):
        ys = y if y.ndim == 2 else y[:, None]
        for c in range(min(ys.shape[1], max_lines)):
            ax.plot(x, ys[:, c], lw=1.0, color=f"C{(j + c) % 10}",
                    label=(k if c == 0 else None) or None)
    if any(series):
        ax.legend(fontsize=8, frameon=False, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.grid(alpha=0.3)


def plot_timeseries(t: np.ndarray, series: Mapping[str, np.ndarray] | np.ndarray,
                    path: str | os.PathLike | None = None, xlabel: str = "time (ms)",
                    ylabel: str = "", title: str = "", max_lines: int = 10) -> Path | Figure:
    """Time series, one panel per entry of ``series``, on a shared time axis.

    Args:
        t: sample times (T,), in the unit ``xlabel`` names.
        series: panel title -> values (T,) or (T, K) (K lines, at most ``max_lines`` drawn), or
            one array for one panel.
        path: where to write the PNG, or None to return the Figure.
        xlabel: the time axis label, with its unit.
        ylabel: the value axis label, with its unit.
        title: the figure title.
        max_lines: the most lines drawn per panel.

    Returns:
        ``path`` as a Path, or the Figure when ``path`` is None.

    Raises:
        TypeError: ``path`` is not a path or None.
        ValueError: an entry is not (T,) or (T, K) with T matching ``t``, or not finite.
    """
    _check_path(path)
    lines = _lines(series, "series")
    x = _time(t, next(iter(lines.values())).shape[0])
    fig = _new_figure(10.0, 0.6 + 2.2 * len(lines))
    axes = fig.subplots(len(lines), 1, squeeze=False, sharex=True)[:, 0]
    for ax, (k, y) in zip(axes, lines.items()):
        if y.shape[0] != x.size:
            raise ValueError(f"series[{k!r}] has {y.shape[0]} samples but t has {x.size}")
        _draw_lines(ax, x, {"": y}, max_lines)
        ax.set_title(k, fontsize=10)
        ax.set_ylabel(ylabel)
    axes[-1].set_xlabel(xlabel)
    if title:
        fig.suptitle(title, fontsize=12)
    return _save(fig, path)
