"""Expansion passes: add a group leg (``expand-groups``) or a batch leg (``expand-batch``).

Both map a diagram over a new index, like ``vmap``: slice ``g`` (or ``n``) of the result is
the original diagram evaluated on slice ``g`` of every expanded tensor. This lets builders
describe one group or one sample and leave the bookkeeping of hyperedges to a pass.

- ``expand-groups{groups=G,legs=ci|co,index=g,into=co}``: on every variable carrying one
  of ``legs``, the channel leg ``c`` becomes the fused pair ``(g c)`` (runtime channel size
  ``G·C``: a grouped convolution's layout); a tensor with several listed legs gets ``g``
  once, before the first of them. In the output, ``g`` is fused before the leg ``into``,
  or prepended as its own axis when ``into`` is not given.
- ``expand-batch{size=N,tensors=X|V,index=n}``: the listed variables (every occurrence) and
  the output get a new leading axis ``n``.

>>> from tndiag import ops
>>> one_group = ops.conv((2, 2, 7), (3, 2, 3))
>>> expand_groups(one_group, 4, "ci|co", "g", "co").output_shape
(2, 12, 5)
"""

from __future__ import annotations

from typing import Sequence, Tuple

from tndiag.errors import InvalidArgumentError, PassError, UnknownNameError
from tndiag.ir import Diagram, Graph, Index, Kind, Tensor, as_size, constant
from tndiag.passes.base import SIZE, Recorder, fresh_name, index_names, map_terms, register

__all__ = ["expand_groups", "expand_batch"]


def _size(value, what: str):
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    size = as_size(value)
    if isinstance(size, int) and size < 1:
        raise InvalidArgumentError(f"{what} must be a positive int or a symbol, got {value!r}")
    return size


def _names(value, what: str) -> Tuple[str, ...]:
    names = tuple(v.strip() for v in value.split("|")) if isinstance(value, str) else tuple(value)
    if not names or not all(isinstance(v, str) and v for v in names):
        raise InvalidArgumentError(f"{what} must list one or more names ('a|b'), got {value!r}")
    return names


def _new_index(diagram: Diagram, name: str, size) -> Index:
    if not name.isidentifier():
        raise InvalidArgumentError(f"index must be an identifier, got {name!r}")
    if name in index_names(diagram):
        raise PassError(f"index {name!r} already exists in the diagram; choose another name "
                        f"(e.g. {fresh_name(name, index_names(diagram))!r})")
    return Index(name, size)


def _with_ones(graph: Graph, new: Index) -> Graph:
    """Broadcast ``new`` with a ones constant when no tensor of the term carries it."""
    if any(ix.name == new.name for t in graph.tensors for ix in t.indices):
        return graph
    name = fresh_name("one", set(graph.names))
    return graph.replace(tensors=(*graph.tensors, constant(name, 1, [new])))


def _group_tensor(t: Tensor, legs: Sequence[str], g: Index) -> Tensor:
    hit = [ix.name for ix in t.indices if ix.name in legs]
    if not hit:
        return t
    if t.kind is not Kind.VARIABLE:
        raise PassError(f"expand-groups: leg {hit[0]!r} is on the {t.kind.value} tensor "
                        f"{t.name!r}; only variables' channel legs can be grouped")
    axes = tuple(tuple(y for ix in axis for y in ((g, ix) if ix.name == hit[0] else (ix,)))
                 for axis in t.axes)
    return t.replace(axes=axes)


def _expand_groups(diagram: Diagram, rec: Recorder, groups=2, legs="", index: str = "g",
                   into: str = "") -> Diagram:
    """Map the diagram over a new group leg ``index`` of size ``groups`` (see module doc).

    >>> from tndiag import ops
    >>> expand_groups(ops.conv((2, 2, 7), (3, 2, 3)), 4, "ci|co").output_shape
    (4, 2, 3, 5)
    """
    leg_names = _names(legs, "legs")
    known = index_names(diagram)
    missing = [n for n in leg_names if n not in known]
    if missing:
        raise UnknownNameError(f"expand-groups: no index named {missing[0]!r}; expected one "
                               f"of {sorted(known)}")
    g = _new_index(diagram, index, _size(groups, "groups"))

    def one(term: Graph) -> Graph:
        tensors = [_group_tensor(t, leg_names, g) for t in term.tensors]
        out_names = [ix.name for ix in term.output_indices]
        if into and into not in out_names:
            raise UnknownNameError(f"expand-groups: into={into!r} is not an output leg; "
                                   f"expected one of {out_names}")
        if into:
            output = tuple(tuple(y for ix in axis for y in ((g, ix) if ix.name == into
                                                             else (ix,))) for axis in term.output)
        else:
            output = ((g,), *term.output)
        return _with_ones(Graph(tuple(tensors), output), g)

    out = map_terms(diagram, one)
    rec.fired("expand-groups", f"{g.name} of size {g.size} fused before legs "
              f"{'|'.join(leg_names)}", indices=(g.name, *leg_names))
    return out


def _expand_batch(diagram: Diagram, rec: Recorder, size=1, tensors="", index: str = "n"
                  ) -> Diagram:
    """Map the diagram over a new leading batch leg ``index`` of size ``size``.

    >>> from tndiag import ops
    >>> expand_batch(ops.conv((2, 3, 7), (4, 3, 3)), 5, "W", "z").tensor("W").shape
    (5, 4, 3, 3)
    """
    names = _names(tensors, "tensors")
    terms = diagram.terms if not isinstance(diagram, Graph) else (diagram,)
    present = {t.name: t for term in terms for t in term.tensors}
    for name in names:
        if name not in present:
            raise UnknownNameError(f"expand-batch: no tensor named {name!r}; expected one of "
                                   f"{sorted(present)}")
        if present[name].kind is not Kind.VARIABLE:
            raise InvalidArgumentError(f"expand-batch: {name!r} is a {present[name].kind.value} "
                                       "tensor; only variables can be batched")
    n = _new_index(diagram, index, _size(size, "size"))

    def one(term: Graph) -> Graph:
        new = tuple(t.replace(axes=((n,), *t.axes)) if t.name in names else t
                    for t in term.tensors)
        return _with_ones(Graph(new, ((n,), *term.output)), n)

    out = map_terms(diagram, one)
    rec.fired("expand-batch", f"leading {n.name} of size {n.size}", tensors=names,
              indices=(n.name,))
    return out


expand_groups = register("expand-groups", groups=SIZE, legs=tuple, index=str,
                         into=str)(_expand_groups)
expand_batch = register("expand-batch", size=SIZE, tensors=tuple, index=str)(_expand_batch)
