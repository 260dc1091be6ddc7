"""Indices, node kinds and tensors: the vocabulary of a tensor-network diagram.

| kind            | legs           | attributes                 | meaning                      |
|-----------------|----------------|----------------------------|------------------------------|
| ``variable``    | any            | role: input/parameter/vector | supplied at run time       |
| ``pattern`` (Π) | (i, o, k)      | stride, pad_left/right, dilation | ``[i = o·S + k·D − P_l]`` |
| ``reduced``     | (i, k)         | as Π, plus the summed ``O`` | ``Σ_o Π[i,o,k]`` (KFAC-reduce) |
| ``sliced``      | (j, o, k)      | as Π, plus ``full_size`` I and ``sample`` | ``Π[s[j], o, k]`` |
| ``delta`` (δ)   | 2+ of one size | —                          | Kronecker delta / copy tensor |
| ``constant``    | any            | value (a number)           | filled with ``value``        |

``I`` and ``K`` of a pattern are the sizes of its ``i`` and ``k`` legs; ``O`` is the size of
its ``o`` leg and must equal :func:`~tndiag.ir.sizes.pattern_output_size`.

A **sliced pattern** is a pattern whose ``i`` leg is restricted to run-time-chosen positions
(tensor dropout, docs/method.md): its first leg ``j`` has the number of kept positions as
its size, ``full_size`` is the pattern's ``I``, and ``sample`` names the integer vector
``s`` (length ``|j|``, values in ``[0, I)``) that the compiled program takes as an input, so
one plan serves every draw of the same size. It stays structured: the codegen gathers the
operand on its ``o`` leg at ``o(s[j], k)`` instead of building a dense tensor.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Tuple, Union

from tndiag.errors import InvalidArgumentError
from tndiag.ir.sizes import Size, as_size, pattern_output_size

__all__ = [
    "Index",
    "Axis",
    "Kind",
    "Role",
    "PatternParams",
    "Tensor",
    "KIND_TABLE",
    "variable",
    "pattern",
    "reduced_pattern",
    "sliced_pattern",
    "delta",
    "constant",
    "flat",
]


@dataclass(frozen=True, order=False)
class Index:
    """A labelled edge of the diagram; the same name on several tensors joins them.

    >>> Index("i1", 8)
    i1:8
    """

    name: str
    size: Size

    def __post_init__(self) -> None:
        object.__setattr__(self, "size", as_size(self.size))

    def __repr__(self) -> str:
        return f"{self.name}:{self.size}"


#: One runtime axis of a tensor: one index, or several fused row-major (``(g co)``).
Axis = Tuple[Index, ...]


class Kind(str, enum.Enum):
    """The node kinds (see the module table)."""

    VARIABLE = "variable"
    PATTERN = "pattern"
    REDUCED = "reduced"
    SLICED = "sliced"
    DELTA = "delta"
    CONSTANT = "constant"

    def __str__(self) -> str:
        return self.value


class Role(str, enum.Enum):
    """What a variable tensor stands for."""

    INPUT = "input"
    PARAMETER = "parameter"
    VECTOR = "vector"

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class PatternParams:
    """Hyper-parameters of one index pattern (one spatial dimension)."""

    stride: int = 1
    pad_left: int = 0
    pad_right: int = 0
    dilation: int = 1

    def __str__(self) -> str:
        """As the text language writes it: ``stride=2, padding=(1, 1), dilation=1``."""
        return (f"stride={self.stride}, padding=({self.pad_left}, {self.pad_right}), "
                f"dilation={self.dilation}")

    def output_size(self, I: Size, K: Size) -> Size:
        """The size ``O`` of the pattern's ``o`` leg for input size ``I`` and kernel ``K``."""
        return pattern_output_size(I, K, self.stride, self.pad_left, self.pad_right,
                                   self.dilation)


@dataclass(frozen=True)
class KindInfo:
    """Static description of a node kind: its legs and which attribute it carries."""

    legs: str
    attribute: str
    meaning: str


#: One row per kind; tests check that every per-kind table in tndiag has every kind.
KIND_TABLE = {
    Kind.VARIABLE: KindInfo("any", "role", "a tensor the user supplies at run time"),
    Kind.PATTERN: KindInfo("(i, o, k)", "params", "Π[i,o,k] = 1 iff i = o·S + k·D − P_l"),
    Kind.REDUCED: KindInfo("(i, k)", "params, out_size", "Σ_o Π[i,o,k]"),
    Kind.SLICED: KindInfo("(j, o, k)", "params, full_size, sample", "Π[s[j],o,k]"),
    Kind.DELTA: KindInfo("2+ of one size", "-", "Kronecker delta / copy tensor"),
    Kind.CONSTANT: KindInfo("any", "value", "a tensor filled with value"),
}


@dataclass(frozen=True)
class Tensor:
    """A node of the diagram: a name, a kind, its legs grouped into runtime axes.

    ``axes`` is the runtime layout: each axis is a tuple of indices fused row-major, so a
    weight ``[(g co), ci, k1]`` has three axes and four indices. Use the constructors
    :func:`variable`, :func:`pattern`, :func:`delta`, ... rather than this class directly.
    """

    name: str
    kind: Kind
    axes: Tuple[Axis, ...]
    role: Union[Role, None] = None
    params: Union[PatternParams, None] = None
    value: Union[float, int, None] = None
    out_size: Union[Size, None] = None
    full_size: Union[Size, None] = None
    sample: Union[str, None] = None
    _indices: Tuple[Index, ...] = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_indices", tuple(ix for axis in self.axes for ix in axis))

    @property
    def indices(self) -> Tuple[Index, ...]:
        """The tensor's legs, flattened in order."""
        return self._indices

    @property
    def shape(self) -> Tuple[Size, ...]:
        """Runtime shape: one size per axis (products for fused axes)."""
        return tuple(_prod(ix.size for ix in axis) for axis in self.axes)

    @property
    def pattern_params(self) -> PatternParams:
        """The parameters of a pattern or reduced pattern (typed: never None).

        >>> pattern("P", Index("i", 5), Index("o", 3), Index("k", 3)).pattern_params.stride
        1
        """
        if self.params is None:
            raise InvalidArgumentError(f"tensor {self.name!r} ({self.kind.value}) has no "
                                       "pattern parameters")
        return self.params

    @property
    def fill_value(self) -> float:
        """The value of a constant (typed: never None).

        >>> constant("c", 0.5).fill_value
        0.5
        """
        if self.value is None:
            raise InvalidArgumentError(f"tensor {self.name!r} ({self.kind.value}) has no value")
        return float(self.value)

    def replace(self, **changes: object) -> "Tensor":
        """A copy with some fields changed (``axes``, ``name``, ...)."""
        fields = dict(name=self.name, kind=self.kind, axes=self.axes, role=self.role,
                      params=self.params, value=self.value, out_size=self.out_size,
                      full_size=self.full_size, sample=self.sample)
        fields.update(changes)
        return Tensor(**fields)  # type: ignore[arg-type]

    def __repr__(self) -> str:
        legs = ", ".join(_axis_str(a) for a in self.axes)
        extra = {Kind.VARIABLE: f" {self.role.value if self.role else ''}",
                 Kind.PATTERN: f" {self.params!r}",
                 Kind.REDUCED: f" {self.params!r} O={self.out_size}",
                 Kind.SLICED: f" {self.params!r} I={self.full_size} sample={self.sample}",
                 Kind.CONSTANT: f" value={self.value}", Kind.DELTA: ""}[self.kind]
        return f"{self.name}:{self.kind.value}{extra}[{legs}]"


def _prod(values) -> Size:
    out: Size = 1
    for v in values:
        out = out * v
    return as_size(out)


def _axis_str(axis: Axis) -> str:
    if len(axis) == 1:
        return repr(axis[0])
    return "(" + " ".join(repr(ix) for ix in axis) + ")"


def _axes(legs) -> Tuple[Axis, ...]:
    out = []
    for leg in legs:
        if isinstance(leg, Index):
            out.append((leg,))
        else:
            out.append(tuple(leg))
    return tuple(out)


def flat(legs) -> Tuple[Index, ...]:
    """Flatten legs given as indices or tuples of indices."""
    return tuple(ix for axis in _axes(legs) for ix in axis)


def variable(name: str, legs, role: Union[Role, str] = Role.INPUT) -> Tensor:
    """A user-supplied tensor; ``legs`` are indices or tuples of indices (fused axes).

    >>> variable("X", [Index("n", 2), Index("i", 5)])
    X:variable input[n:2, i:5]
    """
    return Tensor(name, Kind.VARIABLE, _axes(legs), role=Role(role))


def pattern(name: str, i: Index, o: Index, k: Index, stride: int = 1, pad_left: int = 0,
            pad_right: int = 0, dilation: int = 1) -> Tensor:
    """An index pattern Π with legs (i, o, k).

    >>> pattern("P", Index("i", 5), Index("o", 3), Index("k", 3))
    P:pattern PatternParams(stride=1, pad_left=0, pad_right=0, dilation=1)[i:5, o:3, k:3]
    """
    params = PatternParams(stride, pad_left, pad_right, dilation)
    return Tensor(name, Kind.PATTERN, ((i,), (o,), (k,)), params=params)


def reduced_pattern(name: str, i: Index, k: Index, out_size: Size, stride: int = 1,
                    pad_left: int = 0, pad_right: int = 0, dilation: int = 1) -> Tensor:
    """A pattern summed over its output leg, ``Σ_o Π[i,o,k]``, with legs (i, k)."""
    params = PatternParams(stride, pad_left, pad_right, dilation)
    return Tensor(name, Kind.REDUCED, ((i,), (k,)), params=params, out_size=as_size(out_size))


def sliced_pattern(name: str, j: Index, o: Index, k: Index, full_size: Size, sample: str,
                   stride: int = 1, pad_left: int = 0, pad_right: int = 0,
                   dilation: int = 1) -> Tensor:
    """A pattern with input size ``full_size`` whose ``i`` leg is ``j``: ``Π[s[j], o, k]``.

    ``sample`` names the run-time vector ``s`` of kept positions (see the module docstring).

    >>> sliced_pattern("P", Index("j", 2), Index("o", 3), Index("k", 3), 5, "keep_i").sample
    'keep_i'
    """
    params = PatternParams(stride, pad_left, pad_right, dilation)
    return Tensor(name, Kind.SLICED, ((j,), (o,), (k,)), params=params,
                  full_size=as_size(full_size), sample=sample)


def delta(name: str, legs) -> Tensor:
    """A Kronecker delta (copy tensor) over two or more legs of one size."""
    return Tensor(name, Kind.DELTA, _axes(legs))


def constant(name: str, value: Union[float, int], legs=()) -> Tensor:
    """A tensor filled with ``value`` (no legs: a scalar factor).

    >>> constant("c", 0.5)
    c:constant value=0.5[]
    """
    return Tensor(name, Kind.CONSTANT, _axes(legs), value=value)
