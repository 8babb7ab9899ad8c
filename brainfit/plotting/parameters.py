"""What a fit found: its parameters per subject and region in natural units, within their
bounds (:func:`plot_parameters`), and its effective connectivity against the structural one
(:func:`plot_connectivity`)."""

from __future__ import annotations

import math
import numbers
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from brainfit.plotting._common import (
    MAX_SUBJECTS,
    _array,
    _cap_note,
    _check_path,
    _finite,
    _fmt,
    _new_figure,
    _save,
    _subject_colors,
    _subjects,
)

if TYPE_CHECKING:
    from matplotlib.figure import Figure

# figure geometry, inches (the docstrings state the resulting sizes)
_PAR_WIDTH, _PAR_PANEL, _PAR_HEAD = 12.0, 2.6, 0.6
_PAR_TABLE_HEAD, _PAR_TABLE_ROW = 0.5, 0.24


# ----------------------------------------------------------------------------- reading the rows


@dataclass
class _Parameters:
    """The rows of :func:`plot_parameters`, read: the subjects in order of appearance, and per
    parameter its unit, bounds, regime boundary and values (regional: subject -> region -> value;
    scalar: subject -> value)."""

    subjects: list[Any] = field(default_factory=list)
    units: dict[str, str] = field(default_factory=dict)
    fixed: set[str] = field(default_factory=set)
    lows: dict[str, float] = field(default_factory=dict)
    highs: dict[str, float] = field(default_factory=dict)
    regime_at: dict[str, float] = field(default_factory=dict)
    regional: dict[str, dict[Any, dict[int | str, float]]] = field(default_factory=dict)
    scalar: dict[str, dict[Any, float]] = field(default_factory=dict)


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


def _optional_number(v: object, name: str) -> float | None:
    """A bound or regime value: None for None, "" or NaN (as a CSV gives them), else a float."""
    if v is None or (isinstance(v, str) and not v.strip()):
        return None
    try:
        x = float(v)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number or empty, got {v!r}") from None
    return None if math.isnan(x) else x


def _check_rows(rows: object, labels: object) -> list[str] | None:
    """``rows`` is a non-empty list; ``labels`` as a list of strings, or None."""
    if isinstance(rows, (str, bytes, Mapping)) or not isinstance(rows, Sequence):
        raise TypeError(f"rows must be a list of dicts, got {type(rows).__name__}")
    if len(rows) == 0:
        raise ValueError("rows is empty; give at least one parameter value")
    if labels is None:
        return None
    if isinstance(labels, (str, bytes)) or not isinstance(labels, Sequence):
        raise TypeError(f"labels must be a list of region names or None, got "
                        f"{type(labels).__name__}")
    return [str(x) for x in labels]


def _read_row(i: int, row: object, out: _Parameters) -> None:
    """Add ``rows[i]`` to ``out``, checked."""
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
        out.fixed.add(name)
    for key, store in (("low", out.lows), ("high", out.highs), ("regime", out.regime_at)):
        v = _optional_number(row.get(key), f"rows[{i}][{key!r}]")
        if v is not None:
            store.setdefault(name, v)
    unit = str(row.get("unit") or "").strip()
    if unit:
        if out.units.get(name, unit) != unit:
            raise ValueError(f"parameter {name!r} is given in two units, {out.units[name]!r} and "
                             f"{unit!r} (rows[{i}]); convert to one unit")
        out.units[name] = unit
    if subj not in out.subjects:
        out.subjects.append(subj)
    region = _region_key(row.get("region"), i)
    if region is None:
        per = out.scalar.setdefault(name, {})
        if subj in per:
            raise ValueError(f"rows[{i}]: parameter {name!r} of subject {subj!r} is given "
                             f"twice; give one row per (subject, parameter, region)")
        per[subj] = value
    else:
        per = out.regional.setdefault(name, {}).setdefault(subj, {})
        if region in per:
            raise ValueError(f"rows[{i}]: parameter {name!r} of subject {subj!r} at region "
                             f"{region!r} is given twice; give one row per (subject, "
                             f"parameter, region)")
        per[region] = value


def _override(p: _Parameters, bounds: Mapping | None, regimes: Mapping | None) -> None:
    """The bounds and regime boundaries given by hand replace the rows'."""
    for name, (lo, hi) in (bounds or {}).items():
        for store, v in ((p.lows, lo), (p.highs, hi)):
            store.pop(name, None)
            if v is not None:
                store[name] = float(v)
    p.regime_at.update({k: float(v) for k, v in (regimes or {}).items()})


def _leave_out_fixed(p: _Parameters) -> list[str]:
    """Drop the fixed parameters (unless every parameter is fixed); returns their names."""
    left_out: list[str] = []
    if len(p.fixed) < len(set(p.regional) | set(p.scalar)):
        left_out = [name for name in (*p.regional, *p.scalar) if name in p.fixed]
        p.regional = {k: v for k, v in p.regional.items() if k not in p.fixed}
        p.scalar = {k: v for k, v in p.scalar.items() if k not in p.fixed}
    return left_out


def _region_positions(regional: dict, labels: list[str] | None
                      ) -> tuple[dict[int | str, int], list[str] | None]:
    """Region -> x position, and the tick labels (None: the x axis gives indices)."""
    all_regions = [r for per_p in regional.values() for per_s in per_p.values() for r in per_s]
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
        return pos, labels
    if all(isinstance(r, int) for r in all_regions):
        return {r: r for r in all_regions}, None
    if all(isinstance(r, str) for r in all_regions):
        names = list(dict.fromkeys(all_regions))
        return {r: j for j, r in enumerate(names)}, names
    raise ValueError("rows mix region indices and region names; pass labels= to place the "
                     "names, or use one kind")


# ----------------------------------------------------------------------------- drawing them


def _names(names: list[str]) -> str:
    """Parameter names for a title: those of a component (``bold.kappa``, ...) counted."""
    groups: dict[str, list[str]] = {}
    for n in names:
        groups.setdefault(n.split(".")[0] if "." in n else n, []).append(n)
    return ", ".join(v[0] if len(v) == 1 else f"{k}.* ({len(v)})" for k, v in groups.items())


def _bounds_note(lo: float | None, hi: float | None) -> str:
    if lo is None and hi is None:
        return ""
    return f" in [{'-inf' if lo is None else f'{lo:.3g}'}, {'inf' if hi is None else f'{hi:.3g}'}]"


def _bounds_and_regime(ax, name: str, lo: float | None, hi: float | None,
                       regime: float | None) -> None:
    """Grey dashed lines at a parameter's bounds, a red line where the model changes regime."""
    for v, what in ((lo, "lower"), (hi, "upper")):
        if v is not None:
            ax.axhline(v, color="0.5", ls="--", lw=1.0, label=f"{what} bound {name} = {v:.3g}")
    if regime is not None:
        ax.axhline(regime, color="tab:red", lw=1.2,
                   label=f"{name} = {regime:g}: the model changes regime")


def _heights(p: _Parameters, ticklabels: list[str] | None) -> tuple[float, float, float]:
    """The heights (inches) of the regional panels and of the table, and the font size of the
    region names."""
    reg_h = _PAR_PANEL * len(p.regional)
    tick_fontsize = 9.0
    if p.regional and ticklabels is not None:
        # room below the panels for the rotated region names
        tick_fontsize = float(np.clip(700.0 / max(len(ticklabels), 1), 4.0, 9.0))
        reg_h += 0.6 * tick_fontsize / 72.0 * max(len(t) for t in ticklabels)
    table_h = _PAR_TABLE_HEAD + _PAR_TABLE_ROW * (len(p.scalar) + 1) if p.scalar else 0.0
    return reg_h, table_h, tick_fontsize


def _draw_regional_panel(ax, p: _Parameters, name: str, shown: list, colors: dict,
                         pos: dict, subject_legend: bool) -> bool:
    """One regional parameter's values per region, a line per subject (one black line when they
    share the values); returns whether a legend of the subjects has been drawn by now."""
    per_subject = [p.regional[name].get(subj) for subj in shown]
    shared = len(shown) > 1 and all(v == per_subject[0] for v in per_subject)
    for subj, per in zip(shown, per_subject[:1] if shared else per_subject):
        if not per:
            continue
        xs = np.array([pos[r] for r in per])
        ys = np.array(list(per.values()))
        order = np.argsort(xs)
        ax.plot(xs[order], ys[order], marker="o", ms=3, lw=1.0,
                color="k" if shared else colors[subj],
                label="all subjects (shared)" if shared else str(subj))
    _bounds_and_regime(ax, name, p.lows.get(name), p.highs.get(name), p.regime_at.get(name))
    unit = p.units.get(name, "")
    ax.set_ylabel(f"{name} [{unit}]" if unit else name)
    ax.set_title(f"{name}: regional values{' (fixed)' if name in p.fixed else ''}", fontsize=10)
    ax.grid(alpha=0.3)
    if name in p.regime_at or name in p.lows or name in p.highs:
        ax.legend(fontsize=7, framealpha=0.8, loc="best")
    elif ax.get_lines() and (shared or not subject_legend):
        subject_legend = subject_legend or not shared
        ax.legend(title="subject", fontsize=8, title_fontsize=8, frameon=False,
                  loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return subject_legend


def _draw_regional(subfig, p: _Parameters, shown: list, pos: dict,
                   ticklabels: list[str] | None, tick_fontsize: float) -> None:
    """A panel per regional parameter, sharing the region axis."""
    colors = dict(zip(shown, _subject_colors(len(shown))))
    reg_axes = list(subfig.subplots(len(p.regional), 1, squeeze=False, sharex=True)[:, 0])
    subject_legend = False  # the first panel with one line per subject carries the legend
    for ax, name in zip(reg_axes, p.regional):
        subject_legend = _draw_regional_panel(ax, p, name, shown, colors, pos, subject_legend)
    n_pos = len(ticklabels) if ticklabels is not None else max(pos.values()) + 1
    reg_axes[-1].set_xlim(-0.5, n_pos - 0.5)
    if ticklabels is not None:
        reg_axes[-1].set_xticks(range(len(ticklabels)))
        reg_axes[-1].set_xticklabels(ticklabels, rotation=90, fontsize=tick_fontsize)
        reg_axes[-1].set_xlabel("region")
    else:
        reg_axes[-1].set_xlabel("region (index)")


def _draw_scalar_table(subfig, p: _Parameters, shown: list) -> None:
    """The non-regional parameters as a table, parameters x subjects."""
    ax = subfig.subplots()
    ax.axis("off")
    names = list(p.scalar)
    cells = [[f"{p.scalar[n][s]:.4g}" if s in p.scalar[n] else "-" for s in shown] for n in names]
    row_labels = [(f"{n} [{p.units[n]}]" if p.units.get(n) else n)
                  + _bounds_note(p.lows.get(n), p.highs.get(n))
                  + (" (fixed)" if n in p.fixed else "") for n in names]
    table = ax.table(cellText=cells, rowLabels=row_labels,
                     colLabels=[str(s) for s in shown], loc="upper center",
                     cellLoc="center", colWidths=[min(0.14, 0.85 / len(shown))] * len(shown))
    table.auto_set_font_size(False)
    table.set_fontsize(9)
    ax.set_title("non-regional parameters (value per subject)", fontsize=10)


def plot_parameters(rows: list[dict], path: str | os.PathLike | None,
                    labels: list[str] | None = None, fitted_only: bool = True,
                    bounds: Mapping[str, tuple[float | None, float | None]] | None = None,
                    regimes: Mapping[str, float] | None = None,
                    title: str = "") -> Path | Figure:
    """Fitted parameters per subject, in natural units, within their bounds.

    One panel per regional parameter (the rows with a region) shows its value per region, one line
    per subject (a single black line when all subjects share the values, as group-level parameters
    do), its bounds as grey dashed lines and, where the model changes regime at a value of the
    parameter (the Hopf bifurcation ``a = 0``: below it a noise-driven fixed point, above it a
    limit cycle), that value as a red line. The non-regional parameters (rows whose region is
    None, ``""`` or missing) go in a last panel as a table (parameters x subjects, the bounds in
    the row labels), since their units and scales differ. The unit of each parameter is in its
    axis label or table row. At most :data:`MAX_SUBJECTS` subjects.

    With ``fitted_only`` (the default) only the fitted parameters are drawn: those whose rows say
    ``trainable`` True (all, when no row says). The fixed ones are named in the title.

    The figure is 12 in wide and ``0.6 + 2.6 * regional + table`` in tall, where ``table`` is
    ``0.5 + 0.24 * (scalar parameters + 1)`` in when there are non-regional parameters, else 0;
    when region names are drawn, the figure grows by the room their rotated text needs.

    Args:
        rows: dicts with ``"subject"``, ``"parameter"``, ``"value"`` (a number) and optionally
            ``"region"`` (an index, a region name from ``labels``, or None/"" for a non-regional
            value), ``"unit"``, ``"trainable"`` (False, or ``"False"`` as read from a CSV, for a
            fixed parameter), ``"low"``/``"high"`` (its bounds) and ``"regime"`` (the value where
            the model changes regime); other keys are ignored. The rows of ``fitted_params.csv``
            and of :meth:`brainfit.FittedModel.param_table` fit as they are.
        path: where to write the PNG, or None to return the Figure.
        labels: region names (N,). Given, the x axis names the regions and a region may be given
            by index into ``labels`` or by name; without it, regions are indices (or names, placed
            in order of first appearance).
        fitted_only: leave out the parameters whose rows say they are not trainable (else they
            are drawn, marked "fixed").
        bounds: parameter -> (low, high), overriding the rows' ``low``/``high`` (None: unbounded).
        regimes: parameter -> the value where the model changes regime, overriding the rows'
            ``regime`` (e.g. ``{"a": 0.0}`` for rows read from a CSV).
        title: the figure title (default: "Fitted parameters, natural units"); rows of any
            regional quantity (a "subject" per condition) draw the same way.

    Returns:
        ``path`` as a Path, or the Figure when ``path`` is None.

    Raises:
        TypeError: ``rows`` is not a list of dicts, ``labels`` is neither a list nor None, or
            ``path`` is not a path or None.
        ValueError: no rows, a required key missing, a non-numeric value, bound or regime, a
            region not in ``labels`` (or out of its range), a parameter given with two different
            units, a (subject, parameter, region) given twice, or region indices mixed with names
            without ``labels``.
    """
    _check_path(path)
    labels = _check_rows(rows, labels)
    p = _Parameters()
    for i, row in enumerate(rows):
        _read_row(i, row, p)
    _override(p, bounds, regimes)
    left_out = _leave_out_fixed(p) if fitted_only else []
    pos, ticklabels = _region_positions(p.regional, labels)

    shown = p.subjects[:MAX_SUBJECTS]
    reg_h, table_h, tick_fontsize = _heights(p, ticklabels)
    fig = _new_figure(_PAR_WIDTH, _PAR_HEAD + reg_h + table_h)
    # separate sub-figures, so the table's row labels do not push the panels' margins
    parts = [h for h in (reg_h, table_h) if h > 0]
    subfigs = list(np.atleast_1d(fig.subfigures(len(parts), 1, height_ratios=parts)))
    if p.regional:
        _draw_regional(subfigs[0], p, shown, pos, ticklabels, tick_fontsize)
    if p.scalar:
        _draw_scalar_table(subfigs[-1], p, shown)
    note = f"\nnot fitted (held at their values): {_names(left_out)}" if left_out else ""
    fig.suptitle(f"{title or 'Fitted parameters, natural units'}"
                 f"{_cap_note(len(p.subjects), len(shown))}{note}",
                 fontsize=12 if not note else 11)
    return _save(fig, path)


# ----------------------------------------------------------------------------- connectivity


def plot_connectivity(structural: dict[str, np.ndarray], fitted: dict[str, np.ndarray],
                      path: str | os.PathLike | None) -> Path | Figure:
    """Structural vs fitted (effective) connectivity, one row per subject.

    Each row shows the structural weights, the fitted ones (both on the colour scale of the row's
    largest weight; ``W[i, j]`` is the connection from column j to row i) and a scatter of fitted
    against structural weights of the connections present in either, on log axes, with the
    identity line: points above it were strengthened by the fit, below it weakened. At most
    :data:`MAX_SUBJECTS` rows are drawn.

    Args:
        structural: subject id -> SC (N, N), non-negative.
        fitted: subject id -> fitted weights (N, N), the same subject ids.
        path: where to write the PNG, or None to return the Figure.

    Returns:
        ``path`` as a Path, or the Figure when ``path`` is None.

    Raises:
        TypeError: ``structural``/``fitted`` are not dicts, or ``path`` is not a path or None.
        ValueError: different or no subjects, matrices not square or of different shapes, not
            numbers, non-finite or negative weights.
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
