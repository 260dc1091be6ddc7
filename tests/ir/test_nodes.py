"""Indices, sizes, kinds and tensor constructors of the IR."""

import dataclasses

import pytest
import sympy

from tndiag.errors import InvalidArgumentError
from tndiag.ir import (
    KIND_TABLE,
    Index,
    Kind,
    PatternParams,
    Role,
    Tensor,
    as_size,
    constant,
    delta,
    pattern,
    pattern_output_size,
    reduced_pattern,
    variable,
)
from tndiag.ir.nodes import flat
from tndiag.ir.sizes import sizes_equal, substitute_size


def test_index_normalises_sizes():
    assert Index("n", 4).size == 4
    symbolic = Index("n", "N").size
    assert isinstance(symbolic, sympy.Symbol) and symbolic.is_positive and symbolic.is_integer
    three = Index("n", sympy.Integer(3)).size
    assert three == 3 and isinstance(three, int)
    assert repr(Index("i1", 8)) == "i1:8"


@pytest.mark.parametrize("bad", [True, 1.5, None, [2]])
def test_as_size_rejects_non_sizes(bad):
    with pytest.raises(InvalidArgumentError, match="a size must be a positive int"):
        as_size(bad)


def test_builders_reject_float_shapes_with_a_tndiag_error():
    from tndiag import ops

    with pytest.raises(InvalidArgumentError, match="got 3.5"):
        ops.conv((2, 3.5, 8), (4, 3, 3))


def test_indices_are_values():
    assert Index("n", 2) == Index("n", 2)
    assert hash(Index("n", "N")) == hash(Index("n", "N"))
    assert Index("n", 2) != Index("n", 3)
    assert len({Index("n", 2), Index("n", 2), Index("m", 2)}) == 2


def test_pattern_output_size_concrete_and_symbolic():
    assert pattern_output_size(5, 3, 1, 1, 1, 1) == 5
    assert pattern_output_size(8, 3, 2, 1, 0, 1) == 4  # floor((8+1-2-1)/2)+1
    assert pattern_output_size(10, 4, 3, 0, 0, 2) == 2
    O = pattern_output_size(as_size("I"), 3, 2, 1, 1, 1)
    assert substitute_size(O, {"I": 9}) == 5
    assert PatternParams(2, 1, 1, 1).output_size(9, 3) == 5


def test_sizes_equal_decides_or_abstains():
    I = as_size("I")
    assert sizes_equal(3, 3) is True
    assert sizes_equal(3, 4) is False
    assert sizes_equal(I + 1 - 1, I) is True
    assert sizes_equal(I, I + 1) is False
    assert sizes_equal(I, as_size("J")) is None


def test_constructors_build_each_kind():
    n, i, o, k = Index("n", 2), Index("i", 5), Index("o", 3), Index("k", 3)
    X = variable("X", [n, i])
    assert (X.kind, X.role, X.shape) == (Kind.VARIABLE, Role.INPUT, (2, 5))
    W = variable("W", [k], role="parameter")
    assert W.role is Role.PARAMETER
    P = pattern("P", i, o, k, stride=1, pad_left=0)
    assert P.kind is Kind.PATTERN and P.params == PatternParams(1, 0, 0, 1)
    R = reduced_pattern("R", i, k, 3)
    assert R.kind is Kind.REDUCED and R.out_size == 3 and R.indices == (i, k)
    D = delta("D", [i, Index("j", 5)])
    assert D.kind is Kind.DELTA and len(D.indices) == 2
    c = constant("c", 0.5)
    assert c.kind is Kind.CONSTANT and c.value == 0.5 and c.shape == ()


def test_fused_axes_give_runtime_shape():
    g, co, ci, k = Index("g", 2), Index("co", 3), Index("ci", 4), Index("k1", 5)
    W = variable("W", [(g, co), ci, k], Role.PARAMETER)
    assert W.shape == (6, 4, 5)
    assert W.indices == (g, co, ci, k)
    assert flat([(g, co), ci]) == (g, co, ci)
    assert repr(W) == "W:variable parameter[(g:2 co:3), ci:4, k1:5]"


def test_tensors_are_frozen_hashable_and_replaceable():
    t = variable("X", [Index("n", 2)])
    assert t == variable("X", [Index("n", 2)]) and hash(t) == hash(variable("X", [Index("n", 2)]))
    with pytest.raises(dataclasses.FrozenInstanceError):
        t.name = "Y"  # type: ignore[misc]
    u = t.replace(name="Y")
    assert u.name == "Y" and t.name == "X" and u.axes == t.axes


def test_kind_table_documents_every_kind():
    assert set(KIND_TABLE) == set(Kind)
    for info in KIND_TABLE.values():
        assert info.legs and info.meaning
    assert isinstance(Tensor("c", Kind.CONSTANT, (), value=1), Tensor)
