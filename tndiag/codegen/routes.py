"""The routes of a step: the correct ways to run it, as data (no torch here).

A step of a kind in :data:`ROUTES` may run along several routes; each has an applicability
predicate on the step's description. The planner lists the applicable ones on the step
(``Step.routes``) and the cost model (:func:`tndiag.codegen.cost.route_seconds`) picks one;
``compile(..., route=...)`` forces one, ``compile(..., tune=True)`` lets the backend measure
them (:mod:`tndiag.codegen.tuning`). Kernels: :mod:`tndiag.backends.routes`.

| kind | route | applies to | what runs |
|---|---|---|---|
| native | ``native`` | every step | torch's own kernel |
| native | ``gemm`` | every step | im2col of the strided view + one GEMM (transpose: + fold) |
| native | ``depth2d`` | 3-d steps | depth taps as channels of a 2-d kernel on ``N·O_d`` images |
| native | ``rows`` | 2-d weight gradients | per kernel row a GEMM of whole input rows, diagonals |
| window-sum | ``fused`` | every step | all axes in one step, each by its cheapest stage |
| window-sum | ``direct`` | every step | axis by axis: one sum per tap |
| window-sum | ``classes`` | no empty window | axis by axis: residue class sums minus the edges |
| window-sum | ``matmul`` | every step | axis by axis: the axis times the counts ``Σ_o Π`` |
| window-sum | ``kron`` | trailing axes, small | one GEMM with the Kronecker product of the counts |
| patch-gram | ``unfold`` | every step | the unfolded copy + ``M Mᵀ`` (upper blocks) |
| patch-gram | ``shifted`` | every step | a GEMM per class of translated blocks + thin slabs |
| patch-gram | ``batched`` | 1×1, S = 1, no padding | ``X_n X_nᵀ`` per sample, summed: no copy |
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Dict, Tuple

from tndiag.codegen.program import AnyProgram, Program, Step, StepKind, SumProgram
from tndiag.errors import InvalidArgumentError

__all__ = ["ROUTES", "DEFAULT", "routes_for", "with_route", "all_routes", "choose",
           "choose_all", "steps_of"]

def _nonempty(spec) -> bool:
    return all(first <= last for w in spec.axes for first, last in w.windows)


def _kron(spec) -> bool:
    from tndiag.codegen.cost import kron_applies

    return kron_applies(spec)


#: Step kind -> ((route, predicate on ``step.info``), ...); the first route is the default.
ROUTES: Dict[StepKind, Tuple[Tuple[str, Callable[[Any], bool]], ...]] = {
    StepKind.NATIVE: (
        ("native", lambda s: True),
        ("gemm", lambda s: True),
        ("depth2d", lambda s: s.ndim == 3),
        ("rows", lambda s: s.role == "weight" and s.ndim == 2),
    ),
    StepKind.WINDOW_SUM: (
        ("fused", lambda w: True),
        ("direct", lambda w: True),
        ("classes", _nonempty),
        ("matmul", lambda w: True),
        ("kron", _kron),
    ),
    StepKind.PATCH_GRAM: (
        ("unfold", lambda p: True),
        ("shifted", lambda p: True),
        ("batched", lambda p: p.unfolded_is_input),
    ),
}

#: Step kind -> its default route.
DEFAULT: Dict[StepKind, str] = {kind: table[0][0] for kind, table in ROUTES.items()}


def all_routes() -> Tuple[str, ...]:
    """Every route name, in table order.

    >>> all_routes()  # doctest: +NORMALIZE_WHITESPACE
    ('native', 'gemm', 'depth2d', 'rows', 'fused', 'direct', 'classes', 'matmul', 'kron',
     'unfold', 'shifted', 'batched')
    """
    return tuple(name for table in ROUTES.values() for name, _ in table)


def routes_for(kind: StepKind, info: object) -> Tuple[str, ...]:
    """The routes applicable to a step of ``kind`` described by ``info`` (concrete sizes).

    >>> from tndiag.codegen.lowerings.window_sum import WindowSpec, WindowSums
    >>> routes_for(StepKind.WINDOW_SUM, WindowSums((8,), (WindowSpec(0, 8, 2, ((0, 6), (1, 7))),)))
    ('fused', 'direct', 'classes', 'matmul', 'kron')
    >>> routes_for(StepKind.EINSUM, None)
    ()
    """
    table = ROUTES.get(kind)
    if table is None:
        return ()
    return tuple(name for name, applies in table if applies(info))


def with_route(program: AnyProgram, route: str) -> AnyProgram:
    """``program`` with ``route`` forced on every step that lists it (tuning off there).

    Raises:
        InvalidArgumentError: when no step of the program can take ``route``.

    >>> from tndiag import compile, ops
    >>> p = with_route(compile(ops.conv((1, 1, 32), (4, 1, 4), stride=2)), "gemm")
    >>> [(s.label, s.route) for s in p.steps]
    [('conv1d', 'gemm')]
    """
    if route not in all_routes():
        raise InvalidArgumentError(f"route: unknown route {route!r}; expected one of "
                                   f"{list(all_routes())}")
    forced = _forced(program, route)
    if forced is None:
        offered = sorted({r for s in steps_of(program) for r in s.routes})
        raise InvalidArgumentError(f"route {route!r} applies to no step of this program; its "
                                   f"steps offer {offered or 'no alternative routes'}")
    return forced


def steps_of(program: AnyProgram) -> list:
    """Every step of a program: its terms, fused parts and chunks included.

    >>> from tndiag import compile, ops
    >>> [s.label for s in steps_of(compile(ops.conv((1, 2, 8), (3, 2, 3), bias=True)))]
    ['conv1d+bias', 'conv1d', 'einsum']
    """
    if isinstance(program, SumProgram):
        return [s for t in program.terms for s in steps_of(t)]
    if isinstance(program, Program):
        return [s for part in (program, *program.parts) for s in part.steps]
    return steps_of(program.whole)


def _forced(program, route: str):
    """The program with the route set, or None when no step offers it."""
    if isinstance(program, SumProgram):
        terms = [_forced(t, route) for t in program.terms]
        if all(t is None for t in terms):
            return None
        return dataclasses.replace(program, terms=tuple(
            new if new is not None else old for new, old in zip(terms, program.terms)))
    if not isinstance(program, Program):
        raise InvalidArgumentError("route: a memory-bounded program cannot take a forced "
                                   "route; compile without memory_limit")
    hit = any(route in s.routes for s in program.steps)
    steps = tuple(_set(s, route) for s in program.steps)
    parts = [_forced(p, route) for p in program.parts]
    if not hit and all(p is None for p in parts):
        return None
    return dataclasses.replace(program, steps=steps, parts=tuple(
        new if new is not None else old for new, old in zip(parts, program.parts)))


def _set(step: Step, route: str) -> Step:
    if route not in step.routes:
        return step
    return dataclasses.replace(step, route=route, tune=False)


def choose_all(steps, mode: str) -> list:
    """:func:`choose` on every step of a kind with routes whose sizes are ints.

    >>> from tndiag import compile, ops
    >>> steps = compile(ops.conv((1, 2, 4, 4, 4), (2, 2, 3, 3, 3))).steps
    >>> [s.route for s in choose_all(steps, "off")]
    ['']
    """
    return [choose(s, mode) if _routed(s) else s for s in steps]


def _routed(step: Step) -> bool:
    if step.kind not in ROUTES:
        return False
    sizes = getattr(step.info, "sizes", ())
    return all(isinstance(v, int) for _, v in sizes)


def choose(step: Step, mode: str) -> Step:
    """``step`` with its applicable routes listed and one chosen for tuning ``mode``.

    >>> from tndiag import compile, ops
    >>> (step,) = compile(ops.conv((1, 2, 4, 4, 4), (2, 2, 3, 3, 3))).steps
    >>> choose(step, "measure").tune, choose(step, "off").route
    (True, '')

    ``"off"`` keeps the default route, ``"model"`` takes the cheapest by
    :func:`tndiag.codegen.cost.route_seconds`, ``"measure"`` also marks the step for the
    backend to measure (the model's choice is the fallback).
    """
    routes = routes_for(step.kind, step.info)
    if len(routes) < 2:
        return step
    if mode == "off":
        return dataclasses.replace(step, routes=routes, route="", tune=False)
    from tndiag.codegen.cost import route_seconds

    best = min(routes, key=lambda r: route_seconds(step, r))
    return dataclasses.replace(step, routes=routes, route=best, tune=mode == "measure")
