"""A convolution's bias: fused into the kernel, a broadcast term, or an einsum term.

All three plans and torch's ``F.conv2d(x, w, b)`` are timed in one interleaved run (1 thread)
on a tiny input and a ResNet-18 layer1 shape; see docs/benchmarks.md.

    MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=100000000000 .venv/bin/python benchmarks/bias.py
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

import tndiag  # noqa: E402
from tndiag.bench.timing import loadavg, time_interleaved  # noqa: E402
from tndiag.codegen.lowering import STRUCTURED  # noqa: E402

PLANS = {
    "fused (conv2d+bias)": STRUCTURED,
    "broadcast term, add_": tuple(s for s in STRUCTURED if s != "bias"),
    "einsum term (before)": tuple(s for s in STRUCTURED if s not in ("bias", "broadcast")),
}


def _call(fn, *args):
    """``fn(*args)`` as a thunk bound to these arguments."""
    return lambda: fn(*args)


def main():
    torch.set_num_threads(1)
    print(f"torch {torch.__version__}, 1 thread, load {loadavg()}")
    for x_shape, w_shape in [((1, 2, 8, 8), (3, 2, 3, 3)), ((8, 64, 56, 56), (64, 64, 3, 3))]:
        x, w, b = torch.randn(x_shape), torch.randn(w_shape), torch.randn(w_shape[0])
        diagram = tndiag.ops.conv(x_shape, w_shape, padding=1, bias=True)
        impls = {name: _call(tndiag.compile(diagram, lowerings=plan), x, w, b)
                 for name, plan in PLANS.items()}
        impls["torch F.conv2d(x, w, b)"] = _call(F.conv2d, x, w, b, 1, 1)
        times = time_interleaved(impls, rounds=9)
        print(f"input {list(x_shape)}, weight {list(w_shape)}")
        for name, t in times.items():
            print(f"  {name:26s} {t * 1e6:10.1f} µs")


if __name__ == "__main__":
    main()
