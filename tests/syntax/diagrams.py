"""Hypothesis strategies for random valid diagrams (every node kind, fused legs, sums)."""

from __future__ import annotations

import sympy
from hypothesis import assume
from hypothesis import strategies as st

from tndiag.errors import VerifyError
from tndiag.ir import (
    Graph,
    Index,
    PatternParams,
    Role,
    Sum,
    Tensor,
    as_size,
    constant,
    delta,
    variable,
    verify,
)
from tndiag.ir.nodes import Kind

__all__ = ["sizes", "expressions", "diagrams", "graphs"]

SYMBOLS = [as_size(s) for s in ("N", "M", "C_in", "I1", "K1")]
NAMES = ["a", "b", "c", "n", "g", "co", "i1", "o1", "k1", "input", "pattern", "x_2", "ß"]


def _combine(children):
    a, b = children, children
    return st.one_of(
        st.tuples(a, b).map(lambda p: p[0] + p[1]),
        st.tuples(a, b).map(lambda p: p[0] * p[1]),
        st.tuples(a, st.integers(2, 4)).map(lambda p: p[0] / p[1]),
        st.tuples(a, st.integers(1, 3)).map(lambda p: p[0] - p[1]),
        st.tuples(a, st.integers(2, 3)).map(lambda p: sympy.floor((p[0] + 1) / p[1]) + 1),
        st.tuples(a, st.integers(2, 3)).map(lambda p: sympy.ceiling(p[0] / p[1])),
        st.tuples(a, b).map(lambda p: sympy.Max(p[0], p[1])),
        st.tuples(a, st.integers(2, 3)).map(lambda p: sympy.Mod(p[0], p[1]) + 1),
        st.tuples(a, st.integers(2, 3)).map(lambda p: p[0] ** p[1]),
    )


#: Symbolic size expressions built at random (for the size round trip of test_parse).
expressions = st.recursive(st.sampled_from(SYMBOLS), _combine, max_leaves=4).map(as_size).filter(
    lambda s: isinstance(s, int) or not s.is_number)


def _pool():
    """A fixed pool of symbolic sizes covering every operation the language prints."""
    N, M, C, I, K = SYMBOLS
    pool = [N, M, C, I, K, C / 2, C * K, 2 * I + K - 2, I - K + 1, N * M / 4, I ** 2,
            sympy.floor((I + 1) / 2) + 1, sympy.floor(I / 2 - sympy.Rational(3, 2)) + 1,
            sympy.ceiling(N / 3), sympy.Max(N, M), sympy.Min(I, K + 1), sympy.Mod(N, 3) + 1,
            (N + M) * (I - 1), -K + 2 * N, I / K, sympy.floor((I - K) / 3) + M]
    return [as_size(e) for e in pool]


#: Sizes of random diagrams: small ints or symbolic expressions from a fixed pool (fast).
sizes = st.one_of(st.integers(1, 6), st.sampled_from(_pool()))


@st.composite
def _params(draw):
    pad = draw(st.integers(0, 2))
    right = draw(st.sampled_from([pad, pad, draw(st.integers(-1, 3))]))
    return PatternParams(draw(st.integers(1, 3)), pad, right, draw(st.integers(1, 2)))


@st.composite
def _pattern(draw, name, pool):
    """A pattern (or reduced pattern) whose o size is inferred or an unrelated symbol."""
    i = draw(st.sampled_from(pool)) if pool and draw(st.booleans()) else None
    i = i or Index(draw(st.sampled_from(NAMES)), draw(sizes))
    k = Index(draw(st.sampled_from(NAMES)), draw(st.integers(1, 3) | st.just(as_size("K1"))))
    params = draw(_params())
    out = params.output_size(i.size, k.size)
    if isinstance(out, int):
        assume(out >= 1)
    elif draw(st.integers(0, 3)) == 0:  # an o size verify cannot refute: printed explicitly
        out = as_size(draw(st.sampled_from(["O1", "O2"])))
    if draw(st.integers(0, 3)) == 0:
        return Tensor(name, Kind.REDUCED, ((i,), (k,)), params=params, out_size=out)
    o = Index(draw(st.sampled_from(NAMES)), out)
    return Tensor(name, Kind.PATTERN, ((i,), (o,), (k,)), params=params)


@st.composite
def _legs(draw, pool, min_size=0):
    chosen = draw(st.lists(st.sampled_from(pool), min_size=min_size, max_size=4,
                           unique_by=lambda ix: ix.name)) if pool else []
    axes, rest = [], list(chosen)
    while rest:
        width = draw(st.integers(0 if draw(st.integers(0, 9)) == 0 else 1, min(3, len(rest))))
        axes.append(tuple(rest[:width]))
        rest = rest[width:]
    return axes


@st.composite
def _tensor(draw, name, pool):
    kind = draw(st.sampled_from(["variable", "variable", "pattern", "delta", "constant"]))
    if kind == "pattern":
        return draw(_pattern(name, pool))
    if kind == "delta":
        size = draw(sizes) if not pool or draw(st.booleans()) else draw(
            st.sampled_from(pool)).size
        names = draw(st.lists(st.sampled_from(NAMES), min_size=2, max_size=3, unique=True))
        return delta(name, [Index(n, size) for n in names])
    legs = draw(_legs(pool + [Index(n, draw(sizes)) for n in draw(
        st.lists(st.sampled_from(NAMES), max_size=2))]))
    if kind == "constant":
        value = draw(st.integers(-3, 3) | st.floats(allow_nan=False, allow_infinity=False))
        return constant(name, value, legs)
    return variable(name, legs, draw(st.sampled_from(list(Role))))


@st.composite
def _renamed(draw, tensor):
    """Another occurrence of a variable: the same legs, or legs renamed (same sizes)."""
    if draw(st.booleans()):
        return tensor
    names = draw(st.lists(st.sampled_from(NAMES), min_size=len(tensor.indices),
                          max_size=len(tensor.indices), unique=True))
    renamed = iter(names)
    axes = tuple(tuple(Index(next(renamed), ix.size) for ix in axis) for axis in tensor.axes)
    return tensor.replace(axes=axes)


def _indices(tensors):
    found = {}
    for t in tensors:
        for ix in t.indices:
            found.setdefault(ix.name, ix)
    return list(found.values())


@st.composite
def graphs(draw, names=("X", "W", "P1", "P2", "D", "one", "c", "Y", "index_2")):
    """A random graph of 0-5 tensors (not necessarily valid: :func:`diagrams` checks)."""
    tensors = []
    for _ in range(draw(st.integers(0, 5))):
        name = draw(st.sampled_from(names))
        previous = [t for t in tensors if t.name == name]
        if previous and previous[0].kind is Kind.VARIABLE and draw(st.booleans()):
            tensors.append(draw(_renamed(previous[0])))  # a variable occurring twice
            continue
        tensors.append(draw(_tensor(name, _indices(tensors))))
    output = draw(_legs(_indices(tensors)))
    return Graph.of(tensors, output)


@st.composite
def diagrams(draw):
    """A random valid Graph, or a Sum whose later terms reuse or redefine names."""
    first = draw(graphs())
    terms = [first]
    for _ in range(draw(st.sampled_from([0, 0, 0, 1, 2]))):
        other = draw(graphs(names=("X", "V", "P1", "c")))
        ones = constant("one", 1, first.output)
        terms.append(Graph(other.tensors + (ones,), first.output))
    diagram = Sum(tuple(terms)) if len(terms) > 1 or draw(st.booleans()) else first
    try:
        verify(diagram)
    except VerifyError:
        assume(False)
    return diagram
