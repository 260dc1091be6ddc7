"""The immutable diagram: :class:`Graph` (one tensor network) and :class:`Sum` (of several)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Iterable, Mapping, Tuple, Union

import sympy

from tndiag.errors import UnknownNameError
from tndiag.ir.nodes import Axis, Index, Tensor, _axes, _axis_str, _prod
from tndiag.ir.sizes import Size, substitute_size

__all__ = ["Graph", "Sum", "Diagram"]


@dataclass(frozen=True)
class Graph:
    """A tensor network: tensors plus the output axes (open legs), frozen and hashable.

    An index name on several tensors is one edge (a hyperedge when on more than two).
    An index in ``output`` is an open leg; indices not in ``output`` are summed.

    >>> from tndiag.ir import variable
    >>> n, i = Index("n", 2), Index("i", 3)
    >>> g = Graph.of([variable("X", [n, i])], [n])
    >>> g.output
    ((n:2,),)
    """

    tensors: Tuple[Tensor, ...]
    output: Tuple[Axis, ...]

    @staticmethod
    def of(tensors: Iterable[Tensor], output) -> "Graph":
        """Build a graph from tensors and output legs (indices or tuples of indices)."""
        return Graph(tuple(tensors), _axes(output))

    # -- lookups -------------------------------------------------------------------------
    @property
    def output_indices(self) -> Tuple[Index, ...]:
        """The open legs, flattened."""
        return tuple(ix for axis in self.output for ix in axis)

    @property
    def output_shape(self) -> Tuple[Size, ...]:
        """Runtime shape of the result (products for fused output axes)."""
        return tuple(_prod(ix.size for ix in axis) for axis in self.output)

    @property
    def names(self) -> Tuple[str, ...]:
        """Tensor names in order."""
        return tuple(t.name for t in self.tensors)

    def occurrences(self, name: str) -> Tuple[Tensor, ...]:
        """Every tensor called ``name`` (a variable may occur several times, e.g. X in KFC)."""
        found = tuple(t for t in self.tensors if t.name == name)
        if not found:
            raise UnknownNameError(f"no tensor named {name!r} in the diagram; "
                                   f"expected one of {sorted(set(self.names))}")
        return found

    def tensor(self, name: str) -> Tensor:
        """The (first) tensor called ``name``; raises :class:`UnknownNameError` if none."""
        for t in self.tensors:
            if t.name == name:
                return t
        raise UnknownNameError(f"no tensor named {name!r} in the diagram; "
                               f"expected one of {list(self.names)}")

    def indices(self) -> Dict[str, Index]:
        """Every index of the diagram by name (tensor legs first, then output)."""
        found: Dict[str, Index] = {}
        for t in self.tensors:
            for ix in t.indices:
                found.setdefault(ix.name, ix)
        for ix in self.output_indices:
            found.setdefault(ix.name, ix)
        return found

    def index(self, name: str) -> Index:
        """The index called ``name``; raises :class:`UnknownNameError` naming the choices."""
        table = self.indices()
        if name not in table:
            raise UnknownNameError(f"no index named {name!r} in the diagram; "
                                   f"expected one of {sorted(table)}")
        return table[name]

    def variables(self) -> Tuple[Tensor, ...]:
        """The user-supplied tensors (every occurrence), in order."""
        from tndiag.ir.nodes import Kind

        return tuple(t for t in self.tensors if t.kind is Kind.VARIABLE)

    def free_symbols(self) -> frozenset:
        """Sympy symbols still appearing in sizes (empty when concrete)."""
        syms = set()
        for ix in self.indices().values():
            if isinstance(ix.size, sympy.Basic):
                syms |= ix.size.free_symbols
        for t in self.tensors:
            if isinstance(t.out_size, sympy.Basic):
                syms |= t.out_size.free_symbols
        return frozenset(syms)

    def is_concrete(self) -> bool:
        """Whether every size is an int."""
        return not self.free_symbols()

    # -- rewriting -----------------------------------------------------------------------
    def replace(self, tensors=None, output=None) -> "Graph":
        """A copy with new tensors and/or output."""
        return Graph(tuple(self.tensors if tensors is None else tensors),
                     self.output if output is None else _axes(output))

    def map_indices(self, fn) -> "Graph":
        """Apply ``fn: Index -> Index`` to every leg and output index."""
        def axes(ax):
            return tuple(tuple(fn(ix) for ix in axis) for axis in ax)

        tensors = [t.replace(axes=axes(t.axes)) for t in self.tensors]
        return Graph(tuple(tensors), axes(self.output))

    def substitute(self, values: Mapping[str, int]) -> "Graph":
        """Specialise symbolic sizes: ``values`` maps symbol names to ints.

        >>> from tndiag.ir import variable
        >>> g = Graph.of([variable("X", [Index("n", "N")])], [Index("n", "N")])
        >>> g.substitute({"N": 4}).output
        ((n:4,),)
        """
        g = self.map_indices(lambda ix: Index(ix.name, substitute_size(ix.size, values)))
        tensors = [t.replace(out_size=substitute_size(t.out_size, values))
                   if t.out_size is not None else t for t in g.tensors]
        return g.replace(tensors=tensors)

    def rename_indices(self, mapping: Mapping[str, str]) -> "Graph":
        """Rename indices by name (unlisted names stay)."""
        return self.map_indices(lambda ix: Index(mapping.get(ix.name, ix.name), ix.size))

    def _repr_svg_(self) -> str:
        """The picture Jupyter shows (drawn by :func:`tndiag.render.to_svg`)."""
        from tndiag.render import to_svg

        return to_svg(self)

    def __repr__(self) -> str:
        body = ", ".join(repr(t) for t in self.tensors)
        out = ", ".join(_axis_str(a) for a in self.output)
        return f"Graph([{body}] -> [{out}])"


@dataclass(frozen=True)
class Sum:
    """A sum of diagrams with the same output (product rule, bias terms).

    >>> from tndiag.ir import variable
    >>> n = Index("n", 2)
    >>> s = Sum((Graph.of([variable("A", [n])], [n]), Graph.of([variable("B", [n])], [n])))
    >>> len(s.terms)
    2
    """

    terms: Tuple[Graph, ...]

    @property
    def output(self) -> Tuple[Axis, ...]:
        """The common output axes (of the first term)."""
        return self.terms[0].output

    @property
    def output_shape(self) -> Tuple[Size, ...]:
        """Runtime shape of the result."""
        return self.terms[0].output_shape

    def substitute(self, values: Mapping[str, int]) -> "Sum":
        """Specialise symbolic sizes in every term."""
        return Sum(tuple(t.substitute(values) for t in self.terms))

    def variables(self) -> Tuple[Tensor, ...]:
        """Distinct variable tensors over all terms, by first occurrence."""
        seen: Dict[str, Tensor] = {}
        for term in self.terms:
            for t in term.variables():
                seen.setdefault(t.name, t)
        return tuple(seen.values())

    def is_concrete(self) -> bool:
        """Whether every term is concrete."""
        return all(t.is_concrete() for t in self.terms)

    def _repr_svg_(self) -> str:
        """The picture Jupyter shows: the terms side by side, joined by ``+``."""
        from tndiag.render import to_svg

        return to_svg(self)

    def __repr__(self) -> str:
        return "Sum(" + " + ".join(repr(t) for t in self.terms) + ")"


#: Anything passes and codegen accept.
Diagram = Union[Graph, Sum]
