"""``parse``: every construct of the language builds exactly the IR it describes."""

import re
import subprocess
import sys
from pathlib import Path

import pytest
import sympy
from hypothesis import given
from hypothesis import strategies as st

import tndiag
from syntax.diagrams import expressions
from tndiag import ops, parse
from tndiag.ir import (
    Graph,
    Index,
    PatternParams,
    Role,
    Sum,
    as_size,
    constant,
    delta,
    pattern,
    reduced_pattern,
    variable,
)
from tndiag.syntax import GRAMMAR_PATH

ROOT = Path(__file__).resolve().parents[2]
N, C, I1, K1 = (as_size(s) for s in ("N", "C_in", "I1", "K1"))


def _size(expression: str):
    """The size the language gives ``expression``."""
    return parse(f"index a: {expression}\nX : input [a]\nY[a] = X").index("a").size


def test_the_issue_example_is_the_builders_grouped_strided_convolution():
    text = """
    # 2-d convolution, stride 2, grouped
    index n: N, g: 2, ci: 3, co: 4, i1: 16, i2: 12, k1: 3, k2: 3
    X : input     [n, (g ci), i1, i2]
    W : parameter [(g co), ci, k1, k2]
    P1 = pattern(i1 -> o1, k1; stride=2, padding=1)
    P2 = pattern(i2 -> o2, k2; stride=2, padding=1)
    Y[n, (g co), o1, o2] = X * P1 * P2 * W
    """
    built = ops.conv(("N", 6, 16, 12), (8, 3, 3, 3), stride=2, padding=1, groups=2)
    assert parse(text) == built


def test_symbolic_sizes_are_the_positive_integer_symbols_of_as_size():
    g = parse("index n: N, c: C_in/2\nX : input [n, c]\nY[n] = X")
    assert g.index("n").size == N and g.index("n").size.is_positive
    assert g.index("c").size == C / 2


@pytest.mark.parametrize("text, expected", [
    ("I1 - K1 + 1", I1 - K1 + 1),
    ("floor((I1 + 1)/2) + 1", sympy.floor((I1 + 1) / 2) + 1),
    ("C_in/2", C / 2),
    ("2*I1 + K1 - 2", 2 * I1 + K1 - 2),
    ("(I1 + 1) // 2", sympy.floor((I1 + 1) / 2)),
    ("I1 ^ 2", I1 ** 2),
    ("-K1 ** 2 + I1", I1 - K1 ** 2),            # a sign binds looser than **
    ("2 ** 3 ** 2 / 64", 8),                    # ** is right-associative: 2 ** 9 / 64
    ("I1 ** -1 * N", N / I1),
    ("ceiling(N/3) + Max(I1, K1) + Min(N, 2) + Mod(I1, 3)",
     sympy.ceiling(N / 3) + sympy.Max(I1, K1) + sympy.Min(N, 2) + sympy.Mod(I1, 3)),
    ("- - N", N),
    ("12", 12),
])
def test_size_expressions(text, expected):
    size = _size(text)
    assert size == as_size(expected)
    assert type(size) is type(as_size(expected))


@given(expressions)
def test_printed_sympy_sizes_parse_back_identically(expression):
    assert _size(str(expression)) == expression


def test_inline_sizes_equal_index_statements():
    inline = parse("X : input [n: 8, (g: 2 c: C_in)]\nY[n, (g c)] = X")
    declared = parse("index n: 8, g: 2\nindex c: C_in\nX : input [n, (g c)]\nY[n, (g c)] = X")
    assert inline == declared
    assert inline.tensors[0].axes == ((Index("n", 8),), (Index("g", 2), Index("c", C)))


def test_pattern_options_and_inferred_output_size():
    g = parse("""index i: 10, k: 3
    P = pattern(i -> o, k; stride=2, padding=(1, -1), dilation=2)
    Q = pattern(o -> p, k)   # o's size is inferred, then p's from it
    Y[p, k] = P * Q""")
    P, Q = g.tensors
    assert P.params == PatternParams(stride=2, pad_left=1, pad_right=-1, dilation=2)
    assert g.index("o").size == 3  # 1 + (10 + 1 - 1 - 2·(3 - 1) - 1) // 2
    assert g.index("p").size == 1 and Q.params == PatternParams()
    assert P == pattern("P", Index("i", 10), Index("o", 3), Index("k", 3), 2, 1, -1, 2)


def test_declared_output_size_may_differ_structurally_from_the_inferred_one():
    g = parse("index i: 2*I1 + K1 - 2, k: K1, o: I1\nP = pattern(i -> o, k; stride=2)\n"
              "Y[i, k] = P")
    assert g.index("o").size == I1


def test_reduced_pattern_with_inferred_and_explicit_summed_size():
    g = parse("""index i: I1, k: K1
    R = reduced(i, k; stride=2, padding=1)
    S = reduced(i, k; O=O1)
    Y[i, k] = R * S""")
    R, S = g.tensors
    assert R == reduced_pattern("R", Index("i", I1), Index("k", K1),
                                PatternParams(2, 1, 1).output_size(I1, K1), 2, 1, 1)
    assert S.out_size == as_size("O1") and S.params == PatternParams()


def test_delta_and_constants_keep_int_and_float_values():
    g = parse("""index g: 2, h: 2
    D = delta [g, h]
    c = const(0.5)
    m = const(-3)
    e = const(1e-05) [g]
    Y[g, h] = D * c * m * e""")
    D, c, m, e = g.tensors
    assert D == delta("D", [Index("g", 2), Index("h", 2)])
    assert c == constant("c", 0.5) and type(c.value) is float
    assert m.value == -3 and type(m.value) is int
    assert e == constant("e", 1e-05, [Index("g", 2)])


def test_roles_fused_and_empty_axes_and_scalar_variables():
    g = parse("""index a: 2, b: 3
    X : input [(a b), ()]
    W : parameter []
    V : vector [a]
    L[] = X * W * V""")
    X, W, V = g.tensors
    assert X.axes == ((Index("a", 2), Index("b", 3)), ()) and X.role is Role.INPUT
    assert W.axes == () and W.role is Role.PARAMETER and V.role is Role.VECTOR
    assert g.output == ()


def test_factor_order_is_the_tensor_order_and_factors_may_override_legs():
    g = parse("""index n: 4, c: 3, d: 3
    W : parameter [c, d]
    X : input [n, c]
    Y[c, d] = X * W * X[n, d]""")
    assert g.names == ("X", "W", "X")
    assert g.tensors[2] == variable("X", [Index("n", 4), Index("d", 3)])


def test_sums_with_plus_and_plus_equals():
    decl = "index n: 2\nA : input [n]\nB : input [n]\n"
    a = Graph.of([variable("A", [Index("n", 2)])], [Index("n", 2)])
    b = Graph.of([variable("B", [Index("n", 2)])], [Index("n", 2)])
    assert parse(decl + "Y[n] = A") == a
    assert parse(decl + "Y[n] = A + B") == Sum((a, b))
    assert parse(decl + "Y[n] = A\nY[n] += B") == Sum((a, b))
    assert parse(decl + "Y[n] += A") == Sum((a,))
    assert parse(decl + "Y[] = 1") == Graph((), ())


def test_redeclaring_after_an_output_statement_starts_a_new_group():
    g = parse("""index n: 4, j: 3
    X : input [n]
    one = const(1) [j]
    Y[n] = X * one
    index j: 5
    one = const(1.0) [j]
    Y[n] += X * one""")
    assert isinstance(g, Sum)
    assert [t.index("j").size for t in g.terms] == [3, 5]
    assert [type(t.tensors[1].value) for t in g.terms] == [int, float]


def test_layout_comments_continuations_crlf_and_tabs():
    g = parse("# header\r\n\r\nindex n: 2,\r\n   c: 3  # trailing comment\r\n"
              "X : input [n,\n\tc]\nY[n, c] = \\\n  X *\n  X\n\n# end\n")
    assert g.names == ("X", "X")


def test_keywords_are_only_keywords_where_the_grammar_expects_them():
    g = parse("pattern : input [input: 2, (index: 3 delta: 1)]\n"
              "Y[input] = pattern")
    assert g.tensors[0].name == "pattern"
    assert [ix.name for ix in g.tensors[0].indices] == ["input", "index", "delta"]


def test_unicode_identifiers_and_bytes_input():
    assert parse("X : input [ß: 2]\nY[ß] = X".encode()).index("ß").size == 2


def _documented_examples():
    text = (ROOT / "docs" / "language.md").read_text()
    return re.findall(r"```tnd\n(.*?)```", text, re.S)


@pytest.mark.parametrize("example", _documented_examples())
def test_every_complete_example_in_the_language_doc_parses(example):
    tndiag.verify(parse(example))


def test_the_doc_has_complete_examples():
    assert len(_documented_examples()) >= 5


def test_the_repository_grammar_is_the_packaged_one():
    assert (ROOT / "grammars" / "tndiag.lark").resolve() == GRAMMAR_PATH
    assert GRAMMAR_PATH.read_text().count("->") >= 20  # every alternative carries an alias


def test_import_tndiag_does_not_import_lark_until_parse():
    code = ("import sys, tndiag\nassert 'lark' not in sys.modules\n"
            "tndiag.parse('X : input [n: 2]\\nY[n] = X')\nassert 'lark' in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


def test_the_python_examples_of_the_language_doc_run():
    import doctest

    text = (ROOT / "docs" / "language.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    globs = {"tndiag": tndiag}
    for n, block in enumerate(blocks):
        runner.run(doctest.DocTestParser().get_doctest(block, globs, f"block{n}", None, 0))
    result = runner.summarize(verbose=False)
    assert len(blocks) >= 3 and result.attempted >= 4 and result.failed == 0


def _relayout(text: str, rng) -> str:
    """``text`` with comments, blank lines, tabs and line breaks where the language allows."""
    out = []
    for line in text.splitlines():
        pieces = re.split(r"(, | \* | \+ | = |: )", line)
        rebuilt = pieces[0]
        for sep, piece in zip(pieces[1::2], pieces[2::2]):
            rebuilt += sep.rstrip() + rng.choice([" ", "\t", "\n    ", " # note\n", " \\\n"])
            rebuilt += piece
        out.append(rebuilt + rng.choice(["", "  # comment", "\t"]))
        out.append(rng.choice(["", "", "# a comment line", "   "]))
    return "\n".join(out)


@pytest.mark.parametrize("name", ["conv2d-symbolic-bias", "fold2d", "unfold-kernel-grouped",
                                  "conv-transpose2d-grouped-bias"])
@given(rng=st.randoms(use_true_random=False))
def test_layout_does_not_change_the_diagram(name, rng):
    from corpus import build

    diagram = build(name)
    assert parse(_relayout(tndiag.to_text(diagram), rng)) == diagram
