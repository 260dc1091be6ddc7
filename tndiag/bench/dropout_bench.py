"""``tndiag bench --dropout``: time and memory of approximate weight gradients.

Two tables, both on the untrained All-CNN-C of :mod:`tndiag.bench.dropout_models`:

- **per layer**: the weight gradient of each convolution (inputs captured from one batch)
  by torch (``torch.nn.grad.conv2d_weight``, exact), and by
  ``tndiag.functional.conv_weight_vjp`` with ``sample="spatial"`` at keep 1.0 (exact),
  0.5, 0.25, ``"channel"`` at 0.5, 0.25, and CRS at 0.5, 0.25: median time over
  interleaved rounds and the peak extra memory of one warm call (torch profiler).
- **model**: forward plus backward of the whole network, the torch model against the same
  model after ``tndiag.nn.tensor_dropout`` (or ``crs_dropout``) at each keep: peak extra
  memory and median time.

Bernoulli sampling keeps a random number of slices, so a call's time and memory vary from
draw to draw; the medians and one call's peak are what the tables show.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Callable, Dict, List, Optional, Tuple

import torch
from torch import nn
from torch.nn import grad as nn_grad

from tndiag.bench.dropout import swapped
from tndiag.bench.dropout_models import LayerCase, allcnnc, capture, random_labels
from tndiag.bench.dropout_models import sample_image_batch as images
from tndiag.bench.timing import loadavg, machine_info, peak_extra_bytes, time_interleaved
from tndiag.functional.crs import crs_weight_vjp

__all__ = ["VARIANTS", "layer_rows", "model_rows", "format_rows", "main"]

#: (label, sample, keep) of the timed variants; sample None is torch's exact gradient
VARIANTS: Tuple[Tuple[str, Optional[str], float], ...] = (
    ("torch", None, 1.0), ("spatial 1.0", "spatial", 1.0), ("spatial 0.5", "spatial", 0.5),
    ("spatial 0.25", "spatial", 0.25), ("channel 0.5", "channel", 0.5),
    ("channel 0.25", "channel", 0.25), ("crs 0.5", "crs", 0.5), ("crs 0.25", "crs", 0.25))


def _weight_grad(case: LayerCase, sample: Optional[str], keep: float) -> Callable:
    stride, padding, dilation, groups = case.hyper
    x, g, shape = case.input, case.grad_output, case.weight_shape
    if sample is None:
        return lambda: nn_grad.conv2d_weight(x, shape, g, stride, padding, dilation, groups)
    if sample == "crs":
        return lambda: crs_weight_vjp(x, shape, g, stride, padding, dilation, groups,
                                      keep=keep)
    from tndiag.functional import conv_weight_vjp

    return lambda: conv_weight_vjp(x, shape, g, stride, padding, dilation, groups, keep=keep,
                                   sample=sample)


def layer_rows(batch: int, rounds: int, memory: bool = True, progress=None) -> List[dict]:
    """One row per convolution of All-CNN-C: seconds and peak extra bytes per variant."""
    model = allcnnc()
    cases = capture(model, images(batch), random_labels(batch))
    rows = []
    for case in cases:
        impls = {label: _weight_grad(case, s, k) for label, s, k in VARIANTS}
        times = time_interleaved(impls, rounds)
        peaks = {label: peak_extra_bytes(fn) for label, fn in impls.items()} if memory else {}
        rows.append({"layer": case.name, "input": list(case.input.shape),
                     "weight": list(case.weight_shape), "time": times, "peak": peaks,
                     "loadavg": loadavg()})
        if progress:
            progress(f"layer {case.name}: torch {times['torch'] * 1e3:.1f} ms, spatial 0.25 "
                     f"{times['spatial 0.25'] * 1e3:.1f} ms")
    return rows


def _step(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> Callable[[], None]:
    def fn() -> None:
        nn.functional.cross_entropy(model(x), y).backward()
        model.zero_grad(set_to_none=True)
    return fn


def model_rows(batch: int, rounds: int, progress=None) -> List[dict]:
    """Forward + backward of All-CNN-C per variant: peak extra bytes and median seconds,
    each variant timed interleaved with the torch model (a second copy, same weights)."""
    base, x, y = allcnnc(), images(batch), random_labels(batch)
    rows = []
    for label, sample, keep in VARIANTS:
        with swapped(allcnnc(), sample, keep) as m:
            step = _step(m, x, y)
            peak = peak_extra_bytes(step)
            times = time_interleaved({"torch": _step(base, x, y), "v": step}, rounds)
        rows.append({"variant": label, "peak": peak, "time": times["v"],
                     "ratio": times["v"] / times["torch"], "loadavg": loadavg()})
        if progress:
            progress(f"model {label}: peak {peak / 2**20:.0f} MiB, {times['v']:.2f} s")
    return rows


def _mib(b: float) -> str:
    return f"{b / 2**20:.1f}"


def format_rows(layers: List[dict], models: List[dict]) -> str:
    """Markdown tables: per layer time (ms) and peak extra MiB; the model table."""
    labels = [v[0] for v in VARIANTS]
    out = [] if not layers else [
        "weight gradient per layer: median ms (ratio to torch)", "",
        "| layer | input | " + " | ".join(labels) + " | load |",
        "|---|---|" + "---:|" * len(labels) + "---:|"]
    for r in layers:
        t = r["time"]
        cells = [f"{t[k] * 1e3:.1f} ({t[k] / t['torch']:.2f})" for k in labels]
        out.append(f"| {r['layer']} | {r['input']} | " + " | ".join(cells) +
                   f" | {r['loadavg']} |")
    if layers and layers[0]["peak"]:
        out += ["", "weight gradient per layer: peak extra MiB", "",
                "| layer | " + " | ".join(labels) + " |", "|---|" + "---:|" * len(labels)]
        for r in layers:
            out.append(f"| {r['layer']} | " + " | ".join(_mib(r["peak"][k]) for k in labels)
                       + " |")
    if models:
        base = models[0]
        out += ["All-CNN-C forward + backward", "",
                "| variant | peak extra MiB | vs torch | median s | vs torch (interleaved) "
                "| load |",
                "|---|---:|---:|---:|---:|---:|"]
        for r in models:
            out.append(f"| {r['variant']} | {_mib(r['peak'])} | {r['peak'] / base['peak']:.2f}"
                       f" | {r['time']:.3f} | {r['ratio']:.2f} | {r['loadavg']} |")
    return "\n".join(out)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="tndiag bench --dropout",
                                description=__doc__.split("\n")[0])
    p.add_argument("--batch", type=int, default=64, help="batch size (default 64)")
    p.add_argument("--rounds", type=int, default=5, help="timed rounds (default 5)")
    p.add_argument("--quick", action="store_true", help="batch 2, 2 rounds")
    p.add_argument("--no-memory", action="store_true", help="skip the per-layer peak memory")
    p.add_argument("--no-model", action="store_true", help="skip the model-level table")
    p.add_argument("--model-batch", type=int, default=None,
                   help="batch size of the model-level table (default: --batch)")
    p.add_argument("--threads", type=int, default=1,
                   help="torch threads (default 1: steadier when other jobs share the cores)")
    p.add_argument("--no-progress", action="store_true", help="no progress lines")
    return p


def main(argv: Optional[List[str]] = None) -> int:
    """Entry point of ``tndiag bench --dropout``."""
    args = _parser().parse_args(argv)
    torch.set_num_threads(args.threads or min(os.cpu_count() or 1, 16))
    batch, rounds = (2, 2) if args.quick else (args.batch, args.rounds)
    info: Dict[str, str] = machine_info()
    print(f"tndiag bench --dropout: All-CNN-C, batch {batch}, {rounds} rounds; torch "
          f"{info['torch']}, {info['threads']} threads, {info['cpu']}, {info['malloc']}, "
          f"load average {info['loadavg at start']}\n")
    say = None if args.no_progress else (lambda s: print(s, file=sys.stderr, flush=True))
    start = time.perf_counter()
    layers = layer_rows(batch, rounds, not args.no_memory, say)
    print(format_rows(layers, []), flush=True)
    if not args.no_model:
        model_batch = 2 if args.quick else (args.model_batch or batch)
        print(f"\nmodel batch {model_batch}:\n", flush=True)
        print(format_rows([], model_rows(model_batch, rounds, say)))
    print(f"\ntotal wall time: {time.perf_counter() - start:.1f} s")
    return 0
