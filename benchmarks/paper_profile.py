"""Where the time of each paper variant goes, for one op on one layer (torch profiler).

    .venv/bin/python benchmarks/paper_profile.py forward 2c2d/u00 --batch 8
    .venv/bin/python benchmarks/paper_profile.py kfac-reduce resnet18/u06 --batch 8 --top 4

For every variant (TN, TN+opt, tndiag, PT; see docs/paper-results.md) prints the compiled
program's steps (einsum variants), then the operators with the most self CPU time over
``--calls`` warm calls, one thread.
"""

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> int:
    import torch
    from torch.profiler import ProfilerActivity, profile

    import tndiag
    from tndiag.bench.diagrams import DIAGRAMS, layer_from_json
    from tndiag.bench.impls import make_inputs
    from tndiag.bench.paper_runtime import load_layers
    from tndiag.bench.timing import _quiet_stderr, loadavg
    from tndiag.bench.variants import PAPER_OPS, build_variants

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("op", choices=PAPER_OPS)
    p.add_argument("layer", help="NET/NAME of benchmarks/paper_layers.json, e.g. 2c2d/u00")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--calls", type=int, default=20)
    p.add_argument("--top", type=int, default=5)
    args = p.parse_args()
    rows = {f"{r['net']}/{r['name']}": r for r in load_layers()}
    if args.layer not in rows:
        p.error(f"unknown layer {args.layer!r}")
    torch.set_num_threads(1)
    layer = layer_from_json(rows[args.layer], args.batch)
    variants = build_variants(args.op, layer, make_inputs(layer, "cpu", torch.float32), 1 << 31)
    diagram = DIAGRAMS[args.op](layer)
    print(f"{args.op} {args.layer} batch {args.batch}, 1 thread, torch {torch.__version__}, "
          f"load {loadavg()}")
    programs = {"TN": diagram, "TN+opt": tndiag.simplify(diagram)}
    for name, fn in variants.impls.items():
        fn()
        with _quiet_stderr(), profile(activities=[ProfilerActivity.CPU]) as prof:
            for _ in range(args.calls):
                fn()
        events = sorted(prof.key_averages(), key=lambda e: -e.self_cpu_time_total)
        total = sum(e.self_cpu_time_total for e in events) / args.calls
        print(f"\n{name}: {total / 1e3:.3f} ms self CPU per call")
        if name in programs:
            prog = tndiag.compile(programs[name], lowerings=())
            print("  steps: " + "; ".join(f"{s.label} {s.equation}" for s in prog.steps))
        for e in events[:args.top]:
            print(f"  {e.key:<40} {e.self_cpu_time_total / args.calls / 1e3:8.3f} ms "
                  f"({e.count // args.calls} calls)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
