"""The KFAC training example and notebook run, and what they claim holds."""

import os
import re
import subprocess
import sys
from pathlib import Path

from tests.notebooks import run_notebook

ROOT = Path(__file__).resolve().parents[2]


def _env() -> dict:
    return dict(os.environ, PYTHONPATH=os.pathsep.join(
        filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))


def test_training_example_runs_and_writes_its_plot(tmp_path):
    plot = tmp_path / "kfac.png"
    result = subprocess.run([sys.executable, str(ROOT / "examples" / "kfac_training.py"),
                             "--epochs", "1", "--plot", str(plot)], cwd=ROOT, env=_env(),
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    losses = dict((name, (float(a), float(b))) for name, a, b in re.findall(
        r"^(.+): loss ([0-9.]+) -> ([0-9.]+) in", result.stdout, re.M))
    assert set(losses) == {"KFAC-SGD (tndiag)", "SGD + momentum", "Adam"}
    assert losses["KFAC-SGD (tndiag)"][1] < losses["KFAC-SGD (tndiag)"][0]
    assert plot.stat().st_size > 1000 and plot.read_bytes()[:4] == b"\x89PNG"
    assert (ROOT / "docs" / "images" / "kfac-training.png").exists()


def test_notebook_runs(tmp_path, monkeypatch):
    outputs = run_notebook("02-kfac.ipynb", tmp_path, monkeypatch)
    text = "".join(o.get("text", "") for o in outputs)
    assert "K @ v matches the dense matrix: True" in text
    assert "dense inverse matches: True" in text
    assert any("image/png" in o.get("data", {}) for o in outputs)


def test_the_python_block_of_docs_curvature_runs():
    text = (ROOT / "docs" / "curvature.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    assert blocks
    scope: dict = {}
    for block in blocks:
        exec(compile(block, "docs/curvature.md", "exec"), scope)
    K = scope["K"]
    assert K.modules == ["0", "2", "4"]
    assert tuple(K["2"].input.shape) == (8, 16, 16)
    assert tuple(K["2"].grad_output.shape) == (8, 1, 1)
    assert set(scope["diag"]) == {n for n, _ in scope["model"].named_parameters()}
