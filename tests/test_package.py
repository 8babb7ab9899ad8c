"""The package namespace: ``import brainfit`` is light, and its submodules are its attributes."""

from __future__ import annotations

import subprocess
import sys

import pytest

import brainfit


def test_fit_and_plotting_are_attributes_imported_on_first_use():
    """``import brainfit`` pulls in neither the trainer (Hydra, OmegaConf) nor the figures
    (matplotlib); ``brainfit.fit.Trainer`` and ``brainfit.plotting.plot_fc_comparison`` work as
    the README writes them."""
    code = """
import sys
import brainfit
heavy = ("brainfit.fit", "brainfit.plotting", "hydra", "omegaconf", "matplotlib")
print(sorted(m for m in heavy if m in sys.modules))
print(brainfit.fit.Trainer.__name__, brainfit.plotting.plot_fc_comparison.__name__)
print("brainfit.fit" in sys.modules, brainfit.fit is sys.modules["brainfit.fit"])
"""
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    assert res.stdout.split("\n")[:3] == ["[]", "Trainer plot_fc_comparison", "True True"]


def test_namespace_lists_lazy_submodules_and_rejects_unknown_names():
    assert {"fit", "plotting", "metrics", "BoldSimulator"} <= set(dir(brainfit))
    assert all(hasattr(brainfit, name) for name in brainfit.__all__)
    with pytest.raises(AttributeError, match="no attribute 'not_a_module'"):
        brainfit.not_a_module  # noqa: B018
