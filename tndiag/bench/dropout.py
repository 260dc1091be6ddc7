"""``tndiag paper dropout``: gradient error of tensor dropout vs memory and time (All-CNN-C).

For an untrained All-CNN-C (:func:`tndiag.bench.dropout_models.allcnnc`, fixed seed) and one
batch of sample-image crops or N(0, 1) data, the exact weight gradients of its nine
convolutions are captured once; then for every sampler (``spatial``, ``channel``, ``crs``)
and keep probability, ``--draws`` independent estimates of every layer's weight gradient
give the relative Frobenius error ``‖ĝ - g‖ / ‖g‖`` per layer and for all layers together
(mean and standard deviation over the draws). The bytes each convolution saves for
backward are measured on the swapped model (``tensor_dropout`` or ``crs_dropout``) with
saved-tensor hooks, and the backward pass of the whole model is timed against the exact
torch model, interleaved round by round.

    tndiag paper dropout --json results.json --plot docs/images      # full size
    tndiag paper dropout --small                                     # seconds
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple

import torch
from torch import nn

from tndiag.bench.dropout_models import (
    LayerCase,
    SavedBytes,
    allcnnc,
    capture,
    crs_dropout,
    gaussian_batch,
    random_labels,
    restore_crs,
    sample_image_batch,
)
from tndiag.functional.crs import CRSSampler

__all__ = ["METHODS", "KEEPS", "Config", "estimator", "layer_errors", "swapped", "run", "main"]

METHODS = ("spatial", "channel", "crs")
KEEPS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
DATA: Dict[str, Callable[..., torch.Tensor]] = {"images": sample_image_batch,
                                                "gaussian": gaussian_batch}


@dataclass
class Config:
    """Sizes of one run (the defaults are the full experiment)."""

    batch: int = 64
    draws: int = 50
    keeps: Sequence[float] = KEEPS
    methods: Sequence[str] = METHODS
    data: Sequence[str] = ("images", "gaussian")
    rounds: int = 2  # timed backward passes per point (0: no timing)
    time_keeps: Sequence[float] = (0.1, 0.3, 0.5, 0.7, 0.9)  # the timed keeps
    memory_draws: int = 2  # forward passes per point for the saved bytes (Bernoulli counts)
    timed_data: str = "images"
    seed: int = 0
    size: int = 32
    extra: Dict[str, str] = field(default_factory=dict)


def estimator(method: str, case: LayerCase, keep: float
              ) -> Callable[[torch.Generator], torch.Tensor]:
    """A function drawing one estimate of ``case``'s weight gradient with ``method``."""
    stride, padding, dilation, groups = case.hyper
    if method == "crs":
        return CRSSampler(case.input, case.weight_shape, case.grad_output, stride, padding,
                          dilation, groups, keep).draw
    from tndiag.functional import conv_weight_vjp

    def draw(generator: torch.Generator) -> torch.Tensor:
        return conv_weight_vjp(case.input, case.weight_shape, case.grad_output, stride,
                               padding, dilation, groups, keep=keep, sample=method,
                               generator=generator)
    return draw


def layer_errors(case: LayerCase, method: str, keep: float, draws: int,
                 generator: torch.Generator) -> List[float]:
    """Squared Frobenius errors ``‖ĝ - g‖²`` of ``draws`` independent estimates."""
    return _sq_errors(estimator(method, case, keep), case, draws, generator)


def _sq_errors(draw: Callable[[torch.Generator], torch.Tensor], case: LayerCase, draws: int,
               generator: torch.Generator) -> List[float]:
    return [float((draw(generator) - case.weight_grad).square().sum()) for _ in range(draws)]


def _summary(sq_err: List[List[float]], sq_norm: List[float]) -> dict:
    """Relative errors per layer and in total (all layers' gradients as one vector)."""
    per_layer = [[(e / n) ** 0.5 for e in errs] for errs, n in zip(sq_err, sq_norm)]
    total = [(sum(col) / sum(sq_norm)) ** 0.5 for col in zip(*sq_err)]
    return {"layer_mean": [statistics.fmean(v) for v in per_layer],
            "layer_std": [statistics.stdev(v) if len(v) > 1 else 0.0 for v in per_layer],
            "total_mean": statistics.fmean(total),
            "total_std": statistics.stdev(total) if len(total) > 1 else 0.0}


@contextlib.contextmanager
def swapped(model: nn.Module, method: Optional[str], keep: float,
            generator: Optional[torch.Generator] = None) -> Iterator[nn.Module]:
    """``model`` with its convolutions swapped for ``method``'s modules (``None``: as is)."""
    if method is None:
        yield model
    elif method == "crs":
        try:
            yield crs_dropout(model, keep, generator)
        finally:
            restore_crs(model)
    else:
        from tndiag.nn import restore, tensor_dropout

        try:
            yield tensor_dropout(model, keep=keep, sample=method)
        finally:
            restore(model)


def saved_bytes(model: nn.Module, x: torch.Tensor, method: Optional[str], keep: float,
                repeats: int) -> dict:
    """Mean bytes saved for backward per convolution and in total over ``repeats`` passes."""
    layers: Dict[str, List[int]] = {}
    totals = []
    with swapped(model, method, keep) as m:
        for _ in range(max(1, repeats)):
            with SavedBytes(m) as saved:
                m(x)
            for name, b in saved.per_layer.items():
                layers.setdefault(name, []).append(b)
            totals.append(saved.total)
    per_layer = [statistics.fmean(v) for v in layers.values()]
    return {"layer_bytes": per_layer, "conv_bytes": sum(per_layer),
            "total_bytes": statistics.fmean(totals)}


def backward_times(model: nn.Module, x: torch.Tensor, y: torch.Tensor, method: str,
                   keep: float, rounds: int) -> dict:
    """Median seconds of the backward pass, ``method`` and the exact model interleaved."""
    samples: Dict[str, List[float]] = {"approx": [], "exact": []}
    for r in range(rounds + 1):  # round 0 warms both up and is not recorded
        for which in (("approx", "exact") if r % 2 else ("exact", "approx")):
            with swapped(model, method if which == "approx" else None, keep) as m:
                loss = nn.functional.cross_entropy(m(x), y)
                start = time.perf_counter()
                loss.backward()
                elapsed = time.perf_counter() - start
            model.zero_grad(set_to_none=True)
            if r:
                samples[which].append(elapsed)
    approx, exact = (statistics.median(samples[k]) for k in ("approx", "exact"))
    return {"backward_s": approx, "exact_backward_s": exact, "ratio": approx / exact}


def _point_errors(cases: List[LayerCase], parts: List, method: str, keep: float,
                  draws: int, gen: torch.Generator) -> Tuple[List[List[float]], float]:
    """Squared errors per layer and draw; the largest deviation of a checked draw."""
    if method == "crs":
        return [_sq_errors(p.with_keep(keep).draw, c, draws, gen)
                for c, p in zip(cases, parts)], 0.0
    from tndiag.bench.dropout_slices import check_draw, sliced_errors

    check = max(check_draw(c, p, method, keep, gen) for c, p in zip(cases, parts))
    return [sliced_errors(p, c.weight_grad, method, keep, draws, c.hyper[3], gen)
            for c, p in zip(cases, parts)], check


def _errors(config: Config, model: nn.Module, name: str, progress) -> List[dict]:
    from tndiag.bench.dropout_slices import slice_contributions

    x = DATA[name](config.batch, config.seed, config.size)
    cases = capture(model, x, random_labels(config.batch, seed=config.seed))
    sq_norm = [float(c.weight_grad.square().sum()) for c in cases]
    gen = torch.Generator().manual_seed(config.seed + 1)
    points = []
    for method in config.methods:
        parts = ([CRSSampler(c.input, c.weight_shape, c.grad_output, *c.hyper) for c in cases]
                 if method == "crs" else [slice_contributions(c, method) for c in cases])
        for keep in config.keeps:
            sq_err, check = _point_errors(cases, parts, method, keep, config.draws, gen)
            points.append({"data": name, "method": method, "keep": keep,
                           "check": check, **_summary(sq_err, sq_norm)})
            progress(f"{name} {method} keep={keep}: total error "
                     f"{points[-1]['total_mean']:.3f} ± {points[-1]['total_std']:.3f}")
    return points


def run(config: Config, progress: Callable[[str], None] = lambda s: None) -> dict:
    """The whole experiment; returns JSON-able results (see ``plot_dropout``)."""
    from tndiag.bench.timing import machine_info

    model = allcnnc(seed=config.seed)
    names = [n for n, m in model.named_modules() if isinstance(m, nn.Conv2d)]
    results: dict = {"config": asdict(config), "machine": machine_info(), "layers": names,
                     "errors": [], "memory": [], "time": []}
    for name in config.data:
        results["errors"] += _errors(config, model, name, progress)
    x = DATA[config.timed_data](config.batch, config.seed, config.size)
    y = random_labels(config.batch, seed=config.seed)
    torch.manual_seed(config.seed)
    results["memory"].append({"method": "exact", "keep": 1.0,
                              **saved_bytes(model, x, None, 1.0, 1)})
    for method in config.methods:
        for keep in config.keeps:
            mem = saved_bytes(model, x, method, keep, config.memory_draws)
            results["memory"].append({"method": method, "keep": keep, **mem})
            if config.rounds and keep in config.time_keeps:
                t = backward_times(model, x, y, method, keep, config.rounds)
                results["time"].append({"method": method, "keep": keep, **t})
                progress(f"{method} keep={keep}: conv bytes {mem['conv_bytes'] / 2**20:.1f} "
                         f"MiB, backward {t['backward_s']:.3f} s ({t['ratio']:.2f}x exact)")
    return results


SMALL: Dict[str, Any] = dict(batch=4, draws=3, keeps=(0.25, 0.5), rounds=1, time_keeps=(0.25, 0.5),
                             memory_draws=1)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="tndiag paper dropout", description=__doc__.split("\n")[0])
    p.add_argument("--small", action="store_true",
                   help=f"a smoke-test size ({', '.join(f'{k}={v}' for k, v in SMALL.items())})")
    p.add_argument("--batch", type=int, default=None, help="batch size (default 64)")
    p.add_argument("--draws", type=int, default=None, help="draws per point (default 50)")
    p.add_argument("--keeps", type=float, nargs="+", default=None, help="keep probabilities")
    p.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS))
    p.add_argument("--data", nargs="+", choices=tuple(DATA), default=list(DATA))
    p.add_argument("--rounds", type=int, default=None,
                   help="timed backward passes per point (default 2; 0 skips timing)")
    p.add_argument("--time-keeps", type=float, nargs="+", default=None,
                   help="keeps whose backward pass is timed (default 0.1 0.3 0.5 0.7 0.9)")
    p.add_argument("--threads", type=int, default=1,
                   help="torch threads (default 1: steadier when other jobs share the cores)")
    p.add_argument("--json", type=Path, default=None, help="write the results here")
    p.add_argument("--plot", type=Path, default=None, metavar="DIR",
                   help="write dropout-error.png and dropout-layers.png here")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    return p


def config_from(args: argparse.Namespace) -> Config:
    """The :class:`Config` that parsed command-line ``args`` ask for."""
    base = Config(**SMALL) if args.small else Config()
    for key in ("batch", "draws", "rounds"):
        if getattr(args, key) is not None:
            setattr(base, key, getattr(args, key))
    if args.keeps:
        base.keeps = tuple(args.keeps)
        base.time_keeps = tuple(k for k in base.keeps if k in base.time_keeps) or base.keeps
    if args.time_keeps:
        base.time_keeps = tuple(args.time_keeps)
    base.methods, base.data = tuple(args.methods), tuple(args.data)
    base.timed_data = base.data[0]
    return base


def main(argv: Optional[List[str]] = None) -> int:
    """Entry point of ``tndiag paper dropout``."""
    import os

    from tndiag.bench.dropout_report import format_results

    args = _parser().parse_args(argv)
    torch.set_num_threads(args.threads or min(os.cpu_count() or 1, 16))  # 0: every core
    config = config_from(args)
    start = time.perf_counter()
    say = (lambda s: None) if args.quiet else (lambda s: print(s, file=sys.stderr, flush=True))
    results = run(config, say)
    results["wall_s"] = time.perf_counter() - start
    print(format_results(results))
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    if args.plot:
        from tndiag.bench.dropout_plots import plot_dropout

        for path in plot_dropout(results, args.plot):
            print(f"plot: {path}")
    return 0
