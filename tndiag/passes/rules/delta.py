"""δ pruning (docs/method.md §4.4): remove Kronecker deltas by renaming.

Three rewrites, one rule each, all with structural (always decidable) preconditions:

- ``delta-duplicate``: a δ whose legs are all legs of another δ is implied by it: removed.
- ``delta-rename``: a δ sharing a leg with another tensor is removed by renaming its legs
  to one name (an output leg's name if it has one, else a variable's leg, else its first
  leg). Not when two of its legs are open, or another tensor carries two of its legs.
- ``delta-trace``: a δ whose legs touch no other tensor is summed over itself: its size as
  a scalar constant, or a ones tensor over its one open leg.

The pass ``delta-pruning`` runs the three together.

>>> from tndiag.ir import Graph, Index, delta, variable
>>> a, b, c = Index("a", 3), Index("b", 3), Index("c", 2)
>>> g = Graph.of([variable("X", [a, c]), delta("d", [a, b]), variable("Y", [b])], [c])
>>> delta_pruning(g)
Graph([X:variable input[a:3, c:2], Y:variable input[a:3]] -> [c:2])
"""

from __future__ import annotations

from typing import Iterable, List

from tndiag.ir import Graph, Index, Kind, Tensor, constant
from tndiag.passes.rules.common import carriers, fresh_tensor_name, replace_tensor
from tndiag.passes.simplify import Rule, Site, Verdict, add_rule, rule_pass

__all__ = ["DELTA_DUPLICATE", "DELTA_RENAME", "DELTA_TRACE", "delta_pruning"]


def _deltas(graph: Graph) -> Iterable[Site]:
    return (Site((p,), tuple(ix.name for ix in t.indices))
            for p, t in enumerate(graph.tensors) if t.kind is Kind.DELTA)


def _duplicate_sites(graph: Graph) -> Iterable[Site]:
    for site in _deltas(graph):
        legs = set(site.indices)
        for q, other in enumerate(graph.tensors):
            if (other.kind is Kind.DELTA and q != site.tensors[0]
                    and legs <= {ix.name for ix in other.indices}):
                yield Site((site.tensors[0], q), site.indices)
                break


def _duplicate_pre(graph: Graph, site: Site) -> Verdict:
    other = graph.tensors[site.tensors[1]].name
    return Verdict.yes(f"its legs are legs of δ {other!r}, which implies it")


def _drop(graph: Graph, site: Site) -> Graph:
    return replace_tensor(graph, site.tensors[0], [])


def _neighbours(graph: Graph, site: Site) -> List[int]:
    """Positions of the other tensors carrying a leg of the δ at ``site``."""
    found = {q for name in site.indices for q in carriers(graph, name)}
    return sorted(found - {site.tensors[0]})


def _open_legs(graph: Graph, site: Site) -> List[str]:
    outputs = {ix.name for ix in graph.output_indices}
    return [name for name in site.indices if name in outputs]


def _keeper(graph: Graph, site: Site) -> Index:
    """The name the δ's legs are renamed to: open leg, else a variable's leg, else first."""
    legs = graph.tensors[site.tensors[0]].indices
    opened = _open_legs(graph, site)
    if opened:
        return next(ix for ix in legs if ix.name == opened[0])
    for ix in legs:
        if any(graph.tensors[q].kind is Kind.VARIABLE for q in carriers(graph, ix.name)):
            return ix
    return legs[0]


def _rename_pre(graph: Graph, site: Site) -> Verdict:
    if not _neighbours(graph, site):
        return Verdict.no("no other tensor carries its legs")
    opened = _open_legs(graph, site)
    if len(opened) > 1:
        return Verdict.no(f"legs {opened} are both open")
    for q in _neighbours(graph, site):
        t = graph.tensors[q]
        shared = [ix.name for ix in t.indices if ix.name in site.indices]
        if len(shared) > 1:
            return Verdict.no(f"{t.kind.value} {t.name!r} carries legs {shared} of the δ")
    keep = _keeper(graph, site)
    return Verdict.yes(f"legs {list(site.indices)} renamed to {keep.name!r}")


def _rename(graph: Graph, site: Site) -> Graph:
    keep = _keeper(graph, site)
    legs = set(site.indices)
    graph = replace_tensor(graph, site.tensors[0], [])
    return graph.map_indices(lambda ix: keep if ix.name in legs else ix)


def _trace_pre(graph: Graph, site: Site) -> Verdict:
    if _neighbours(graph, site):
        return Verdict.no("its legs touch other tensors")
    opened = _open_legs(graph, site)
    if len(opened) > 1:
        return Verdict.no(f"legs {opened} are both open")
    if opened:
        return Verdict.yes(f"summed over all legs but the open {opened[0]!r}: ones")
    size = graph.tensors[site.tensors[0]].indices[0].size
    if not isinstance(size, int):
        return Verdict.unknown(f"traced over itself, but its size {size} is symbolic and a "
                               "constant holds a number")
    return Verdict.yes(f"traced over itself: the scalar {size}")


def _trace(graph: Graph, site: Site) -> Graph:
    t: Tensor = graph.tensors[site.tensors[0]]
    opened = _open_legs(graph, site)
    if opened:
        ones = constant(fresh_tensor_name(graph, f"{t.name}_ones"), 1,
                        [ix for ix in t.indices if ix.name == opened[0]])
        return replace_tensor(graph, site.tensors[0], [ones])
    name = fresh_tensor_name(graph, f"{t.name}_trace")
    return replace_tensor(graph, site.tensors[0], [constant(name, t.indices[0].size)])


DELTA_DUPLICATE = add_rule(Rule("delta-duplicate", _duplicate_sites, _duplicate_pre, _drop,
                                "a δ implied by another δ is removed"))
DELTA_RENAME = add_rule(Rule("delta-rename", _deltas, _rename_pre, _rename,
                             "a δ sharing a leg with another tensor is removed by renaming"))
DELTA_TRACE = add_rule(Rule("delta-trace", _deltas, _trace_pre, _trace,
                            "a δ traced over itself becomes its size (or ones)"))

delta_pruning = rule_pass("delta-pruning", ["delta-duplicate", "delta-rename", "delta-trace"],
                          """Remove Kronecker deltas: duplicates, by renaming their legs to
one name, and δs traced over themselves (replaced by their size).""")
