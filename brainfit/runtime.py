"""What every long computation shares: the divergence exceptions, the checks, and progress bars."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor


class SimulationDiverged(FloatingPointError, ValueError):
    """A simulation (the network or its BOLD head) produced NaN or inf.

    Also a ``ValueError``, so code that catches bad values catches it too. ``elements`` lists the
    batch elements that diverged, when known.
    """

    def __init__(self, message: str, elements: list[int] | None = None) -> None:
        super().__init__(message)
        self.elements = list(elements or [])


class FitDiverged(FloatingPointError):
    """A fit's loss, a gradient, a parameter or its simulation became NaN/inf more often than it
    could recover from; the checkpoints hold only good states."""


class Interrupted(Exception):
    """The process received SIGTERM or SIGINT; the last completed epoch is saved.

    ``exit_code`` is the shell's convention for death by that signal (128 + its number: 143 for
    SIGTERM, 130 for SIGINT), which schedulers such as SLURM read as "stopped by a signal".
    """

    def __init__(self, signum: int, message: str = "") -> None:
        import signal

        self.signum = int(signum)
        self.signal_name = signal.Signals(self.signum).name
        self.exit_code = 128 + self.signum
        super().__init__(message or f"received {self.signal_name}")


def check_finite(x: Tensor, what: str, fix: str) -> None:
    """Raise :class:`SimulationDiverged` naming the batch elements of ``x`` (B, ...) that hold
    NaN or inf.

    Args:
        x: batch-first tensor.
        what: what went wrong, e.g. ``"the simulation diverged by t = 12 ms"``.
        fix: what to change, e.g. ``"reduce dt"``.
    """
    bad = ~x.isfinite().flatten(1).all(dim=1)
    if bool(bad.any()):
        idx = bad.nonzero().flatten().tolist()
        raise SimulationDiverged(f"{what} (NaN/inf) in batch element(s) {idx[:10]}; {fix}", idx)


def check_generator(generator: Any) -> None:
    """Raise ``TypeError`` unless ``generator`` is a ``torch.Generator`` or None.

    A seed is a common mistake: the message shows how to make a generator from it.
    """
    if generator is not None and not isinstance(generator, torch.Generator):
        seed = generator if isinstance(generator, int) else 0
        raise TypeError(f"generator must be a torch.Generator (or None), got "
                        f"{type(generator).__name__} {generator!r}; to seed the simulation pass "
                        f"generator=torch.Generator().manual_seed({seed})")


def progress(total: int, enabled: bool, desc: str, unit: str, initial: int = 0,
             leave: bool = False):
    """A tqdm bar of ``total`` units, or None when disabled or there is nothing to do."""
    if not enabled or total - initial <= 0:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, desc=desc, unit=unit, leave=leave)
