"""Size decisions (sympy) and graph edits shared by the rules."""

import pytest
import sympy

from tndiag.ir import Graph, Index, variable
from tndiag.passes.rules.common import (
    divides,
    equal,
    fresh_index,
    fresh_tensor_name,
    less,
    split_index,
)

M = sympy.Symbol("M", integer=True, positive=True)
I = sympy.Symbol("I", integer=True, positive=True)


@pytest.mark.parametrize("k, n, want", [
    (4, 16, True), (4, 18, False), (4, "I", None), (4, 4 * M, True), (2, 4 * M + 1, False),
    (4, 2 * M, None), ("K", "K", True), (M, 3 * M, True),
])
def test_divides(k, n, want):
    assert divides(k, n) is want


@pytest.mark.parametrize("a, b, want", [
    (1, 2, True), (2, 2, False), (3, 2, False), ("K", 1, False), (1, "K", None),
    (M, M + 1, True), (M + 1, M, False),
])
def test_less(a, b, want):
    assert less(sympy.Symbol(a, integer=True, positive=True) if isinstance(a, str) else a,
                sympy.Symbol(b, integer=True, positive=True) if isinstance(b, str) else b
                ) is want


def test_equal():
    assert equal(4, 4) is True and equal(3, 4) is False and equal(I, 4) is None
    assert equal(2 * M, M + M) is True


def test_fresh_names_avoid_collisions():
    g = Graph.of([variable("X", [Index("a", 2), Index("a_2", 3)])], [])
    assert fresh_index(g, "a", 5) == Index("a_3", 5)
    assert fresh_index(g, "b", 5, taken=["b"]).name == "b_2"
    assert fresh_tensor_name(g, "X") == "X_2"


def test_split_index_keeps_runtime_shapes():
    a, b = Index("a", 6), Index("b", 2)
    g = Graph.of([variable("X", [b, a]), variable("Y", [(b, a)])], [a])
    hi, lo = Index("h", 3), Index("l", 2)
    out = split_index(g, "a", [hi, lo])
    assert out.tensors[0].axes == ((b,), (hi, lo)) and out.tensors[1].axes == ((b, hi, lo),)
    assert out.output == ((hi, lo),) and out.output_shape == g.output_shape
    assert [t.shape for t in out.tensors] == [t.shape for t in g.tensors]
