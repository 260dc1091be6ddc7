"""``tndiag bench --dropout``: the approximate weight-VJP rows and the model rows run."""

import os
import re
import subprocess
import sys
from pathlib import Path

from tndiag.bench.dropout_bench import VARIANTS, format_rows

ROOT = Path(__file__).resolve().parents[2]


def test_bench_dropout_quick_prints_every_row():
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    done = subprocess.run([sys.executable, "-m", "tndiag", "bench", "--dropout", "--quick",
                           "--no-progress"], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=900)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "MALLOC_MMAP_MAX_=0" in out  # re-executed under the warm-allocator settings
    time_rows = re.findall(r"^\| (\d+) \| \[2, ", out, re.M)
    assert len(time_rows) == 9  # one row per convolution of All-CNN-C
    model_rows = re.findall(r"^\| (torch|spatial|channel|crs)[ 0-9.]* \| [0-9.]+ \| [0-9.]+ \|",
                            out, re.M)
    assert len(model_rows) == len(VARIANTS)
    torch_row = re.search(r"^\| torch \| ([0-9.]+) \| 1\.00 \|", out, re.M)
    assert torch_row and float(torch_row.group(1)) > 0


def test_format_rows_ratios():
    times = {label: 2e-3 for label, _, _ in VARIANTS}
    times["spatial 0.25"] = 1e-3
    layer = {"layer": "0", "input": [2, 3, 32, 32], "time": times,
             "peak": {label: 2**20 for label in times}, "loadavg": "0.1"}
    model = {"variant": "torch", "peak": 2**21, "time": 0.5, "ratio": 1.0, "loadavg": "0.1"}
    text = format_rows([layer], [model])
    assert "| 1.0 (0.50) |" in text and "| 2.0 (1.00) |" in text
    assert "| torch | 2.0 | 1.00 | 0.500 | 1.00 | 0.1 |" in text
