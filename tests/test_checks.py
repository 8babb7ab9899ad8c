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


def test_files_written_atomically_are_readable_as_the_umask_allows(tmp_path):
    """A run's outputs (checkpoints, tables) get the permissions of any new file, not the 0600
    of the temporary file they are written through."""
    import os

    from brainfit.checkpoint import write_text

    previous = os.umask(0o022)
    try:
        path = write_text(tmp_path / "metrics.json", "{}")
        assert path.stat().st_mode & 0o777 == 0o644
        os.umask(0o077)
        assert write_text(tmp_path / "private.json", "{}").stat().st_mode & 0o777 == 0o600
    finally:
        os.umask(previous)
