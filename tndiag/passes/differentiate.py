"""Differentiation on diagrams: Jacobians (cut a tensor out), VJPs and JVPs (docs/method.md §3).

The Jacobian of a diagram with respect to a variable ``W`` is the diagram with ``W`` cut
out: its legs become open legs appended to the output (grouped into axes as on ``W``, so
the result has shape ``output_shape + W.shape``, as ``torch.autograd.functional.jacobian``).
A leg of ``W`` that is already an open leg of the output (a hyperedge such as ``n`` or
``g``) gets a fresh name and a δ joins it to the old one. A VJP contracts the output with a
vector ``V`` shaped like it; a JVP puts a tangent shaped like ``W`` in ``W``'s place.

When ``W`` occurs several times (``X`` twice in KFC) the product rule gives one term per
occurrence: the result is a :class:`~tndiag.ir.Sum`. Terms without ``W`` have derivative
zero and are dropped; a diagram whose every term is dropped becomes a constant-zero graph.
Higher derivatives cut several tensors, one after the other (``wrt=X|W`` or repeated passes).

>>> from tndiag import ops
>>> jac = differentiate(ops.conv((2, 3, 5), (4, 3, 3)), "W")
>>> jac.output_shape
(2, 4, 3, 4, 3, 3)
"""

from __future__ import annotations

from typing import Dict, List, Sequence, Tuple, Union

from tndiag.errors import InvalidArgumentError, PassError, UnknownNameError
from tndiag.ir import Diagram, Graph, Index, Kind, Role, Sum, Tensor, constant, delta, variable
from tndiag.passes.base import Recorder, fresh_name, index_names, register

__all__ = ["differentiate", "vjp", "jvp"]

VectorArg = Union[str, Tensor]


def _terms(diagram: Diagram) -> Tuple[Graph, ...]:
    return diagram.terms if isinstance(diagram, Sum) else (diagram,)


def _wrap(terms: List[Graph]) -> Diagram:
    return terms[0] if len(terms) == 1 else Sum(tuple(terms))


def _first_occurrence(diagram: Diagram, name: str) -> Tensor:
    """The first tensor called ``name``, checked to be a variable; precise errors otherwise."""
    for term in _terms(diagram):
        for t in term.tensors:
            if t.name != name:
                continue
            if t.kind is not Kind.VARIABLE:
                raise InvalidArgumentError(
                    f"wrt={name!r} names a {t.kind.value} tensor; derivatives are taken "
                    "with respect to variable tensors only")
            return t
    choices = sorted({t.name for term in _terms(diagram) for t in term.variables()})
    raise UnknownNameError(f"wrt={name!r}: no tensor named {name!r} in the diagram; "
                           f"expected one of the variables {choices}")


def _tensor_names(diagram: Diagram) -> set:
    return {t.name for term in _terms(diagram) for t in term.tensors}


def _flat_sizes(t: Tensor) -> Tuple:
    return tuple(ix.size for ix in t.indices)


def _axes_like(t: Tensor, flat: Sequence[Index]) -> Tuple[Tuple[Index, ...], ...]:
    """``flat`` indices grouped into axes exactly as ``t``'s legs are."""
    out, pos = [], 0
    for axis in t.axes:
        out.append(tuple(flat[pos:pos + len(axis)]))
        pos += len(axis)
    return tuple(out)


def _targets(diagram: Diagram, first: Tensor, avoid: set) -> Tuple[Index, ...]:
    """Names of the freed legs: the first occurrence's names, fresh where in ``avoid``."""
    used = index_names(diagram) | avoid
    chosen: List[Index] = []
    taken: set = set()
    for ix in first.indices:
        name = ix.name if ix.name not in avoid else fresh_name(ix.name, used | taken)
        taken.add(name)
        chosen.append(Index(name, ix.size))
    return tuple(chosen)


def _cut(term: Graph, position: int, targets: Sequence[Index], keep_output: bool,
         tensor_names: set) -> Tuple[Graph, List[str]]:
    """Remove the tensor at ``position``; its legs become the indices ``targets``.

    A leg that is an open leg of the output (kept when ``keep_output``) is joined to its
    target by a new δ; any other leg is renamed to its target throughout the term. Other
    indices that already carry a target name are moved to fresh names first. A target on no
    remaining tensor is carried by a ones constant. Returns the graph and the new δ names.
    """
    tensors = list(term.tensors)
    cut = tensors.pop(position)
    if _flat_sizes(cut) != tuple(ix.size for ix in targets):
        raise PassError(f"occurrences of {cut.name!r} split their axes into legs differently "
                        f"({cut.axes}); cannot differentiate")
    out_names = {ix.name for ix in term.output_indices} if keep_output else set()
    mapping: Dict[str, str] = {}
    extra: List[Tensor] = []
    names = set(tensor_names)
    for ix, tgt in zip(cut.indices, targets):
        if ix.name in out_names:
            dname = fresh_name("D", names)
            names.add(dname)
            extra.append(delta(dname, [ix, tgt]))
        else:
            mapping[ix.name] = tgt.name
    rest = Graph(tuple(tensors), term.output)
    target_names = {t.name for t in targets}
    rest_names = set(rest.indices())
    for name in sorted(rest_names & target_names - set(mapping)):
        mapping[name] = fresh_name(name, rest_names | target_names | set(mapping.values()))
    renamed = rest.rename_indices(mapping)
    on_tensors = {ix.name for t in (*renamed.tensors, *extra) for ix in t.indices}
    for tgt in targets:
        if tgt.name not in on_tensors:
            oname = fresh_name("one", names)
            names.add(oname)
            extra.append(constant(oname, 1, [tgt]))
    return renamed.replace(tensors=(*renamed.tensors, *extra)), [e.name for e in extra]


def _positions(term: Graph, name: str) -> List[int]:
    return [p for p, t in enumerate(term.tensors) if t.name == name]


def _product_rule(diagram: Diagram, name: str, rec: Recorder, build) -> List[Graph]:
    """One term per occurrence of ``name`` in each term; ``build(term, position)`` cuts it."""
    out: List[Graph] = []
    for k, term in enumerate(_terms(diagram)):
        positions = _positions(term, name)
        if not positions:
            rec.fired("drop-constant-term", f"term {k} does not contain {name!r}: derivative 0")
        for p in positions:
            new, added = build(term, p)
            rec.fired("cut", f"term {k}: occurrence {positions.index(p) + 1} of "
                      f"{len(positions)}", tensors=(name, *added),
                      indices=tuple(ix.name for ix in term.tensors[p].indices))
            out.append(new)
    return out


def _zero(output) -> Graph:
    flat = [ix for axis in output for ix in axis]
    return Graph.of([constant("zero", 0, flat)], output)


def _jacobian(diagram: Diagram, first: Tensor, rec: Recorder) -> Diagram:
    name = first.name
    out_names = {ix.name for ix in _terms(diagram)[0].output_indices}
    targets = _targets(diagram, first, out_names)
    new_out = (*_terms(diagram)[0].output, *_axes_like(first, targets))
    names = _tensor_names(diagram)

    def build(term: Graph, p: int):
        g, added = _cut(term, p, targets, True, names)
        return g.replace(output=new_out), added

    terms = _product_rule(diagram, name, rec, build)
    return _wrap(terms) if terms else _zero(new_out)


def _as_tuple(wrt) -> Tuple[str, ...]:
    if isinstance(wrt, str):
        wrt = tuple(w.strip() for w in wrt.split("|") if w.strip())
    wrt = tuple(wrt)
    if not wrt or not all(isinstance(w, str) for w in wrt):
        raise InvalidArgumentError(f"wrt must name one or more variable tensors "
                                   f"(a name, 'A|B' or a tuple of names), got {wrt!r}")
    return wrt


def _differentiate(diagram: Diagram, rec: Recorder, wrt=()) -> Diagram:
    """Jacobian w.r.t. the variable(s) ``wrt``: cut them out; freed legs join the output.

    Several names (``wrt=X|W``) differentiate once per name, in order (so ``W|W`` is the
    second derivative). The result has shape ``output_shape + W.shape (+ ...)``.

    >>> from tndiag import ops
    >>> differentiate(ops.conv((1, 2, 5), (3, 2, 2)), "X|W").output_shape
    (1, 3, 4, 1, 2, 5, 3, 2, 2)
    """
    firsts = [_first_occurrence(diagram, name) for name in _as_tuple(wrt)]
    for first in firsts:  # a name cut away by an earlier step gives a zero derivative
        diagram = _jacobian(diagram, first, rec)
    return diagram


def _vector_tensor(vector: VectorArg, output, existing: set, what: str, role=Role.VECTOR
                   ) -> Tensor:
    """The contracting tensor: a new variable with legs ``output``, or the given one checked."""
    if isinstance(vector, str):
        if not vector.isidentifier():
            raise InvalidArgumentError(f"{what} must be an identifier, got {vector!r}")
        if vector in existing:
            raise InvalidArgumentError(f"{what}={vector!r} is already a tensor of the diagram; "
                                       "choose a new name")
        return variable(vector, output, role)
    if not isinstance(vector, Tensor) or vector.kind is not Kind.VARIABLE:
        raise InvalidArgumentError(f"{what} must be a name or a variable Tensor, got {vector!r}")
    if vector.axes != tuple(output):
        want = ", ".join(str(list(a)) for a in output)
        got = ", ".join(str(list(a)) for a in vector.axes)
        raise InvalidArgumentError(f"{what} {vector.name!r} has legs [{got}]; expected exactly "
                                   f"the legs [{want}]")
    if vector.name in existing:
        raise InvalidArgumentError(f"{what}={vector.name!r} is already a tensor of the diagram")
    return vector


def _vjp(diagram: Diagram, rec: Recorder, wrt=(), vector: VectorArg = "V") -> Diagram:
    """Vector-Jacobian product: ``Σ_out V[out] ∂D[out]/∂W``, a diagram shaped like ``W``.

    ``vector`` is the name of a new variable with the diagram's output legs (role vector),
    or such a :class:`~tndiag.ir.Tensor`. Further names in ``wrt`` take Jacobians of the
    result (``wrt=X|W`` gives ``[X-shape, W-shape]``).

    >>> from tndiag import ops
    >>> g = vjp(ops.conv((2, 3, 8), (4, 3, 3)), "X", "V")
    >>> g.output_shape, sorted(t.name for t in g.variables())
    ((2, 3, 8), ['V', 'W'])
    """
    names = _as_tuple(wrt)
    name = names[0]
    first = _first_occurrence(diagram, name)
    V = _vector_tensor(vector, _terms(diagram)[0].output, _tensor_names(diagram), "vector")
    targets = tuple(first.indices)
    all_names = _tensor_names(diagram) | {V.name}

    def build(term: Graph, p: int):
        with_v = term.replace(tensors=(*term.tensors, V))
        g, added = _cut(with_v, p, targets, False, all_names)
        return g.replace(output=first.axes), [V.name, *added]

    terms = _product_rule(diagram, name, rec, build)
    result = _wrap(terms) if terms else _zero(first.axes)
    return _differentiate(result, rec, names[1:]) if names[1:] else result


def _jvp(diagram: Diagram, rec: Recorder, wrt=(), tangent=()) -> Diagram:
    """Jacobian-vector product: the sum over occurrences of ``W`` of the diagram with the
    tangent in that occurrence's place (same output as the diagram).

    ``tangent`` names the new variable(s) (default ``V_W``), one per name in ``wrt``; a
    :class:`~tndiag.ir.Tensor` must carry exactly the legs of ``W``'s first occurrence.

    >>> from tndiag import ops
    >>> [t.name for t in jvp(ops.conv((2, 3, 8), (4, 3, 3)), "W", "T").tensors]
    ['X', 'P1', 'T']
    """
    names = _as_tuple(wrt)
    tangents = _tangents(tangent, names)
    for name, tan in zip(names, tangents):
        diagram = _jvp_one(diagram, name, tan, rec)
    return diagram


def _tangents(tangent, names: Tuple[str, ...]) -> Tuple[VectorArg, ...]:
    if isinstance(tangent, (str, Tensor)):
        tangent = _as_tuple(tangent) if isinstance(tangent, str) else (tangent,)
    tangent = tuple(tangent) or tuple(f"V_{n}" for n in names)
    if len(tangent) != len(names):
        raise InvalidArgumentError(f"tangent must give one tangent per name in wrt={names}, "
                                   f"got {len(tangent)}")
    return tangent


def _jvp_one(diagram: Diagram, name: str, tangent: VectorArg, rec: Recorder) -> Diagram:
    first = _first_occurrence(diagram, name)
    T = _vector_tensor(tangent, first.axes, _tensor_names(diagram), "tangent")

    def build(term: Graph, p: int):
        cut = term.tensors[p]
        tensors = list(term.tensors)
        tensors[p] = T.replace(axes=_axes_like(first, cut.indices))
        if _flat_sizes(cut) != _flat_sizes(first):
            raise PassError(f"occurrences of {name!r} split their axes into legs differently; "
                            "cannot differentiate")
        return term.replace(tensors=tensors), [T.name]

    terms = _product_rule(diagram, name, rec, build)
    return _wrap(terms) if terms else _zero(_terms(diagram)[0].output)


differentiate = register("differentiate", wrt=tuple)(_differentiate)
vjp = register("vjp", wrt=tuple, vector=str)(_vjp)
jvp = register("jvp", wrt=tuple, tangent=tuple)(_jvp)
