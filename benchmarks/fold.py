"""fold (col2im) lowerings against torch.nn.functional.fold (see docs/benchmarks.md).

For every 2-d layer of layers.json (default batch), the fold of its unfolded input
``[N, C·∏K, L] -> [N, C, *I]`` is timed three ways in one interleaved run: torch's
``F.fold``; tndiag's compiled program (the ``scatter`` lowering: per kernel tap, a slice
added into a strided slice of a zero output); and the alternative the lowering was chosen
against, a native ``conv_transpose2d`` with a one-hot depthwise weight (groups = C).

    MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=100000000000 .venv/bin/python benchmarks/fold.py
"""

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

import tndiag  # noqa: E402
from tndiag.bench.diagrams import explicit_padding, layer_from_json  # noqa: E402
from tndiag.bench.timing import loadavg, machine_info, time_interleaved  # noqa: E402

LAYERS = Path(__file__).resolve().parent / "layers.json"
MAX_ELEMENTS = 40_000_000  # larger fold inputs are skipped (2 shared cores, memory)


def one_hot_weight(C: int, K) -> torch.Tensor:
    """``[C·K1·K2, 1, K1, K2]``: channel ``c·K1·K2 + t`` holds a 1 at tap ``t``."""
    taps = K[0] * K[1]
    w = torch.zeros(C * taps, 1, K[0] * K[1])
    w[torch.arange(C * taps), 0, torch.arange(C * taps) % taps] = 1
    return w.view(C * taps, 1, *K)


def cases(rows):
    for row in rows:
        layer = layer_from_json(row)
        pads = explicit_padding(layer)
        if layer["ndim"] != 2 or any(l != r for l, r in pads):
            continue  # F.fold: 2-d, symmetric padding only
        I, K, S, D = layer["input"], layer["kernel"], layer["stride"], layer["dilation"]
        P = [l for l, _ in pads]
        O = [(i + 2 * p - d * (k - 1) - 1) // s + 1 for i, k, s, p, d in zip(I, K, S, P, D)]
        C, N = layer["c_in"], layer["batch"]
        if N * C * K[0] * K[1] * O[0] * O[1] > MAX_ELEMENTS:
            print(f"skipped {layer.label}: fold input over {MAX_ELEMENTS} elements")
            continue
        yield layer.label, N, C, I, K, S, P, D, O


def measure(label, N, C, I, K, S, P, D, O, rounds):
    x = torch.randn(N, C * K[0] * K[1], O[0] * O[1])
    prog = tndiag.compile(tndiag.ops.fold(x.shape, I, K, D, P, S))
    w = one_hot_weight(C, K)
    extra = [i - ((o - 1) * s - 2 * p + d * (k - 1) + 1) for i, o, s, p, d, k in
             zip(I, O, S, P, D, K)]
    impls = {"F.fold": lambda: F.fold(x, I, K, D, P, S), "tndiag": lambda: prog(x)}
    if all(0 <= e < max(s, d) for e, s, d in zip(extra, S, D)):
        impls["one-hot conv_transpose"] = lambda: F.conv_transpose2d(
            x.view(N, -1, *O), w, None, S, P, extra, C, D)
    want = impls["F.fold"]()
    for name, fn in impls.items():
        assert torch.allclose(fn(), want, atol=1e-4), name
    steps = "+".join(s.label for s in prog.steps)
    return steps, time_interleaved(impls, rounds)


def main():
    torch.set_num_threads(2)
    rows = json.loads(LAYERS.read_text())
    rows = rows["layers"] if isinstance(rows, dict) else rows
    rounds = 5 if "--quick" in sys.argv else 11
    print(" | ".join(f"{k}: {v}" for k, v in machine_info().items()))
    print(f"{'layer':26s} {'steps':14s} {'F.fold ms':>10s} {'tndiag':>16s} "
          f"{'one-hot conv_T':>16s}  load")
    ratios = []
    for case in cases(rows):
        steps, t = measure(*case, rounds=rounds)
        base = t["F.fold"]
        oh = t.get("one-hot conv_transpose")
        ratios.append(t["tndiag"] / base)
        print(f"{case[0]:26s} {steps:14s} {base * 1e3:10.3f} "
              f"{t['tndiag'] * 1e3:9.3f} ({t['tndiag'] / base:4.2f}x) "
              + (f"{oh * 1e3:9.3f} ({oh / base:4.2f}x)" if oh else f"{'n/a':>16s}")
              + f"  {loadavg()}", flush=True)
    geo = 1.0
    for r in ratios:
        geo *= r
    mean = geo ** (1 / len(ratios))
    print(f"geometric mean tndiag / F.fold: {mean:.2f}x over {len(ratios)} layers")


if __name__ == "__main__":
    main()
