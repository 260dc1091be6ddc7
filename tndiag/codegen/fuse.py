"""Terms of a sum evaluated together: the term rules (``broadcast``, then ``bias``; see
:mod:`tndiag.codegen.lowerings`) applied to the separately compiled terms of a
:class:`~tndiag.ir.Sum`, by structure (letters, lowerings, output legs; never names).
"""

from __future__ import annotations

from typing import List, Sequence

from tndiag.codegen.lowerings import bias, broadcast
from tndiag.codegen.lowerings.base import StepRule
from tndiag.codegen.program import Program

__all__ = ["combine_terms"]


def _to_fixpoint(rule: StepRule[List[Program]], terms: List[Program]) -> None:
    while True:
        found = rule.match(terms)
        if not found:
            return
        rule.apply(terms, found[0])


def combine_terms(terms: Sequence[Program], allowed: Sequence[str]) -> List[Program]:
    """Rewrite broadcast terms and fuse each into a native kernel term where allowed.

    >>> from tndiag import compile, ops
    >>> s = compile(ops.conv((2, 3, 8), (4, 3, 3), bias=True), lowerings=())
    >>> [p.steps[0].label for p in combine_terms(s.terms, ("native", "bias", "broadcast"))]
    ['einsum', 'broadcast']
    """
    out = list(terms)
    if "broadcast" not in allowed and "bias" not in allowed:
        return out
    _to_fixpoint(broadcast.RULE, out)  # the bias rule fuses broadcast terms
    if "bias" in allowed:
        _to_fixpoint(bias.RULE, out)
    if "broadcast" not in allowed:  # a broadcast term left over keeps its einsum program
        out = [t.parts[0] if broadcast.is_broadcast(t) else t for t in out]
    return out
