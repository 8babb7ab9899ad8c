"""External forcing F(t) = f(t) + lambda E(t): drive, field, targets, time courses."""

import pytest
import torch

import brainfit
from brainfit.network import BrainNetwork
from brainfit.stimulus import Stimulus


def test_forcing_is_drive_plus_gain_times_field_on_the_targets_only():
    field = torch.tensor([0.0, 1.0, -2.0])  # V/m, one sample per 2 ms
    stim = Stimulus(4, drive=torch.tensor([0.1, 0.2, 0.3, 0.4]), field=field, sample_dt=2.0,
                    gain=torch.tensor([1.0, 2.0, 3.0, 4.0]), targets=[1, 3], onset=10.0)
    torch.testing.assert_close(stim(5.0), torch.tensor([0.0, 0.2, 0.0, 0.4]))   # before onset
    torch.testing.assert_close(stim(12.5), torch.tensor([0.0, 2.2, 0.0, 4.4]))  # sample 1
    torch.testing.assert_close(stim(14.0), torch.tensor([0.0, -3.8, 0.0, -7.6]))
    torch.testing.assert_close(stim(20.0), torch.tensor([0.0, 0.2, 0.0, 0.4]))  # after the end


def test_callable_time_courses_and_boolean_targets():
    stim = Stimulus(3, drive_course=lambda t: torch.full((3,), t / 10),
                    targets=torch.tensor([True, False, True]))
    torch.testing.assert_close(stim(5.0), torch.tensor([0.5, 0.0, 0.5]))


def test_field_gain_is_trainable_through_a_network():
    n = 3
    m = brainfit.create_model("harmonic", n_regions=n, alpha=-0.1).double()
    stim = Stimulus(n, field=torch.ones(100, dtype=torch.float64), gain=0.5,
                    gain_trainable=True).double()
    net = BrainNetwork(m, torch.zeros(n, n, dtype=torch.float64), stimulus=stim).double()
    out, _ = net.simulate(10.0, 0.1, x0=torch.zeros(1, 2, n, dtype=torch.float64), record="x")
    out.sum().backward()
    assert stim.params.raw["gain"].grad.abs().min() > 0
    assert (out[:, -1] > 0).all()  # a positive field drives x up


def test_bad_stimulus_input():
    with pytest.raises(ValueError, match="drive must be a scalar or shape"):
        Stimulus(3, drive=torch.ones(4))
    with pytest.raises(ValueError, match=r"field must have shape \(T,\) or \(T, 3\)"):
        Stimulus(3, field=torch.ones(5, 2))
    with pytest.raises(ValueError, match="NaN"):
        Stimulus(3, field=torch.tensor([0.0, float("nan")]))
    with pytest.raises(ValueError, match="region indices"):
        Stimulus(3, targets=[0, 5])
    with pytest.raises(ValueError, match="sample_dt"):
        Stimulus(3, sample_dt=0.0)


def test_infinite_speed_or_no_lengths_means_no_delay_buffer(gen):
    m = brainfit.create_model("hopf", n_regions=3)
    W = torch.rand(3, 3, generator=gen)
    assert not BrainNetwork(m, W, torch.ones(3, 3), speed=float("inf")).has_delays
    assert not BrainNetwork(m, W).has_delays
    assert BrainNetwork(m, W, torch.ones(3, 3)).has_delays
