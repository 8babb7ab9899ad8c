import math

import pytest
import torch

from brainfit.checks import positive


@pytest.mark.parametrize("value", [1, 2.5, torch.tensor(0.1), 1e-300])
def test_positive_returns_the_float(value):
    assert positive(value, "x") == pytest.approx(float(value))


@pytest.mark.parametrize("value", [0, -1.0, math.nan, math.inf, True, "1", None, [1.0],
                                   torch.ones(2)])
def test_positive_refuses_with_one_message(value):
    with pytest.raises(ValueError, match=r"^tr must be a positive, finite number \(seconds\), "
                                         r"got .*; give it in seconds$"):
        positive(value, "tr", "seconds", fix="give it in seconds")


def test_positive_raises_the_subclass_asked_for():
    class UsageError(ValueError):
        pass

    with pytest.raises(UsageError, match="^n must be a positive, finite number, got 0$"):
        positive(0, "n", error=UsageError)
