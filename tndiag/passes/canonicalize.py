"""``canonicalize``: the pass applying the canonical form of :mod:`tndiag.ir.canonical`.

Two graphs that differ only in the order of their tensors, the names of their indices, the
names of non-variable tensors or the order of a δ's or a constant's legs have the same
canonical form, so ``==`` and ``hash`` on canonical forms decide diagram equality.

>>> from tndiag import ops
>>> a = ops.conv((2, 3, 5), (4, 3, 3))
>>> b = a.replace(tensors=a.tensors[::-1]).rename_indices({"ci": "c", "k1": "k"})
>>> canonicalize(a) == canonicalize(b)
True
"""

from __future__ import annotations

from tndiag.ir import Diagram, Graph
from tndiag.ir.canonical import BRANCH_BUDGET, canonical_form, canonical_graph
from tndiag.passes.base import Recorder, register

__all__ = ["canonicalize", "canonical_graph", "canonical_form", "BRANCH_BUDGET"]


def _canonicalize(diagram: Diagram, rec: Recorder) -> Diagram:
    """Canonical form: tensors ordered and indices named deterministically (sums: terms too).

    Terms of a :class:`~tndiag.ir.Sum` are canonicalized one by one and sorted, so sums that
    differ only in the order of their terms compare equal.

    >>> from tndiag import ops
    >>> canonicalize(ops.conv((1, 1, 4), (1, 1, 2))).names
    ('P0', 'X', 'W')
    """
    out = canonical_form(diagram)
    if isinstance(diagram, Graph):
        rec.fired("canonicalize", f"{len(diagram.tensors)} tensors, "
                  f"{len(diagram.indices())} indices renamed c0..")
    else:
        rec.fired("canonicalize", f"{len(diagram.terms)} terms canonicalized and sorted")
    return out


canonicalize = register("canonicalize")(_canonicalize)
