"""``to_text``: golden texts for builders, sums and edge cases; what cannot be written."""

import subprocess
import sys
from pathlib import Path

import pytest
import sympy

import tndiag
from tndiag import InvalidArgumentError, ops, parse, to_text
from tndiag.ir import (
    Graph,
    Index,
    Kind,
    Role,
    Sum,
    Tensor,
    as_size,
    constant,
    delta,
    pattern,
    variable,
)
from tndiag.syntax.printer import TEXT_FORMS

ROOT = Path(__file__).resolve().parents[2]

GOLDEN = {
    "conv-symbolic-bias": (lambda: ops.conv(ndim=2, bias=True), """\
index n: N, ci: C_in, i1: I1, i2: I2, k1: K1, k2: K2, co: C_out
X : input [n, ci, i1, i2]
P1 = pattern(i1 -> o1, k1)
P2 = pattern(i2 -> o2, k2)
W : parameter [co, ci, k1, k2]
B : parameter [co]
one = const(1) [n, o1, o2]
Y[n, co, o1, o2] = X * P1 * P2 * W + B * one
"""),
    "conv-grouped-asymmetric-dilated": (
        lambda: ops.conv((2, 4, 9), (6, 2, 3), padding=((2, 1),), dilation=2, groups=2), """\
index n: 2, g: 2, ci: 2, i1: 9, k1: 3, co: 3
X : input [n, (g ci), i1]
P1 = pattern(i1 -> o1, k1; padding=(2, 1), dilation=2)
W : parameter [(g co), ci, k1]
Y[n, (g co), o1] = X * P1 * W
"""),
    "conv-transpose-symbolic": (lambda: ops.conv_transpose(ndim=1, stride=2, output_padding=1),
                                """\
index n: N, ci: C_in, i1: 2*I1 + K1 - 1, k1: K1, co: C_out
X : input [n, ci, o1]
P1 = pattern(i1 -> o1, k1; stride=2, padding=(0, -1))
W : parameter [ci, co, k1]
Y[n, co, i1] = X * P1 * W
"""),
    "unfold-kernel-grouped": (lambda: ops.unfold_kernel((4, 1, 3), (6,), groups=2), """\
index i1: 6, k1: 3, g: 2, co: 2, ci: 1, h: 2
P1 = pattern(i1 -> o1, k1)
W : parameter [(g co), ci, k1]
D = delta [g, h]
Y[(g co o1), (h ci i1)] = P1 * W * D
"""),
    "kfac-reduce": (lambda: ops.kfac_reduce((8, 3, 16), (3,), stride=2), """\
index n: 8, g: 1, c: 3, i1: 16, k1: 3, c_b: 3, i1_b: 16, k1_b: 3
X : input [n, (g c), i1]
P1 = reduced(i1, k1; stride=2)
P1_b = reduced(i1_b, k1_b; stride=2)
scale = const(0.002551020408163265)
Y[g, (c k1), (c_b k1_b)] = X * P1 * X[n, (g c_b), i1_b] * P1_b * scale
"""),
}


@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_golden_text(name):
    build, expected = GOLDEN[name]
    diagram = build()
    assert to_text(diagram) == expected
    assert parse(expected) == diagram


def _n(size=2):
    return Index("n", size)


def test_terms_with_conflicting_declarations_get_their_own_groups():
    j3, j5 = Index("j", 3), Index("j", 5)
    def term(j, value):
        return Graph.of([variable("X", [_n()]), constant("one", value, [j])], [_n()])

    s = Sum((term(j3, 1), term(j3, 1), term(j5, 1), term(j5, 1.0)))
    assert to_text(s) == """\
index n: 2, j: 3
X : input [n]
one = const(1) [j]
Y[n] = X * one + X * one
index j: 5
Y[n] += X * one
one = const(1.0) [j]
Y[n] += X * one
"""
    assert parse(to_text(s)) == s


def test_a_sum_of_one_term_an_empty_graph_and_scalar_outputs():
    g = Graph.of([variable("X", [_n()])], [_n()])
    assert to_text(Sum((g,))).endswith("Y[n] += X\n")
    assert to_text(Graph((), ())) == "Y[] = 1\n"
    assert to_text(Graph.of([variable("X", [_n()]), variable("X", [_n()])], [])).endswith(
        "Y[] = X * X\n")


def test_the_output_label_avoids_tensor_names():
    tensors = [variable(name, [_n()]) for name in ("Y", "Z", "Out")]
    assert to_text(Graph.of(tensors, [_n()])).endswith("Y0[n] = Y * Z * Out\n")


def test_explicit_sizes_where_inference_would_differ():
    i, k = Index("i", as_size("I1")), Index("k", 3)
    P = pattern("P", i, Index("o", as_size("O1")), k, stride=2)  # verify cannot refute O1
    text = to_text(Graph.of([P], [i]))
    assert "o: O1" in text and parse(text).tensors[0] == P


def test_long_statements_are_wrapped_and_still_parse():
    d = ops.weight_ggn((2, 4, 9, 8), (5, 2, 6, 4, 3), (3, 3), stride=2, groups=2)
    text = to_text(d)
    assert max(len(line) for line in text.splitlines()) <= 100
    assert text.count("\nindex ") >= 1 and "*\n    " in text
    assert parse(text) == d


@pytest.mark.parametrize("diagram, fragment", [
    (Graph.of([variable("X", [Index("1x", 2)])], []), "index name '1x'"),
    (Graph.of([variable("a b", [])], []), "tensor name 'a b'"),
    (Graph.of([variable("index", [])], []), "other than index"),
    (Graph.of([variable("X", [Index("n", sympy.Symbol("N"))])], []), "positive-integer"),
    (Graph.of([variable("X", [Index("n", sympy.Rational(1, 2))])], []), "positive integer"),
    (Graph.of([variable("X", [Index("n", sympy.sqrt(as_size("N")))])], []), "can write"),
    (Graph.of([variable("X", [Index("n", as_size("N") ** 33)])], []), "can write"),
    (Graph.of([constant("c", float("nan"))], []), "finite float"),
    (Graph.of([constant("c", 1j)], []), "finite float"),
    (Graph.of([Tensor("P", Kind.PATTERN, ((_n(),),), params=pattern(
        "P", _n(), _n(), _n()).params)], []), "3 single legs"),
    (Graph.of([variable("X", [_n()]), variable("X", [_n()], Role.PARAMETER)], []),
     "different kinds or attributes"),
    ("Y[n] = X", "Graph or a Sum"),
])
def test_what_cannot_be_written_raises_invalid_argument(diagram, fragment):
    with pytest.raises(InvalidArgumentError) as info:
        to_text(diagram)
    assert fragment in str(info.value)


def test_every_kind_has_a_text_form():
    """TEXT_FORMS has a row per kind; a diagram with every kind prints each declaration."""
    assert set(TEXT_FORMS) == set(Kind)
    n, g, h = _n(), Index("g", 2), Index("h", 2)
    i, k = Index("i", 5), Index("k", 3)
    tensors = [variable("X", [n, i]), pattern("P", i, Index("o", 3), k),
               Tensor("R", Kind.REDUCED, ((i,), (k,)), params=pattern("P", i, i, k).params,
                      out_size=3),
               Tensor("S", Kind.SLICED, ((Index("j", 2),), (Index("o2", 3),), (k,)),
                      params=pattern("P", i, i, k).params, full_size=5, sample="keep_j"),
               delta("D", [g, h]), constant("c", 2)]
    text = to_text(Graph.of(tensors, [n, k, g, h]))
    for fragment in (": input", "= pattern(", "= reduced(", "= sliced(", "= delta [",
                     "= const("):
        assert fragment in text
    assert {t.kind for t in tensors} == set(Kind)
    assert parse(text) == Graph.of(tensors, [n, k, g, h])


def test_to_text_does_not_import_lark():
    code = ("import sys, tndiag\nt = tndiag.to_text(tndiag.ops.conv(ndim=2, bias=True))\n"
            "assert 'lark' not in sys.modules, 'lark imported'\nprint(t)")
    out = subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT,
                         capture_output=True, text=True).stdout
    assert "Y[n, co, o1, o2] = X * P1 * P2 * W + B * one" in out
    assert tndiag.parse(out) == ops.conv(ndim=2, bias=True)
