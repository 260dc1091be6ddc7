"""Merge parallel legs (docs/method.md §4.5): two legs that always appear together, in the same
order, on every tensor and in the output are fused into one (bigger GEMMs).

"Together" means adjacent inside one runtime axis (``(a b)``), so that the fused index
``a_b`` of size ``A·B`` describes the same memory; legs of patterns and δs never merge
(their legs are separate slots).

>>> from tndiag.ir import Graph, Index, variable
>>> n, a, b, d = Index("n", 2), Index("a", 3), Index("b", 4), Index("d", 5)
>>> merge_parallel_legs(Graph.of([variable("X", [n, (a, b)]), variable("W", [(a, b), d])],
...                              [n, d]))
Graph([X:variable input[n:2, a_b:12], W:variable input[a_b:12, d:5]] -> [n:2, d:5])
"""

from __future__ import annotations

from typing import Iterable, Tuple

from tndiag.ir import Graph, Kind
from tndiag.ir.nodes import Axis
from tndiag.passes.rules.common import carriers, fresh_index
from tndiag.passes.simplify import Rule, Site, Verdict, add_rule, rule_pass

__all__ = ["MERGE", "merge_parallel_legs"]


def _pairs(axes: Tuple[Axis, ...]) -> Iterable[Tuple[str, str]]:
    return ((axis[n].name, axis[n + 1].name) for axis in axes for n in range(len(axis) - 1))


def _sites(graph: Graph) -> Iterable[Site]:
    pairs = dict.fromkeys(pair for t in graph.tensors for pair in _pairs(t.axes))
    return (Site((), pair) for pair in pairs)


def _holds(axes: Tuple[Axis, ...], a: str, b: str) -> bool:
    """Neither leg is on ``axes``, or ``b`` follows ``a`` directly inside one axis."""
    names = [ix.name for axis in axes for ix in axis]
    if a not in names and b not in names:
        return True
    return (a, b) in set(_pairs(axes))


def _precondition(graph: Graph, site: Site) -> Verdict:
    a, b = site.indices
    for p in sorted(set(carriers(graph, a)) | set(carriers(graph, b))):
        t = graph.tensors[p]
        if t.kind not in (Kind.VARIABLE, Kind.CONSTANT):
            return Verdict.no(f"{t.kind.value} {t.name!r} carries {a!r} or {b!r}")
        if not _holds(t.axes, a, b):
            return Verdict.no(f"{t.name!r} does not carry ({a} {b}) together")
    if not _holds(graph.output, a, b):
        return Verdict.no(f"the output does not carry ({a} {b}) together")
    return Verdict.yes(f"({a} {b}) always appear together")


def _rewrite(graph: Graph, site: Site) -> Graph:
    a, b = (graph.index(name) for name in site.indices)
    fused = fresh_index(graph, f"{a.name}_{b.name}", a.size * b.size)

    def merge(axes: Tuple[Axis, ...]) -> Tuple[Axis, ...]:
        out = []
        for axis in axes:
            names = [ix.name for ix in axis]
            if a.name in names:
                n = names.index(a.name)
                axis = axis[:n] + (fused,) + axis[n + 2:]
            out.append(axis)
        return tuple(out)

    tensors = [t.replace(axes=merge(t.axes)) for t in graph.tensors]
    return graph.replace(tensors=tensors, output=merge(graph.output))


MERGE = add_rule(Rule("merge-parallel-legs", _sites, _precondition, _rewrite,
                      "legs always adjacent in the same order fuse into one"))

merge_parallel_legs = rule_pass("merge-parallel-legs", ["merge-parallel-legs"], """Fuse every
pair of legs that appear together, adjacent and in the same order, on every tensor and in the
output into one leg.""")
