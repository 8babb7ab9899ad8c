"""A cohort fit split over processes (torchrun, gloo on CPU) is the single-process fit."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from problems import SIMULATED

from brainfit import models
from brainfit.checkpoint import load_checkpoint
from brainfit.network import BrainNetwork
from brainfit.noise import create as create_noise

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "train.py"
TINY = ["trainer.sim_seconds=40", "trainer.burn_in=4",
        "trainer.chunk=20", "trainer.eval_seeds=1", "loss=fc", "trainer.progress=false",
        "trainer.figures=false",
        "trainer.eval_seconds=80", "threads=1", "trainer.eval_every=1",
        "model.params.G.scope=subject", "trainer.restarts=2",
        *SIMULATED]

pytestmark = pytest.mark.skipif(not torch.distributed.is_available(),
                                reason="this PyTorch build has no torch.distributed")


@pytest.mark.parametrize("engine", ["fast", "reference"])
@pytest.mark.parametrize("noise", ["white", "ou"])
def test_a_share_of_the_batch_simulates_its_rows_of_the_whole_batch(engine, noise):
    torch.manual_seed(0)
    n = 5
    W, L = torch.rand(4, n, n), torch.rand(4, n, n) * 50

    def simulate(rows, sl):
        model = models.create("hopf", n_regions=n)
        kw = {"tau": 5.0} if noise == "ou" else {}
        net = BrainNetwork(model, W[sl], L[sl], n_batch=W[sl].shape[0], engine=engine,
                           noise=create_noise(noise, model.state_names, sigma=0.01, **kw))
        net.rows = rows
        return net.simulate(100.0, 0.1, generator=torch.Generator().manual_seed(3),
                            record="x")[0]

    whole = simulate(None, slice(0, 4))
    assert torch.equal(simulate((1, 4), slice(1, 3)), whole[1:3])
    assert torch.equal(simulate((3, 4), slice(3, 4)), whole[3:4])


def _overrides(extra: tuple[str, ...]) -> list[str]:
    """TINY, three subjects unless ``extra`` names others, then ``extra``."""
    subjects = [] if any(e.startswith("data.subjects=") for e in extra) else [
        "data.subjects=[NAP_001,NAP_002,NAP_007]"]
    return [*TINY, *subjects, *extra]


def _torchrun(out: Path, nproc: int, *extra: str, script: Path = SCRIPT, timeout: int = 600):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone",
         f"--nproc_per_node={nproc}", str(script), f"hydra.run.dir={out}", *_overrides(extra)],
        cwd=out.parent, env=env, capture_output=True, text=True, timeout=timeout)


def _single(out: Path, *extra: str) -> Path:
    from hydra import compose, initialize_config_dir

    from brainfit.fit import register_configs, run

    register_configs()
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose(config_name="train", overrides=_overrides(extra))
    run(cfg, out_dir=out)
    return out


def _files(run: Path) -> set[str]:
    return {str(p.relative_to(run)) for p in run.rglob("*") if p.is_file()
            and "tensorboard" not in p.parts and ".hydra" not in p.parts and p.suffix != ".log"}


def _close(a: Path, b: Path) -> None:
    """The same fit to float32 rounding (the gradient is summed in another order)."""
    ca, cb = (load_checkpoint(p / "checkpoints" / "last.pt") for p in (a, b))
    assert ca["epoch"] == cb["epoch"] and ca["best"] == cb["best"]
    for k, v in ca["model_state"].items():
        torch.testing.assert_close(cb["model_state"][k], v, rtol=1e-5, atol=1e-6, msg=k)
    for i, st in ca["optimizer"]["state"].items():
        for k, v in st.items():
            torch.testing.assert_close(cb["optimizer"]["state"][i][k], v, rtol=1e-4, atol=1e-7)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("dist")
    res = _torchrun(root / "two", 2, "trainer.epochs=2")
    assert res.returncode == 0, res.stderr[-4000:]
    return {"root": root, "two": root / "two", "single": _single(root / "single",
                                                                 "trainer.epochs=2")}


def test_two_processes_fit_what_one_fits_and_write_the_same_files(runs):
    two, single = runs["two"], runs["single"]
    _close(single, two)
    assert _files(two) == _files(single)
    # group (regional a) and per-subject (G, one per subject and restart) parameters
    state = load_checkpoint(two / "checkpoints" / "last.pt")["model_state"]
    assert state["network.params.raw.G"].shape[0] == 6


@pytest.mark.parametrize("nproc", [1, pytest.param(2, marks=pytest.mark.slow)])
def test_a_distributed_fit_resumes_on_any_number_of_processes(runs, nproc):
    root, ckpt = runs["root"], runs["two"] / "checkpoints" / "last.pt"
    straight = root / "straight3"
    if not straight.exists():
        _single(straight, "trainer.epochs=3")
    out = root / f"resumed{nproc}"
    if nproc == 1:
        _single(out, "trainer.epochs=3", f"trainer.resume={ckpt}")
    else:
        res = _torchrun(out, nproc, "trainer.epochs=3", f"trainer.resume={ckpt}")
        assert res.returncode == 0, res.stderr[-4000:]
    _close(straight, out)


def _wrapper(tmp_path: Path, body: str) -> Path:
    """scripts/train.py run with ``body`` executed first in every process."""
    path = tmp_path / "wrapped_train.py"
    path.write_text(textwrap.dedent(f"""
        import os, runpy, sys
        {textwrap.indent(textwrap.dedent(body), '        ').strip()}
        sys.argv[0] = {str(SCRIPT)!r}
        runpy.run_path({str(SCRIPT)!r}, run_name="__main__")
    """))
    return path


@pytest.mark.slow  # two processes started and stopped (about 30 s)
def test_a_crashing_rank_ends_the_job_with_its_message(tmp_path):
    script = _wrapper(tmp_path, """
        from brainfit.fit.callbacks import Callback, attach
        class Crash(Callback):
            def on_step_start(self, trainer):
                if os.environ["RANK"] == "1" and trainer.state.epoch == 1:
                    raise RuntimeError("rank 1 broke on purpose")
        attach(Crash())
    """)
    res = _torchrun(tmp_path / "crash", 2, "trainer.epochs=3", "trainer.distributed_timeout=60",
                    script=script, timeout=300)
    assert res.returncode != 0
    assert "rank 1 broke on purpose" in res.stdout + res.stderr


@pytest.mark.slow  # two processes started and stopped (about 30 s)
def test_ranks_given_different_configs_are_refused(tmp_path):
    script = _wrapper(tmp_path, """
        if os.environ["RANK"] == "1":
            sys.argv.append("optim.lr=0.5")
    """)
    res = _torchrun(tmp_path / "mismatch", 2, "trainer.epochs=1", script=script, timeout=300)
    assert res.returncode != 0
    out = res.stdout + res.stderr
    assert "different configs" in out and "optim.lr" in out and "same overrides" in out
    assert not (tmp_path / "mismatch" / "checkpoints").exists()


def test_more_processes_than_subjects_is_refused(tmp_path):
    res = _torchrun(tmp_path / "many", 4, "trainer.epochs=1", "data.subjects=[NAP_001,NAP_002]",
                    timeout=300)
    assert res.returncode != 0
    out = res.stdout + res.stderr
    assert "4 processes for 2 subjects" in out and "--nproc_per_node" in out
    assert not (tmp_path / "many" / "checkpoints").exists()


def test_streaming_subjects_through_the_fit_in_batches_is_the_same_fit(runs, tmp_path):
    """trainer.batch_subjects: windows of 1 and 2 subjects (of 3, with 2 restarts each) add up
    to the gradient of the whole batch; every subject keeps its own parameters."""
    for k in (1, 2):
        out = _single(tmp_path / f"b{k}", "trainer.epochs=2", f"trainer.batch_subjects={k}")
        _close(runs["single"], out)
        assert _files(out) == _files(runs["single"])
