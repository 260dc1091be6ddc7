"""``subsample``: keep run-time-chosen slices of one index (tensor dropout, docs/method.md §5).

``subsample{index=i1,keep=0.5,mode=bernoulli,size=4,sample=keep_i1}`` restricts the index to
``size`` positions on every tensor that carries it:

- a variable or constant keeps the slices (the caller supplies the sliced tensor, e.g.
  ``X[:, :, s]``, so the program really works on the smaller leg);
- a pattern whose ``i`` leg it is becomes a *sliced pattern* ``Π[s[j], o, k]`` (still
  structured, never a dense Π); ``s`` is the run-time vector of kept positions, an input
  of the compiled program named ``sample``, so one plan serves every draw of the same size;
- an output leg keeps the slices too: the result holds the kept slices, in the order of
  ``s`` (the dropped ones are zero in the estimate).

A scalar constant rescales so that the estimate is unbiased: ``1/keep`` when every position
is kept independently with probability ``keep`` (``mode=bernoulli``; the number kept is
random, ``size`` is the number drawn) and ``I/size`` for ``size`` positions drawn without
replacement (``mode=fixed``). The diagram's value is a sum over the index's positions
(or, for an output leg, one slice per position), so either estimate has the exact value as
its mean. ``size`` defaults to ``round(keep·I)`` (a symbol ``M_<index>`` when ``I`` is one).

An index on a reduced pattern, a δ, or a pattern's ``o`` or ``k`` leg cannot be sampled.

>>> from tndiag import ops
>>> g = subsample(ops.conv_weight_vjp((2, 3, 8), (4, 3, 3)), "i1", 0.5)
>>> g.tensor("X").shape, g.tensor("P1").kind.value, g.tensor("P1").sample
((2, 3, 4), 'sliced', 'keep_i1')
"""

from __future__ import annotations

import numbers
from typing import Callable, Dict, List

from tndiag.errors import InvalidArgumentError, PassError, UnknownNameError
from tndiag.ir import Diagram, Graph, Index, Kind, Size, Tensor, as_size, constant
from tndiag.ir.nodes import sliced_pattern
from tndiag.passes.base import SIZE, Recorder, fresh_name, index_names, map_terms, register

__all__ = ["subsample", "SCALES", "kept_size", "check_keep", "check_mode"]

#: mode -> the unbiasing factor from (keep, full size I, kept size m).
SCALES: Dict[str, Callable[[float, Size, Size], object]] = {
    "bernoulli": lambda keep, I, m: 1 / keep,
    "fixed": lambda keep, I, m: I / m,
}


def check_keep(keep: object, what: str = "keep") -> float:
    """``keep`` as a float in (0, 1]; an :class:`InvalidArgumentError` naming it otherwise.

    >>> check_keep(0.25)
    0.25
    """
    if isinstance(keep, bool) or not isinstance(keep, numbers.Real) or \
            not 0 < float(keep) <= 1:
        raise InvalidArgumentError(f"{what} must be a probability in (0, 1], got {keep!r}")
    return float(keep)


def check_mode(mode: object) -> str:
    """``mode`` if it is a row of :data:`SCALES`, else an :class:`InvalidArgumentError`."""
    if not isinstance(mode, str) or mode not in SCALES:
        raise InvalidArgumentError(f"mode must be one of {sorted(SCALES)}, got {mode!r}")
    return mode


def kept_size(keep: float, size: Size, index: str = "i") -> Size:
    """The default number of kept positions: ``round(keep·I)``, at least 1.

    >>> kept_size(0.5, 7), kept_size(0.5, as_size("I1"), "i1")
    (4, M_i1)
    """
    if isinstance(size, int):
        return max(1, min(size, int(keep * size + 0.5)))
    return as_size(f"M_{index}")


def _full_size(diagram: Diagram, index: str) -> Size:
    terms = diagram.terms if not isinstance(diagram, Graph) else (diagram,)
    for term in terms:
        found = term.indices().get(index)
        if found is not None:
            return found.size
    raise UnknownNameError(f"subsample: no tensor carries an index named {index!r}; expected "
                           f"one of {sorted(index_names(diagram))}")


def _slice_tensor(t: Tensor, index: str, m: Size, sample: str) -> Tensor:
    names = [ix.name for ix in t.indices]
    if index not in names:
        return t
    where = f"{t.kind.value} {t.name!r}"
    if t.kind in (Kind.VARIABLE, Kind.CONSTANT):
        return t.replace(axes=tuple(tuple(Index(index, m) if ix.name == index else ix
                                          for ix in axis) for axis in t.axes))
    if t.kind is Kind.PATTERN and names[0] == index:
        i, o, k = t.indices
        p = t.pattern_params
        return sliced_pattern(t.name, Index(index, m), o, k, i.size, sample, p.stride,
                              p.pad_left, p.pad_right, p.dilation)
    if t.kind is Kind.PATTERN:
        where = f"the {'ok'[names.index(index) - 1]} leg of pattern {t.name!r}"
    raise PassError(f"subsample: index {index!r} is on {where}; only variables, constants "
                    "and a pattern's i leg can be sampled")


def _subsample(diagram: Diagram, rec: Recorder, index: str = "", keep: float = 1.0,
               mode: str = "bernoulli", size=None, sample: str = "") -> Diagram:
    """Keep ``size`` run-time-chosen slices of ``index`` and rescale (see the module doc).

    >>> from tndiag import ops
    >>> g = subsample(ops.conv_weight_vjp((2, 6, 5), (4, 6, 3)), "ci", 0.5, "fixed")
    >>> g.output_shape, [t.value for t in g.tensors if t.kind.value == "constant"]
    ((4, 3, 3), [2.0])
    """
    keep, mode = check_keep(keep), check_mode(mode)
    I = _full_size(diagram, index)
    m = kept_size(keep, I, index) if size is None else as_size(size)
    if isinstance(m, int) and (m < 1 or (isinstance(I, int) and m > I)):
        raise InvalidArgumentError(f"subsample: size must be between 1 and the size {I} of "
                                   f"index {index!r}, got {m}")
    sample = sample or f"keep_{index}"
    terms = diagram.terms if not isinstance(diagram, Graph) else (diagram,)
    if not sample.isidentifier() or any(sample in term.names for term in terms):
        raise InvalidArgumentError(f"subsample: sample names the run-time positions and must "
                                   f"be an identifier that names no tensor, got {sample!r}")
    _check_occurrences(terms, index)
    value = SCALES[mode](keep, I, m)
    touched: List[str] = []

    def one(term: Graph) -> Graph:
        tensors = [_slice_tensor(t, index, m, sample) for t in term.tensors]
        touched.extend(t.name for t, new in zip(term.tensors, tensors) if t is not new)
        output = tuple(tuple(Index(index, m) if ix.name == index else ix for ix in axis)
                       for axis in term.output)
        if value != 1 and index in term.indices():  # a term without the index is exact
            name = fresh_name("keep_scale", set(term.names))
            tensors.append(constant(name, _number(value)))
        return Graph(tuple(tensors), output)

    out = map_terms(diagram, one)
    rec.fired("subsample", f"{index}: {m} of {I} positions kept ({mode}, keep={keep}), "
              f"scaled by {value}; positions are the run-time input {sample!r}",
              tensors=tuple(dict.fromkeys(touched)), indices=(index,))
    return out


def _check_occurrences(terms, index: str) -> None:
    """Every occurrence of a variable carrying ``index`` must carry it (one runtime shape)."""
    occurrences: Dict[str, List[bool]] = {}
    for term in terms:
        for t in term.variables():
            occurrences.setdefault(t.name, []).append(index in [ix.name for ix in t.indices])
    for name, carries in occurrences.items():
        if any(carries) and not all(carries):
            raise PassError(f"subsample: index {index!r} is on some occurrences of variable "
                            f"{name!r} only; their kept slices would differ in shape")


def _number(value: object) -> float:
    try:
        return float(value)  # type: ignore[arg-type]
    except TypeError:
        raise PassError(f"subsample: the scale {value} is symbolic; give size= and the "
                        "index's size as numbers for mode=fixed") from None


subsample = register("subsample", index=str, keep=float, mode=str, size=SIZE,
                     sample=str)(_subsample)

