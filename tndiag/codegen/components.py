"""Connected components of a product: operands that share no index, directly or through
other operands, are independent factors, and the product is their outer product.

The contraction rule (:mod:`tndiag.codegen.lowerings.contraction`) contracts each component
along its own path and joins the components' results last (an outer product; a scalar
component is a scalar multiply). The structured rules need no split: each matches operands
joined by the indices it rewrites, so it never reaches across components.
"""

from __future__ import annotations

from typing import List, Sequence, Tuple

__all__ = ["components"]


def components(letters: Sequence[str]) -> List[Tuple[int, ...]]:
    """Positions of the operands with subscripts ``letters`` grouped into the connected
    components of the operand–letter graph (``networkx.connected_components``), each in
    operand order, ordered by their first operand; an operand without letters is alone.
    Two operands are one component when they share a letter (importing networkx costs about
    0.18 s of CPU time, once per process: docs/benchmarks.md).

    >>> components(["ab", "cd", "bx", ""])
    [(0, 2), (1,), (3,)]
    >>> components(["ab", "bc"])
    [(0, 1)]
    """
    if len(letters) < 2:
        return [tuple(range(len(letters)))] if letters else []
    if len(letters) == 2:  # no graph needed; spares the first compile networkx's import
        return [(0, 1)] if set(letters[0]) & set(letters[1]) else [(0,), (1,)]
    import networkx as nx

    graph = nx.Graph()
    graph.add_nodes_from(range(len(letters)))
    graph.add_edges_from((n, ("letter", ch)) for n, subs in enumerate(letters) for ch in subs)
    found = [tuple(sorted(n for n in part if isinstance(n, int)))
             for part in nx.connected_components(graph)]
    return sorted(found, key=lambda part: part[0])
