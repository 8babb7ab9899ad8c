"""Plain arrays or array files (.npy, .csv/.tsv/.txt, .mat), and brainfit's cohort ``.npz``.

Arrays: weights (N, N) or (S, N, N), tract lengths in mm, BOLD (T, N) time first (or (N, T) with
``bold_layout="NT"``), TR in s. The ``.npz`` format (written by :func:`save_npz`, read by
:func:`load_npz`, the format of the bundled cohorts) stacks the same arrays per subject, tagged
with :data:`NPZ_FORMAT`.
"""

from __future__ import annotations

import io
import json
import os
import re
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from brainfit.data.formats.readers import (
    PathLike,
    _array_or_file,
    _finish,
    _require_file,
    _stem,
)
from brainfit.data.subject import Cohort, DataError, Subject, as_cohort, to_numpy

#: Version tag written into (and expected in) brainfit cohort .npz files.
NPZ_FORMAT = "brainfit-cohort-1"


# ============================================================================ plain arrays


def _as_list(x: Any) -> list[Any] | None:
    """None; a list/tuple of items; a 3-D array as a list of 2-D ones; anything else as one item."""
    if x is None:
        return None
    if isinstance(x, Sequence) and not isinstance(x, str):  # lists, tuples, Hydra ListConfig
        return list(x)
    if not isinstance(x, (str, os.PathLike)):
        arr = to_numpy(x, "array", "load_arrays")
        if arr.ndim == 3:
            return list(arr)
    return [x]


def load_arrays(
    weights: Any,
    lengths: Any = None,
    bold: Any = None,
    tr: float | Sequence[float] | None = None,
    labels: Any = None,
    subject_ids: Sequence[str] | None = None,
    bold_layout: str = "TN",
    name: str | None = None,
    preprocessing: Any = None,
) -> Cohort:
    """A cohort from plain arrays or array files (.npy, .csv/.tsv/.txt, .mat).

    Each of ``weights``, ``lengths`` and ``bold`` is an array, a path, or a list of them (one per
    subject); a 3-D array counts as a stack of subjects. One ``weights`` (or ``lengths``) with
    several BOLD series is a group connectome shared by every subject.

    Args:
        weights: SC (N, N), (S, N, N), path(s).
        lengths: Tract lengths in mm, like ``weights``, or None.
        bold: BOLD (T, N), (S, T, N), path(s), or None.
        tr: Repetition time in s (one for all, or one per subject); required with ``bold``.
        labels: Region names (N), or a path to a text file with one name per line. Default: the
            header/index names of a text matrix, if any.
        subject_ids: Ids (default: file names of the BOLD, else weights, files; else ``sub-<k>``).
        bold_layout: ``"TN"`` (time first, default) or ``"NT"`` (regions first; transposed).
        name: Cohort name.
        preprocessing: Applied after loading.

    Raises:
        FileNotFoundError: a missing file.
        DataError: inconsistent counts, corrupt files, and every validation error of
            :class:`Subject`.
    """
    if bold_layout not in ("TN", "NT"):
        raise ValueError(f"bold_layout must be 'TN' (time, regions) or 'NT', got {bold_layout!r}")
    ws, ls, bs, trs = _per_subject_items(weights, lengths, bold, tr)
    n_sub = len(trs)
    if isinstance(labels, (str, os.PathLike)):
        lp = _require_file(Path(labels), "labels")
        labels = [ln.strip() for ln in lp.read_text().splitlines() if ln.strip()]

    def pick(items: list[Any] | None, k: int) -> Any:
        return None if items is None else items[k if len(items) > 1 else 0]

    subject_ids = _subject_ids(subject_ids, ws, bs, n_sub)

    cache: dict[int, tuple[np.ndarray, list[str] | None, str | None]] = {}

    def get(x: Any, what: str) -> tuple[np.ndarray, list[str] | None, str | None]:
        if id(x) not in cache:
            cache[id(x)] = _array_or_file(x, what)
        return cache[id(x)]

    out = []
    for k in range(n_sub):
        w, w_lab, w_src = get(pick(ws, k), "weights")
        ln, _, l_src = (None, None, None) if ls is None else get(pick(ls, k), "lengths")
        b = b_src = None
        if bs is not None:
            b, _, b_src = get(pick(bs, k), "bold")
            if bold_layout == "NT":
                b = b.T
        out.append(
            Subject(
                id=subject_ids[k],
                weights=w,
                lengths=ln,
                bold=b,
                tr=trs[k],
                labels=labels if labels is not None else w_lab,
                source=b_src or w_src,
                sources={"weights": w_src, "lengths": l_src, "bold": b_src},
            )
        )
    return _finish(Cohort(out, name=name), preprocessing)


def _per_subject_items(weights: Any, lengths: Any, bold: Any, tr: Any
                       ) -> tuple[list[Any], list[Any] | None, list[Any] | None, list[Any]]:
    """:func:`load_arrays`' weights, lengths and BOLD as lists (one item, or one per subject),
    and one TR per subject.

    Raises:
        DataError: no weights, or counts that do not match the number of subjects.
    """
    ws = _as_list(weights)
    if not ws:
        raise DataError("load_arrays: weights is required (an (N, N) array or a file)")
    ls = _as_list(lengths)
    bs = _as_list(bold)
    n_sub = max(len(ws), len(ls or []), len(bs or []))
    for what, items in (("weights", ws), ("lengths", ls), ("bold", bs)):
        if items is not None and len(items) not in (1, n_sub):
            raise DataError(
                f"load_arrays: {len(items)} {what} for {n_sub} subjects; give one per subject, or "
                "one shared by all"
            )
    trs = list(tr) if isinstance(tr, Sequence) and not isinstance(tr, str) else [tr] * n_sub
    if len(trs) != n_sub:
        raise DataError(f"load_arrays: {len(trs)} TRs for {n_sub} subjects")
    return ws, ls, bs, trs


def _subject_ids(subject_ids: Sequence[str] | None, ws: list[Any], bs: list[Any] | None,
                 n_sub: int) -> list[str]:
    """The ids given, else the file names of the BOLD (else weights) files, else ``sub-<k>``.

    Raises:
        DataError: as many ids as subjects were not given.
    """
    if subject_ids is None:
        named = bs if bs is not None and len(bs) == n_sub else ws if len(ws) == n_sub else None
        if named is not None and all(isinstance(x, (str, os.PathLike)) for x in named):
            subject_ids = [_stem(Path(x)) for x in named]
        else:
            subject_ids = [f"sub-{k}" for k in range(n_sub)] if n_sub > 1 else ["sub-0"]
    subject_ids = [str(s) for s in subject_ids]
    if len(subject_ids) != n_sub:
        raise DataError(f"load_arrays: {len(subject_ids)} subject ids for {n_sub} subjects")
    return subject_ids


# ============================================================================ brainfit .npz


def save_npz(cohort: Cohort | Subject, path: PathLike, info: Mapping[str, Any] | None = None,
             bold_dtype: Any = np.float32) -> Path:
    """Write a cohort to a compressed ``.npz`` in brainfit's cohort format (byte-reproducible).

    Arrays (S subjects, N regions, T volumes): ``subject_ids`` (S,), ``weights`` (S, N, N) float64,
    optional ``lengths`` (S, N, N) float64 in mm, ``bold`` (S, T, N) (or ``bold_<k>`` (T_k, N) when
    lengths differ) in ``bold_dtype``, ``tr`` (S,) in s, optional ``labels`` (N,),
    ``fc_target`` (S, N, N), ``fcd_edges_<k>``/``fcd_counts_<k>``, ``maps_<name>`` (S, N), and
    ``format`` / ``name`` / ``info`` (a JSON string) as 0-d string arrays. Entries are written in a
    fixed order with fixed timestamps, so the same cohort always gives the same bytes (and
    checksum). No pickled objects.

    Args:
        cohort: The cohort (or one subject).
        path: Output file (``.npz``).
        info: JSON-serialisable metadata (provenance, units), stored as ``info``.
        bold_dtype: dtype of stored BOLD (float32 halves the size; float64 keeps it exact).

    Returns:
        The path written.
    """
    cohort = as_cohort(cohort)
    subs = list(cohort)
    arrays: dict[str, np.ndarray] = {
        "format": np.array(NPZ_FORMAT),
        "name": np.array(cohort.name or ""),
        "info": np.array(json.dumps(dict(info or {}), sort_keys=True)),
        "subject_ids": np.array([s.id for s in subs]),
    }
    if cohort.labels is not None:
        arrays["labels"] = np.array(cohort.labels)

    def all_have(attr: str) -> bool:
        have = [getattr(s, attr) is not None for s in subs]
        if any(have) and not all(have):
            raise DataError(
                f"save_npz: only some subjects have {attr}; the format needs all or none"
            )
        return all(have)

    if all_have("weights"):
        arrays["weights"] = np.stack([s.weights for s in subs]).astype(np.float64)
    if all_have("lengths"):
        arrays["lengths"] = np.stack([s.lengths for s in subs]).astype(np.float64)
    if all_have("bold"):
        if len({s.n_times for s in subs}) == 1:
            arrays["bold"] = np.stack([s.bold for s in subs]).astype(bold_dtype)
        else:
            for k, s in enumerate(subs):
                arrays[f"bold_{k}"] = s.bold.astype(bold_dtype)
    if all_have("tr"):
        arrays["tr"] = np.array([s.tr for s in subs], dtype=np.float64)
    if all_have("fc_target"):
        arrays["fc_target"] = np.stack([s.fc_target for s in subs]).astype(np.float64)
    if all_have("fcd_target"):
        for k, s in enumerate(subs):
            arrays[f"fcd_edges_{k}"] = s.fcd_target[0]
            arrays[f"fcd_counts_{k}"] = s.fcd_target[1]
    map_names = set.intersection(*[set(s.maps or {}) for s in subs])
    for m in sorted(map_names):
        arrays[f"maps_{m}"] = np.stack([s.maps[m] for s in subs])

    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for key, arr in arrays.items():
            buf = io.BytesIO()
            arr = arr if arr.flags.c_contiguous else arr.copy(order="C")  # keeps 0-d arrays 0-d
            np.lib.format.write_array(buf, arr, allow_pickle=False)
            zinfo = zipfile.ZipInfo(f"{key}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            zinfo.compress_type = zipfile.ZIP_DEFLATED
            zinfo.external_attr = 0o644 << 16
            zf.writestr(zinfo, buf.getvalue(), compresslevel=9)
    os.replace(tmp, path)
    return path


def load_npz(
    path: PathLike,
    subjects: Sequence[str] | None = None,
    name: str | None = None,
    preprocessing: Any = None,
) -> Cohort:
    """Read a cohort written by :func:`save_npz` (the format of the bundled cohorts).

    Only ``weights`` is required; a minimal hand-made file may hold just ``weights`` (N, N) or
    (S, N, N), plus ``bold`` and ``tr``.

    Args:
        path: The ``.npz`` file.
        subjects: Ids to keep (default all).
        name: Cohort name (default: the name stored in the file, else the file name).
        preprocessing: Applied after loading.

    Raises:
        FileNotFoundError: no such file.
        DataError: not a readable .npz, missing or inconsistent arrays.
    """
    path = _require_file(Path(path), "cohort .npz")
    data = _read_npz(path)
    out = _npz_subjects(data, path, subjects)
    info = {}
    if "info" in data:
        try:
            info = json.loads(_npz_text(data, "info", "{}"))
        except json.JSONDecodeError:
            info = {}
    stored_name = _npz_text(data, "name") or None
    cohort = Cohort(out, name=name or stored_name or _stem(path), info=info)
    return _finish(cohort, preprocessing)


def _npz_text(data: Mapping[str, np.ndarray], key: str, default: str = "") -> str:
    """The string stored as the 0-d (or one-element) array ``key``, else ``default``."""
    arr = data.get(key)
    return default if arr is None or arr.size != 1 else str(arr.reshape(-1)[0])


def _read_npz(path: Path) -> dict[str, np.ndarray]:
    """The arrays of a cohort .npz, checked to be of :data:`NPZ_FORMAT` and to hold weights (or
    FC targets).

    Raises:
        DataError: an unreadable file, another format, no weights.
    """
    try:
        with np.load(path, allow_pickle=False) as z:
            data = {k: z[k] for k in z.files}
    except Exception as err:
        raise DataError(
            f"cohort .npz: cannot read {path} ({type(err).__name__}: {err}); the file is corrupt, "
            "truncated, or holds pickled objects: write it again with brainfit.data.save_npz"
        ) from err
    fmt = _npz_text(data, "format", NPZ_FORMAT)
    if fmt != NPZ_FORMAT:
        raise DataError(
            f"cohort .npz {path} has format {fmt!r}; this brainfit reads {NPZ_FORMAT!r}"
        )
    if "weights" not in data and "fc_target" not in data:
        raise DataError(
            f"cohort .npz {path} has no 'weights' array (it has {sorted(data)}); save one with "
            "brainfit.data.save_npz or np.savez(path, weights=..., bold=..., tr=...)"
        )
    return data


def _npz_subjects(data: Mapping[str, np.ndarray], path: Path,
                  subjects: Sequence[str] | None) -> list[Subject]:
    """The subjects of a cohort .npz's arrays (those of ``subjects``, in its order, if given).

    Raises:
        DataError: arrays of inconsistent subject counts, unknown subject ids.
    """

    def per_subject(key: str, ndim: int) -> np.ndarray | None:
        arr = data.get(key)
        if arr is not None and arr.ndim == ndim - 1:
            arr = arr[None]
        return arr

    w = per_subject("weights", 3)
    ln = per_subject("lengths", 3)
    bold = per_subject("bold", 3)
    fc = per_subject("fc_target", 3)
    n_sub = max(len(a) for a in (w, ln, bold, fc) if a is not None)
    if bold is None and "bold_0" in data:
        n_sub = max(n_sub, sum(1 for k in data if re.fullmatch(r"bold_\d+", k)))
    ids = [str(s) for s in data["subject_ids"]] if "subject_ids" in data else [
        f"sub-{k}" for k in range(n_sub)
    ]
    if len(ids) != n_sub:
        raise DataError(f"cohort .npz {path}: {len(ids)} subject_ids for {n_sub} subjects")
    tr = data.get("tr")
    trs = [None] * n_sub if tr is None else list(np.broadcast_to(tr, (n_sub,)).astype(float))
    labels = [str(x) for x in data["labels"]] if "labels" in data else None

    def at(arr: np.ndarray | None, k: int) -> np.ndarray | None:
        if arr is None:
            return None
        if len(arr) not in (1, n_sub):
            raise DataError(
                f"cohort .npz {path}: an array has {len(arr)} subjects, expected {n_sub}"
            )
        return arr[k if len(arr) > 1 else 0]

    keep = set(ids) if subjects is None else {str(s) for s in subjects}
    unknown = keep - set(ids)
    if unknown:
        raise DataError(f"cohort .npz {path}: no subject(s) {sorted(unknown)}; available: {ids}")
    out = []
    for k, sid in enumerate(ids):
        if sid not in keep:
            continue
        b = at(bold, k) if bold is not None else data.get(f"bold_{k}")
        fcd = None
        if f"fcd_edges_{k}" in data:
            fcd = (data[f"fcd_edges_{k}"], data[f"fcd_counts_{k}"])
        maps = {m[5:]: data[m][k] for m in data if m.startswith("maps_")} or None
        out.append(
            Subject(
                id=sid, weights=at(w, k), lengths=at(ln, k), bold=b,
                tr=trs[k], labels=labels,
                maps=maps, fc_target=at(fc, k), fcd_target=fcd, source=str(path),
            )
        )
    if subjects is not None:
        order = {str(s): i for i, s in enumerate(subjects)}
        out.sort(key=lambda s: order[s.id])
    return out
