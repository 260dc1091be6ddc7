"""Canonical form: deterministic tensor order and names, so equal diagrams compare equal.

Two graphs that differ only in the order of their tensors, the names of their indices, the
names of non-variable tensors (patterns, δs, constants) or the order of a δ's or a
constant's legs have the same canonical form, so ``==`` and ``hash`` on canonical forms
decide diagram equality. Variables keep their names (the program binds them by name) and
the output keeps its leg order.

Algorithm: colour refinement (1-dimensional Weisfeiler-Lehman) over the bipartite
incidence structure of tensors and indices. A tensor's first colour is its kind, role,
variable name, pattern parameters, value and axis grouping; an index's is its size and
position in the output; an incidence is labelled by the leg position (all legs of a δ or
constant share one label, as they are interchangeable). Colours are refined until stable;
ties between tensors are broken by individualising each member of the first tied class in
turn and keeping the smallest resulting form (individualisation-refinement), which makes
the result independent of input order. Indices are then named ``c0, c1, ...`` in order of
first appearance (output first, then tensors in canonical order) and non-variable tensors
``P0, R0, D0, C0, ...`` by kind.

Limits: the search explores at most :data:`BRANCH_BUDGET` tie-breaking branches; highly
symmetric diagrams beyond that budget get a deterministic form that may differ between
equal diagrams given in different orders. Sizes are compared as expressions (``2*N`` and
``N+N`` are equal, ``N*(M+1)`` and ``N*M+N`` are too, as sympy expands products).

It lives in the IR so that the plan cache of :mod:`tndiag.codegen` can key on it; the pass
``canonicalize`` (:mod:`tndiag.passes.canonicalize`) applies it to a diagram. networkx has no
canonical labeling; its Weisfeiler-Lehman subgraph hashes, as the refinement alone, took
1.9× as long on the test corpus (docs/architecture.md, "Plans are data").

>>> from tndiag import ops
>>> a = ops.conv((2, 3, 5), (4, 3, 3))
>>> b = a.replace(tensors=a.tensors[::-1]).rename_indices({"ci": "c", "k1": "k"})
>>> canonical_form(a) == canonical_form(b)
True
"""

from __future__ import annotations

from typing import Dict, List, Sequence, Tuple

import sympy

from tndiag.ir.graph import Diagram, Graph, Sum
from tndiag.ir.nodes import Index, Kind, Tensor

__all__ = ["canonical_form", "canonical_graph", "BRANCH_BUDGET"]

#: Most tie-breaking branches explored per graph before settling on the first one.
BRANCH_BUDGET = 256

_SYMMETRIC = (Kind.DELTA, Kind.CONSTANT)
_PREFIX = {Kind.PATTERN: "P", Kind.REDUCED: "R", Kind.SLICED: "S", Kind.DELTA: "D",
           Kind.CONSTANT: "C"}


def _size_key(size) -> str:
    return str(sympy.expand(size)) if isinstance(size, sympy.Basic) else str(size)


def _tensor_key(t: Tensor) -> str:
    grouping = () if t.kind in _SYMMETRIC else tuple(len(a) for a in t.axes)
    return repr((t.kind.value, t.role.value if t.role else "",
                 t.name if t.kind is Kind.VARIABLE else "", t.params, t.value,
                 _size_key(t.out_size) if t.out_size is not None else "",
                 _size_key(t.full_size) if t.full_size is not None else "", t.sample or "",
                 grouping))


def _rank(keys: Sequence) -> List[int]:
    """Replace each key by its rank among the distinct keys (a canonical colour)."""
    order = {k: n for n, k in enumerate(sorted(set(keys)))}
    return [order[k] for k in keys]


class _Structure:
    """The incidence structure of one graph, with integer colours for tensors and indices."""

    def __init__(self, graph: Graph) -> None:
        self.graph = graph
        self.names = sorted(graph.indices())
        pos = {name: p for p, name in enumerate(self.names)}
        self.legs = [[(0 if t.kind in _SYMMETRIC else p, pos[ix.name])
                      for p, ix in enumerate(t.indices)] for t in graph.tensors]
        self.incident: List[List[Tuple[int, int]]] = [[] for _ in self.names]
        for ti, legs in enumerate(self.legs):
            for label, ii in legs:
                self.incident[ii].append((ti, label))
        out_pos = {ix.name: p for p, ix in enumerate(graph.output_indices)}
        table = graph.indices()
        self.index0 = _rank([(_size_key(table[n].size), out_pos.get(n, -1))
                             for n in self.names])
        self.tensor0 = _rank([_tensor_key(t) for t in graph.tensors])

    def refine(self, tcol: List[int], icol: List[int]) -> Tuple[List[int], List[int]]:
        """Colour refinement until the number of classes stops growing."""
        while True:
            tsig = [(tcol[ti], tuple(sorted((lab, icol[ii]) for lab, ii in legs))
                     if self.graph.tensors[ti].kind in _SYMMETRIC
                     else tuple(icol[ii] for _, ii in legs))
                    for ti, legs in enumerate(self.legs)]
            isig = [(icol[ii], tuple(sorted((tcol[ti], lab) for ti, lab in inc)))
                    for ii, inc in enumerate(self.incident)]
            new_t, new_i = _rank(tsig), _rank(isig)
            if len(set(new_t)) == len(set(tcol)) and len(set(new_i)) == len(set(icol)):
                return new_t, new_i
            tcol, icol = new_t, new_i

    def build(self, tcol: List[int], icol: List[int]) -> Graph:
        """The graph with tensors ordered by colour and everything renamed canonically."""
        g = self.graph
        order = sorted(range(len(g.tensors)), key=lambda ti: tcol[ti])
        pos = {name: p for p, name in enumerate(self.names)}
        rename: Dict[str, str] = {}

        def name_of(ix: Index) -> Index:
            new = rename.setdefault(ix.name, f"c{len(rename)}")
            return Index(new, ix.size)

        output = tuple(tuple(name_of(ix) for ix in axis) for axis in g.output)
        counters: Dict[Kind, int] = {}
        tensors = []
        for ti in order:
            t = g.tensors[ti]
            axes: Tuple[Tuple[Index, ...], ...]
            if t.kind in _SYMMETRIC:
                legs = sorted(t.indices, key=lambda ix: icol[pos[ix.name]])
                axes = tuple((name_of(ix),) for ix in legs)
            else:
                axes = tuple(tuple(name_of(ix) for ix in axis) for axis in t.axes)
            name = t.name
            if t.kind is not Kind.VARIABLE:
                n = counters.get(t.kind, 0)
                counters[t.kind] = n + 1
                name = f"{_PREFIX[t.kind]}{n}"
            tensors.append(t.replace(name=name, axes=axes))
        return Graph(tuple(tensors), output)


def canonical_graph(graph: Graph) -> Graph:
    """The canonical form of one graph (see the module docstring).

    >>> from tndiag import ops
    >>> canonical_graph(ops.conv((1, 1, 4), (1, 1, 2))).output
    ((c0:1,), (c1:1,), (c2:3,))
    """
    s = _Structure(graph)
    budget = [BRANCH_BUDGET]
    best = _search(s, *s.refine(list(s.tensor0), list(s.index0)), budget)
    return best[1]


def _search(s: _Structure, tcol: List[int], icol: List[int], budget: List[int]
            ) -> Tuple[str, Graph]:
    tied = _first_tie(tcol)
    if tied is None:
        g = s.build(tcol, icol)
        return repr(g), g
    best = None
    for member in tied:
        if best is not None and budget[0] <= 0:
            break
        budget[0] -= 1
        split = [2 * c + (0 if ti == member else 1) if c == tcol[member] else 2 * c
                 for ti, c in enumerate(tcol)]
        cand = _search(s, *s.refine(_rank(split), icol), budget)
        if best is None or cand[0] < best[0]:
            best = cand
    assert best is not None
    return best


def _first_tie(tcol: List[int]):
    """Members of the smallest colour shared by several tensors, or None when all differ."""
    classes: Dict[int, List[int]] = {}
    for ti, c in enumerate(tcol):
        classes.setdefault(c, []).append(ti)
    tied = [c for c, members in classes.items() if len(members) > 1]
    return classes[min(tied)] if tied else None


def canonical_form(diagram: Diagram) -> Diagram:
    """The canonical form of a graph, or of a sum (terms canonicalized, then sorted).

    >>> from tndiag import ops
    >>> canonical_form(ops.conv((1, 1, 4), (1, 1, 2))).names
    ('P0', 'X', 'W')
    """
    if isinstance(diagram, Graph):
        return canonical_graph(diagram)
    return Sum(tuple(sorted((canonical_graph(t) for t in diagram.terms), key=repr)))
