"""Measured route choice: a step marked ``tune`` times its routes on first use and keeps the
fastest, per (dtype, device, thread count, torch version), in the tuning cache
(:mod:`tndiag.codegen.tuning`); later processes read the winner from it.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Callable, Dict, List

import torch

from tndiag.backends.torch_native import PREPARERS
from tndiag.codegen import tuning
from tndiag.codegen.cost import route_temporary
from tndiag.codegen.program import Step

__all__ = ["prepare_step", "context_of", "measure_step", "skipped_routes"]

#: Timed rounds per route, and the wall time one sample aims at (seconds). The fastest
#: sample counts (as in ``timeit``): other processes only ever make a sample slower.
ROUNDS = 5
SAMPLE = 1e-3
#: Routes whose modelled temporaries (:func:`tndiag.codegen.cost.route_temporary`) exceed
#: this many bytes are not measured (the step's modelled choice always is): timing every
#: candidate must not allocate, say, the im2col columns of a large dense layer.
MAX_TEMPORARY_BYTES = 1 << 30


def prepare_step(step: Step) -> Callable[[List[torch.Tensor]], torch.Tensor]:
    """The runner of ``step``: its kind's preparer, or a measuring one when ``step.tune``."""
    if not step.tune:
        return PREPARERS[step.kind](step)
    chosen: Dict[str, Callable] = {}

    def run(taken: List[torch.Tensor]) -> torch.Tensor:
        context = context_of(taken[0])
        key = repr(sorted(context.items()))
        runner = chosen.get(key)
        if runner is None:
            winner = tuning.lookup(step, context)
            if winner not in step.routes:
                winner = tuning.record(step, context, measure_step(step, taken),
                                       skipped_routes(step, taken[0].element_size()))
            runner = chosen[key] = PREPARERS[step.kind](_fixed(step, winner))
        return runner(taken)
    return run


def _fixed(step: Step, route: str) -> Step:
    return dataclasses.replace(step, route=route, tune=False)


def context_of(t: torch.Tensor) -> Dict[str, object]:
    """What a measurement depends on besides the step: dtype, device, threads, torch version.

    >>> sorted(context_of(torch.ones(1)))
    ['device', 'dtype', 'threads', 'torch']
    """
    device = t.device.type
    if device == "cuda":
        device = f"cuda:{torch.cuda.get_device_name(t.device)}"
    return {"dtype": str(t.dtype).replace("torch.", ""), "device": device,
            "threads": torch.get_num_threads(), "torch": torch.__version__}


def _sync(t: torch.Tensor) -> None:
    if t.device.type == "cuda":
        torch.cuda.synchronize(t.device)


def skipped_routes(step: Step, itemsize: int) -> Dict[str, int]:
    """Route -> bytes of modelled temporaries, for the routes of ``step`` that
    :func:`measure_step` leaves out (over :data:`MAX_TEMPORARY_BYTES`; never the modelled
    choice).

    >>> from tndiag import compile, ops
    >>> s = compile(ops.conv_weight_vjp((64, 256, 56, 56), (256, 256, 3, 3), padding=1))
    >>> skipped_routes(s.steps[0], 4)  # the im2col columns: 64·2304·3136 floats
    {'gemm': 1849688064}
    """
    chosen = step.route or step.routes[0]
    found = {r: route_temporary(step, r) * itemsize for r in step.routes if r != chosen}
    return {r: b for r, b in found.items() if b > MAX_TEMPORARY_BYTES}


def measure_step(step: Step, taken: List[torch.Tensor]) -> Dict[str, float]:
    """Fastest seconds per call of every route of ``step`` on ``taken``, timed round-robin
    (but the routes :func:`skipped_routes` names).

    >>> from tndiag import compile, ops
    >>> s = compile(ops.conv((1, 1, 64), (2, 1, 4), stride=2)).steps[0]
    >>> sorted(measure_step(s, [torch.randn(1, 1, 64), torch.randn(2, 1, 4)]))
    ['gemm', 'native']
    """
    skipped = skipped_routes(step, taken[0].element_size())
    runners = {r: PREPARERS[step.kind](_fixed(step, r)) for r in step.routes if r not in skipped}
    inner = {}
    for route, runner in runners.items():
        runner(taken)  # warm up (first-call allocations, kernel selection)
        _sync(taken[0])
        start = time.perf_counter()
        runner(taken)
        _sync(taken[0])
        inner[route] = max(1, min(50, int(SAMPLE / max(time.perf_counter() - start, 1e-7))))
    samples: Dict[str, List[float]] = {r: [] for r in runners}
    for n in range(ROUNDS):
        order = list(runners)[n % len(runners):] + list(runners)[:n % len(runners)]
        for route in order:
            start = time.perf_counter()
            for _ in range(inner[route]):
                runners[route](taken)
            _sync(taken[0])
            samples[route].append((time.perf_counter() - start) / inner[route])
    return {r: min(s) for r, s in samples.items()}
