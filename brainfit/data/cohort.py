"""A set of subjects (:class:`Cohort`) and its batched tensors (:class:`CohortBatch`).

A :class:`Cohort` checks that its subjects fit together (unique ids, one region count, one label
order), selects and splits them, and stacks them into batch-first tensors (:meth:`Cohort.batch`).
The subjects themselves are validated by :class:`~brainfit.data.subject.Subject`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor

from brainfit.data.subject import DataError, Subject, _where

__all__ = ["Cohort", "CohortBatch", "as_cohort"]


@dataclass
class CohortBatch:
    """Batched tensors of a cohort (batch first), ready for a model.

    Attributes:
        ids: Subject ids, in batch order.
        weights: Structural connectivity (B, N, N).
        lengths: Tract lengths (B, N, N) in mm, or None when no subject has them.
        bold: BOLD (B, T, N), or None when no subject has BOLD.
        tr: Repetition times (B,) in s, or None when no subject has one.
        fc: Precomputed FC targets (B, N, N), or None.
        fcd: Precomputed FCD histograms, one ``(edges, counts)`` pair per subject, or None.
        maps: Spatial maps name -> (B, N) (those that every subject has), possibly empty.
    """

    ids: list[str]
    weights: Tensor
    lengths: Tensor | None
    bold: Tensor | None
    tr: Tensor | None
    fc: Tensor | None = None
    fcd: list[tuple[Tensor, Tensor]] | None = None
    maps: dict[str, Tensor] = field(default_factory=dict)

    def to(self, device: Any = None, dtype: torch.dtype | None = None) -> CohortBatch:
        """Move every tensor to ``device`` and/or cast floating tensors to ``dtype``."""

        def mv(t: Tensor | None) -> Tensor | None:
            return None if t is None else t.to(device=device, dtype=dtype)

        return CohortBatch(
            ids=list(self.ids),
            weights=mv(self.weights),
            lengths=mv(self.lengths),
            bold=mv(self.bold),
            tr=mv(self.tr),
            fc=mv(self.fc),
            fcd=None if self.fcd is None else [(mv(e), mv(c)) for e, c in self.fcd],
            maps={k: mv(v) for k, v in self.maps.items()},
        )


class Cohort(Sequence[Subject]):
    """An ordered, non-empty set of subjects with unique ids and one parcellation.

    Args:
        subjects: The subjects.
        name: A name for the cohort (e.g. ``"gw"``), used in messages.
        info: Free-form metadata (provenance, units), kept by :meth:`select`, :meth:`split`...

    Raises:
        DataError: empty cohort, duplicate ids, different region counts or label orders.
        TypeError: an element that is not a :class:`Subject`.
    """

    def __init__(
        self, subjects: Iterable[Subject], name: str | None = None,
        info: Mapping[str, Any] | None = None,
    ) -> None:
        subjects = list(subjects)
        label = f"cohort {name!r}" if name else "cohort"
        for s in subjects:
            if not isinstance(s, Subject):
                raise TypeError(f"{label}: expected Subject objects, got {type(s).__name__}")
        if not subjects:
            raise DataError(
                f"{label} is empty: no subjects were found or selected; check the path, the file "
                "pattern or the ids you selected"
            )
        seen: dict[str, Subject] = {}
        for s in subjects:
            if s.id in seen:
                raise DataError(
                    f"{label}: duplicate subject id {s.id!r} (from {seen[s.id].source or '?'} and "
                    f"{s.source or '?'}); subject ids must be unique: rename one, or select one "
                    "file per subject"
                )
            seen[s.id] = s
        n = {s.id: s.n_regions for s in subjects}
        if len(set(n.values())) > 1:
            raise DataError(
                f"{label}: subjects have different region counts {n}; put subjects of different "
                "parcellations in different cohorts"
            )
        labelled = [s for s in subjects if s.labels is not None]
        for s in labelled[1:]:
            if s.labels != labelled[0].labels:
                raise DataError(
                    f"{label}: subject {s.id!r} has region labels in a different order or naming "
                    f"than subject {labelled[0].id!r}; reorder its matrices to a common order"
                )
        self._subjects = subjects
        self.name = name
        self.info: dict[str, Any] = dict(info or {})

    def _new(self, subjects: Iterable[Subject]) -> Cohort:
        return Cohort(subjects, name=self.name, info=self.info)

    # -- sequence protocol ------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._subjects)

    def __iter__(self) -> Iterator[Subject]:
        return iter(self._subjects)

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, str):
            return self._by_id(key)
        if isinstance(key, slice):
            return self._new(self._subjects[key])
        return self._subjects[key]

    def __contains__(self, key: object) -> bool:
        if isinstance(key, str):
            return key in self.ids
        return key in self._subjects

    def __repr__(self) -> str:
        name = f"{self.name!r}, " if self.name else ""
        return f"Cohort({name}{len(self)} subjects, N={self.n_regions})"

    def _by_id(self, sid: str) -> Subject:
        for s in self._subjects:
            if s.id == sid:
                return s
        raise DataError(f"no subject {sid!r} in {self!r}; available ids: {self.ids}")

    # -- properties -------------------------------------------------------------------------------
    @property
    def ids(self) -> list[str]:
        """Subject ids, in order."""
        return [s.id for s in self._subjects]

    @property
    def n_regions(self) -> int:
        """Number of regions N (the same for every subject)."""
        return self._subjects[0].n_regions

    @property
    def labels(self) -> list[str] | None:
        """Region labels (from the first subject that has them), or None."""
        for s in self._subjects:
            if s.labels is not None:
                return list(s.labels)
        return None

    # -- operations -------------------------------------------------------------------------------
    def map(self, fn: Any) -> Cohort:
        """A new cohort of ``fn(subject)`` for every subject."""
        return self._new(fn(s) for s in self._subjects)

    def select(self, ids: str | Iterable[str]) -> Cohort:
        """The subjects with the given ids, in the order given.

        Raises:
            DataError: an id that is not in the cohort (the message lists the available ones).
        """
        if isinstance(ids, str):
            ids = [ids]
        return self._new(self._by_id(str(i)) for i in ids)

    def split(self, train_fraction: float = 0.8) -> tuple[Cohort, Cohort]:
        """Temporal train/test split of every subject's BOLD.

        Subject i's series of T volumes is cut at ``t = round(train_fraction * T)``: volumes
        ``[0, t)`` go to the training cohort, ``[t, T)`` to the test cohort, both with the same ids.
        Precomputed ``fc_target`` / ``fcd_target`` describe the whole series and are dropped from
        both halves; compute them again per half
        (:func:`brainfit.data.preprocess.empirical_targets`).

        Args:
            train_fraction: Fraction of each series used for training, in (0, 1).

        Returns:
            ``(train, test)`` cohorts.

        Raises:
            DataError: a subject without BOLD (hold out whole subjects with :meth:`select` instead),
                or a half too short or with a constant region.
        """
        f = float(train_fraction)
        if not 0.0 < f < 1.0:
            raise ValueError(f"train_fraction must be in (0, 1), got {train_fraction}")
        train, test = [], []
        for s in self._subjects:
            if s.bold is None:
                raise DataError(
                    f"{_where(s.id, s.source)} has no BOLD to split in time; hold out whole "
                    "subjects with cohort.select(ids) instead"
                )
            t = int(round(f * s.n_times))
            if min(t, s.n_times - t) < 3:
                raise DataError(
                    f"{_where(s.id, s.source)}: splitting its {s.n_times} volumes at "
                    f"train_fraction = {f:g} leaves {t} to fit and {s.n_times - t} to hold out; "
                    "each part needs at least 3: use longer sessions or a train_fraction "
                    f"(trainer.train_fraction) between {3 / s.n_times:.2g} and "
                    f"{1 - 3 / s.n_times:.2g}"
                )
            common = dict(fc_target=None, fcd_target=None)
            train.append(s.replace(bold=s.bold[:t], **common))
            test.append(s.replace(bold=s.bold[t:], **common))
        return self._new(train), self._new(test)

    def batch(
        self,
        ids: Iterable[str] | None = None,
        device: Any = None,
        dtype: torch.dtype | None = None,
        crop: bool = False,
    ) -> CohortBatch:
        """Stack subjects into batch-first tensors.

        Args:
            ids: Subjects to include (default: all), in this order.
            device: Torch device of the tensors (default CPU).
            dtype: Floating dtype (default ``torch.get_default_dtype()``).
            crop: When subjects have BOLD of different lengths: False (default) raises; True crops
                every series to the shortest (keeping the first volumes).

        Returns:
            A :class:`CohortBatch`: weights (B, N, N), lengths (B, N, N), bold (B, T, N), tr (B,).

        Raises:
            DataError: a subject without weights; lengths, BOLD or TR present for some subjects
                only; BOLD of unequal length without ``crop=True``.
        """
        subjects = self._subjects if ids is None else self.select(list(ids))._subjects
        dtype = dtype or torch.get_default_dtype()

        def stack(arrs: list[np.ndarray]) -> Tensor:
            return torch.as_tensor(np.stack(arrs), dtype=dtype, device=device)

        for s in subjects:
            if s.weights is None:
                raise DataError(
                    f"cannot batch {_where(s.id, s.source)}: it has no structural connectivity "
                    "(weights); give one when loading (e.g. from_nifti(..., weights=...))"
                )
        weights = stack([s.weights for s in subjects])
        lengths = None
        if _all_or_none(subjects, "lengths", "lengths"):
            lengths = stack([s.lengths for s in subjects])
        bold = None
        if _all_or_none(subjects, "bold", "BOLD"):
            bold = self._stacked_bold(subjects, crop, stack)
        tr = None
        if _all_or_none(subjects, "tr", "TR"):
            tr = torch.tensor([s.tr for s in subjects], dtype=dtype, device=device)
        fc = None
        if _all_or_none(subjects, "fc_target", "fc_target"):
            fc = stack([s.fc_target for s in subjects])
        fcd = None
        if _all_or_none(subjects, "fcd_target", "fcd_target"):
            fcd = [
                (
                    torch.as_tensor(e, dtype=dtype, device=device),
                    torch.as_tensor(c, dtype=dtype, device=device),
                )
                for e, c in (s.fcd_target for s in subjects)
            ]
        maps = {}
        names = set.intersection(*[set(s.maps or {}) for s in subjects])
        for k in sorted(names):
            maps[k] = stack([s.maps[k] for s in subjects])
        return CohortBatch(ids=[s.id for s in subjects], weights=weights, lengths=lengths,
                           bold=bold, tr=tr, fc=fc, fcd=fcd, maps=maps)

    def _stacked_bold(self, subjects: list[Subject], crop: bool, stack: Any) -> Tensor:
        """The subjects' BOLD (B, T, N), cropped to the shortest with ``crop``."""
        t = [s.n_times for s in subjects]
        if len(set(t)) > 1 and not crop:
            raise DataError(
                f"cannot batch BOLD of different lengths {dict(zip(self.ids, t, strict=False))}"
                "; pass crop=True to crop all to the shortest, or batch them separately"
            )
        tmin = min(t)
        return stack([s.bold[:tmin] for s in subjects])

    def group_connectome(
        self, normalize: str | None = None
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Group-average structural connectome.

        Weights are averaged over subjects (after the per-subject ``normalize``, see
        :func:`brainfit.connectome.normalize_weights`). A tract length is averaged over the
        subjects in which that edge exists (weight > 0), so that subjects without the tract do not
        pull its length towards 0; it is 0 where no subject has the edge.

        Args:
            normalize: Per-subject weight normalisation before averaging: None, ``"max"``,
                ``"row_sum"`` or ``"log1p"``.

        Returns:
            ``(weights (N, N), lengths (N, N) in mm or None)``.

        Raises:
            DataError: a subject without weights.
        """
        from brainfit.connectome import normalize_weights

        for s in self._subjects:
            if s.weights is None:
                raise DataError(f"{_where(s.id, s.source)} has no weights to average")
        ws = np.stack([normalize_weights(s.weights, normalize) for s in self._subjects])
        weights = ws.mean(axis=0)
        if not all(s.lengths is not None for s in self._subjects):
            return weights, None
        ls = np.stack([s.lengths for s in self._subjects])
        present = np.stack([s.weights > 0 for s in self._subjects])
        count = present.sum(axis=0)
        total = np.where(present, ls, 0.0).sum(axis=0)
        lengths = np.divide(total, count, out=np.zeros_like(total), where=count > 0)
        return weights, lengths


def _all_or_none(subjects: list[Subject], attr: str, what: str) -> bool:
    """Whether every subject has ``attr``; a DataError if only some do."""
    have = [getattr(s, attr) is not None for s in subjects]
    if any(have) and not all(have):
        missing = [s.id for s, h in zip(subjects, have, strict=True) if not h]
        raise DataError(
            f"cannot batch: subjects {missing} have no {what} while others do; select "
            "subjects that all have it (cohort.select) or batch them separately"
        )
    return all(have)


def as_cohort(x: Subject | Cohort | Sequence[Subject], name: str | None = None) -> Cohort:
    """Wrap a subject or a list of subjects into a :class:`Cohort` (a cohort is returned as is)."""
    if isinstance(x, Cohort):
        return x
    if isinstance(x, Subject):
        return Cohort([x], name=name)
    return Cohort(x, name=name)
