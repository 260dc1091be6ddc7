"""KFAC-reduce on every layer of a layers file: tndiag against the unfold standard and the
roofline floor, in thread CPU time at one thread, interleaved.

Per layer: ``tndiag.functional.kfac_reduce`` (as ``tndiag bench`` calls it), the two unfold
standards of ``tndiag bench`` (the faster one is the baseline), and the roofline floor — one
read of the input (``x.sum()``) plus the Gram GEMM of a ``[*result rows, N]`` matrix written into
a result-sized tensor (``torch.matmul(m, m.mT, out=...)``), timed in the same rounds. Prints
milliseconds, tndiag / baseline, tndiag / floor, tndiag's peak extra memory (torch profiler)
against the unfolded input's bytes, and the load average; the last lines give
the geometric means. With ``--cold`` every timed call is a single call right after the CPU
caches were flushed (``tndiag.bench.timing.time_cold``): the input, and the floor's, come from
memory, as a layer's saved input does in training. Results: docs/benchmarks.md.

    PYTHONPATH=. .venv/bin/python benchmarks/kfac_reduce_cpu.py \
        [--layers benchmarks/layers.json] [--batch N] [--rounds 7] [--only NET/NAME ...] [--cold]
"""

import argparse
import json
import math
import sys
import time
from pathlib import Path

sys.path.append(str(Path(__file__).resolve().parents[1]))  # PYTHONPATH picks the checkout

import torch  # noqa: E402

from tndiag.bench import timing  # noqa: E402
from tndiag.bench.diagrams import layer_from_json  # noqa: E402
from tndiag.bench.impls import implementations, make_inputs  # noqa: E402
from tndiag.bench.paper_runtime import unfolded_bytes  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def _row(row: dict, batch, rounds: int, cold: bool = False) -> dict:
    layer = layer_from_json(row, batch)
    t = make_inputs(layer, "cpu", torch.float32)
    impls = implementations("kfac-reduce", layer, t, einconv=False)
    x, out = t["X"], impls["tndiag"]()
    scratch = torch.empty_like(out)
    m = torch.randn(*out.shape[:-1], x.shape[0])  # the averaged patches: [G, F, N] or [F, N]
    impls["floor"] = lambda: (x.sum(), torch.matmul(m, m.mT, out=scratch))
    load = timing.loadavg()
    times = (timing.time_cold(impls, rounds, clock=time.thread_time) if cold
             else timing.time_interleaved(impls, rounds, clock=time.thread_time))
    base = min(("std view", "std F.unfold"), key=times.__getitem__)
    return {"layer": layer.label, "batch": layer["batch"], "tndiag": times["tndiag"],
            "baseline": base, "base": times[base], "floor": times["floor"],
            "input_mib": x.numel() * x.element_size() / 2**20,
            "extra_mib": timing.peak_extra_bytes(impls["tndiag"]) / 2**20,
            "unfolded_mib": unfolded_bytes(layer) / 2**20, "load": f"{load}/{timing.loadavg()}"}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", default=str(ROOT / "benchmarks" / "layers.json"))
    parser.add_argument("--batch", type=int, default=None)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--only", nargs="*", default=None)
    parser.add_argument("--json", default=None)
    parser.add_argument("--cold", action="store_true",
                        help="time single calls on flushed caches instead of repeated calls")
    args = parser.parse_args(argv)
    if args.rounds < 1:
        parser.error(f"--rounds must be at least 1, got {args.rounds}")
    torch.set_num_threads(1)
    print(timing.machine_info(), "cold caches" if args.cold else "repeated calls (warm caches)")
    rows = json.loads(Path(args.layers).read_text())["layers"]
    rows = [r for r in rows if not args.only or any(o in f"{r['net']}/{r['name']}"
                                                     for o in args.only)]
    print("| layer | N | tndiag ms | baseline | baseline ms | floor ms | tndiag/base | "
          "tndiag/floor | input MiB | extra MiB | extra / unfolded | load |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    results = []
    for row in rows:
        r = _row(row, args.batch, args.rounds, args.cold)
        results.append(r)
        print(f"| {r['layer']} | {r['batch']} | {r['tndiag'] * 1e3:.3f} | {r['baseline']} | "
              f"{r['base'] * 1e3:.3f} | {r['floor'] * 1e3:.3f} | {r['tndiag'] / r['base']:.2f} | "
              f"{r['tndiag'] / r['floor']:.2f} | {r['input_mib']:.1f} | {r['extra_mib']:.2f} | "
              f"{r['extra_mib'] / r['unfolded_mib']:.3f} | {r['load']} |", flush=True)
    ratios = [r["tndiag"] / r["base"] for r in results]
    big = [r["tndiag"] / r["floor"] for r in results if r["input_mib"] > 1]
    print(f"\ngeometric mean tndiag/baseline = "
          f"{math.exp(sum(map(math.log, ratios)) / len(ratios)):.3f} (worst {max(ratios):.2f}); "
          f"tndiag/floor on inputs > 1 MiB: worst {max(big, default=float('nan')):.2f}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
