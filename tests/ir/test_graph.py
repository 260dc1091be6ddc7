"""Graph and Sum: lookups, symbolic sizes, substitution, structural equality, rewriting."""

import pytest
from corpus import CORPUS

from tndiag import ops
from tndiag.errors import UnknownNameError
from tndiag.ir import Graph, Index, Role, Sum, constant, pattern, variable


def _small():
    n, i, o, k = Index("n", "N"), Index("i", "I"), Index("o", "I"), Index("k", 1)
    X = variable("X", [n, i])
    P = pattern("P", i, o, k)
    W = variable("W", [k], Role.PARAMETER)
    return Graph.of([X, P, W], [n, o])


def test_lookups():
    g = _small()
    assert g.names == ("X", "P", "W")
    assert g.tensor("P").kind.value == "pattern"
    assert g.index("o").name == "o"
    assert [t.name for t in g.variables()] == ["X", "W"]
    assert g.output_indices == (Index("n", "N"), Index("o", "I"))
    assert set(g.indices()) == {"n", "i", "o", "k"}


@pytest.mark.parametrize("lookup", ["tensor", "index", "occurrences"])
def test_unknown_names_list_the_choices(lookup):
    with pytest.raises(UnknownNameError, match="no .* named 'nope'.*expected one of"):
        getattr(_small(), lookup)("nope")


def test_occurrences_of_a_repeated_variable():
    n, a, b = Index("n", 2), Index("a", 3), Index("b", 3)
    g = Graph.of([variable("X", [n, a]), variable("X", [n, b])], [a, b])
    assert len(g.occurrences("X")) == 2
    assert g.tensor("X").indices == (n, a)


def test_symbolic_sizes_and_substitution():
    g = _small()
    assert {s.name for s in g.free_symbols()} == {"N", "I"}
    assert not g.is_concrete()
    c = g.substitute({"N": 2, "I": 5})
    assert c.is_concrete() and c.output_shape == (2, 5)
    partial = g.substitute({"N": 2})
    assert {s.name for s in partial.free_symbols()} == {"I"}
    assert g.output_shape[0] == Index("n", "N").size


def test_symbolic_conv_substitutes_output_size():
    g = ops.conv(ndim=1, stride=2, padding=1)
    c = g.substitute({"N": 2, "C_in": 3, "C_out": 4, "I1": 9, "K1": 3})
    assert c.output_shape == (2, 4, 5)
    assert c == ops.conv((2, 3, 9), (4, 3, 3), stride=2, padding=1)


def test_structural_equality_and_hashing():
    assert _small() == _small() and hash(_small()) == hash(_small())
    assert _small() != _small().rename_indices({"o": "p"})
    assert len({_small(), _small(), _small().substitute({"N": 1})}) == 2


def test_rewriting_returns_new_graphs():
    g = _small()
    renamed = g.rename_indices({"n": "m"})
    assert renamed.output_indices[0].name == "m"
    assert g.output_indices[0].name == "n"
    assert g.replace(output=[Index("o", "I")]).output == ((Index("o", "I"),),)
    doubled = g.map_indices(lambda ix: Index(ix.name.upper(), ix.size))
    assert set(doubled.indices()) == {"N", "I", "O", "K"}


def test_fused_output_axes():
    g = ops.unfold((2, 3, 8, 8), 3)
    assert len(g.output) == 3 and len(g.output_indices) == 6
    assert g.output_shape == (2, 27, 36)


def test_sum_properties():
    n = Index("n", 2)
    a = Graph.of([variable("A", [n])], [n])
    b = Graph.of([variable("B", [n]), constant("c", 2.0)], [n])
    s = Sum((a, b))
    assert s.output == a.output and s.output_shape == (2,)
    assert [t.name for t in s.variables()] == ["A", "B"]
    assert s.is_concrete()
    assert s == Sum((a, b)) and hash(s) == hash(Sum((a, b)))
    assert repr(s).startswith("Sum(Graph([A:variable input[n:2]]")


def test_repr_is_readable():
    assert repr(_small()) == (
        "Graph([X:variable input[n:N, i:I], "
        "P:pattern PatternParams(stride=1, pad_left=0, pad_right=0, dilation=1)[i:I, o:I, k:1], "
        "W:variable parameter[k:1]] -> [n:N, o:I])")


@pytest.mark.parametrize("name, thunk", CORPUS, ids=[c[0] for c in CORPUS])
def test_corpus_diagrams_equal_their_rebuild(name, thunk):
    assert thunk() == thunk()
    assert hash(thunk()) == hash(thunk())
