"""Precomputed targets (no BOLD): SC plus group FC (N, N) and an optional FCD histogram.

The FCD histogram is ``(edges (M + 1,), counts (M,))``, a dict with those keys, or an ``.npz``
holding arrays ``edges`` and ``counts``; tract lengths in mm; TR in s.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from brainfit.data.formats.readers import _array_or_file, _finish, _require_file
from brainfit.data.subject import Cohort, DataError, Subject


def from_targets(
    weights: Any,
    fc: Any,
    fcd: Any = None,
    lengths: Any = None,
    labels: Any = None,
    tr: float | None = None,
    subject_id: str = "group",
    name: str | None = None,
    preprocessing: Any = None,
) -> Cohort:
    """A one-"subject" cohort of precomputed targets (no BOLD), as many published fits use.

    Args:
        weights: SC (N, N), array or path.
        fc: Group-average FC (N, N) to fit, array or path.
        fcd: Optional FCD distribution as a histogram: ``(edges (M + 1,), counts (M,))``, a dict
            with those keys, or a path to an .npz holding arrays ``edges`` and ``counts``.
        lengths: Tract lengths (N, N) in mm, array or path, or None.
        labels: Region names (N), or None.
        tr: Repetition time in s of the data the targets were computed from (the sampling interval
            to use for simulated BOLD), or None.
        subject_id: Id of the target "subject".
        name: Cohort name.
        preprocessing: Applied after loading (only the weight normalisation acts: there is no
            BOLD).

    Raises:
        FileNotFoundError: a missing file.
        DataError: shapes that disagree, an asymmetric FC, a bad histogram.
    """
    w, w_lab, w_src = _array_or_file(weights, "weights")
    f, f_lab, f_src = _array_or_file(fc, "fc")
    ln, _, l_src = (None, None, None) if lengths is None else _array_or_file(lengths, "lengths")
    fcd_pair = None
    if fcd is not None:
        if isinstance(fcd, (str, os.PathLike)):
            p = _require_file(Path(fcd), "FCD histogram")
            try:
                with np.load(p, allow_pickle=False) as z:
                    fcd_pair = (z["edges"], z["counts"])
            except KeyError as err:
                raise DataError(f"FCD histogram {p} needs arrays 'edges' and 'counts'") from err
            except Exception as err:
                raise DataError(f"FCD histogram {p}: cannot read it as .npz ({err})") from err
        else:
            fcd_pair = fcd
    subject = Subject(
        id=subject_id, weights=w, lengths=ln, tr=tr,
        labels=next((x for x in (labels, w_lab, f_lab) if x is not None), None),
        fc_target=f, fcd_target=fcd_pair, source=f_src or w_src,
        sources={"weights": w_src, "lengths": l_src, "fc_target": f_src},
    )
    return _finish(Cohort([subject], name=name), preprocessing)
