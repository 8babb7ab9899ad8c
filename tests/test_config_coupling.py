"""The ``coupling`` config group: one ConfigStore node per registered coupling, defaults written
once (in brainfit.coupling), overridable from the command line and checked when composed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.errors import ConfigCompositionException, MissingConfigException

from brainfit import coupling
from brainfit.fit import register_configs
from brainfit.fit.build import instantiate

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "conf"

register_configs()


def _compose(overrides=()):
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose(config_name="train", overrides=list(overrides))


@pytest.mark.parametrize("name", coupling.available())
def test_every_registered_coupling_is_an_option_with_its_defaults(name):
    cfg = _compose([f"coupling={name}"])
    specs = coupling.COUPLINGS[name].param_specs
    assert cfg.coupling.name == name
    assert dict(cfg.coupling.params) == {k: s.default for k, s in specs.items()}
    built = instantiate(cfg.coupling)(n_regions=3, n_batch=2)
    assert type(built) is coupling.COUPLINGS[name]
    for k, s in specs.items():
        assert built.params[k].item() == pytest.approx(s.default)


def test_parameters_are_overridden_on_the_command_line_and_typos_fail_when_composed():
    cfg = _compose(["coupling=sigmoidal", "coupling.params.cmin=0"])
    built = instantiate(cfg.coupling)(n_regions=3, n_batch=1)
    assert built.params["cmin"].item() == 0.0 and built.params["cmax"].item() == 1.0
    cfg = _compose(["coupling=tanh", "coupling.params.sigma={value: 2.0, trainable: true}"])
    built = instantiate(cfg.coupling)(n_regions=3, n_batch=1)
    assert built.params["sigma"].item() == pytest.approx(2.0)
    assert built.params.raw["sigma"].requires_grad
    with pytest.raises(ConfigCompositionException):
        _compose(["coupling=sigmoidal", "coupling.params.cmn=0"])
    with pytest.raises(ConfigCompositionException):
        _compose(["coupling.nme=linear"])
    with pytest.raises(MissingConfigException):
        _compose(["coupling=sigmoid"])


def test_the_default_and_model_and_experiment_choices_of_coupling():
    assert _compose().coupling.name == "diffusive"
    assert _compose(["model=jansen_rit"]).coupling.name == "sigmoidal_jr"
    assert _compose(["model=wong_wang"]).coupling.name == "linear"
    assert _compose(["model=jansen_rit", "coupling.params.r=0.3"]).coupling.params.r == 0.3
    assert _compose(["experiment=deco2014_dmf"]).coupling.name == "linear"


@pytest.mark.parametrize("overrides", [[], ["coupling=tanh"]])
def test_train_script_prints_the_composed_job(overrides):
    out = subprocess.run([sys.executable, str(ROOT / "scripts" / "train.py"), *overrides,
                          "--cfg", "job"], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert out.returncode == 0, out.stderr
    name = overrides[0].split("=")[1] if overrides else "diffusive"
    assert f"  name: {name}\n" in out.stdout
