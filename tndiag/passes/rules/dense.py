"""Dense patterns (docs/method.md §4.1): with ``K == S``, no padding, ``D == 1`` and ``I % K == 0``,
``Π[i,o,k] = δ(o, ĩ)·δ(k, k̃)`` once ``i`` is split into ``(ĩ, k̃)`` of sizes ``(I/K, K)``.
A reduced pattern ``Σ_o Π`` with the same parameters becomes ``δ(k, k̃)`` (``ĩ`` is summed;
when no other tensor carries ``ĩ``, a ones vector over it keeps the factor ``I/K``).

The split keeps every runtime shape: a variable's axis ``i`` becomes the fused axis
``(ĩ k̃)`` (row-major), so the convolution turns into a reshape plus a matmul. A 1×1
stride-1 pattern is the special case Π = identity. δ pruning then renames ``ĩ → o`` and
``k̃ → k``.

>>> from tndiag import ops
>>> g = dense(ops.conv((2, 3, 8), (4, 3, 4), stride=4))
>>> g.tensors[0]
X:variable input[n:2, ci:3, (i1_o:2 i1_k:4)]
>>> [t.name for t in g.tensors]
['X', 'P1_o', 'P1_k', 'W']
"""

from __future__ import annotations

from typing import Iterable, List

import sympy

from tndiag.ir import Graph, Kind, Size, Tensor, as_size, constant, delta
from tndiag.passes.rules.common import (
    carriers,
    describe,
    divides,
    equal,
    fresh_index,
    fresh_tensor_name,
    is_output,
    pattern_sites,
    replace_tensor,
    split_index,
)
from tndiag.passes.simplify import Rule, Site, Verdict, add_rule, rule_pass

__all__ = ["DENSE", "dense", "combine", "sites", "splittable", "quotient", "without_padding"]


def sites(graph: Graph) -> Iterable[Site]:
    """Every pattern and reduced pattern, by its i leg."""
    return (Site((p,), (t.indices[0].name,))
            for p, t in pattern_sites(graph, (Kind.PATTERN, Kind.REDUCED)))


def combine(reasons: List[Verdict], success: str) -> Verdict:
    """All must hold: the first definite failure, else the first undecidable one, else
    ``Verdict.yes(success)``."""
    for v in reasons:
        if v.ok is False:
            return v
    for v in reasons:
        if v.ok is None:
            return v
    return Verdict.yes(success)


def _claim(answer: bool | None, claim: str) -> Verdict:
    return Verdict(answer, describe(answer, claim))


def without_padding(t: Tensor) -> Verdict:
    """No padding on either side and dilation 1."""
    p = t.pattern_params
    ok = p.pad_left == 0 and p.pad_right == 0 and p.dilation == 1
    return _claim(ok, f"no padding and dilation 1 (pad {p.pad_left}/{p.pad_right}, "
                      f"dilation {p.dilation})")


def splittable(graph: Graph, position: int) -> Verdict:
    """The pattern's i leg may be split: apart from Π it is only on variables, constants
    (fused axes keep their runtime shape) and the output; a reduced pattern's open i leg
    must also be on another tensor (its rewrite drops the leg from it)."""
    own = graph.tensors[position]
    i = own.indices[0]
    others = [p for p in carriers(graph, i.name) if p != position]
    for p in others:
        t = graph.tensors[p]
        if t.kind not in (Kind.VARIABLE, Kind.CONSTANT):
            return Verdict.no(f"i leg {i.name!r} is also on {t.kind.value} {t.name!r}")
    if own.kind is Kind.REDUCED and not others and is_output(graph, i.name):
        return Verdict.no(f"i leg {i.name!r} is open and on no other tensor")
    return Verdict.yes(f"i leg {i.name!r} can be split")


def quotient(a: Size, b: Size) -> Size:
    """``a / b`` for sizes known to divide."""
    if isinstance(a, int) and isinstance(b, int):
        return a // b
    return as_size(sympy.simplify(sympy.sympify(a) / b))


def _precondition(graph: Graph, site: Site) -> Verdict:
    t = graph.tensors[site.tensors[0]]
    i, k = t.indices[0], t.indices[-1]
    S = t.pattern_params.stride
    return combine([without_padding(t), splittable(graph, site.tensors[0]),
                    _claim(equal(k.size, S), f"K == S ({k.size} == {S})"),
                    _claim(divides(k.size, i.size), f"I % K == 0 ({i.size} % {k.size})")],
                   f"K == S == {S}, no padding, D == 1: {i.name} ({i.size}) splits into "
                   f"({quotient(i.size, k.size)}, {k.size})")


def _rewrite(graph: Graph, site: Site) -> Graph:
    position = site.tensors[0]
    t = graph.tensors[position]
    i, k = t.indices[0], t.indices[-1]
    i_o = fresh_index(graph, f"{i.name}_o", quotient(i.size, k.size))
    i_k = fresh_index(graph, f"{i.name}_k", k.size, taken=[i_o.name])
    d_o = fresh_tensor_name(graph, f"{t.name}_o")
    d_k = fresh_tensor_name(graph, f"{t.name}_k", taken=[d_o])
    new = [delta(d_k, [k, i_k])]
    if t.kind is Kind.PATTERN:
        new.insert(0, delta(d_o, [t.indices[1], i_o]))
    elif not [p for p in carriers(graph, i.name) if p != position]:
        # Σ_o δ(o, ĩ) = 1 for a reduced pattern, but ĩ is still summed: when no other
        # tensor carries it, a ones vector keeps that free sum (a factor I/K).
        new.insert(0, constant(d_o, 1, [i_o]))
    graph = replace_tensor(graph, position, new)
    return split_index(graph, i.name, [i_o, i_k])


DENSE = add_rule(Rule("dense", sites, _precondition, _rewrite,
                      "a pattern with K == S, no padding, D == 1, I % K == 0 becomes δ·δ"))

dense = rule_pass("dense", ["dense"], """Rewrite every dense pattern (K == S, no padding,
dilation 1, I % K == 0) as δ(o, ĩ)·δ(k, k̃) after splitting its i leg into (ĩ, k̃); a dense
reduced pattern Σ_o Π becomes δ(k, k̃).""")
