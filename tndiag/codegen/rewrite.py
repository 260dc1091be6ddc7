"""The diagram rewrites ``compile`` applies before lowering: simplification rules, not copies.

A fact about the diagram lives in one place, a rule of :mod:`tndiag.passes.rules`; the
lowerings only choose kernels for what the diagram says. So that ``compile`` of an
unsimplified diagram still gets the cheap program, it first runs two of those rules
(:data:`REWRITES`, each allowed or not like a lowering; ``lowerings=()`` runs none):

- ``sum-out`` (docs/method.md §4.7) everywhere: a Π whose ``o`` leg touches nothing else
  becomes ``Σ_o Π``, which the ``window-sum`` lowering then sums along its holder.
- ``dense`` (§4.1) where the result needs no kernel: a dense Π (K = S > 1, no padding) whose
  ``i`` leg is open and on no other tensor while its ``o`` and ``k`` legs are on others (the
  input VJP of a patchify convolution) — the output leg ``i`` becomes ``(o, k)`` fused. At
  other sites the native kernel is kept (1×1 input VJPs: torch's backward kernel beat the
  reshape and GEMM, see docs/benchmarks.md).

Which rules fired is kept on the program (:attr:`~tndiag.codegen.program.Program.rewrites`).
"""

from __future__ import annotations

from typing import Iterable, Tuple

from tndiag.ir import Graph, Kind
from tndiag.passes.base import Recorder
from tndiag.passes.rules.common import carriers, is_output
from tndiag.passes.simplify import RULES, Rule, Site, rewrite_to_fixpoint

__all__ = ["REWRITES", "prelower"]

#: The rewrites ``compile`` applies first, in order (names of simplification rules).
REWRITES: Tuple[str, ...] = ("sum-out", "dense")


def _open_sites(graph: Graph) -> Iterable[Site]:
    """Dense-rule sites whose i leg is open only and whose o and k legs are joined."""
    for site in RULES["dense"].sites(graph):
        t = graph.tensors[site.tensors[0]]
        if t.kind is not Kind.PATTERN or t.indices[2].size == 1:
            continue
        i, o, k = (ix.name for ix in t.indices)
        if (is_output(graph, i) and len(carriers(graph, i)) == 1 and not is_output(graph, o)
                and not is_output(graph, k) and len(carriers(graph, o)) > 1
                and len(carriers(graph, k)) > 1):
            yield site


_RULES = {"sum-out": RULES["sum-out"],
          "dense": Rule("dense", _open_sites, RULES["dense"].precondition, RULES["dense"].rewrite,
                        RULES["dense"].doc)}


def prelower(graph: Graph, allowed: Iterable[str]) -> Tuple[Graph, Tuple[str, ...]]:
    """``graph`` with the allowed :data:`REWRITES` applied, and the events that fired.

    >>> from tndiag import ops
    >>> g = ops.conv((1, 2, 8), (3, 2, 4), stride=4)
    >>> from tndiag.passes.differentiate import vjp
    >>> _, fired = prelower(vjp(g, wrt="X", vector="V"), ["dense"])
    >>> fired
    ('dense [P1]',)
    """
    rules = [_RULES[name] for name in REWRITES if name in allowed]
    if not rules:
        return graph, ()
    rec = Recorder()
    graph = rewrite_to_fixpoint(graph, rules, rec)
    return graph, tuple(f"{e.rule} [{', '.join(e.tensors)}]" for e in rec.events
                        if e.status == "fired")
