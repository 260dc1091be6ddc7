"""The statements of a parsed ``.tnd`` file, as plain records with source positions.

The lark transformer (:mod:`tndiag.syntax.transformer`) produces these; the scope
(:mod:`tndiag.syntax.build`) turns them into the IR in file order.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Tuple, Union

from tndiag.ir import Kind, PatternParams, Role, Size

__all__ = ["Pos", "Ref", "Legs", "Declaration", "IndexSizes", "Factor", "Term", "Output",
           "Statement"]


@dataclass(frozen=True)
class Pos:
    """A 1-based line and column in the source text."""

    line: int
    column: int


@dataclass(frozen=True)
class Ref:
    """An index written in the text, maybe with a size (``n`` or ``n: N``)."""

    name: str
    size: Optional[Size]
    pos: Pos


#: A leg list: runtime axes, each a tuple of index references.
Legs = Tuple[Tuple[Ref, ...], ...]


@dataclass(frozen=True)
class Declaration:
    """``X : input [...]`` or ``P = pattern(...)``: a tensor's name, kind and attributes.

    ``out_size`` is None for a reduced pattern whose summed size is to be inferred;
    ``full_size`` and ``sample`` are a sliced pattern's ``I`` and position vector.
    """

    name: str
    kind: Kind
    legs: Legs
    pos: Pos
    role: Optional[Role] = None
    params: Optional[PatternParams] = None
    value: Union[int, float, None] = None
    out_size: Optional[Size] = None
    full_size: Optional[Size] = None
    sample: Optional[str] = None


@dataclass(frozen=True)
class IndexSizes:
    """``index n: N, ci: 3``."""

    refs: Tuple[Ref, ...]


@dataclass(frozen=True)
class Factor:
    """One factor of a product: a declared tensor, maybe with other legs (``X[n, j]``)."""

    name: str
    legs: Optional[Legs]
    pos: Pos


@dataclass(frozen=True)
class Term:
    """A product of factors (empty for the product ``1``)."""

    factors: Tuple[Factor, ...]
    pos: Pos


@dataclass(frozen=True)
class Output:
    """``Y[legs] = terms`` (``add=False``) or ``Y[legs] += terms`` (``add=True``)."""

    name: str
    legs: Legs
    add: bool
    terms: Tuple[Term, ...]
    pos: Pos


Statement = Union[IndexSizes, Declaration, Output]
