"""What the simplification rules share: size decisions with sympy and small graph edits.

Decisions answer True, False or None (cannot tell with symbolic sizes). Graph edits return
new graphs; nothing is mutated.

>>> divides(4, 16), divides(4, 18), divides(4, "I1")
(True, False, None)
"""

from __future__ import annotations

from typing import Iterable, List, Sequence, Tuple

import sympy

from tndiag.ir import Graph, Index, Kind, Size, Tensor, as_size
from tndiag.ir.sizes import sizes_equal

__all__ = ["divides", "equal", "less", "describe", "carriers", "is_output", "fresh_index",
           "fresh_tensor_name", "split_index", "replace_tensor", "rename_index",
           "pattern_sites", "STRUCTURED"]

#: Kinds whose legs are fixed slots: their indices cannot be split, fused or dropped.
STRUCTURED = (Kind.PATTERN, Kind.REDUCED, Kind.SLICED)


def divides(k: Size | str, n: Size | str) -> bool | None:
    """Decide ``n % k == 0``; None when sympy cannot tell."""
    k, n = as_size(k), as_size(n)
    if isinstance(k, int) and isinstance(n, int):
        return n % k == 0
    rest = sympy.simplify(sympy.Mod(n, k))
    if rest == 0:
        return True
    return False if rest.is_Integer or rest.is_zero is False else None


def equal(a: Size, b: Size) -> bool | None:
    """Decide ``a == b``; None when sympy cannot tell."""
    return sizes_equal(a, b)


def less(a: Size, b: Size) -> bool | None:
    """Decide ``a < b``; None when sympy cannot tell."""
    if isinstance(a, int) and isinstance(b, int):
        return a < b
    positive = sympy.simplify(sympy.sympify(b) - sympy.sympify(a)).is_positive
    return None if positive is None else bool(positive)


def describe(answer: bool | None, claim: str) -> str:
    """A reason for a trace: ``claim`` if true, its negation, or that it is undecidable."""
    if answer is None:
        return f"cannot decide {claim} with symbolic sizes"
    return claim if answer else f"not {claim}"


def carriers(graph: Graph, name: str) -> List[int]:
    """Positions of the tensors carrying index ``name``."""
    return [p for p, t in enumerate(graph.tensors) if any(ix.name == name for ix in t.indices)]


def is_output(graph: Graph, name: str) -> bool:
    """Whether index ``name`` is an open leg."""
    return any(ix.name == name for ix in graph.output_indices)


def fresh_index(graph: Graph, base: str, size: Size, taken: Iterable[str] = ()) -> Index:
    """An index called ``base`` (or ``base_2``, ...) that the graph does not use yet."""
    used = set(graph.indices()) | set(taken)
    name, n = base, 1
    while name in used:
        n += 1
        name = f"{base}_{n}"
    return Index(name, size)


def fresh_tensor_name(graph: Graph, base: str, taken: Iterable[str] = ()) -> str:
    """A tensor name ``base`` (or ``base_2``, ...) that the graph does not use yet."""
    used = set(graph.names) | set(taken)
    name, n = base, 1
    while name in used:
        n += 1
        name = f"{base}_{n}"
    return name


def _splice(axes, name: str, parts: Sequence[Index]):
    return tuple(tuple(q for ix in axis for q in (parts if ix.name == name else (ix,)))
                 for axis in axes)


def split_index(graph: Graph, name: str, parts: Sequence[Index]) -> Graph:
    """Replace index ``name`` by ``parts`` (row-major: the first part varies slowest) in
    every tensor and in the output; runtime shapes stay the same (the parts share an axis).
    The caller checks that only variables, constants and the output carry ``name``."""
    tensors = [t.replace(axes=_splice(t.axes, name, parts)) for t in graph.tensors]
    return Graph(tuple(tensors), _splice(graph.output, name, parts))


def replace_tensor(graph: Graph, position: int, new: Sequence[Tensor]) -> Graph:
    """The graph with the tensor at ``position`` replaced by ``new`` (zero or more)."""
    tensors = list(graph.tensors)
    tensors[position:position + 1] = list(new)
    return graph.replace(tensors=tensors)


def rename_index(graph: Graph, old: str, new: str) -> Graph:
    """The graph with index ``old`` renamed to ``new`` everywhere."""
    return graph.rename_indices({old: new})


def pattern_sites(graph: Graph, kinds=(Kind.PATTERN,)) -> Iterable[Tuple[int, Tensor]]:
    """``(position, tensor)`` of every pattern Π (and of every tensor of ``kinds``)."""
    return ((p, t) for p, t in enumerate(graph.tensors) if t.kind in kinds)
