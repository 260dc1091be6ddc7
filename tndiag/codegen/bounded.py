"""Memory-bounded evaluation: slice one leg into chunks whose plans fit a memory limit.

The sliced leg is chosen structurally and by cost: it must lie only on variables (never on a
pattern, δ or constant, so slicing keeps every other relation) and lead its runtime axis in
each of them (a fused axis ``(n c)`` slices as a contiguous block); among such legs, the one
whose chunk of size 1 has the smallest peak memory wins. Chunks are as large as the cost
model allows (peak elements × item size ≤ limit). A leg in the output is concatenated, a
summed leg is accumulated.
"""

from __future__ import annotations

from typing import List, Tuple

from tndiag.codegen.program import Program, SlicedProgram, SumProgram
from tndiag.errors import CompileError, InvalidArgumentError
from tndiag.ir import Diagram, Graph, Index, Kind, Sum, verify

__all__ = ["bounded", "chunk_plan", "slice_candidates"]


def _with_size(graph: Graph, leg: str, size: int) -> Graph:
    return graph.map_indices(lambda ix: Index(ix.name, size) if ix.name == leg else ix)


def _leading_axis(axes, leg: str):
    """Runtime axis whose first index is ``leg`` (None if the leg is absent; -1 if misplaced)."""
    for n, axis in enumerate(axes):
        names = [ix.name for ix in axis]
        if leg in names:
            return n if names[0] == leg else -1
    return None


def slice_candidates(graph: Graph) -> List[Tuple[str, Tuple[int, ...], object]]:
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
        per_input = {}
        ok = True
        for t in variables:
            axis = _leading_axis(t.axes, leg)
            if axis == -1 or per_input.setdefault(t.name, axis) != axis:
                ok = False
        out_axis = _leading_axis(graph.output, leg)
        if ok and out_axis != -1:
            found.append((leg, tuple(per_input.get(n) for n in inputs), out_axis))
    return found


def bounded(diagram: Diagram, allowed: Tuple[str, ...], memory_limit: int):
    """The program of ``diagram`` with intermediates under ``memory_limit`` bytes."""
    if isinstance(memory_limit, bool) or not isinstance(memory_limit, int) or memory_limit < 1:
        raise InvalidArgumentError(f"memory_limit must be a positive number of bytes, got "
                                   f"{memory_limit!r}")
    verify(diagram)
    if isinstance(diagram, Sum):
        terms = tuple(bounded(t, allowed, memory_limit) for t in diagram.terms)
        from tndiag.codegen.compile import _sum_program

        return _sum_program(terms)  # type: ignore[arg-type]
    from tndiag.codegen.compile import _cached, _require_concrete

    _require_concrete(diagram)
    candidates = slice_candidates(diagram)
    if not candidates:
        raise CompileError("memory_limit: no leg can be sliced (every leg touches a pattern, "
                           "delta or constant, or is not leading its axis)")
    best = min(candidates, key=lambda c: (_cached(_with_size(diagram, c[0], 1),
                                                  allowed).peak_memory,
                                          -int(diagram.index(c[0]).size)))
    full = _cached(diagram, allowed)
    return SlicedProgram(diagram, best[0], full.inputs, full.input_shapes, best[1], best[2],
                         full.output_shape, memory_limit, allowed)


def chunk_plan(sliced: SlicedProgram, itemsize: int) -> List[Tuple[int, int, object]]:
    """Chunks ``[(start, stop, program)]`` of the sliced leg for elements of ``itemsize`` bytes."""
    from tndiag.codegen.compile import _cached

    total = int(sliced.graph.index(sliced.leg).size)
    fits = lambda c: _peak(_cached(_with_size(sliced.graph, sliced.leg, c),  # noqa: E731
                                   sliced.allowed)) * itemsize <= sliced.limit
    if not fits(1):
        raise CompileError(f"memory_limit={sliced.limit} bytes: even one slice of index "
                           f"{sliced.leg!r} needs more")
    lo, hi = 1, total
    while lo < hi:  # largest chunk that fits (peak grows with the chunk)
        mid = (lo + hi + 1) // 2
        lo, hi = (mid, hi) if fits(mid) else (lo, mid - 1)
    parts, start = [], 0
    while start < total:
        stop = min(total, start + lo)
        prog = _cached(_with_size(sliced.graph, sliced.leg, stop - start), sliced.allowed)
        parts.append((start, stop, prog))
        start = stop
    return parts


def _peak(program) -> int:
    if isinstance(program, (Program, SumProgram)):
        return int(program.peak_memory)
    return int(program.peak_memory)
