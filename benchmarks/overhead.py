"""Per-call overhead of tndiag.functional.conv on a tiny input, against torch.

Results: docs/benchmarks.md.

    .venv/bin/python benchmarks/overhead.py
"""

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

import tndiag  # noqa: E402
from tndiag.bench.timing import loadavg  # noqa: E402


def per_call(fn, calls=2000, rounds=7):
    """Median over rounds of the mean seconds per call."""
    fn()
    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        samples.append((time.perf_counter() - start) / calls)
    return sorted(samples)[len(samples) // 2]


def main():
    torch.set_num_threads(1)
    x, w, b = torch.randn(1, 2, 8, 8), torch.randn(3, 2, 3, 3), torch.randn(3)
    prog = tndiag.compile(tndiag.ops.conv(x.shape, w.shape, padding=1))
    cases = {
        "torch F.conv2d": lambda: F.conv2d(x, w, None, 1, 1),
        "tndiag.functional.conv": lambda: tndiag.functional.conv(x, w, None, 1, 1),
        "torch F.conv2d, bias": lambda: F.conv2d(x, w, b, 1, 1),
        "tndiag.functional.conv, bias": lambda: tndiag.functional.conv(x, w, b, 1, 1),
        "compiled program(x, w)": lambda: prog(x, w),
        "tndiag.compile (cache hit)": lambda: tndiag.compile(
            tndiag.ops.conv(x.shape, w.shape, padding=1)),
    }
    print(f"torch {torch.__version__}, 1 thread, input {list(x.shape)}, weight {list(w.shape)}, "
          f"load {loadavg()}")
    times = {}
    for _ in range(2):  # interleave: each case twice, keep the better median
        for name, fn in cases.items():
            t = per_call(fn, calls=500 if "compile" in name else 2000)
            times[name] = min(t, times.get(name, t))
    base = times["torch F.conv2d"]
    for name, t in times.items():
        print(f"{name:28s} {t * 1e6:8.1f} µs/call   overhead vs torch {(t - base) * 1e6:+8.1f} µs")


if __name__ == "__main__":
    main()
