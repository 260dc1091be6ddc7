"""verify(): every invariant violation is a VerifyError naming the culprit; per-kind tables."""

import pytest
from corpus import CORPUS

from tndiag.codegen.lowering import LOWERINGS, lowering_for
from tndiag.errors import VerifyError
from tndiag.ir import (
    KIND_TABLE,
    Graph,
    Index,
    Kind,
    PatternParams,
    Role,
    Sum,
    Tensor,
    constant,
    delta,
    pattern,
    reduced_pattern,
    sliced_pattern,
    variable,
    verify,
)
from tndiag.ir.verify import KIND_CHECKS

n, i, o, k = Index("n", 2), Index("i", 5), Index("o", 3), Index("k", 3)
X = variable("X", [n, i])
P = pattern("P", i, o, k)
W = variable("W", [k], Role.PARAMETER)


def _conv1d(*extra, output=(n, o)):
    return Graph.of([X, P, W, *extra], list(output))


def test_valid_graph_is_returned_unchanged():
    g = _conv1d()
    assert verify(g) is g


@pytest.mark.parametrize("name, thunk", CORPUS, ids=[c[0] for c in CORPUS])
def test_every_corpus_diagram_verifies(name, thunk):
    d = thunk()
    assert verify(d) is d


def _bad_pattern(**changes):
    return P.replace(**changes)


VIOLATIONS = [  # (id, diagram, regex naming the culprit)
    ("tensor-name", Graph.of([variable("1X", [n])], [n]), r"tensor name '1X' is not an identifier"),
    ("duplicate-non-variable", _conv1d(pattern("P", i, o, k)), r"two tensors are named 'P'"),
    ("variable-twice-different-shape", Graph.of([X, variable("X", [n])], [n]),
     r"variable 'X' occurs twice with different role or shape"),
    ("variable-twice-different-role", Graph.of([X, variable("X", [n, i], Role.PARAMETER)], [n]),
     r"variable 'X' occurs twice"),
    ("index-size-conflict", _conv1d(variable("V", [Index("i", 6)])),
     r"index 'i' has size 6 on tensor 'V' but size 5 elsewhere"),
    ("index-twice-on-tensor", Graph.of([variable("X", [i, i])], [i]),
     r"tensor 'X' carries index 'i' twice"),
    ("index-size-zero", Graph.of([variable("X", [Index("z", 0)])], [Index("z", 0)]),
     r"index 'z' on tensor 'X' has size 0"),
    ("index-name", Graph.of([variable("X", [Index("a b", 2)])], []),
     r"index name 'a b' on tensor 'X' is not an identifier"),
    ("output-twice", _conv1d(output=(n, n)), r"output index 'n' appears twice"),
    ("output-unbound", _conv1d(output=(n, Index("q", 3))), r"output index 'q' is on no tensor"),
    ("output-size-conflict", _conv1d(output=(n, Index("o", 4))),
     r"index 'o' has size 4 on the output but size 3 elsewhere"),
    ("pattern-legs", Graph.of([X, Tensor("P", Kind.PATTERN, ((i,), (o,)),
                                         params=PatternParams())], [n]),
     r"pattern 'P' must have exactly three single legs"),
    ("pattern-params-missing", Graph.of([X, _bad_pattern(params=None)], [n]),
     r"pattern 'P' has no pattern parameters"),
    ("pattern-stride", Graph.of([X, _bad_pattern(params=PatternParams(stride=0))], [n]),
     r"pattern 'P': stride and dilation must be >= 1"),
    ("pattern-dilation", Graph.of([X, _bad_pattern(params=PatternParams(dilation=0))], [n]),
     r"pattern 'P': stride and dilation must be >= 1"),
    ("pattern-pad-left", Graph.of([X, _bad_pattern(params=PatternParams(pad_left=-1))], [n]),
     r"pattern 'P': pad_left must be >= 0"),
    ("pattern-output-size", Graph.of([X, pattern("P", i, Index("o", 4), k)], [n]),
     r"pattern 'P': o leg 'o' has size 4, but I=5, K=3"),
    ("pattern-kernel-too-large", Graph.of([X, pattern("P", i, Index("o", 1), Index("k", 7))],
                                          [n]), r"pattern 'P'"),
    ("reduced-legs", Graph.of([X, Tensor("R", Kind.REDUCED, ((i,),), params=PatternParams(),
                                         out_size=3)], [n]),
     r"reduced pattern 'R' must have exactly two single legs"),
    ("reduced-out-size", Graph.of([X, reduced_pattern("R", i, k, 4)], [n]),
     r"reduced pattern 'R': summed size 4 but I=5, K=3"),
    ("delta-one-leg", Graph.of([X, delta("D", [i])], [n]), r"delta 'D' needs at least two legs"),
    ("delta-sizes", Graph.of([X, delta("D", [i, o])], [n]),
     r"delta 'D': legs 'i' \(5\) and 'o' \(3\) differ in size"),
    ("variable-role", Graph.of([Tensor("X", Kind.VARIABLE, ((n,),))], [n]),
     r"variable 'X' has no role"),
    ("constant-value", Graph.of([X, constant("c", "2")], [n]),
     r"constant 'c' needs a numeric value, got '2'"),
    ("constant-bool", Graph.of([X, constant("c", True)], [n]), r"constant 'c' needs a numeric"),
    ("not-a-tensor", Graph((X, "P"), ((n,),)), r"graph holds a str, expected Tensor"),
    ("not-a-diagram", [X], r"expected a Graph or Sum, got list"),
    ("sum-empty", Sum(()), r"a Sum needs at least one term"),
    ("sum-term-type", Sum((_conv1d(), "x")), r"term 1 of the sum is a str, expected Graph"),
    ("sum-outputs", Sum((_conv1d(), _conv1d(output=(o, n)))),
     r"term 1 of the sum has output .* term 0 has"),
    ("sum-variable-role", Sum((_conv1d(), Graph.of([X, variable("W", [o])], [n, o]))),
     r"variable 'W' occurs twice with different role or shape"),
]


@pytest.mark.parametrize("diagram, message", [v[1:] for v in VIOLATIONS],
                         ids=[v[0] for v in VIOLATIONS])
def test_violation_raises_verify_error_naming_culprit(diagram, message):
    with pytest.raises(VerifyError, match=message):
        verify(diagram)


def test_negative_right_padding_is_legal():
    """A transposed conv's output_padding is a negative right padding (crop)."""
    op = pattern("P", Index("i", 7), Index("o", 3), Index("k", 2), stride=2, pad_right=-1)
    verify(Graph.of([variable("X", [Index("o", 3)]), op], [Index("i", 7)]))


def test_symbolic_pattern_verifies_when_undecidable():
    g = Graph.of([pattern("P", Index("i", "I"), Index("o", "O"), Index("k", "K"))],
                 [Index("o", "O")])
    assert verify(g) is g


SAMPLES = {
    Kind.VARIABLE: [X],
    Kind.PATTERN: [P],
    Kind.REDUCED: [reduced_pattern("R", i, k, 3)],
    Kind.SLICED: [sliced_pattern("S", Index("j", 2), Index("o", 3), k, 5, "keep_i")],
    Kind.DELTA: [delta("D", [i, Index("j", 5)])],
    Kind.CONSTANT: [constant("c", 2.0), constant("one", 1, [n])],
}


def test_every_kind_has_a_row_in_every_table():
    from tndiag.backends.torch import FROM_POSITIONS, MATERIALIZERS

    assert set(SAMPLES) == set(Kind)
    assert set(KIND_TABLE) == set(Kind)
    assert set(KIND_CHECKS) == set(Kind)
    assert set(LOWERINGS) == set(Kind)
    handled_by_codegen = {"input", "merge", "scale"}  # no runtime tensor is materialised
    for kind, tensors in SAMPLES.items():
        for t in tensors:
            name = lowering_for(t)
            assert name in handled_by_codegen or name in MATERIALIZERS or \
                name in FROM_POSITIONS, (kind, name)
    assert "dense-delta" in MATERIALIZERS  # δ joining two open legs
