"""A/A control for the forward rows: how far apart are identical kernel calls here?

Times, interleaved in rotating order, for a few layers of benchmarks/layers.json:
``torch`` (F.conv2d), ``torch again`` (the same call, a second closure), ``tndiag step``
(the prepared native step of the compiled program, i.e. the kernel call tndiag makes) and
``tndiag program`` (the full program call). Repeated ``--repeat`` times, so the spread of
the torch/torch ratio can be compared with the tndiag/torch ratio (see docs/benchmarks.md).

    .venv/bin/python benchmarks/same_kernel.py [--repeat 3] [--layers NET/NAME ...]
"""

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

import tndiag  # noqa: E402
from tndiag.backends.torch import _prepared  # noqa: E402

DEFAULT = ["2c2d/conv1", "resnet18/layer2.shortcut", "mobilenetv2/dw3x3_s2",
           "convnext-base/stem"]


def _layer(name: str) -> dict:
    layers = json.loads((Path(__file__).parent / "layers.json").read_text())["layers"]
    return next(lay for lay in layers if f"{lay['net']}/{lay['name']}" == name)


def _median_ms(fn, calls: int) -> float:
    start = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - start) / calls * 1e3


def measure(name: str, rounds: int = 11, calls: int = 20) -> dict:
    """Median ms per call of each candidate for one layer."""
    lay = _layer(name)
    x = torch.randn(lay["batch"], lay["c_in"], *lay["input"])
    w = torch.randn(lay["c_out"], lay["c_in"] // lay["groups"], *lay["kernel"])
    h = dict(stride=lay["stride"], padding=lay["padding"], dilation=lay["dilation"],
             groups=lay["groups"])
    prog = tndiag.compile(tndiag.ops.conv(tuple(x.shape), tuple(w.shape), **h))
    prog(x, w)
    step = _prepared(prog).steps[0]
    fns = {"torch": lambda: F.conv2d(x, w, None, **h),
           "torch again": lambda: F.conv2d(x, w, None, **h),
           "tndiag step": lambda: step([x, w]),
           "tndiag program": lambda: prog(x, w)}
    samples = {k: [] for k in fns}
    for r in range(rounds):
        order = list(fns)[r % len(fns):] + list(fns)[:r % len(fns)]
        for k in order:
            samples[k].append(_median_ms(fns[k], calls))
    return {k: sorted(v)[len(v) // 2] for k, v in samples.items()}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--layers", nargs="*", default=DEFAULT)
    args = ap.parse_args(argv)
    torch.set_num_threads(2)
    print(f"torch {torch.__version__}, 2 threads; ratios to 'torch' of the same repetition")
    print("| layer | rep | torch ms | torch again | tndiag step | tndiag program |")
    print("|---|---|---|---|---|---|")
    for name in args.layers:
        for rep in range(args.repeat):
            t = measure(name)
            base = t["torch"]
            cells = " | ".join(f"{t[k] / base:.3f}" for k in
                               ("torch again", "tndiag step", "tndiag program"))
            print(f"| {name} | {rep} | {base:.3f} | {cells} |")


if __name__ == "__main__":
    main()
