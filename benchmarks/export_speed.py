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

#: CPU seconds of this process (all threads): steadier than wall time while other jobs run.
CLOCK = time.process_time

OPS = ("forward", "input-vjp", "weight-vjp", "unfold", "kfc", "kfac-reduce")


def _exported(program):
    namespace: dict = {}
    exec(builtins.compile(tndiag.export(program), "<exported>", "exec"), namespace)
    return namespace["forward"]


def _row(layer, op: str, rounds: int):
    program = tndiag.compile(bd.DIAGRAMS[op](layer))
    tensors = make_inputs(layer, "cpu", torch.float32)
    args = [tensors[n] for n in program.inputs]
    forward = _exported(program)
    torch.testing.assert_close(forward(*args), program(*args))
    load = loadavg()
    t = time_interleaved({"compiled": lambda: program(*args),
                          "exported": lambda: forward(*args)}, rounds, clock=CLOCK)
    return t["compiled"], t["exported"], load


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--only", nargs="*", default=None)
    parser.add_argument("--ops", nargs="*", default=list(OPS))
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    rows = json.loads((Path(__file__).parent / "layers.json").read_text())["layers"]
    print(f"torch {torch.__version__}, threads {args.threads}, batch {args.batch}")
    print("| layer | op | compiled ms | exported ms | exported / compiled | load |")
    print("|---|---|---|---|---|---|")
    ratios = []
    for row in rows:
        name = f"{row['net']}/{row['name']}"
        if args.only and not any(o in name for o in args.only):
            continue
        layer = bd.layer_from_json(row, batch=args.batch)
        for op in args.ops:
            compiled, exported, load = _row(layer, op, args.rounds)
            ratios.append(exported / compiled)
            print(f"| {name} | {op} | {compiled * 1e3:.3f} | {exported * 1e3:.3f} | "
                  f"{exported / compiled:.2f} | {load} |", flush=True)
    print(f"\ngeometric mean {statistics.geometric_mean(ratios):.3f}, "
          f"worst {max(ratios):.2f}, best {min(ratios):.2f} over {len(ratios)} rows")
    return 0


if __name__ == "__main__":
    sys.exit(main())
