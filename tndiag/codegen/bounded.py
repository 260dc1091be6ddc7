"""Memory-bounded evaluation: slice one leg into chunks whose plans fit a memory limit.

The sliced leg is chosen structurally and by cost: it must lie only on variables (never on a
pattern, δ or constant, so slicing keeps every other relation) and lead its runtime axis in
each of them (a fused axis ``(n c)`` slices as a contiguous block); among such legs, the one
whose chunk of size 1 has the smallest peak memory wins. A leg in the output is written
chunk by chunk into the result, a summed leg is accumulated into the first chunk's result.

The promise: the limit never raises the peak. Per element size, the modelled peak of a
sliced plan is a chunk's peak plus the result it accumulates into; chunks are as large as
the limit allows, and when even the smallest chunk would not lower the peak below the
unsliced program's, the unsliced program runs. When no plan meets the limit, a
:class:`MemoryLimitWarning` states the peak achieved. Everything is planned at compile time.
"""

from __future__ import annotations

import warnings
from typing import List, Optional, Tuple, Union

from tndiag.codegen.cost import prod
from tndiag.codegen.program import AnyProgram, Chunk, ChunkPlan, Program, SlicedProgram
from tndiag.errors import InvalidArgumentError
from tndiag.ir import Diagram, Graph, Index, Kind, Sum, verify

__all__ = ["bounded", "slice_candidates", "MemoryLimitWarning", "ITEMSIZES"]

#: Element sizes (bytes) a memory-bounded program is planned for: every torch dtype has one.
ITEMSIZES = (1, 2, 4, 8, 16)


class MemoryLimitWarning(UserWarning):
    """The memory limit cannot be met; the message gives the peak achieved instead."""


def _with_size(graph: Graph, leg: str, size: int) -> Graph:
    return graph.map_indices(lambda ix: Index(ix.name, size) if ix.name == leg else ix)


def _leading_axis(axes, leg: str):
    """Runtime axis whose first index is ``leg`` (None if the leg is absent; -1 if misplaced)."""
    for n, axis in enumerate(axes):
        names = [ix.name for ix in axis]
        if leg in names:
            return n if names[0] == leg else -1
    return None


def slice_candidates(graph: Graph) -> List[Tuple[str, Tuple[Optional[int], ...], Optional[int]]]:
    """Legs that may be sliced: ``(name, axis per input, output axis or None)``.

    >>> from tndiag import ops
    >>> [c[0] for c in slice_candidates(ops.conv((4, 3, 8), (2, 3, 3)))]
    ['n', 'ci', 'co']
    """
    variables = [t for t in graph.tensors if t.kind is Kind.VARIABLE]
    others = {ix.name for t in graph.tensors if t.kind is not Kind.VARIABLE for ix in t.indices}
    inputs = list(dict.fromkeys(t.name for t in variables))
    found = []
    for leg in dict.fromkeys(ix.name for t in variables for ix in t.indices):
        if leg in others:
            continue
        per_input: dict = {}
        ok = True
        for t in variables:
            axis = _leading_axis(t.axes, leg)
            if axis == -1 or per_input.setdefault(t.name, axis) != axis:
                ok = False
        out_axis = _leading_axis(graph.output, leg)
        if ok and out_axis != -1:
            found.append((leg, tuple(per_input.get(n) for n in inputs), out_axis))
    return found


def bounded(diagram: Diagram, allowed: Tuple[str, ...], memory_limit: int) -> AnyProgram:
    """The program of ``diagram`` whose peak stays under ``memory_limit`` bytes when it can.

    >>> from tndiag import ops
    >>> p = bounded(ops.conv((16, 3, 10), (4, 3, 3)), (), 4000)  # the dense route
    >>> p.leg, [c.stop for c in p.plan_for(4).chunks], p.plan_for(4).peak_bytes
    ('n', [3, 6, 9, 12, 15, 16], 3872)
    """
    if isinstance(memory_limit, bool) or not isinstance(memory_limit, int) or memory_limit < 1:
        raise InvalidArgumentError(f"memory_limit must be a positive number of bytes, got "
                                   f"{memory_limit!r}")
    verify(diagram)
    if isinstance(diagram, Sum):
        from tndiag.codegen.compile import sum_of

        return sum_of(tuple(_bounded_graph(t, allowed, memory_limit) for t in diagram.terms),
                      allowed)
    return _bounded_graph(diagram, allowed, memory_limit)


def _bounded_graph(graph: Graph, allowed: Tuple[str, ...],
                   limit: int) -> Union[Program, SlicedProgram]:
    from tndiag.codegen.compile import _require_concrete

    _require_concrete(graph)
    whole = _program(graph, allowed)
    candidates = slice_candidates(graph)
    if int(whole.peak_memory) * ITEMSIZES[-1] <= limit or not candidates:
        _warn_if_over(limit, int(whole.peak_memory) * 4, "no leg can be sliced"
                      if not candidates else "")
        return whole
    leg, axes, out_axis = min(candidates, key=lambda c: (
        int(_program(_with_size(graph, c[0], 1), allowed).peak_memory),
        -int(graph.index(c[0]).size)))
    size = int(graph.index(leg).size)
    axes = axes + (None,) * (len(whole.inputs) - len(axes))  # position vectors: never sliced
    per = tuple(int(shape[a]) // size if a is not None else 1
                for a, shape in zip(axes, whole.input_shapes))
    out_per = int(whole.output_shape[out_axis]) // size if out_axis is not None else 1
    plans = tuple(_plan(graph, leg, allowed, whole, limit // s, s) for s in ITEMSIZES)
    float32 = plans[ITEMSIZES.index(4)]
    _warn_if_over(limit, float32.peak_bytes, f"slicing index {leg!r}")
    return SlicedProgram(leg, size, whole.inputs, whole.input_shapes, axes, per, out_axis,
                         out_per, whole.output_shape, limit, whole, plans)


def _plan(graph: Graph, leg: str, allowed, whole: Program, budget: int,
          itemsize: int) -> ChunkPlan:
    """The chunks for an element budget: the largest chunk that fits, else the smallest
    chunk when it still lowers the peak, else the unsliced program."""
    total = int(graph.index(leg).size)
    result = int(prod(whole.output_shape))

    def peak(c: int) -> int:
        return int(_program(_with_size(graph, leg, c), allowed).peak_memory) + result

    full_peak = int(whole.peak_memory)
    if full_peak <= budget or total == 1 or peak(1) >= full_peak:
        return ChunkPlan(itemsize, (), full_peak)
    lo, hi = 1, total - 1
    while lo < hi:  # the largest chunk that fits (the peak grows with the chunk)
        mid = (lo + hi + 1) // 2
        lo, hi = (mid, hi) if peak(mid) <= budget else (lo, mid - 1)
    chunks = []
    for start in range(0, total, lo):
        stop = min(total, start + lo)
        chunks.append(Chunk(start, stop, _program(_with_size(graph, leg, stop - start),
                                                  allowed)))
    return ChunkPlan(itemsize, tuple(chunks), max(peak(c.stop - c.start) for c in chunks))


def _program(graph: Graph, allowed: Tuple[str, ...]) -> Program:
    """The (cached) program of one concrete graph."""
    from tndiag.codegen.compile import _cached

    program = _cached(graph, allowed)
    assert isinstance(program, Program)
    return program


def _warn_if_over(limit: int, achieved: int, how: str) -> None:
    if achieved > limit:
        reason = f" ({how})" if how else ""
        warnings.warn(f"memory_limit={limit} bytes cannot be met{reason}: the modelled peak is "
                      f"{achieved} bytes for float32 elements", MemoryLimitWarning, stacklevel=4)


def check_run(program: SlicedProgram, itemsize: int) -> ChunkPlan:
    """The plan for ``itemsize``-byte elements, warning when it misses the limit."""
    plan = program.plan_for(itemsize)
    if plan.peak_bytes > program.limit and itemsize != 4:
        warnings.warn(f"memory_limit={program.limit} bytes cannot be met for {itemsize}-byte "
                      f"elements: the modelled peak is {plan.peak_bytes} bytes",
                      MemoryLimitWarning, stacklevel=4)
    return plan

