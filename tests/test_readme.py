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
