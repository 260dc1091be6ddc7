"""Every syntax and semantic error is a DiagramSyntaxError with line, column and a caret."""

import pytest

import tndiag
from tndiag import DiagramSyntaxError, parse

DECL = "index n: 2, i: 5, k: 3\nX : input [n, i]\n"

# (id, text, line, column, fragment of the message); None: any column on that line.
CASES = [
    # syntax
    ("double-comma", "X : input [n,, c]", 1, 14, "unexpected ','"),
    ("unclosed-pattern", "P = pattern(i1 -> o1, k1", 1, 12,
     "unclosed '(': no matching ')' before the end of the text"),
    ("unclosed-bracket", "X : input [n,\n c\n\n", 1, 11, "unclosed '['"),
    ("bad-character", "X : input [n$]", 1, 13, "unexpected character '$'"),
    ("missing-legs", "X : input\nY[] = X", 1, None, "expected '['"),
    ("unknown-role", "X : inptu [n]", 1, 5, "unexpected 'inptu'"),
    ("index-is-reserved", "index : input [n]", 1, 7, "unexpected ':'"),
    ("too-deep", "index n: " + "(" * 40 + "N" + ")" * 40, 1, 42, "nested more than 32"),
    ("number-in-product", DECL + "Y[n] = 2", 3, 8, "can only be 1"),
    ("number-times-tensor", DECL + "Y[n] = 1 * X", 3, 10, "unexpected '*'"),
    # unknown names
    ("unknown-tensor", DECL + "Y[n] = X * W", 3, 12, "unknown tensor 'W'"),
    ("unknown-index", "X : input [n: 2]\nY[m] = X", 2, 3, "unknown index 'm'"),
    ("index-without-size", "X : input [n: 2, j]\nY[n] = X", 1, 18, "unknown index 'j'"),
    ("output-index-on-no-tensor", DECL + "index m: 3\nY[n, m] = X", 4, 11,
     "output index 'm' is on no tensor"),
    # sizes
    ("size-conflict", "index n: 3\nX : input [n: 4]\nY[n] = X", 2, 12, "size conflict"),
    ("pattern-size-conflict", DECL + "index o: 4\nP = pattern(i -> o, k)\nY[o] = P", 4, 1,
     "o leg 'o' has size 4"),
    ("zero-size", "index n: 0", 1, 7, "positive integer"),
    ("fraction-size", "index n: 1/2", 1, 7, "positive integer"),
    ("division-by-zero", "index n: N/0", 1, 11, "division by zero"),
    ("huge-number", "index n: 10**100000", 1, 12, "exceeds 4096 bits"),
    ("symbolic-power", "index n: (N + 1)**33", 1, 17, "at most 32"),
    ("symbolic-exponent", "index n: 2**N", 1, 11, "must be an integer"),
    ("unknown-function", "index n: sqrt(N)", 1, 10, "unknown function 'sqrt'"),
    ("function-arity", "index n: floor(N, 2)", 1, 10, "floor takes 1 argument"),
    ("mod-by-zero", "index n: Mod(N, 0)", 1, 10, "cannot be evaluated"),
    ("delta-sizes", "index g: 2, h: 3\nD = delta [g, h]\nY[g, h] = D", 2, 1, "differ in size"),
    # arity
    ("pattern-arity", "P = pattern(i1 -> o1)", 1, 16, "one leg before '->' and two"),
    ("pattern-arity-before", "P = pattern(i, j -> o1, k)", 1, 18, "got 2 and 2"),
    ("reduced-arity", "R = reduced(i1, o1, k1)", 1, 13, "two legs (i, k), got 3"),
    ("delta-arity", "index g: 2\nD = delta [g]\nY[g] = D", 2, 1, "at least two legs"),
    ("pattern-override-arity", DECL + "index o: 3\nP = pattern(i -> o, k)\nY[o] = P[i, o]", 5, 8,
     "exactly three single legs"),
    # duplicates
    ("duplicate-tensor", DECL + "X : parameter [n]\nY[n] = X", 3, 1, "duplicate name"),
    ("duplicate-pattern-factor", DECL + "P = pattern(i -> o, k)\nY[o] = P * P", 4, 8,
     "two tensors are named 'P'"),
    ("second-definition", DECL + "Y[n, i] = X\nY[n, i] = X", 4, 1, "already defined at line 3"),
    ("other-name-plus-equals", DECL + "Y[n, i] = X\nZ[n, i] += X", 4, 1, "adds terms to 'Z'"),
    ("sum-output-mismatch", DECL + "V : input [n]\nY[n, i] = X\nY[n] += V", 5, 9,
     "term 1 of the sum has output"),
    ("variable-shape", DECL + "index m: 3\nY[n, i] = X * X[m, i]", 4, 11,
     "variable 'X' occurs twice"),
    ("no-output", "index n: 2\n", 2, 1, "no output statement"),
    ("empty", "", 1, 1, "no output statement"),
    # options
    ("stride-zero", "P = pattern(i -> o, k; stride=0)", 1, 24, "stride must be >= 1"),
    ("dilation-zero", "P = pattern(i -> o, k; dilation=0)", 1, 24, "dilation must be >= 1"),
    ("padding-triple", "P = pattern(i -> o, k; padding=(1, 2, 3))", 1, 37, "unexpected ','"),
    ("unknown-option", "P = pattern(i -> o, k; foo=1)", 1, 24, "unknown option 'foo'"),
    ("O-on-pattern", "P = pattern(i -> o, k; O=3)", 1, 24, "unknown option 'O'"),
    ("stride-pair", "P = pattern(i -> o, k; stride=(1, 2))", 1, 24, "takes one int"),
    ("symbolic-stride", "P = pattern(i -> o, k; stride=S)", 1, 24, "must be an int"),
    ("negative-left-padding", "P = pattern(i -> o, k; padding=(-1, 0))", 1, 24,
     "left padding must be >= 0"),
    ("option-twice", "P = pattern(i -> o, k; stride=1, stride=2)", 1, 34, "given twice"),
    ("O-pair", "R = reduced(i, k; O=(1, 2))", 1, 19, "size, not a pair"),
    ("reduced-O-conflict", DECL + "R = reduced(i, k; O=4)\nY[i] = R", 3, 1,
     "summed size 4"),
    # constants
    ("infinite-const", "c = const(1e999)\nY[] = c", 1, 11, "must be finite"),
]


@pytest.mark.parametrize("text, line, column, fragment",
                         [case[1:] for case in CASES], ids=[case[0] for case in CASES])
def test_error_position_and_message(text, line, column, fragment):
    with pytest.raises(DiagramSyntaxError) as info:
        parse(text)
    err = info.value
    assert fragment in err.message, err
    assert err.line == line, err
    if column is not None:
        assert err.column == column, err
        source = text.split("\n")[line - 1] if line <= text.count("\n") + 1 else ""
        if source:
            assert err.snippet == f"{source}\n{' ' * (column - 1)}^"
    assert str(err).startswith(f"line {line}, column {err.column}: ")


def test_snippet_points_at_the_culprit():
    with pytest.raises(DiagramSyntaxError) as info:
        parse("X : input [n: 2]\nY[m] = X")
    assert info.value.snippet == "Y[m] = X\n  ^"
    assert str(info.value).splitlines()[1:] == ["Y[m] = X", "  ^"]


def test_errors_are_tndiag_errors_and_value_errors():
    with pytest.raises(tndiag.TndiagError):
        parse("X :")
    with pytest.raises(ValueError):
        parse("X :")


def test_bytes_that_are_not_utf8_and_non_text():
    with pytest.raises(DiagramSyntaxError, match="UTF-8"):
        parse(b"\xff\xfe")
    with pytest.raises(tndiag.InvalidArgumentError, match="str"):
        parse(42)
