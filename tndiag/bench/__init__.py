"""``tndiag bench``: time tndiag against torch, the unfold-based standard and einconv.

For every layer of layers.json and every op (forward, input VJP, weight VJP, unfold, KFC,
KFAC-reduce) the implementations are timed in the same run, interleaved, as the median of
``--rounds`` repeats, with the peak extra memory of one warm call (see
:mod:`tndiag.bench.timing`). Prints a markdown table of times, ratios and memory and a
geometric-mean summary per op; shows a progress bar with ETA and warns when the load
average makes the timings unreliable; ``--plot FILE`` draws the ratios and memory. The
process re-executes itself once with glibc's ``MALLOC_MMAP_MAX_=0`` and a large
``MALLOC_TRIM_THRESHOLD_`` so that every candidate meets a warm allocator.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import List

__all__ = ["main", "OPS", "default_layers_file", "run_suite"]

OPS = ("forward", "input-vjp", "weight-vjp", "unfold", "kfc", "kfac-reduce")
_MALLOC = {"MALLOC_MMAP_MAX_": "0", "MALLOC_TRIM_THRESHOLD_": str(1 << 40)}


def default_layers_file() -> Path:
    """``benchmarks/layers.json`` of the repository."""
    return Path(__file__).resolve().parents[2] / "benchmarks" / "layers.json"


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="tndiag bench", description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true",
                   help="batch size min(batch, 2) and 3 rounds (the whole suite in minutes)")
    p.add_argument("--ops", nargs="+", choices=OPS, default=list(OPS), metavar="OP",
                   help=f"ops to run (default: all of {', '.join(OPS)})")
    p.add_argument("--layers", type=Path, default=None, help="layers JSON file")
    p.add_argument("--only", nargs="+", default=None, metavar="NET/NAME",
                   help="run only these layers (substring match on net/name)")
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    p.add_argument("--batch", type=int, default=None, help="override every layer's batch size")
    p.add_argument("--rounds", type=int, default=None, help="timed rounds (default 7, quick 3)")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: cores)")
    p.add_argument("--no-einconv", action="store_true", help="skip einconv")
    p.add_argument("--no-memory", action="store_true", help="skip the memory measurement")
    p.add_argument("--json", type=Path, default=None, help="also write raw results here")
    p.add_argument("--plot", type=Path, default=None, metavar="FILE",
                   help="draw per-op box plots of the ratios and a peak-memory scatter "
                   "(matplotlib; the format follows the extension: .png, .svg, .pdf)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--no-reexec", action="store_true",
                   help="do not re-run under the warm-allocator malloc settings")
    p.add_argument("--overhead", action="store_true",
                   help="measure the per-call overhead of every tndiag.functional function "
                        "instead (benchmarks/overhead.py; --overhead --help for its options)")
    p.add_argument("--dropout", action="store_true",
                   help="run the tensor-dropout benchmark instead (tndiag.bench.dropout_bench; "
                        "--dropout --help for its options)")
    p.add_argument("--curvature", action="store_true",
                   help="run the model-level curvature benchmark instead "
                        "(benchmarks/curvature.py; --curvature --help for its options)")
    return p


def _reexec(argv: List[str], module: str = "tndiag.bench") -> int | None:
    """Run ``python -m module argv`` again in a subprocess with the malloc settings (once)."""
    if all(os.environ.get(k) == v for k, v in _MALLOC.items()):
        return None
    env = dict(os.environ, **_MALLOC)
    root = str(Path(__file__).resolve().parents[2])  # this tndiag, wherever it was imported from
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    return subprocess.call([sys.executable, "-m", module, *argv, "--no-reexec"],
                           env=env)


def _selected(rows_json: List[dict], only: List[str] | None) -> List[dict]:
    return [row for row in rows_json
            if not only or any(s in f"{row['net']}/{row['name']}" for s in only)]


def run_suite(args: argparse.Namespace, out=None) -> list:
    """Run the benchmark described by parsed ``args``; print and return the rows.

    A progress bar with ETA goes to stderr (``--no-progress`` hides it); a banner warns
    before and after the tables when the load average makes the timings unreliable.
    """
    import torch

    out = out or sys.stdout
    from tndiag.bench.progress import load_banner, progress
    from tndiag.bench.report import format_header, format_table, measure_row

    torch.set_num_threads(args.threads or min(os.cpu_count() or 1, 16))
    path = args.layers or default_layers_file()
    rows_json = _selected(json.loads(Path(path).read_text())["layers"], args.only)
    rounds = args.rounds or (3 if args.quick else 7)
    dtype = getattr(torch, args.dtype)
    banner = load_banner()
    print(format_header(args, path, rounds) + ("\n\n" + banner if banner else ""),
          file=out, flush=True)
    jobs = [(op, row) for op in args.ops for row in rows_json]
    results: list = []
    for k, (op, row) in enumerate(progress(jobs, len(jobs), not args.no_progress, "bench")):
        batch = args.batch or (min(row["batch"], 2) if args.quick else None)
        results.append(measure_row(op, row, batch, rounds, dtype, args))
        if k + 1 == len(jobs) or jobs[k + 1][0] != op:
            print(format_table(op, [r for r in results if r["op"] == op]), file=out, flush=True)
    banner = load_banner(where="above")
    if banner:
        print("\n" + banner, file=out, flush=True)
    return results


def _script(name: str, argv: List[str]) -> int:
    """``tndiag bench --NAME ...``: run ``benchmarks/NAME.py`` of the repository."""
    import runpy

    script = Path(__file__).resolve().parents[2] / "benchmarks" / f"{name}.py"
    if not script.exists():
        print(f"tndiag bench --{name} needs the repository's {script}", file=sys.stderr)
        return 2
    return int(runpy.run_path(str(script))["main"](argv) or 0)


def main(argv: List[str] | None = None) -> int:
    """Entry point of ``tndiag bench`` (and ``python benchmarks/run.py``)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--overhead" in argv:  # tiny calls: no allocator settings needed
        return _script("overhead", [a for a in argv if a != "--overhead"])
    for switch in ("--curvature", "--dropout"):  # allocator-sensitive: warm malloc settings
        if switch in argv:
            if "--no-reexec" not in argv:
                code = _reexec(argv)
                if code is not None:
                    return code
            rest = [a for a in argv if a not in (switch, "--no-reexec")]
            if switch == "--curvature":
                return _script("curvature", rest)
            from tndiag.bench.dropout_bench import main as dropout_main

            return int(dropout_main(rest) or 0)
    args = _parser().parse_args(argv)
    if not args.no_reexec:
        code = _reexec(argv)
        if code is not None:
            return code
    start = time.perf_counter()
    results = run_suite(args)
    print(f"\ntotal wall time: {time.perf_counter() - start:.1f} s")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    if args.plot:
        from tndiag.bench.plots import plot_bench

        title = " ".join(a for a in ["tndiag bench", *argv] if a != "--no-reexec")
        plot_bench(results, args.plot, title)
        print(f"plot: {args.plot}")
    return 0
