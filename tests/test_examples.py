"""The main demo runs in a fresh interpreter, succeeds, and what it claims holds."""

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _run(script: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]))
    return subprocess.run([sys.executable, str(ROOT / "examples" / script)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)


def test_quickstart_runs_and_its_claims_hold():
    result = _run("quickstart.py")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    for needle in ["P1:pattern", "equation: ", "path: ", "cost: ", "output shape: [8, 6, 8, 8]",
                   "returns the cached program: True", "tndiag.functional.conv",
                   "dense-pattern",
                   "tndiag.nn.Conv2d loaded the state dict",
                   "4 of 4 comparisons with torch passed."]:
        assert needle in out, needle
    errors = re.findall(r"max abs error ([0-9.e+-]+) \(output scale ([0-9.]+)\)", out)
    assert len(errors) == 4
    for err, scale in errors:
        assert float(err) <= 1e-10 * max(1.0, float(scale))
    assert "DOES NOT" not in out
