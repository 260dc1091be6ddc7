"""Sum-out (docs/method.md §4.7): a Π whose ``o`` leg touches nothing else becomes ``Σ_o Π``.

The rewritten tensor is a ``reduced`` pattern with legs ``(i, k)`` and ``out_size = O``:
the KFAC-reduce factor never builds the unfolded input. The precondition is structural
(``o`` is on no other tensor and not in the output), so it is always decidable.

>>> from tndiag.ir import Graph, Index, pattern, variable
>>> i, o, k = Index("i", 6), Index("o", 4), Index("k", 3)
>>> g = Graph.of([variable("X", [i]), pattern("P", i, o, k)], [k])
>>> sum_out(g).tensors[1]
P:reduced PatternParams(stride=1, pad_left=0, pad_right=0, dilation=1) O=4[i:6, k:3]
"""

from __future__ import annotations

from typing import Iterable

from tndiag.ir import Graph, reduced_pattern
from tndiag.passes.rules.common import carriers, is_output, pattern_sites, replace_tensor
from tndiag.passes.simplify import Rule, Site, Verdict, add_rule, rule_pass

__all__ = ["SUM_OUT", "sum_out"]


def _sites(graph: Graph) -> Iterable[Site]:
    return (Site((p,), (t.indices[1].name,)) for p, t in pattern_sites(graph))


def _precondition(graph: Graph, site: Site) -> Verdict:
    o = site.indices[0]
    if is_output(graph, o):
        return Verdict.no(f"o leg {o!r} is an output leg")
    if len(carriers(graph, o)) > 1:
        return Verdict.no(f"o leg {o!r} is joined to another tensor")
    return Verdict.yes(f"o leg {o!r} touches nothing else: Π becomes Σ_o Π")


def _rewrite(graph: Graph, site: Site) -> Graph:
    t = graph.tensors[site.tensors[0]]
    i, o, k = t.indices
    p = t.pattern_params
    reduced = reduced_pattern(t.name, i, k, o.size, p.stride, p.pad_left, p.pad_right,
                              p.dilation)
    return replace_tensor(graph, site.tensors[0], [reduced])


SUM_OUT = add_rule(Rule("sum-out", _sites, _precondition, _rewrite,
                        "a pattern whose o leg is free becomes its sum over o"))

sum_out = rule_pass("sum-out", ["sum-out"], """Replace every pattern Π whose o leg touches
nothing else (no other tensor, not an output) by the reduced pattern Σ_o Π[i,o,k].""")
