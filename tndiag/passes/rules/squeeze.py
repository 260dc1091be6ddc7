"""Squeeze (docs/method.md §4.6): size-1 legs disappear.

An index of size 1 is removed from every tensor. A variable keeps its runtime shape: an axis
that held only the removed index becomes the empty axis ``()`` (size 1), and a fused axis
``(o k)`` becomes ``(o)``. A δ left with fewer than two legs is dropped (a δ over size-1
legs is 1), or becomes a ones constant when its remaining leg is open and on no other
tensor. Open legs stay (the output keeps its axes), and legs of patterns stay (a pattern
has exactly its three legs).

>>> from tndiag.ir import Graph, Index, variable
>>> n, k, c = Index("n", 2), Index("k", 1), Index("c", 3)
>>> squeeze(Graph.of([variable("X", [n, (c, k)]), variable("W", [k])], [n, c]))
Graph([X:variable input[n:2, c:3], W:variable input[()]] -> [n:2, c:3])
"""

from __future__ import annotations

from typing import Iterable

from tndiag.ir import Graph, Kind, constant
from tndiag.passes.rules.common import STRUCTURED, carriers, describe, equal, is_output
from tndiag.passes.simplify import Rule, Site, Verdict, add_rule, rule_pass

__all__ = ["SQUEEZE", "squeeze"]


def _sites(graph: Graph) -> Iterable[Site]:
    names = dict.fromkeys(ix.name for t in graph.tensors for ix in t.indices)
    return (Site((), (name,)) for name in names)


def _precondition(graph: Graph, site: Site) -> Verdict:
    name = site.indices[0]
    if is_output(graph, name):
        return Verdict.no(f"{name!r} is an open leg")
    for p in carriers(graph, name):
        t = graph.tensors[p]
        if t.kind in STRUCTURED:
            return Verdict.no(f"{name!r} is a leg of {t.kind.value} {t.name!r}")
    size = graph.index(name).size
    one = equal(size, 1)
    return Verdict(one, describe(one, f"{name!r} has size 1 (size {size})"))


def _rewrite(graph: Graph, site: Site) -> Graph:
    name = site.indices[0]
    tensors = []
    for position, t in enumerate(graph.tensors):
        axes = tuple(tuple(ix for ix in axis if ix.name != name) for axis in t.axes)
        left = [ix for axis in axes for ix in axis]
        if t.kind is Kind.DELTA and len(left) < 2:
            if any(_only_here(graph, ix.name, position) for ix in left):
                tensors.append(constant(t.name, 1, left))  # an open leg nothing else carries
            continue
        tensors.append(t.replace(axes=axes))
    return graph.replace(tensors=tensors)


def _only_here(graph: Graph, name: str, position: int) -> bool:
    """``name`` is an open leg that no tensor but the one at ``position`` carries."""
    return is_output(graph, name) and carriers(graph, name) == [position]


SQUEEZE = add_rule(Rule("squeeze", _sites, _precondition, _rewrite,
                        "a summed leg of size 1 disappears"))

squeeze = rule_pass("squeeze", ["squeeze"], """Remove every summed leg of size 1 (not on a
pattern); runtime shapes stay (an axis may become the empty axis ()).""")
