"""Exported code against the compiled program it was exported from, on the benchmark layers.

For each layer of ``benchmarks/layers.json`` (batch ``--batch``) and each op, the program
``tndiag.compile`` builds is exported (``tndiag.export``), loaded in a fresh namespace and
timed against the program itself, interleaved round-robin (``tndiag.bench.timing``, CPU
time of the process); the table gives both medians and their ratio exported / compiled, with
the load average.

    .venv/bin/python benchmarks/export_speed.py [--batch 8] [--rounds 7] [--only NET/NAME ...]
"""

import argparse
import builtins
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

import tndiag  # noqa: E402
from tndiag.bench import diagrams as bd  # noqa: E402
from tndiag.bench.impls import make_inputs  # noqa: E402
from tndiag.bench.timing import loadavg, time_interleaved  # noqa: E402
from tndiag.codegen.routes import DEFAULT, steps_of  # noqa: E402

#: CPU seconds of this process (all threads): steadier than wall time while other jobs run.
CLOCK = time.process_time

OPS = ("forward", "input-vjp", "weight-vjp", "unfold", "kfc", "kfac-reduce")


def _exported(program):
    namespace: dict = {}
    exec(builtins.compile(tndiag.export(program), "<exported>", "exec"), namespace)
    return namespace["forward"]


def routes(program) -> str:
    """The non-default routes of the program's steps ("-": none)."""
    found = [s.route for s in steps_of(program) if s.route and s.route != DEFAULT[s.kind]]
    return ",".join(found) or "-"


def _row(layer, op: str, rounds: int):
    program = tndiag.compile(bd.DIAGRAMS[op](layer))
    tensors = make_inputs(layer, "cpu", torch.float32)
    args = [tensors[n] for n in program.inputs]
    forward = _exported(program)
    torch.testing.assert_close(forward(*args), program(*args))
    load = loadavg()
    t = time_interleaved({"compiled": lambda: program(*args),
                          "exported": lambda: forward(*args)}, rounds, clock=CLOCK)
    return t["compiled"], t["exported"], load, routes(program)


def _route_row(diagram, rounds: int):
    program = tndiag.compile(diagram)
    args = [torch.randn(s) for s in program.input_shapes]
    forward, native = _exported(program), _exported(tndiag.compile(diagram, route="native"))
    torch.testing.assert_close(forward(*args), program(*args))
    t = time_interleaved({"compiled": lambda: program(*args), "exported": lambda: forward(*args),
                          "native": lambda: native(*args)}, rounds, clock=CLOCK)
    return routes(program), t


def route_cases(rounds: int) -> None:
    """The ``--route-cases`` table (see the module docstring)."""
    cases = [("wav2vec2 conv0 input VJP [4,1,16000] [512,1,10] S=5",
              tndiag.ops.conv_input_vjp((4, 1, 16000), (512, 1, 10), stride=5)),
             ("3-d 3x3x3 forward [1,32,16,32,32] [32,32,3,3,3] P=1",
              tndiag.ops.conv((1, 32, 16, 32, 32), (32, 32, 3, 3, 3), padding=1))]
    print("| case | route | compiled ms | exported ms | exported / compiled | "
          "exported along torch's kernel ms | load |")
    print("|---|---|---|---|---|---|---|")
    for name, diagram in cases:
        how, t = _route_row(diagram, rounds)
        print(f"| {name} | {how} | {t['compiled'] * 1e3:.2f} | {t['exported'] * 1e3:.2f} | "
              f"{t['exported'] / t['compiled']:.2f} | {t['native'] * 1e3:.2f} | {loadavg()} |",
              flush=True)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--only", nargs="*", default=None)
    parser.add_argument("--ops", nargs="*", default=list(OPS))
    parser.add_argument("--routed", action="store_true",
                        help="only the rows whose program runs a non-default route")
    parser.add_argument("--route-cases", action="store_true",
                        help="the two cases where a route wins, against torch's kernel")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.route_cases:
        route_cases(args.rounds)
        return 0
    rows = json.loads((Path(__file__).parent / "layers.json").read_text())["layers"]
    print(f"torch {torch.__version__}, threads {args.threads}, batch {args.batch}")
    print("| layer | op | routes | compiled ms | exported ms | exported / compiled | load |")
    print("|---|---|---|---|---|---|---|")
    ratios, routed = [], []
    for row in rows:
        name = f"{row['net']}/{row['name']}"
        if args.only and not any(o in name for o in args.only):
            continue
        layer = bd.layer_from_json(row, batch=args.batch)
        for op in args.ops:
            if args.routed and routes(tndiag.compile(bd.DIAGRAMS[op](layer))) == "-":
                continue
            compiled, exported, load, how = _row(layer, op, args.rounds)
            ratios.append(exported / compiled)
            if how != "-":
                routed.append(exported / compiled)
            print(f"| {name} | {op} | {how} | {compiled * 1e3:.3f} | {exported * 1e3:.3f} | "
                  f"{exported / compiled:.2f} | {load} |", flush=True)
    for what, values in (("", ratios), ("routed rows: ", routed)):
        if values:
            print(f"\n{what}geometric mean {statistics.geometric_mean(values):.3f}, "
                  f"worst {max(values):.2f}, best {min(values):.2f} over {len(values)} rows")
    return 0


if __name__ == "__main__":
    sys.exit(main())
