"""The README's quick start runs as written and produces what its comments say."""

import re
from pathlib import Path

import torch

README = Path(__file__).resolve().parents[1] / "README.md"


def test_quick_start_runs_as_written(monkeypatch, tmp_path, capsys):
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    assert blocks, "README.md has no ```python quick start block"
    code = blocks[0]
    assert len(code.strip().splitlines()) <= 15, "the quick start should stay about 10 lines"
    monkeypatch.chdir(tmp_path)  # nothing may depend on being run from the repo root
    ns: dict = {}
    exec(compile(code, "README.md", "exec"), ns)  # noqa: S102
    assert ns["bold"].shape == (1, 100, 80) and torch.isfinite(ns["bold"]).all()
    assert ns["fc"].shape == (1, 80, 80)
    assert -1.0 <= ns["r"].item() <= 1.0
    assert re.search(r"FC similarity to \S+: -?\d\.\d{3}", capsys.readouterr().out)


def test_the_main_job_commands_compose():
    """Every ``python scripts/train.py`` line of the README's main-job block composes to a config
    that builds (placeholders such as ``<run>`` and the options of Hydra itself aside)."""
    import shlex

    from hydra import compose, initialize_config_dir

    from brainfit.fit import register_configs
    from brainfit.fit.build import components_from_config

    register_configs()
    block = re.search(r"## The main job\n+```bash\n(.*?)```", README.read_text(), flags=re.S)
    assert block, "README.md has no main-job block"
    lines = [ln.split("#")[0] for ln in block.group(1).splitlines()
             if ln.startswith("python scripts/train.py") and "<" not in ln]
    assert len(lines) >= 5
    for line in lines:
        overrides = [a for a in shlex.split(line)[2:] if a != "-m"]
        overrides = [a.split(",")[0] if "=" in a and "{" not in a else a for a in overrides]
        with initialize_config_dir(config_dir=str(README.parent / "conf"), version_base="1.3"):
            cfg = compose(config_name="train", overrides=overrides)
        components_from_config(cfg)
