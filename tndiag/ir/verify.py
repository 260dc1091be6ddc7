"""``verify(diagram)``: the one function that checks every IR invariant.

Invariants (each failure raises :class:`~tndiag.errors.VerifyError` naming the culprit):

1. tensor names are identifiers, unique except for variables: several variable tensors with
   one name are occurrences of the same runtime tensor (X twice in KFC) and must agree on
   role and runtime shape;
2. an index name has one size everywhere; no tensor carries an index twice;
3. output indices are distinct and each sits on some tensor (no free-floating legs);
4. each kind's legs and attributes match ``KIND_TABLE`` (pattern: three single legs, positive
   stride/dilation, non-negative left padding (a negative right padding crops: that is how a
   transposed convolution's ``output_padding`` is expressed), ``O`` consistent with ``I, K``;
   sliced pattern: as a pattern for ``I = full_size``, at most ``I`` kept positions and a
   ``sample`` name that is an identifier and names no tensor; δ: 2+ legs of one size;
   variable: a role; constant: a number);
5. a :class:`Sum` has terms with identical outputs and consistent variables.
"""

from __future__ import annotations

import numbers
from typing import Dict, Mapping

from tndiag.errors import VerifyError
from tndiag.ir.graph import Diagram, Graph, Sum
from tndiag.ir.nodes import Index, Kind, Tensor
from tndiag.ir.sizes import sizes_equal

__all__ = ["verify", "KIND_CHECKS"]


def verify(diagram: Diagram) -> Diagram:
    """Check every invariant; return ``diagram`` unchanged or raise ``VerifyError``.

    >>> from tndiag.ir import Graph, Index, variable
    >>> n = Index("n", 2)
    >>> verify(Graph.of([variable("X", [n])], [n])) is not None
    True
    """
    if isinstance(diagram, Sum):
        _verify_sum(diagram)
    elif isinstance(diagram, Graph):
        _verify_graph(diagram)
    else:
        raise VerifyError(f"expected a Graph or Sum, got {type(diagram).__name__}")
    return diagram


def _verify_graph(graph: Graph) -> None:
    sizes: Dict[str, Index] = {}
    seen: Dict[str, Tensor] = {}
    for t in graph.tensors:
        if not isinstance(t, Tensor):
            raise VerifyError(f"graph holds a {type(t).__name__}, expected Tensor")
        if not t.name.isidentifier():
            raise VerifyError(f"tensor name {t.name!r} is not an identifier")
        _check_occurrence(t, seen.setdefault(t.name, t))
        names = [ix.name for ix in t.indices]
        dup = {x for x in names if names.count(x) > 1}
        if dup:
            raise VerifyError(f"tensor {t.name!r} carries index {sorted(dup)[0]!r} twice; "
                              "use a delta tensor for diagonals")
        for ix in t.indices:
            _check_index(ix, sizes, f"tensor {t.name!r}")
        KIND_CHECKS[t.kind](t)
    _check_samples(graph)
    _verify_output(graph, sizes)


def _check_samples(graph: Graph) -> None:
    """A sample name is not a tensor name, and sliced patterns sharing it keep equally many."""
    kept: Dict[str, Index] = {}
    names = set(graph.names)
    for t in graph.tensors:
        if t.kind is not Kind.SLICED or t.sample is None:
            continue
        if t.sample in names:
            raise VerifyError(f"sliced pattern {t.name!r}: sample {t.sample!r} is also the "
                              "name of a tensor")
        first = kept.setdefault(t.sample, t.indices[0])
        if sizes_equal(first.size, t.indices[0].size) is False:
            raise VerifyError(f"sliced patterns share sample {t.sample!r} but keep "
                              f"{first.size} and {t.indices[0].size} positions")


def _check_occurrence(t: Tensor, first: Tensor) -> None:
    if first is t:
        return
    if t.kind is not Kind.VARIABLE or first.kind is not Kind.VARIABLE:
        raise VerifyError(f"two tensors are named {t.name!r}; only variables may occur twice")
    same_shape = len(t.shape) == len(first.shape) and all(
        sizes_equal(a, b) is not False for a, b in zip(t.shape, first.shape))
    if t.role != first.role or not same_shape:
        raise VerifyError(f"variable {t.name!r} occurs twice with different role or shape "
                          f"({first.role} {_shape(first.shape)} vs {t.role} {_shape(t.shape)})")


def _shape(shape) -> str:
    return "[" + ", ".join(str(size) for size in shape) + "]"


def _check_index(ix: Index, sizes: Dict[str, Index], where: str) -> None:
    if not ix.name.isidentifier():
        raise VerifyError(f"index name {ix.name!r} on {where} is not an identifier")
    if isinstance(ix.size, int) and ix.size < 1:
        raise VerifyError(f"index {ix.name!r} on {where} has size {ix.size}; sizes must be >= 1")
    known = sizes.setdefault(ix.name, ix)
    if known.size != ix.size and sizes_equal(known.size, ix.size) is not True:
        raise VerifyError(f"index {ix.name!r} has size {ix.size} on {where} "
                          f"but size {known.size} elsewhere")


def _verify_output(graph: Graph, sizes: Mapping[str, Index]) -> None:
    seen = set()
    for ix in graph.output_indices:
        if ix.name in seen:
            raise VerifyError(f"output index {ix.name!r} appears twice")
        seen.add(ix.name)
        if ix.name not in sizes:
            raise VerifyError(f"output index {ix.name!r} is on no tensor; "
                              "add a constant ones tensor to broadcast")
        _check_index(ix, dict(sizes), "the output")


def _check_pattern(t: Tensor) -> None:
    if len(t.axes) != 3 or any(len(a) != 1 for a in t.axes):
        raise VerifyError(f"pattern {t.name!r} must have exactly three single legs (i, o, k)")
    _check_params(t)
    i, o, k = t.indices
    want = t.pattern_params.output_size(i.size, k.size)
    if sizes_equal(o.size, want) is False:
        raise VerifyError(f"pattern {t.name!r}: o leg {o.name!r} has size {o.size}, but "
                          f"I={i.size}, K={k.size}, {t.params} give O={want}")
    if isinstance(want, int) and want < 1:
        raise VerifyError(f"pattern {t.name!r}: kernel (K={k.size}, dilation "
                          f"{t.pattern_params.dilation}) is larger than the padded input "
                          f"(I={i.size})")


def _check_params(t: Tensor) -> None:
    p = t.params
    if p is None:
        raise VerifyError(f"{t.kind.value} {t.name!r} has no pattern parameters")
    if p.stride < 1 or p.dilation < 1:
        raise VerifyError(f"{t.kind.value} {t.name!r}: stride and dilation must be >= 1, got {p}")
    if p.pad_left < 0:
        raise VerifyError(f"{t.kind.value} {t.name!r}: pad_left must be >= 0, got {p}")


def _check_reduced(t: Tensor) -> None:
    if len(t.axes) != 2 or any(len(a) != 1 for a in t.axes):
        raise VerifyError(f"reduced pattern {t.name!r} must have exactly two single legs (i, k)")
    _check_params(t)
    i, k = t.indices
    want = t.pattern_params.output_size(i.size, k.size)
    if t.out_size is None or sizes_equal(t.out_size, want) is False:
        raise VerifyError(f"reduced pattern {t.name!r}: summed size {t.out_size} but "
                          f"I={i.size}, K={k.size}, {t.params} give O={want}")


def _check_sliced(t: Tensor) -> None:
    if len(t.axes) != 3 or any(len(a) != 1 for a in t.axes):
        raise VerifyError(f"sliced pattern {t.name!r} must have exactly three single legs "
                          "(j, o, k)")
    _check_params(t)
    j, o, k = t.indices
    if t.full_size is None:
        raise VerifyError(f"sliced pattern {t.name!r} has no full_size (the unsliced I)")
    if not (isinstance(t.sample, str) and t.sample.isidentifier()):
        raise VerifyError(f"sliced pattern {t.name!r}: sample must name the run-time vector "
                          f"of kept positions (an identifier), got {t.sample!r}")
    if isinstance(j.size, int) and isinstance(t.full_size, int) and j.size > t.full_size:
        raise VerifyError(f"sliced pattern {t.name!r} keeps {j.size} positions of leg "
                          f"{j.name!r} but the full size is only {t.full_size}")
    _check_pattern(t.replace(kind=Kind.PATTERN, axes=((Index(j.name, t.full_size),),
                                                      (o,), (k,))))


def _check_delta(t: Tensor) -> None:
    if len(t.indices) < 2:
        raise VerifyError(f"delta {t.name!r} needs at least two legs, has {len(t.indices)}")
    first = t.indices[0]
    for ix in t.indices[1:]:
        if sizes_equal(ix.size, first.size) is False:
            raise VerifyError(f"delta {t.name!r}: legs {first.name!r} ({first.size}) and "
                              f"{ix.name!r} ({ix.size}) differ in size")


def _check_variable(t: Tensor) -> None:
    if t.role is None:
        raise VerifyError(f"variable {t.name!r} has no role (input, parameter or vector)")


def _check_constant(t: Tensor) -> None:
    if not isinstance(t.value, numbers.Number) or isinstance(t.value, bool):
        raise VerifyError(f"constant {t.name!r} needs a numeric value, got {t.value!r}")


#: Per-kind invariant checks (a test asserts every ``Kind`` has a row).
KIND_CHECKS = {
    Kind.VARIABLE: _check_variable,
    Kind.PATTERN: _check_pattern,
    Kind.REDUCED: _check_reduced,
    Kind.SLICED: _check_sliced,
    Kind.DELTA: _check_delta,
    Kind.CONSTANT: _check_constant,
}


def _axes_text(axes) -> str:
    """``[n, (g co), o1]`` with sizes: ``[n:2, (g:2 co:3), o1:5]``."""
    parts = [" ".join(f"{ix.name}:{ix.size}" for ix in axis) for axis in axes]
    shown = (p if len(a) == 1 else f"({p})" for p, a in zip(parts, axes, strict=True))
    return "[" + ", ".join(shown) + "]"


def _verify_sum(s: Sum) -> None:
    if not s.terms:
        raise VerifyError("a Sum needs at least one term")
    variables: Dict[str, Tensor] = {}
    for n, term in enumerate(s.terms):
        if not isinstance(term, Graph):
            raise VerifyError(f"term {n} of the sum is a {type(term).__name__}, expected Graph")
        _verify_graph(term)
        if term.output != s.terms[0].output:
            raise VerifyError(f"term {n} of the sum has output {_axes_text(term.output)}, "
                              f"term 0 has {_axes_text(s.terms[0].output)}")
        for t in term.variables():  # occurrences may differ in leg names, not role/shape
            _check_occurrence(t, variables.setdefault(t.name, t))
