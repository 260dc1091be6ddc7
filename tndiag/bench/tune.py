"""``tndiag tune``: measure the routes of every layer's steps ahead of time (the tuning cache).

For each layer of a layers JSON file (as ``tndiag bench`` reads it) and each op, the op's
diagram — the one :mod:`tndiag.functional` compiles — is compiled with ``tune=True`` and run
once on random inputs, which times every route of each step with several routes and stores
the winner in the cache (:mod:`tndiag.codegen.tuning`). Programs compiled later in "measure"
mode (``tndiag.set_tuning("measure")``) then run the winners without measuring again.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any, Callable, Dict, List

import torch

from tndiag import ops
from tndiag.bench.diagrams import Layer, layer_from_json
from tndiag.codegen import compile
from tndiag.codegen.routes import steps_of
from tndiag.codegen.tuning import cache_path, measurements
from tndiag.errors import InvalidArgumentError
from tndiag.ir import Diagram

__all__ = ["main", "DIAGRAMS", "tune_layer"]

#: op -> the diagram tndiag.functional compiles for a layer.
DIAGRAMS: Dict[str, Callable[[Layer], Diagram]] = {
    "forward": lambda l: ops.conv(l.x_shape, l.w_shape, **l.hyper),
    "input-vjp": lambda l: ops.conv_input_vjp(l.x_shape, l.w_shape, **l.hyper),
    "weight-vjp": lambda l: ops.conv_weight_vjp(l.x_shape, l.w_shape, **l.hyper),
    "kfac-reduce": lambda l: ops.kfac_reduce(l.x_shape, tuple(l["kernel"]), **l.hyper),
}


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="tndiag tune", description=__doc__.split("\n")[0])
    p.add_argument("--layers", type=Path, required=True, help="layers JSON file")
    p.add_argument("--ops", nargs="+", choices=list(DIAGRAMS), default=list(DIAGRAMS),
                   metavar="OP", help=f"ops to tune (default: all of {', '.join(DIAGRAMS)})")
    p.add_argument("--only", nargs="+", default=None, metavar="NET/NAME",
                   help="tune only these layers (substring match on net/name)")
    p.add_argument("--batch", type=int, default=None, help="override every layer's batch size")
    p.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: cores)")
    return p


def tune_layer(layer: Layer, op: str, dtype: torch.dtype, device: str) -> List[str]:
    """Measure the routes of ``op`` on ``layer``; one printable line per tuned step."""
    program = compile(DIAGRAMS[op](layer), tune=True)
    shapes = dict(zip(program.inputs, program.input_shapes))
    args = [torch.randn([int(v) for v in shapes[n]], dtype=dtype, device=device)
            for n in program.inputs]
    program(*args)
    lines = []
    context: Dict[str, Any] = {"dtype": str(dtype).replace("torch.", ""),
                               "threads": torch.get_num_threads()}
    for step in steps_of(program):
        for m in measurements(step):
            if all(m.get(k) == v for k, v in context.items()):
                times = ", ".join(f"{r} {t * 1e3:.3f} ms" for r, t in
                                  sorted(m["times"].items(), key=lambda kv: kv[1]))
                lines.append(f"{layer.label:28s} {op:12s} {step.label:18s} -> {m['winner']:8s}"
                             f" ({times})")
    return lines


def main(argv: List[str] | None = None) -> int:
    """Run ``tndiag tune`` with ``argv``; returns the exit status."""
    args = _parser().parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    try:
        rows = json.loads(args.layers.read_text())["layers"]
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise InvalidArgumentError(f"--layers {args.layers}: not a layers file ({err})") from None
    dtype = getattr(torch, args.dtype)
    for row in rows:
        layer = layer_from_json(row, args.batch)
        if args.only and not any(s in layer.label for s in args.only):
            continue
        for op in args.ops:
            for line in tune_layer(layer, op, dtype, args.device):
                print(line, flush=True)
    print(f"tuning cache: {cache_path()}")
    return 0
