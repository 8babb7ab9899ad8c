"""The dynamics of a node or a network: phase portraits over the flow
(:func:`plot_phase_portrait`), power spectra (:func:`plot_spectrum`), one node's time series,
phase portrait and spectrum together (:func:`plot_oscillator`) and bifurcation diagrams
(:func:`plot_bifurcation`)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from brainfit import metrics
from brainfit.plotting._common import (
    _array,
    _check_path,
    _finite,
    _lines,
    _new_figure,
    _save,
    _time,
)

if TYPE_CHECKING:
    from matplotlib.figure import Figure


# ----------------------------------------------------------------------------- phase portraits


def _draw_phase(ax, trajectories: dict[str, tuple[np.ndarray, np.ndarray]],
                field: Any = None) -> None:
    """Trajectories (start marked by a dot, direction by an arrow) over a vector field."""
    xs = np.concatenate([x for x, _ in trajectories.values()])
    ys = np.concatenate([y for _, y in trajectories.values()])
    pad_x = 0.1 * max(float(np.ptp(xs)), 1e-12)
    pad_y = 0.1 * max(float(np.ptp(ys)), 1e-12)
    xlim = (float(xs.min()) - pad_x, float(xs.max()) + pad_x)
    ylim = (float(ys.min()) - pad_y, float(ys.max()) + pad_y)
    if field is not None:
        gx, gy = np.meshgrid(np.linspace(*xlim, 25), np.linspace(*ylim, 25))
        u, v = (np.asarray(a, dtype=np.float64) for a in field(gx, gy))
        ax.streamplot(gx, gy, u, v, color="0.75", density=0.9, linewidth=0.7, arrowsize=0.8)
    for j, (k, (x, y)) in enumerate(trajectories.items()):
        color = f"C{j % 10}"
        ax.plot(x, y, lw=1.1, color=color, label=k or None)
        ax.plot(x[0], y[0], "o", ms=4, color=color)
        m = min(len(x) - 2, max(1, len(x) // 3))
        ax.annotate("", xy=(x[m + 1], y[m + 1]), xytext=(x[m], y[m]),
                    arrowprops={"arrowstyle": "-|>", "color": color, "lw": 1.2})
    ax.set_xlim(*xlim)
    ax.set_ylim(*ylim)
    ax.grid(alpha=0.3)
    if any(trajectories):
        ax.legend(fontsize=8, frameon=False)


def _trajectories(trajectories: object, name: str = "trajectories"
                  ) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    if not isinstance(trajectories, Mapping):
        trajectories = {"": trajectories}
    if not trajectories:
        raise ValueError(f"{name} is empty; give at least one (x, y) pair")
    out = {}
    for k, xy in trajectories.items():
        if not (isinstance(xy, (tuple, list)) and len(xy) == 2):
            raise ValueError(f"{name}[{k!r}] must be a pair (x (T,), y (T,)), got "
                             f"{type(xy).__name__}")
        x = _finite(_array(xy[0], f"{name}[{k!r}] x"), f"{name}[{k!r}] x")
        y = _finite(_array(xy[1], f"{name}[{k!r}] y"), f"{name}[{k!r}] y")
        if x.ndim != 1 or x.shape != y.shape or x.size < 3:
            raise ValueError(f"{name}[{k!r}] must be two 1-D arrays of one length >= 3, got "
                             f"shapes {x.shape} and {y.shape}")
        out[str(k)] = (x, y)
    return out


def plot_phase_portrait(trajectories: Mapping[str, tuple[np.ndarray, np.ndarray]] | tuple,
                        path: str | os.PathLike | None = None, field: Any = None,
                        xlabel: str = "x", ylabel: str = "y", title: str = "") -> Path | Figure:
    """Trajectories in a state plane, over the vector field that moves them.

    Each trajectory starts at a dot and an arrow shows its direction. With ``field``, grey
    streamlines show the flow everywhere in the drawn window: a spiral into a point is a damped
    oscillation (a stable focus), a closed loop a limit cycle.

    Args:
        trajectories: label -> (x (T,), y (T,)), or one (x, y) pair.
        path: where to write the PNG, or None to return the Figure.
        field: a function ``(X, Y) -> (dX/dt, dY/dt)`` of two NumPy grids, or None.
        xlabel: the x axis label (the push variable, with its unit).
        ylabel: the y axis label (the pull variable, with its unit).
        title: the figure title.

    Returns:
        ``path`` as a Path, or the Figure when ``path`` is None.

    Raises:
        TypeError: ``path`` is not a path or None.
        ValueError: a trajectory is not two 1-D finite arrays of one length >= 3.
    """
    _check_path(path)
    trajs = _trajectories(trajectories)
    fig = _new_figure(5.5, 5.0)
    ax = fig.subplots()
    _draw_phase(ax, trajs, field)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title or "phase portrait", fontsize=11)
    return _save(fig, path)


# ----------------------------------------------------------------------------- spectra


def _spectra(x: dict[str, np.ndarray], dt_ms: float, nperseg: int | None
             ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Welch spectra (:func:`brainfit.metrics.psd_welch`) of (T,) or (T, K) series in Hz."""
    out = {}
    freqs = None
    for k, y in x.items():
        ys = torch.as_tensor(y if y.ndim == 2 else y[:, None])
        seg = nperseg or (ys.shape[0] // 2 if ys.shape[0] >= 64 else ys.shape[0])
        f, p = metrics.psd_welch(ys, fs=1000.0 / dt_ms, nperseg=seg)  # (F,), (F, K)
        freqs = f.numpy()
        out[k] = p.numpy()
    return freqs, out


def _draw_spectrum(ax, freqs: np.ndarray, power: dict[str, np.ndarray], log: bool,
                   fmax: float | None) -> None:
    """Spectra with each line's peak frequency in the legend (the 0 Hz bin skipped)."""
    sel = freqs > 0
    if fmax is not None:
        sel &= freqs <= fmax
    for j, (k, p) in enumerate(power.items()):
        ps = p if p.ndim == 2 else p[:, None]
        mean = ps.mean(axis=1)
        peak = float(freqs[sel][np.argmax(mean[sel])]) if sel.any() else float("nan")
        label = f"{k + ': ' if k else ''}peak {peak:.3g} Hz"
        ax.plot(freqs[sel], mean[sel], lw=1.2, color=f"C{j % 10}", label=label)
    if log and all(np.all(p[sel] > 0) for p in power.values()):
        ax.set_yscale("log")
    ax.set_xlabel("frequency (Hz)")
    ax.set_ylabel("power density" + (" (log scale)" if ax.get_yscale() == "log" else ""))
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8, frameon=False)


def plot_spectrum(freqs: np.ndarray, power: Mapping[str, np.ndarray] | np.ndarray,
                  path: str | os.PathLike | None = None, log: bool = True,
                  fmax: float | None = None, title: str = "") -> Path | Figure:
    """Power spectra, each line's peak frequency in the legend.

    Args:
        freqs: frequencies (F,) in Hz, e.g. from :func:`brainfit.metrics.psd_welch`.
        power: label -> power (F,) or (F, K) (the mean over K is drawn), or one array.
        path: where to write the PNG, or None to return the Figure.
        log: a logarithmic power axis (when every value drawn is positive).
        fmax: the highest frequency drawn, Hz (None: all).
        title: the figure title.

    Returns:
        ``path`` as a Path, or the Figure when ``path`` is None.

    Raises:
        TypeError: ``path`` is not a path or None.
        ValueError: an entry's length differs from ``freqs``, or values are not finite.
    """
    _check_path(path)
    f = _finite(_array(freqs, "freqs"), "freqs")
    lines = _lines(power, "power")
    for k, p in lines.items():
        if p.shape[0] != f.size:
            raise ValueError(f"power[{k!r}] has {p.shape[0]} frequencies but freqs has {f.size}")
    fig = _new_figure(6.5, 4.2)
    ax = fig.subplots()
    _draw_spectrum(ax, f, lines, log, fmax)
    ax.set_title(title or "power spectrum", fontsize=11)
    return _save(fig, path)


# ----------------------------------------------------------------------------- one node


def plot_oscillator(t: np.ndarray, x: Mapping[str, np.ndarray] | np.ndarray,
                    y: Mapping[str, np.ndarray] | np.ndarray,
                    path: str | os.PathLike | None = None, names: tuple[str, str] = ("x", "y"),
                    field: Any = None, fmax: float | None = None, title: str = "",
                    nperseg: int | None = None) -> Path | Figure:
    """One node's dynamics in three panels: time series, phase portrait and spectrum.

    The push-pull pair of a model (``x`` excites, ``y`` restrains: the harmonic oscillator's x and
    y, Wilson-Cowan's E and I) is drawn against time, against each other (with the flow
    ``field`` if given) and as the power spectrum of ``x`` (Welch, :func:`brainfit.metrics.
    psd_welch`). Several runs (e.g. parameter values) overlay, one colour each. 15 x 4.2 in.

    Args:
        t: times (T,) in ms, evenly spaced.
        x: label -> the push variable (T,), or one array.
        y: label -> the pull variable (T,), the same labels as ``x``, or one array.
        path: where to write the PNG, or None to return the Figure.
        names: the two variables' names (with units), for the axes.
        field: ``(X, Y) -> (dX/dt, dY/dt)`` for the phase portrait's streamlines, or None.
        fmax: the highest frequency drawn, Hz.
        title: the figure title.
        nperseg: Welch segment length in samples (default: T // 2, three half-overlapping
            segments, a resolution of 2 / duration).

    Returns:
        ``path`` as a Path, or the Figure when ``path`` is None.

    Raises:
        TypeError: ``path`` is not a path or None.
        ValueError: ``x`` and ``y`` differ in labels or lengths, ``t`` is not (T,) and evenly
            spaced, or values are not finite.
    """
    _check_path(path)
    xs, ys = _lines(x, "x"), _lines(y, "y")
    if list(xs) != list(ys):
        raise ValueError(f"x and y must have the same labels, got {list(xs)} and {list(ys)}")
    n = next(iter(xs.values())).shape[0]
    time = _time(t, n)
    steps = np.diff(time)
    if np.any(steps <= 0) or np.ptp(steps) > 1e-6 * abs(steps.mean()):
        raise ValueError("t must be evenly spaced and increasing (the spectrum needs a sampling "
                         "rate)")
    trajs = {}
    for k in xs:
        if xs[k].shape != (n,) or ys[k].shape != (n,):
            raise ValueError(f"x[{k!r}] and y[{k!r}] must both be (T,) = ({n},), got "
                             f"{xs[k].shape} and {ys[k].shape}")
        trajs[k] = (xs[k], ys[k])
    fig = _new_figure(15.0, 4.2)
    ax_t, ax_p, ax_s = fig.subplots(1, 3, gridspec_kw={"width_ratios": [1.6, 1.0, 1.1]})
    for j, k in enumerate(xs):
        ax_t.plot(time, xs[k], lw=1.0, color=f"C{j % 10}", label=f"{k + ': ' if k else ''}"
                  f"{names[0]}")
        ax_t.plot(time, ys[k], lw=0.8, ls="--", color=f"C{j % 10}", alpha=0.7,
                  label=f"{k + ': ' if k else ''}{names[1]}")
    ax_t.set_xlabel("time (ms)")
    ax_t.set_title(f"time series (solid {names[0]}, dashed {names[1]})", fontsize=10)
    ax_t.grid(alpha=0.3)
    _draw_phase(ax_p, trajs, field)
    ax_p.set_xlabel(names[0])
    ax_p.set_ylabel(names[1])
    ax_p.set_title("phase portrait", fontsize=10)
    freqs, power = _spectra(xs, float(steps.mean()), nperseg)
    _draw_spectrum(ax_s, freqs, power, True, fmax)
    ax_s.set_title(f"spectrum of {names[0]}", fontsize=10)
    if title:
        fig.suptitle(title, fontsize=12)
    return _save(fig, path)


# ----------------------------------------------------------------------------- bifurcations


def _extrema(y: np.ndarray) -> np.ndarray:
    """Local maxima and minima of a trace; its mean when it has none (a fixed point)."""
    d = np.diff(y)
    turn = np.flatnonzero(np.sign(d[1:]) != np.sign(d[:-1])) + 1
    return y[turn] if turn.size else np.array([y.mean()])


def plot_bifurcation(values: np.ndarray, traces: np.ndarray,
                     path: str | os.PathLike | None = None, name: str = "parameter",
                     unit: str = "", observable: str = "x", dt: float | None = None,
                     critical: float | None = None, critical_label: str = "bifurcation",
                     title: str = "") -> Path | Figure:
    """A bifurcation diagram from simulations at a range of parameter values.

    Top: for each value, the local maxima and minima of its trace (after transients; a fixed
    point has none and is drawn at its mean), so a fixed point is one dot and an oscillation two
    branches that open where it is born. Bottom (with ``dt``): the frequency of the largest
    spectral peak where the trace oscillates (peak-to-peak above 10 % of the largest). A red line
    marks ``critical``, the value where theory places the bifurcation. 8 x 4 in, 8 x 7 with the
    frequency panel.

    Args:
        values: the parameter values (P,).
        traces: the observable at each value, (P, T) after transients.
        path: where to write the PNG, or None to return the Figure.
        name: the parameter's name.
        unit: the parameter's unit.
        observable: the observable's name (with its unit).
        dt: the traces' sampling interval in ms, for the frequency panel (None: no panel).
        critical: the parameter value of the bifurcation, or None.
        critical_label: what happens at ``critical``.
        title: the figure title.

    Returns:
        ``path`` as a Path, or the Figure when ``path`` is None.

    Raises:
        TypeError: ``path`` is not a path or None.
        ValueError: ``traces`` is not (P, T) with P = len(values) and T >= 3, or not finite.
    """
    _check_path(path)
    v = _finite(_array(values, "values"), "values")
    y = _finite(_array(traces, "traces"), "traces")
    if v.ndim != 1 or y.ndim != 2 or y.shape[0] != v.size or y.shape[1] < 3:
        raise ValueError(f"traces must be (P, T) with P = len(values) = {v.size} and T >= 3, got "
                         f"shape {y.shape}")
    fig = _new_figure(8.0, 7.0 if dt else 4.0)
    axes = fig.subplots(2 if dt else 1, 1, squeeze=False, sharex=True)[:, 0]
    ax = axes[0]
    for p, trace in zip(v, y):
        ext = _extrema(trace)
        ax.plot(np.full(ext.size, p), ext, ".", ms=2, color="k")
    label = f"{name} [{unit}]" if unit else name
    ax.set_ylabel(f"{observable}: extrema")
    ax.set_title("local maxima and minima after transients", fontsize=10)
    if dt:
        amp = np.ptp(y, axis=1)
        osc = amp > 0.1 * max(float(amp.max()), 1e-300)
        freqs = np.fft.rfftfreq(y.shape[1], d=dt / 1000.0)
        spec = np.abs(np.fft.rfft(y - y.mean(axis=1, keepdims=True), axis=1))
        peak = freqs[1:][np.argmax(spec[:, 1:], axis=1)]
        axes[1].plot(v[osc], peak[osc], "o-", ms=3, color="tab:blue")
        axes[1].set_ylabel("peak frequency (Hz)")
        axes[1].set_title("frequency of the oscillation", fontsize=10)
    for a in axes:
        if critical is not None:
            a.axvline(critical, color="tab:red", lw=1.2,
                      label=f"{critical_label} ({name} = {critical:g})")
            a.legend(fontsize=8, frameon=False, loc="best")
        a.grid(alpha=0.3)
    axes[-1].set_xlabel(label)
    fig.suptitle(title or f"Bifurcation diagram in {name}", fontsize=12)
    return _save(fig, path)
