"""Bad input gives a clear error: one ``error: ...`` line, exit code 2, nothing left behind.

Malformed data files, connectomes, configs and checkpoints go through ``scripts/train.py``,
``simulate.py`` and ``evaluate.py`` (run in this process with :func:`runpy.run_path`, as the shell
runs them, a few also as real subprocesses) and through the API. Each case names words that the
message must hold: what is wrong and how to fix it. A script run must leave no partial result:
no ``checkpoints/``, ``tensorboard/`` or ``metrics.json`` in its run directory.
"""

from __future__ import annotations

import json
import os
import runpy
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra import initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from problems import SIMULATED

import brainfit
from brainfit.data import DataError
from brainfit.fit import cli, register_configs

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "conf"
N, T, TR = 6, 300, 2.0
#: what a run may leave in its directory when it fails before the fit
PARTIAL = ("checkpoints", "tensorboard", "metrics.json", "simulated_fc.npz", "fitted_params.csv")

register_configs()


# -- data files ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def files(tmp_path_factory) -> Path:
    """Good and malformed data files (N = 6 regions, T = 300 volumes)."""
    d = tmp_path_factory.mktemp("files")
    rng = np.random.default_rng(0)
    sc = rng.random((N, N))
    sc = (sc + sc.T) / 2
    np.fill_diagonal(sc, 0)
    bold = rng.standard_normal((T, N))
    np.save(d / "sc.npy", sc)
    np.save(d / "lengths.npy", 50 * sc + 10)
    np.save(d / "bold.npy", bold)
    np.save(d / "sc_negative.npy", sc - 0.5)
    np.save(d / "sc_nan.npy", np.where(np.eye(N, k=1) > 0, np.nan, sc))
    np.save(d / "sc_nonsquare.npy", sc[:, :5])
    np.save(d / "sc_zero.npy", np.zeros((N, N)))
    np.save(d / "sc_5.npy", sc[:5, :5])
    (d / "sc_empty.txt").write_text("")
    (d / "sc.xlsx").write_bytes(b"PK\x03\x04 not really a spreadsheet")
    (d / "sc_text.csv").write_text("\n".join(",".join(["1", "x", "2", "3", "4", "5"])
                                             for _ in range(N)))
    (d / "sc_corrupt.npy").write_bytes(b"\x93NUMPY garbage that is not an array header")
    np.save(d / "lengths_5.npy", 50 * sc[:5, :5])
    np.save(d / "lengths_negative.npy", -sc)
    bold_nan = bold.copy()
    bold_nan[7, 2] = np.nan
    np.save(d / "bold_nan.npy", bold_nan)
    np.save(d / "bold_nt.npy", bold.T)
    np.save(d / "bold_5.npy", bold[:, :5])
    bold_flat = bold.copy()
    bold_flat[:, 4] = 1.0
    np.save(d / "bold_flat.npy", bold_flat)
    np.save(d / "bold_short.npy", bold[:2])
    (d / "not_a_checkpoint.pt").write_bytes(os.urandom(2048))
    return d


# -- running the scripts in this process -----------------------------------------------------------
def _script(name: str, args: list[str], monkeypatch, capsys) -> tuple[int, str]:
    """Run ``scripts/<name>.py args`` as the shell would; returns (exit code, stderr)."""
    path = ROOT / "scripts" / f"{name}.py"
    monkeypatch.setattr(sys, "argv", [str(path), *args])
    code = 0
    try:
        runpy.run_path(str(path), run_name="__main__")
    except SystemExit as exit_:
        code = exit_.code
    finally:
        GlobalHydra.instance().clear()
    return code, capsys.readouterr().err


def _base(files: Path) -> list[str]:
    """The issue's ``BASE``, tiny: arrays data, one epoch of 60 s, 120 s of evaluation."""
    return ["data=arrays", f"data.weights={files / 'sc.npy'}", f"data.bold={files / 'bold.npy'}",
            f"data.tr={TR}", "trainer.epochs=1", "trainer.progress=false", "loss=fc",
            "trainer.figures=false",
            "trainer.sim_seconds=60", "trainer.eval_seconds=120", "trainer.burn_in=2",
            "trainer.chunk=30", "trainer.eval_seeds=1", "trainer.eval_every=0", "threads=1",
            *SIMULATED]


@pytest.fixture(scope="module")
def fitted(files, tmp_path_factory) -> Path:
    """A finished run of ``BASE`` through ``scripts/train.py``: the base of every case is good."""
    run_dir = tmp_path_factory.mktemp("fitted") / "run"
    mp = pytest.MonkeyPatch()
    mp.setattr(sys, "argv", ["train.py", *_base(files), f"hydra.run.dir={run_dir}"])
    try:
        runpy.run_path(str(ROOT / "scripts" / "train.py"), run_name="__main__")
    finally:
        mp.undo()
        GlobalHydra.instance().clear()
    assert (run_dir / "checkpoints" / "last.pt").is_file()
    assert (run_dir / "metrics.json").is_file()
    last = (run_dir / "checkpoints" / "last.pt").read_bytes()
    (files / "truncated.pt").write_bytes(last[: len(last) // 2])
    return run_dir


def _assert_one_clear_line(code: int, err: str, words: list[str]) -> None:
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert code == cli.USAGE_ERROR, err
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    for word in words:
        assert word.lower() in lines[0].lower(), f"{word!r} not in {lines[0]!r}"


def _assert_nothing_left(run_dir: Path) -> None:
    left = [name for name in PARTIAL if (run_dir / name).exists()]
    assert not left, f"partial results left in {run_dir}: {left}"


# -- scripts/train.py ------------------------------------------------------------------------------
#: (id, overrides ({f}: the data files, {run}: the fitted run), words the message must hold)
TRAIN_CASES = [
    # configs: bad types, unknown keys, nonsense values
    ("lr-text", ["optim.lr=abc"], ["optim.lr", "number", "optim.lr="]),
    ("lr-negative", ["optim.lr=-1"], ["optim", "learning rate", "-1"]),
    ("seed-text", ["seed=abc"], ["seed", "integer", "seed=0"]),
    ("step-size-zero", ["scheduler=step", "scheduler.step_size=0"],
     ["scheduler.step_size", ">= 1"]),
    ("scheduler-text", ["scheduler=step", "scheduler.gamma=half"], ["scheduler.gamma", "number"]),
    ("epochs-text", ["trainer.epochs=abc"], ["trainer.epochs", "abc", "integer",
                                             "e.g. trainer.epochs="]),
    ("epochs-negative", ["trainer.epochs=-3"], ["trainer.epochs=-3", "must be >= 0"]),
    ("train-fraction", ["trainer.train_fraction=1.5"], ["trainer.train_fraction=1.5",
                                                         "in (0, 1)"]),
    ("misspelt-trainer-key", ["trainer.epoch=3"],
     ["trainer.epoch", "did you mean trainer.epochs=3"]),
    ("misspelt-optim-key", ["optim.l=0.1"], ["optim.l", "did you mean optim.lr=0.1"]),
    ("added-misspelt-key", ["+trainer.epoch=3"], ["epoch", "did you mean trainer.epochs"]),
    ("added-unknown-argument", ["+optim.l=0.1"], ["torch.optim.Adam", "did you mean optim.lr"]),
    ("argument-not-in-config", ["optim.weight_decay=0.01"], ["+optim.weight_decay=0.01"]),
    ("misspelt-group", ["modl=hopf"], ["modl", "did you mean model=hopf"]),
    ("unknown-option", ["model=hopff"], ["hopff", "did you mean model=hopf", "wilson_cowan"]),
    ("misspelt-param-field", ["model.params.G.valu=1"], ["did you mean model.params.G.value=1"]),
    ("param-text", ["model.params.G.value=abc"], ["parameter 'G'", "number", "abc"]),
    ("param-out-of-bounds", ["model.params.G.value=-1"], ["'G'", "lower bound", "choose"]),
    ("unknown-param", ["+model.params.Q=1"], ["no parameter", "Q", "valid names"]),
    ("unknown-model-name", ["model.name=hopff"], ["hopff", "hopf"]),
    ("loss-text", ["loss.fcd_window=abc"], ["loss.fcd_window", "number"]),
    ("no-equals", ["trainer.epochs"], ["trainer.epochs", "key=value"]),
    ("bad-device", ["device=gpu"], ["device", "gpu", "cpu"]),
    ("bad-dtype", ["dtype=float16"], ["dtype", "float32"]),
    ("threads-zero", ["threads=0"], ["threads", ">= 1"]),
    ("bad-target", ["optim._target_=torch.optim.Adm"], ["torch.optim.Adm", "cannot be imported"]),
    ("bad-engine", ["trainer.engine=fastest"], ["fastest", "reference"]),
    # data files
    ("no-tr", ["data.tr=null"], ["data.tr", "data.tr=2.0"]),
    ("tr-negative", ["data.tr=-2"], ["tr", "positive"]),
    ("tr-in-ms", ["data.tr=2000"], ["tr", "milliseconds", "tr=2"]),
    ("sc-missing", ["data.weights={f}/nope.npy"], ["file not found", "nope.npy", "check the path"]),
    ("bold-missing", ["data.bold={f}/nope.npy"], ["file not found", "nope.npy"]),
    ("sc-negative", ["data.weights={f}/sc_negative.npy"], ["sc_negative.npy", "negative", ">= 0"]),
    ("sc-nan", ["data.weights={f}/sc_nan.npy"], ["sc_nan.npy", "non-finite", "nan_to_num"]),
    ("sc-nonsquare", ["data.weights={f}/sc_nonsquare.npy"], ["sc_nonsquare.npy", "square"]),
    ("sc-all-zero", ["data.weights={f}/sc_zero.npy"], ["sc_zero.npy", "all-zero",
                                                       "normalize_weights=null"]),
    ("sc-empty-file", ["data.weights={f}/sc_empty.txt"], ["sc_empty.txt", "empty"]),
    ("sc-wrong-extension", ["data.weights={f}/sc.xlsx"], ["sc.xlsx", "extension", ".npy"]),
    ("sc-not-numbers", ["data.weights={f}/sc_text.csv"], ["sc_text.csv", "non-numeric"]),
    ("sc-corrupt", ["data.weights={f}/sc_corrupt.npy"], ["sc_corrupt.npy", "cannot read",
                                                         "np.save"]),
    ("sc-bold-regions", ["data.weights={f}/sc_5.npy"], ["sc_5.npy", "5 regions", "6 columns",
                                                        "parcellation"]),
    ("lengths-shape", ["+data.lengths={f}/lengths_5.npy"], ["lengths_5.npy", "same regions"]),
    ("lengths-negative", ["+data.lengths={f}/lengths_negative.npy"], ["lengths_negative.npy",
                                                                       "negative", ">= 0"]),
    ("bold-nan", ["data.bold={f}/bold_nan.npy"], ["bold_nan.npy", "non-finite", "(7, 2)"]),
    ("bold-regions-first", ["data.bold={f}/bold_nt.npy"], ["bold_nt.npy", "time first",
                                                           "bold_layout=NT"]),
    ("bold-regions", ["data.bold={f}/bold_5.npy"], ["bold_5.npy", "5 columns", "parcellation"]),
    ("bold-flat-region", ["data.bold={f}/bold_flat.npy"], ["bold_flat.npy", "zero variance",
                                                           "[4]"]),
    ("bold-too-short", ["data.bold={f}/bold_short.npy"], ["bold_short.npy", "2 time points"]),
    ("bold-above-nyquist", ["data.preprocessing.high_hz=0.4"], ["0.4", "nyquist"]),
    # checkpoints
    ("resume-missing", ["trainer.resume={f}/nope.pt"], ["no checkpoint", "nope.pt", "last.pt"]),
    ("resume-not-a-checkpoint", ["trainer.resume={f}/not_a_checkpoint.pt"],
     ["not_a_checkpoint.pt", "not a readable checkpoint"]),
    ("resume-truncated", ["trainer.resume={f}/truncated.pt"], ["truncated.pt", "truncated"]),
    ("resume-other-model", ["model.params.G.scope=subject",
                            "trainer.resume={run}/checkpoints/last.pt"],
     ["cannot resume", "different model"]),
]


@pytest.mark.parametrize("overrides, words",
                         [pytest.param(o, w, id=i) for i, o, w in TRAIN_CASES])
def test_train_rejects_bad_input_in_one_line(overrides, words, files, fitted, tmp_path,
                                             monkeypatch, capsys):
    run_dir = tmp_path / "run"
    args = [o.format(f=files, run=fitted) for o in overrides]
    code, err = _script("train", [*_base(files), *args, f"hydra.run.dir={run_dir}"],
                        monkeypatch, capsys)
    _assert_one_clear_line(code, err, [w.format(f=files) for w in words])
    _assert_nothing_left(run_dir)


# -- scripts/simulate.py and evaluate.py -----------------------------------------------------------
SIMULATE_CASES = [
    ("seconds-negative", ["seconds=-5"], ["seconds", "> 0", "seconds=null"]),
    ("seconds-text", ["seconds=long"], ["seconds", "number"]),
    ("dt-zero", ["dt=0"], ["dt", "> 0"]),
    ("seed-text", ["seed=abc"], ["seed", "integer"]),
    ("no-checkpoint", ["checkpoint=nope.pt"], ["nope.pt", "last.pt", "checkpoint="]),
    ("run-missing", ["run={f}/no_run"], ["no_run", "not a directory"]),
    ("run-not-given", ["~run"], ["run", "required"]),
    ("misspelt-key", ["second=5"], ["did you mean seconds=5"]),
]


@pytest.mark.parametrize("overrides, words",
                         [pytest.param(o, w, id=i) for i, o, w in SIMULATE_CASES])
def test_simulate_rejects_bad_input_in_one_line(overrides, words, files, fitted, tmp_path,
                                                monkeypatch, capsys):
    out = tmp_path / "simulated.npz"
    args = [o.format(f=files) for o in overrides]
    run = [] if "~run" in args else [f"run={fitted}"]
    code, err = _script("simulate", [*run, *[a for a in args if a != "~run"], f"out={out}",
                                     f"hydra.run.dir={tmp_path / 'sim'}"], monkeypatch, capsys)
    _assert_one_clear_line(code, err, words)
    assert not out.exists() and not (fitted / "simulated_bold.npz").exists()


EVALUATE_CASES = [
    ("no-checkpoint", ["checkpoint=nope.pt"], ["no checkpoint", "nope.pt"]),
    ("misspelt-key", ["seed=3"], ["did you mean seeds=3"]),
    ("seeds-text", ["seeds=many"], ["seeds", "many"]),
]


@pytest.mark.parametrize("overrides, words",
                         [pytest.param(o, w, id=i) for i, o, w in EVALUATE_CASES])
def test_evaluate_rejects_bad_input_in_one_line(overrides, words, fitted, tmp_path, monkeypatch,
                                                capsys):
    before = (fitted / "metrics.json").read_text()
    code, err = _script("evaluate", [f"run={fitted}", *overrides,
                                     f"hydra.run.dir={tmp_path / 'ev'}"], monkeypatch, capsys)
    _assert_one_clear_line(code, err, words)
    assert not (fitted / "evaluation.json").exists()
    assert (fitted / "metrics.json").read_text() == before


@pytest.mark.parametrize("script, args, words", [
    ("train", ["optim.lr=abc"], ["optim.lr", "number"]),
    ("train", ["trainer.epoch=3"], ["did you mean trainer.epochs=3"]),
    ("simulate", ["seconds=-5"], ["seconds", "> 0"]),
], ids=["train-lr-text", "train-misspelt-key", "simulate-seconds-negative"])
def test_a_real_process_prints_one_line_and_exits_2(script, args, words, files, fitted, tmp_path):
    """The same through the shell: no Hydra noise, no traceback, exit code 2."""
    base = _base(files) if script == "train" else [f"run={fitted}", f"out={tmp_path / 'o.npz'}"]
    res = subprocess.run([sys.executable, str(ROOT / "scripts" / f"{script}.py"), *base, *args,
                          f"hydra.run.dir={tmp_path / 'run'}"],
                         capture_output=True, text=True, timeout=300,
                         env={**os.environ, "OMP_NUM_THREADS": "1"})
    _assert_one_clear_line(res.returncode, res.stderr, words)
    assert "Traceback" not in res.stdout + res.stderr
    _assert_nothing_left(tmp_path / "run")


# -- the API ---------------------------------------------------------------------------------------
def _network(weights=None, lengths=None):
    model = brainfit.create_model("hopf", n_regions=N)
    return brainfit.BrainNetwork(model, torch.rand(N, N) if weights is None else weights,
                                 lengths)


def _load(files, **kw):
    return brainfit.data.load_arrays(**{"weights": files / "sc.npy", "bold": files / "bold.npy",
                                        "tr": TR, **kw})


#: (id, call (given the data files and the fitted run), exception type, words in the message)
API_CASES = [
    ("generator-int-network", lambda f, r: _network().simulate(10.0, 0.1, generator=3),
     TypeError, ["torch.Generator", "manual_seed(3)"]),
    ("generator-int-simulator", lambda f, r: brainfit.BoldSimulator(_network())(
        4, TR, 0.1, generator=7), TypeError, ["torch.Generator", "manual_seed(7)"]),
    ("weights-nonsquare", lambda f, r: _network(torch.rand(1, N, N - 1)), ValueError,
     ["square"]),
    ("weights-nan", lambda f, r: _network(torch.full((N, N), float("nan"))), ValueError,
     ["NaN", "connectome"]),
    ("weights-negative", lambda f, r: _network(-torch.rand(N, N)), ValueError,
     ["negative", ">= 0"]),
    ("lengths-shape", lambda f, r: _network(lengths=torch.rand(N - 1, N - 1)), ValueError,
     ["lengths", "weights"]),
    ("duration-negative", lambda f, r: _network().simulate(-10.0, 0.1), ValueError,
     ["-10", "dt"]),
    ("dt-zero", lambda f, r: _network().simulate(10.0, 0.0), ValueError, ["dt", "positive"]),
    ("unknown-model", lambda f, r: brainfit.create_model("hopff", n_regions=N), ValueError,
     ["hopff", "hopf"]),
    ("param-text", lambda f, r: brainfit.create_model("hopf", n_regions=N, params={"a": "x"}),
     TypeError, ["parameter 'a'", "number"]),
    ("load-not-a-source", lambda f, r: brainfit.data.load(42), TypeError, ["path", "int"]),
    ("load-arrays-no-tr", lambda f, r: _load(f, tr=None), DataError, ["tr=", "bold.npy"]),
    ("load-arrays-sc-names-sc", lambda f, r: _load(f, weights=f / "sc_negative.npy"), DataError,
     ["sc_negative.npy", "negative"]),
    ("load-fitted-missing", lambda f, r: brainfit.load_fitted(f / "nope.pt"), FileNotFoundError,
     ["nope.pt", "checkpoint"]),
    ("load-fitted-not-a-checkpoint", lambda f, r: brainfit.load_fitted(f / "not_a_checkpoint.pt"),
     ValueError, ["not_a_checkpoint.pt", "checkpoint"]),
    ("load-fitted-truncated", lambda f, r: brainfit.load_fitted(f / "truncated.pt"), ValueError,
     ["truncated.pt", "truncated"]),
    ("weights-path", lambda f, r: _network(str(f / "sc.npy")), TypeError, ["weights", "load"]),
]


@pytest.mark.parametrize("call, error, words", [
    pytest.param(*case[1:4], id=case[0], marks=case[4:]) for case in API_CASES])
def test_api_rejects_bad_input_with_a_clear_exception(call, error, words, files, fitted):
    with pytest.raises(error) as info:
        call(files, fitted)
    for word in words:
        assert word.lower() in str(info.value).lower(), f"{word!r} not in {info.value}"


# -- what is a user error and what is a bug --------------------------------------------------------
def test_errors_raised_inside_libraries_keep_their_traceback():
    """A ValueError brainfit raises is a user error; one from torch, or another exception, is a
    bug, and ``explain`` leaves it alone (so that it keeps its traceback)."""
    with pytest.raises(ValueError) as ours:
        brainfit.create_model("hopf", n_regions=N, params={"a": {"value": 1.0, "scope": "x"}})
    assert cli.explain(ours.value) == (cli._one_line(ours.value), cli.USAGE_ERROR)
    with pytest.raises(RuntimeError) as theirs:
        torch.zeros(2) @ torch.zeros(3)
    assert cli.explain(theirs.value) is None
    with pytest.raises(ValueError) as builtin:
        int("abc")
    assert cli.explain(builtin.value) is None
    assert cli.explain(KeyError("x")) is None  # no traceback: not raised by brainfit


def test_hydra_full_error_keeps_every_traceback(monkeypatch):
    def app():
        raise cli.UsageError("bad value")

    with pytest.raises(SystemExit) as exit_:
        cli.run_app(app)
    assert exit_.value.code == cli.USAGE_ERROR
    monkeypatch.setenv("HYDRA_FULL_ERROR", "1")
    with pytest.raises(cli.UsageError, match="bad value"):
        cli.run_app(app)
    assert os.environ["HYDRA_FULL_ERROR"] == "1"


def test_a_diverged_fit_ends_with_its_own_exit_code():
    err = brainfit.fit.FitDiverged("the loss was NaN 3 times; lower optim.lr")
    assert cli.explain(err) == ("the loss was NaN 3 times; lower optim.lr", cli.RUN_FAILED)


def test_schema_is_not_an_option_of_the_model_or_trainer_group():
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        loader = GlobalHydra.instance().config_loader()
        models = loader.get_group_options("model")
        trainers = loader.get_group_options("trainer")
    assert "hopf" in models and "schema" not in models
    assert trainers == ["default", "linearized"]


def test_the_fitted_base_run_is_good(fitted):
    """The cases above fail because of their one bad override: the base run fits and scores."""
    metrics = json.loads((fitted / "metrics.json").read_text())
    assert np.isfinite(metrics["mean"]["fc_similarity"])
