"""The time grid: whole numbers of steps for durations, burn-ins, TR samples and delays."""

from __future__ import annotations

import pytest
import torch

from brainfit import timegrid
from brainfit.bold import sampling_steps

F64 = torch.float64


def test_whole_multiples_within_the_tolerance():
    assert timegrid.integer_ratio(0.72, 0.08) == 9  # 8.999999999999998 in floating point
    assert timegrid.integer_ratio(0.725, 0.08) is None
    assert timegrid.integer_ratio(0.04, 0.08) is None  # not a positive integer
    assert timegrid.whole_steps(10.0, 0.1, "duration") == 100
    assert timegrid.whole_steps(0.0, 0.1, "burn_in", allow_zero=True) == 0
    with pytest.raises(ValueError, match="duration = 10.05 ms is not a whole number of steps"):
        timegrid.whole_steps(10.05, 0.1, "duration")
    with pytest.raises(ValueError, match="period = 0.0 ms is shorter than one step"):
        timegrid.whole_steps(0.0, 0.1, "period")


def test_the_old_import_path_of_sampling_steps_is_the_grids():
    assert sampling_steps is timegrid.sampling_steps


def test_burn_in_is_rounded_up_to_whole_bold_steps_and_checked():
    assert timegrid.round_up_burn_in(20.0, 0.0625) == 20.0
    assert timegrid.round_up_burn_in(1.005, 0.08) == pytest.approx(13 * 0.08)
    assert timegrid.burn_in_steps(timegrid.round_up_burn_in(1.005, 0.08), 0.08) == 13
    assert timegrid.burn_in_steps(0.0, 0.08) == 0
    with pytest.raises(ValueError, match="use a multiple such as 1.04 s"):
        timegrid.burn_in_steps(1.005, 0.08)
    for bad in (-1.0, float("nan"), "soon"):
        with pytest.raises(ValueError, match="burn_in must be a finite time >= 0"):
            timegrid.burn_in_seconds(bad)


def test_steps_per_bold_step_and_per_tr():
    assert timegrid.neural_steps_per_bold_step(0.08, 0.1) == 800
    assert timegrid.bold_steps_per_tr(0.72, 0.08, 0.1) == 9
    with pytest.raises(ValueError, match="not an integer multiple of neural_dt = 0.3 ms"):
        timegrid.neural_steps_per_bold_step(0.08, 0.3)
    with pytest.raises(ValueError, match="TR = 0.725 s is not an integer multiple"):
        timegrid.bold_steps_per_tr(0.725, 0.08, 0.1)
    assert timegrid.substeps(0.25, 0.1) == 3 and timegrid.substeps(0.3, 0.1) == 3
    assert timegrid.substeps(0.05, 0.1) == 1


def test_delays_in_whole_steps_round_or_floor_with_the_fraction_keeping_its_graph():
    lengths = torch.tensor([[0.0, 4.4], [5.5, 0.0]], dtype=F64)
    speed = torch.tensor(2.0, dtype=F64, requires_grad=True)
    lags = timegrid.delay_steps(lengths, speed, 0.5)  # L / (speed dt): 4.4, 5.5 steps
    torch.testing.assert_close(lags.detach(), torch.tensor([[0.0, 4.4], [5.5, 0.0]], dtype=F64))
    whole, frac = timegrid.whole_delay_steps(lags, interpolate=False)
    assert frac is None and whole.tolist() == [[0.0, 4.0], [6.0, 0.0]]  # round half to even: 6
    whole, frac = timegrid.whole_delay_steps(lags, interpolate=True)
    assert whole.tolist() == [[0.0, 4.0], [5.0, 0.0]] and not whole.requires_grad
    torch.testing.assert_close(frac.detach(), torch.tensor([[0.0, 0.4], [0.5, 0.0]], dtype=F64))
    frac.sum().backward()
    assert speed.grad is not None and speed.grad < 0  # a faster conduction, shorter delays
    per_subject = timegrid.delay_steps(lengths, torch.tensor([[1.0], [2.0]], dtype=F64), 1.0)
    assert per_subject.shape == (2, 2, 2)
    torch.testing.assert_close(per_subject[1], lengths / 2)
