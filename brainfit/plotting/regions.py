"""Regions of a matrix figure: the hemisphere of each region read from its name, the order of
regions by group, and the region names or group names on a matrix panel's axes."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

#: name patterns of the two hemispheres: suffixes (``Precentral_L``), prefixes (``L_V1``,
#: ``lh.precentral``, ``Left-Thalamus``)
_HEMI_PATTERNS = {
    "left": (r"[_.\- ]L$", r"^L[_.\- ]", r"^lh[_.\-]", r"^left[_.\- ]", r"[_.\- ]left$"),
    "right": (r"[_.\- ]R$", r"^R[_.\- ]", r"^rh[_.\-]", r"^right[_.\- ]", r"[_.\- ]right$"),
}


def hemispheres(labels: Sequence[str]) -> list[str]:
    """The hemisphere of each region, read from its name.

    Recognises AAL-style suffixes (``Precentral_L``), prefixes (``L_V1``, ``lh.precentral``) and
    the words left/right, in any case. Pass the result as ``groups`` to order an FC matrix left
    hemisphere first.

    Args:
        labels: region names (N,).

    Returns:
        ``"left"``, ``"right"`` or ``"other"`` per region.

    Raises:
        TypeError: ``labels`` is a string or not a sequence (give a list of region names).
    """
    import re

    if isinstance(labels, (str, bytes)) or not isinstance(labels, Sequence):
        raise TypeError(f"labels must be a list of region names, got {type(labels).__name__}")
    out = []
    for name in labels:
        side = "other"
        for hemi, patterns in _HEMI_PATTERNS.items():
            if any(re.search(p, str(name), flags=re.I) for p in patterns):
                side = hemi
                break
        out.append(side)
    return out


def region_order(groups: Sequence[str]) -> np.ndarray:
    """Region indices sorted by group, groups in order of first appearance, regions within a
    group in their given order (a stable sort).

    Args:
        groups: a group name per region (N,), e.g. :func:`hemispheres` or resting-state networks.

    Returns:
        the permutation (N,) of region indices.
    """
    first: dict[str, int] = {}
    for g in groups:
        first.setdefault(str(g), len(first))
    return np.argsort([first[str(g)] for g in groups], kind="stable")


def _regions(n: int, labels: Sequence[str] | None, groups: Sequence[str] | None
             ) -> tuple[np.ndarray, list[str] | None, list[str] | None]:
    """(order, labels, groups) checked against N regions; without groups, the order is given."""
    for name, x in (("labels", labels), ("groups", groups)):
        if x is None:
            continue
        if isinstance(x, (str, bytes)) or not isinstance(x, Sequence):
            raise TypeError(f"{name} must be a list with one entry per region, got "
                            f"{type(x).__name__}")
        if len(x) != n:
            raise ValueError(f"{name} has {len(x)} entries but the matrices have {n} regions; "
                             f"give one per region")
    order = region_order(groups) if groups is not None else np.arange(n)
    labs = None if labels is None else [str(labels[i]) for i in order]
    grps = None if groups is None else [str(groups[i]) for i in order]
    return order, labs, grps


def _region_ticks(ax, n: int, labels: list[str] | None, groups: list[str] | None,
                  max_labels: int = 120) -> None:
    """Name the regions of a matrix panel (already ordered): every region's name when there are
    at most ``max_labels``, else the group names at their centres; lines between groups."""
    if groups is not None:
        bounds = [i for i in range(1, n) if groups[i] != groups[i - 1]]
        for b in bounds:
            ax.axhline(b - 0.5, color="k", lw=0.8)
            ax.axvline(b - 0.5, color="k", lw=0.8)
    if labels is not None and n <= max_labels:
        size = float(np.clip(320.0 / n, 2.5, 8.0))
        ax.set_xticks(range(n), labels, rotation=90, fontsize=size)
        ax.set_yticks(range(n), labels, fontsize=size)
        ax.set_xlabel("region")
        ax.set_ylabel("region")
    elif groups is not None:
        starts = [0] + [i for i in range(1, n) if groups[i] != groups[i - 1]] + [n]
        centres = [(a + b - 1) / 2 for a, b in zip(starts[:-1], starts[1:])]
        names = [groups[a] for a in starts[:-1]]
        ax.set_xticks(centres, names, fontsize=8)
        ax.set_yticks(centres, names, fontsize=8, rotation=90, va="center")
        ax.set_xlabel("region (by group)")
        ax.set_ylabel("region (by group)")
    else:
        ax.set_xlabel("region (index)")
        ax.set_ylabel("region (index)")
