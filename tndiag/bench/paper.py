"""``tndiag paper``: the paper's experiments by one command each.

- ``tndiag paper runtime``: forward, input VJP, weight VJP, KFC and KFAC-reduce on the
  unique convolution layers of nine CNNs (``benchmarks/paper_layers.json``), variants TN,
  TN+opt, tndiag and PT (:mod:`tndiag.bench.variants`), ratios to PT per layer, summaries per
  layer category, tables per net, and with ``--plot DIR`` the box plots and the KFAC-reduce
  memory scatter.
- ``tndiag paper kfac-reduce``: one large KFAC-reduce case (input ``[128, 10, 256, 256]``,
  K = 5, S = 2, P = 1), tndiag vs the unfold-based standard vs einconv, time and memory.
- ``tndiag paper report RESULTS.json [MORE.json ...] [--plot DIR]``: the tables (and
  figures) again from saved ``--json`` files (a later file's rows replace an earlier one's).
- ``tndiag paper dropout`` (:mod:`tndiag.bench.dropout`): weight-gradient error of tensor
  dropout and CRS vs saved bytes and backward time on All-CNN-C; ``tndiag paper
  dropout-train`` (:mod:`tndiag.bench.dropout_train`): training with them.

Like ``tndiag bench``, the command re-executes itself once under glibc's warm-allocator
settings (``--no-reexec`` skips that).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Dict, List, Sequence

__all__ = ["main", "KFAC_CASE", "merge_results", "run_kfac_case"]

#: The KFAC-reduce case einconv's follow-up work published (singd): one 5×5, stride-2 layer.
KFAC_CASE = {"net": "singd", "name": "kfac-reduce", "ndim": 2, "batch": 128, "c_in": 10,
             "c_out": 1, "input": [256, 256], "kernel": [5, 5], "stride": [2, 2],
             "padding": [1, 1], "dilation": [1, 1], "groups": 1, "category": "general"}


#: experiments with their own argument parsers: name -> module with ``main(argv)``
_OWN_PARSERS = {"dropout": "tndiag.bench.dropout", "dropout-train": "tndiag.bench.dropout_train"}
_OWN_HELP = {"dropout": "tensor dropout and CRS: gradient error vs saved bytes and time",
             "dropout-train": "tensor dropout and CRS: training a small CNN"}


def _common() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    p.add_argument("--rounds", type=int, default=None, help="timed rounds per measurement")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: cores)")
    p.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                   help="time elapsed (default) or CPU time of the process (steadier when "
                   "other jobs load the machine; use with --threads 1)")
    p.add_argument("--json", type=Path, default=None, help="write the raw results here")
    p.add_argument("--no-memory", action="store_true", help="skip the memory measurement")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--no-reexec", action="store_true",
                   help="do not re-run under the warm-allocator malloc settings")
    return p


def _parser() -> argparse.ArgumentParser:
    from tndiag.bench.variants import PAPER_OPS

    p = argparse.ArgumentParser(prog="tndiag paper", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="experiment", metavar="EXPERIMENT", required=True)
    common = _common()
    r = sub.add_parser("runtime", parents=[common], help="run-time ratios over nine CNNs")
    r.add_argument("--quick", action="store_true",
                   help="2 layers per category, batch 2, 3 rounds (minutes)")
    r.add_argument("--nets", nargs="+", default=None, metavar="NET", help="only these nets")
    r.add_argument("--ops", nargs="+", choices=PAPER_OPS, default=list(PAPER_OPS),
                   metavar="OP", help=f"ops (default: all of {', '.join(PAPER_OPS)})")
    r.add_argument("--layers", type=Path, default=None, help="layers JSON file")
    r.add_argument("--batch", type=int, default=None, help="override every layer's batch")
    r.add_argument("--budget-mib", type=float, default=2048.0,
                   help="skip TN / TN+opt when their planned peak memory exceeds this (MiB)")
    r.add_argument("--by-layer", action="store_true",
                   help="all ops of a layer before the next, categories round-robin (a run "
                   "stopped early still covers every op and category)")
    r.add_argument("--plot", type=Path, default=None, metavar="DIR",
                   help="write paper-runtime.png and paper-kfac-reduce-memory.png here")
    r.set_defaults(run=_cmd_runtime)
    k = sub.add_parser("kfac-reduce", parents=[common], help="one large KFAC-reduce case")
    k.add_argument("--batch", type=int, default=KFAC_CASE["batch"], help="batch (default 128)")
    k.add_argument("--no-einconv", action="store_true", help="skip einconv")
    k.set_defaults(run=_cmd_kfac)
    g = sub.add_parser("report", help="tables and figures from saved --json files")
    g.add_argument("results", type=Path, nargs="+",
                   help="JSON written by 'tndiag paper runtime --json'; with several files, a "
                   "later file's (op, net, layer) rows replace an earlier file's")
    g.add_argument("--plot", type=Path, default=None, metavar="DIR",
                   help="also write the figures here")
    g.set_defaults(run=_cmd_report, no_reexec=True)
    for name in _OWN_PARSERS:  # listed here, parsed by their own modules
        sub.add_parser(name, add_help=False, help=_OWN_HELP[name])
    return p


def _setup(args: argparse.Namespace) -> None:
    """Threads; the device and clock checked before anything runs."""
    import os

    import torch

    from tndiag.bench.paper_runtime import clock_function
    from tndiag.errors import InvalidArgumentError

    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise InvalidArgumentError(f"--device {args.device}: no CUDA device is available to "
                                   f"torch {torch.__version__}")
    if not (args.device == "cpu" or args.device.startswith("cuda")):
        raise InvalidArgumentError(f"--device must be cpu or cuda[:N], got {args.device!r}")
    clock_function(args.clock, args.device)
    torch.set_num_threads(args.threads or min(os.cpu_count() or 1, 16))


def _header(title: str, args: argparse.Namespace, extra: Sequence[str] = ()) -> str:
    from tndiag.bench.progress import load_banner
    from tndiag.bench.timing import machine_info

    lines = [f"## {title}", "", f"- command: tndiag paper {' '.join(args.argv)}", *extra]
    lines += [f"- {k}: {v}" for k, v in machine_info(args.device).items()]
    banner = load_banner()
    if banner and getattr(args, "clock", "wall") == "cpu":
        banner += ("\n(--clock cpu: each call's CPU time is measured, which the load disturbs "
                   "far less than elapsed time)")
    return "\n".join(lines) + ("\n\n" + banner if banner else "")


def _cmd_runtime(args: argparse.Namespace) -> int:
    import torch

    from tndiag.bench.paper_runtime import load_layers, run_runtime, select_layers

    _setup(args)
    rows = select_layers(load_layers(args.layers), args.nets, args.quick)
    batch = args.batch or (2 if args.quick else None)
    rounds = args.rounds or (3 if args.quick else 7)
    print(_header("tndiag paper runtime", args, [
        f"- layers: {len(rows)}, ops: {', '.join(args.ops)}, batch: {batch or 'per layer'}, "
        f"rounds: {rounds}, device: {args.device}, clock: {args.clock}, "
        f"dense-Π budget: {args.budget_mib:.0f} MiB"]),
        flush=True)
    results = run_runtime(rows, args.ops, batch=batch, rounds=rounds, dtype=torch.float32,
                          device=args.device, budget_bytes=int(args.budget_mib * (1 << 20)),
                          memory=not args.no_memory, json_path=args.json,
                          show_progress=not args.no_progress, by_layer=args.by_layer,
                          clock=args.clock)
    print(_runtime_report(results, args.ops), flush=True)
    if args.plot:
        _plots(results, args.ops, args.plot, f"{args.device}, batch {batch or 'per layer'}")
    return 0


def _runtime_report(results: List[Dict], ops: Sequence[str]) -> str:
    from tndiag.bench import paper_report as rep
    from tndiag.bench.paper_runtime import CATEGORIES

    parts = ["\n### Ratio to PT: geometric mean (worst) per category\n",
             rep.summary_table(results, ops, CATEGORIES), ""]
    parts += [rep.wins_line(results, op) for op in ops]
    if "kfac-reduce" in ops:
        parts += ["\n### KFAC-reduce auxiliary memory\n", rep.kfac_memory_table(results)]
    skipped = [f"- {r['op']} {r['layer']} {v}: {why}" for r in results
               for v, why in r["skipped"].items()]
    failed = [f"- {r['op']} {r['layer']} {v}: {e}" for r in results
              for v, e in r["errors"].items()]
    parts += ["\n### Skipped (memory budget)\n", "\n".join(skipped) or "none"]
    parts += ["\n### Failed or disagreeing with PT (not timed)\n", "\n".join(failed) or "none"]
    parts += ["\n### Per net", rep.net_tables(results)]
    return "\n".join(parts)


def _plots(results: List[Dict], ops: Sequence[str], outdir: Path, title: str) -> None:
    from tndiag.bench.paper_runtime import CATEGORIES
    from tndiag.bench.plots import plot_kfac_memory, plot_runtime

    outdir.mkdir(parents=True, exist_ok=True)
    written = [plot_runtime(results, ops, CATEGORIES, outdir / "paper-runtime.png", title)]
    if any(r["op"] == "kfac-reduce" and r.get("memory") for r in results):
        written.append(plot_kfac_memory(results, outdir / "paper-kfac-reduce-memory.png",
                                        f"KFAC-reduce auxiliary memory ({title})"))
    print("\nplots: " + ", ".join(str(p) for p in written))


def merge_results(runs: Sequence[Sequence[Dict]]) -> List[Dict]:
    """The rows of several runs, a later run's row replacing an earlier one of the same
    ``(op, net, layer)`` (e.g. one op re-measured after a change), in first-seen order.

    >>> a = [{"op": "kfc", "net": "2c2d", "layer": "u00", "batch": 8}]
    >>> b = [{"op": "kfc", "net": "2c2d", "layer": "u00", "batch": 4}]
    >>> [r["batch"] for r in merge_results([a, b])]
    [4]
    """
    merged: Dict[tuple, Dict] = {}
    for rows in runs:
        for row in rows:
            merged[(row["op"], row["net"], row["layer"])] = row
    return list(merged.values())


def _cmd_report(args: argparse.Namespace) -> int:
    from tndiag.errors import InvalidArgumentError

    runs = []
    for path in args.results:
        try:
            rows = json.loads(path.read_text())
            runs.append(rows)
            ops = list(dict.fromkeys(r["op"] for r in merge_results(runs)))
        except (OSError, ValueError, TypeError, KeyError) as err:
            raise InvalidArgumentError(f"cannot read results {str(path)!r}: {err}") from None
    results = merge_results(runs)
    print(_runtime_report(results, ops))
    if args.plot:
        _plots(results, ops, args.plot, "from " + ", ".join(p.name for p in args.results))
    return 0


def run_kfac_case(batch: int, rounds: int, device: str = "cpu", einconv: bool = True,
                  memory: bool = True, clock: str = "wall") -> Dict:
    """Time and measure tndiag, the standard (``F.unfold`` and strided view) and einconv on
    :data:`KFAC_CASE`, after checking each against the ``F.unfold`` standard."""
    import torch

    from tndiag.bench.diagrams import layer_from_json
    from tndiag.bench.impls import implementations, make_inputs
    from tndiag.bench.paper_runtime import timed, unfolded_bytes
    from tndiag.bench.variants import Variants, check_against_pt

    layer = layer_from_json(KFAC_CASE, batch)
    t = make_inputs(layer, device, torch.float32)
    impls = implementations("kfac-reduce", layer, t, einconv=einconv)
    variants = Variants(impls={"PT" if n == "std F.unfold" else n: f for n, f in impls.items()})
    check_against_pt(variants)
    result: Dict = {"batch": batch, "input_bytes": t["X"].numel() * 4, "errors": variants.errors,
                    "unfolded_bytes": unfolded_bytes(layer)}
    return timed(result, variants.impls, rounds, device, clock, memory)


def _kfac_table(r: Dict) -> str:
    mib = float(1 << 20)
    lines = ["| implementation | median s | / standard | peak extra MiB |", "|---|---|---|---|"]
    pt = r["time"].get("PT")
    for name, t in r["time"].items():
        label = "standard (F.unfold + mean)" if name == "PT" else name
        mem = r["memory"].get(name)
        lines.append(f"| {label} | {t:.3f} | {t / pt:.2f} | "
                     f"{'-' if mem is None else f'{mem / mib:.1f}'} |")
    lines += [f"\ninput {r['input_bytes'] / mib:.0f} MiB, unfolded input "
              f"{r['unfolded_bytes'] / mib:.0f} MiB; load {r['load_before']}/{r['load_after']}"]
    lines += [f"- {n}: {e}" for n, e in r["errors"].items()]
    return "\n".join(lines)


def _cmd_kfac(args: argparse.Namespace) -> int:
    _setup(args)
    rounds = args.rounds or 5
    case = dict(KFAC_CASE, batch=args.batch)
    shape = [case["batch"], case["c_in"], *case["input"]]
    print(_header("tndiag paper kfac-reduce", args, [
        f"- input {shape}, K=5, S=2, P=1, D=1, G=1; rounds: {rounds}, device: {args.device}, "
        f"clock: {args.clock}"]),
        flush=True)
    result = run_kfac_case(args.batch, rounds, args.device, not args.no_einconv,
                           not args.no_memory, args.clock)
    print("\n" + _kfac_table(result))
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))
    return 0


def main(argv: List[str] | None = None) -> int:
    """Entry point of ``tndiag paper`` (and ``python -m tndiag.bench.paper``)."""
    from tndiag.bench import _reexec
    from tndiag.errors import TndiagError

    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in _OWN_PARSERS:
        import importlib

        return int(importlib.import_module(_OWN_PARSERS[argv[0]]).main(argv[1:]))
    args = _parser().parse_args(argv)
    args.argv = [a for a in argv if a != "--no-reexec"]
    if not args.no_reexec:
        code = _reexec(argv, "tndiag.bench.paper")
        if code is not None:
            return code
    start = time.perf_counter()
    try:
        code = args.run(args)
    except TndiagError as err:  # bad input: one line, as the tndiag command reports it
        print(f"tndiag paper: error: {err}", file=sys.stderr)
        return 1
    if args.experiment != "report":
        print(f"\ntotal wall time: {time.perf_counter() - start:.1f} s")
    return code


if __name__ == "__main__":
    sys.exit(main())
