"""Down-sampling patterns (docs/method.md §4.2) and mixed-dense convolutions (§4.3).

With ``S > K``, no padding, ``D == 1``, ``I % S == 0`` and ``i`` not an output leg, split
``i`` into ``(ĩ, s)`` of sizes ``(I/S, S)``; then ``Π[i,o,k] = δ(o, ĩ)·[s == k]``. The
selection ``[s == k]`` (keep the first K of every S inputs: the slice ``X[..., ::S]`` when
K = 1) is the reduced pattern with input size S, kernel K and stride S (its sum has a single
term), so no new node kind is needed. A reduced pattern ``Σ_o Π`` with the same parameters
becomes the selection alone (``ĩ`` is summed). The pass ``mixed-dense`` applies this rule and the
dense rule to whichever spatial dimensions qualify (e.g. the 1 of a 1×7 kernel).

>>> from tndiag import ops
>>> g = down_sampling(ops.conv((2, 3, 8), (4, 3, 1), stride=2))
>>> g.tensors[0], g.tensors[1]
(X:variable input[n:2, ci:3, (i1_o:4 i1_s:2)], P1_o:delta[o1:4, i1_o:4])
>>> g.tensors[2].kind.value, g.tensors[2].indices, g.tensors[2].pattern_params.stride
('reduced', (i1_s:2, k1:1), 2)
"""

from __future__ import annotations

from tndiag.ir import Graph, Kind, delta, reduced_pattern
from tndiag.passes.rules.common import (
    describe,
    divides,
    equal,
    fresh_index,
    fresh_tensor_name,
    is_output,
    less,
    replace_tensor,
    split_index,
)
from tndiag.passes.rules.dense import combine, quotient, sites, splittable, without_padding
from tndiag.passes.simplify import Rule, Site, Verdict, add_rule, rule_pass

__all__ = ["DOWN_SAMPLING", "down_sampling", "mixed_dense"]


def _precondition(graph: Graph, site: Site) -> Verdict:
    t = graph.tensors[site.tensors[0]]
    i, k = t.indices[0], t.indices[-1]
    S = t.pattern_params.stride
    if is_output(graph, i.name):
        return Verdict.no(f"i leg {i.name!r} is an output leg")
    if t.kind is Kind.REDUCED and equal(i.size, S):
        return Verdict.no(f"already a selection (I == S == {S})")
    bigger, fits = less(k.size, S), divides(S, i.size)
    return combine([without_padding(t), splittable(graph, site.tensors[0]),
                    Verdict(bigger, describe(bigger, f"S > K ({S} > {k.size})")),
                    Verdict(fits, describe(fits, f"I % S == 0 ({i.size} % {S})"))],
                   f"S = {S} > K = {k.size}, no padding, D == 1: {i.name} ({i.size}) splits "
                   f"into ({quotient(i.size, S) if fits else '?'}, {S}), keep the first {k.size}")


def _rewrite(graph: Graph, site: Site) -> Graph:
    position = site.tensors[0]
    t = graph.tensors[position]
    i, k = t.indices[0], t.indices[-1]
    S = t.pattern_params.stride
    i_o = fresh_index(graph, f"{i.name}_o", quotient(i.size, S))
    i_s = fresh_index(graph, f"{i.name}_s", S, taken=[i_o.name])
    new = [reduced_pattern(t.name, i_s, k, 1, stride=S)]
    if t.kind is Kind.PATTERN:  # Σ_o δ(o, ĩ) = 1 for a reduced pattern
        new.insert(0, delta(fresh_tensor_name(graph, f"{t.name}_o"), [t.indices[1], i_o]))
    graph = replace_tensor(graph, position, new)
    return split_index(graph, i.name, [i_o, i_s])


DOWN_SAMPLING = add_rule(Rule(
    "down-sampling", sites, _precondition, _rewrite,
    "a pattern with S > K, no padding, D == 1, I % S == 0 becomes δ times a selection"))

down_sampling = rule_pass("down-sampling", ["down-sampling"], """Rewrite every down-sampling
pattern (S > K, no padding, dilation 1, I % S == 0, i not an output leg) as δ(o, ĩ) times
the selection [s == k] after splitting its i leg into (ĩ, s).""")

mixed_dense = rule_pass("mixed-dense", ["dense", "down-sampling"], """Apply the dense and
down-sampling rules per spatial dimension: each pattern that qualifies is rewritten, the
others stay (e.g. an Inception 1×7 convolution becomes dense along its first dimension).""")
