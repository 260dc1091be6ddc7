"""Every route of a step against the step's default kernel, interleaved, in one run.

For each case the program of the op is compiled once; each candidate route is the same
program with that route forced, checked against the default result, then all are timed
round-robin (``tndiag.bench.timing.time_interleaved``). Prints milliseconds, the ratio to
the default route, and the load average. Results: docs/benchmarks.md.

    MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=1099511627776 \
        .venv/bin/python benchmarks/routes.py [--threads 2] [--rounds 7] [--only NAME ...]
"""

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

import tndiag  # noqa: E402
from tndiag import ops  # noqa: E402
from tndiag.bench.timing import loadavg, machine_info, time_interleaved  # noqa: E402
from tndiag.codegen.routes import with_route  # noqa: E402

#: name -> (input shape, weight shape, hyper-parameters)
CASES = {
    "wav2vec2-conv0": ((4, 1, 16000), (512, 1, 10), dict(stride=5)),
    "conv3d-3x3x3-b1": ((1, 32, 16, 32, 32), (32, 32, 3, 3, 3), dict(padding=1)),
    "conv3d-1x3x3-b2": ((2, 32, 16, 32, 32), (32, 32, 1, 3, 3), dict(padding=(0, 1, 1))),
    "mbv2-dw3x3": ((8, 144, 56, 56), (144, 1, 3, 3), dict(padding=1, groups=144)),
    "mbv2-dw3x3-s2": ((8, 144, 56, 56), (144, 1, 3, 3), dict(stride=2, padding=1, groups=144)),
    "convnext-dw7x7": ((8, 128, 56, 56), (128, 1, 7, 7), dict(padding=3, groups=128)),
    "convnext-dw7x7-14": ((8, 512, 14, 14), (512, 1, 7, 7), dict(padding=3, groups=512)),
    "effnet-dw5x5": ((8, 240, 28, 28), (240, 1, 5, 5), dict(padding=2, groups=240)),
    "effnet-dw5x5-s2": ((8, 144, 56, 56), (144, 1, 5, 5), dict(stride=2, padding=2, groups=144)),
    "resnext-g32": ((8, 256, 56, 56), (256, 8, 3, 3), dict(padding=1, groups=32)),
    "k4s2-transposed": ((8, 64, 32, 32), (64, 64, 4, 4), dict(stride=2, padding=1)),
    "resnet18-layer1": ((8, 64, 56, 56), (64, 64, 3, 3), dict(padding=1)),
    "alexnet-conv1": ((8, 3, 224, 224), (64, 3, 11, 11), dict(stride=4, padding=2)),
    "kfac-1x1": ((8, 144, 56, 56), (24, 144, 1, 1), {}),
    "kfac-1x1-small": ((8, 64, 8, 8), (64, 64, 1, 1), {}),
    "kfac-patchify-small": ((8, 16, 16, 16), (32, 16, 2, 2), dict(stride=2)),
    "kfac-k2s-small": ((8, 16, 16, 16), (32, 16, 4, 4), dict(stride=2, padding=1)),
    "kfac-wav2vec2": ((4, 1, 16000), (512, 1, 10), dict(stride=5)),
    "kfac-patchify": ((8, 3, 224, 224), (128, 3, 4, 4), dict(stride=4)),
    "kfac-k2s": ((8, 64, 56, 56), (64, 64, 4, 4), dict(stride=2, padding=1)),
    "kfac-resnet18": ((8, 64, 56, 56), (64, 64, 3, 3), dict(stride=2, padding=1)),
}

OPS = {
    "forward": lambda x, w, kw: ops.conv(x, w, **kw),
    "input-vjp": lambda x, w, kw: ops.conv_input_vjp(x, w, **kw),
    "weight-vjp": lambda x, w, kw: ops.conv_weight_vjp(x, w, **kw),
    "kfac-reduce": lambda x, w, kw: ops.kfac_reduce(x, w[2:], **kw),
}


def _inputs(program, x_shape, w_shape):
    shapes = dict(zip(program.inputs, program.input_shapes))
    return [torch.randn([int(v) for v in shapes[n]]) for n in program.inputs]


def run_case(name, op, rounds, clock=time.perf_counter):
    x_shape, w_shape, kw = CASES[name]
    if op == "kfac-reduce" and not name.startswith("kfac"):
        return
    if op != "kfac-reduce" and name.startswith("kfac"):
        return
    program = tndiag.compile(OPS[op](x_shape, w_shape, kw))
    args = _inputs(program, x_shape, w_shape)
    routes = sorted({r for step in program.steps for r in step.routes})
    if len(routes) < 2:
        return
    want = program(*args)
    impls = {}
    for route in routes:
        forced = with_route(program, route)
        got = forced(*args)
        err = float((got - want).abs().max() / want.abs().max().clamp_min(1e-30))
        assert err < 1e-4, (name, op, route, err)
        impls[route] = (lambda p: lambda: p(*args))(forced)
    load = loadavg()
    times = time_interleaved(impls, rounds, clock=clock)
    base = times.get("native", times.get("direct"))
    cells = "  ".join(f"{r} {t * 1e3:8.3f} ms ({t / base:5.2f}x)" for r, t in times.items())
    print(f"{name:18s} {op:12s} {cells}   load {load}->{loadavg()}", flush=True)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--only", nargs="+", default=None)
    p.add_argument("--ops", nargs="+", default=list(OPS))
    p.add_argument("--cpu-clock", action="store_true",
                   help="time in CPU seconds of this process (steadier on a busy machine)")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    print(" | ".join(f"{k}: {v}" for k, v in machine_info().items()),
          "| clock: " + ("process CPU time" if a.cpu_clock else "wall"))
    for name in CASES:
        if a.only and not any(s in name for s in a.only):
            continue
        for op in a.ops:
            run_case(name, op, a.rounds, time.process_time if a.cpu_clock else time.perf_counter)


if __name__ == "__main__":
    main()
