"""Argument checks shared by the package: one wording and one exception type (``ValueError``, or
a subclass the caller names) for each kind of mistake."""

from __future__ import annotations

import math
from typing import Any


def positive(value: Any, name: str, unit: str = "", *, fix: str = "",
             error: type[ValueError] = ValueError) -> float:
    """``value`` as a float, if it is a positive finite number (python numbers and 0-d tensors;
    not a bool or a string).

    Args:
        value: what was given.
        name: the argument's name, as the user wrote it.
        unit: what it counts ("ms", "seconds", "samples"), said in the message.
        fix: a sentence on how to fix it, appended to the message.
        error: the exception class (``ValueError`` or a subclass of it).

    Raises:
        error: ``name must be a positive, finite number (unit), got value; fix``.
    """
    what = f"{name} must be a positive, finite number{f' ({unit})' if unit else ''}, got {value!r}"
    message = f"{what}; {fix}" if fix else what
    if isinstance(value, (bool, str, bytes)):
        raise error(message)
    try:
        v = float(value)
    except (TypeError, ValueError, RuntimeError):
        raise error(message) from None
    if not (math.isfinite(v) and v > 0.0):
        raise error(message)
    return v
