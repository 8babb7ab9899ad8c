"""Shared fixtures: seeded generators, CPU plus CUDA when present, float64 gradient checks."""

from __future__ import annotations

import pytest
import torch

HAS_CUDA = torch.cuda.is_available()

# the tests step small networks: one thread is fastest, and far faster on a busy machine
torch.set_num_threads(1)

DEVICES = [
    "cpu",
    pytest.param("cuda", marks=pytest.mark.skipif(not HAS_CUDA, reason="no CUDA device present")),
]


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    yield


@pytest.fixture(params=DEVICES)
def device(request) -> torch.device:
    return torch.device(request.param)


@pytest.fixture
def gen() -> torch.Generator:
    return torch.Generator().manual_seed(1234)
