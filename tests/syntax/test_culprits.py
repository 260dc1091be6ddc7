"""Text-language errors name the real culprit, at its first use, without Python reprs."""

import re
import warnings

import pytest

from tndiag import DiagramSyntaxError, ops, parse
from tndiag.syntax import to_text
from tndiag.syntax.errors import UnusedTensorWarning


def error(text: str) -> DiagramSyntaxError:
    with pytest.raises(DiagramSyntaxError) as info:
        parse(text)
    return info.value


def test_undeclared_kernel_leg_is_blamed_not_the_inferred_output_leg():
    err = error("index n: 2, i1: 8\nX : input [n, i1]\nP1 = pattern(i1 -> o1, k1; stride=1)\n"
                "Y[n, o1] = X * P1\n")
    assert err.message.startswith("unknown index 'k1'")
    assert (err.line, err.column) == (3, 24) and "o1" not in err.message


def test_undeclared_input_leg_is_blamed_at_its_first_use():
    err = error("index n: 2, k1: 3\nX : input [n, i1]\nP1 = pattern(i1 -> o1, k1)\n"
                "Y[n, o1] = X * P1\n")
    assert err.message.startswith("unknown index 'i1'") and (err.line, err.column) == (2, 15)


@pytest.mark.parametrize("I, K, pad, dil", [(3, 5, 0, 1), (4, 3, 0, 2), (2, 7, 1, 1)])
def test_kernel_larger_than_the_padded_input_says_so(I, K, pad, dil):
    text = (f"index n: 2, i1: {I}, k1: {K}\nX : input [n, i1]\nW : parameter [k1]\n"
            f"P1 = pattern(i1 -> o1, k1; padding={pad}, dilation={dil})\nY[n, o1] = X * P1 * W\n")
    err = error(text)
    assert err.message == (f"pattern 'P1': kernel size {K} (dilation {dil}) is larger than the "
                           f"padded input size {I} + {pad} + {pad}; expected "
                           f"{dil}*({K}-1)+1 <= {I + 2 * pad}")
    assert err.line == 4
    with pytest.raises(ValueError, match=f"kernel size {K} .* is larger than the padded input"):
        ops.conv((2, 1, I), (1, 1, K), padding=pad, dilation=dil)  # the functional API agrees


@pytest.mark.parametrize("option, value", [("stride", "1.5"), ("dilation", "2.0"),
                                           ("padding", ".5"), ("stride", "1e3")])
def test_non_integer_option_says_it_must_be_an_integer(option, value):
    text = (f"index i: 8, k: 3\nX : input [i]\nP = pattern(i -> o, k; {option}={value})\n"
            "Y[o, k] = X * P\n")
    err = error(text)
    assert err.message == f"{option} must be an integer, got {value}"
    assert (err.line, err.column) == (3, text.split("\n")[2].index(value) + 1)


def test_output_without_legs_hints_at_the_brackets():
    err = error("index n: 2\nX : input [n]\nY = X\n")
    assert "an output needs legs: Y[...] = ..." in err.message and (err.line, err.column) == (3, 5)


@pytest.mark.parametrize("text, at, bracket", [
    ("index i: 8, k: 3\nX : input [i]\nP = pattern(i -> o, k; stride=1\nY[o, k] = X * P\n",
     (3, 12), "("),
    ("index i: 8\nX : input [i,\nY[i] = X\n", (2, 11), "["),
    ("index i: 8, k: 3\nX : input [i]\nP = pattern(i -> o,\n k\n", (3, 12), "("),
])
def test_unclosed_bracket_is_reported_at_the_bracket(text, at, bracket):
    err = error(text)
    assert err.message.startswith(f"unclosed {bracket!r}") and (err.line, err.column) == at


def test_no_python_reprs_in_messages():
    texts = [
        # a variable used with two roles across the terms of a sum
        "index n: 2\nX : input [n]\nY[n] = X\nX : parameter [n]\nY[n] += X\n",
        # an o size that contradicts the pattern
        "index i: 8, k: 3, o: 2\nX : input [i]\nP = pattern(i -> o, k; stride=2)\n"
        "Y[o, k] = X * P\n",
        # terms with different output sizes
        "index m: 2\nA : input [m]\nY[m] = A\nindex m: 3\nB : input [m]\nY[m] += B\n",
    ]
    for text in texts:
        message = error(text).message
        assert not re.search(r"PatternParams|Role\.|Kind\.|\(\(|,\)", message), message


def test_declared_but_unused_tensor_warns_once_naming_it():
    with pytest.warns(UnusedTensorWarning, match="line 3: tensor 'Z' is declared but no term"):
        parse("index n: 2, m: 3\nX : input [n]\nZ : parameter [m]\nY[n] = X\n")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        parse(to_text(ops.kfc((2, 3, 8), (3,))))  # the printer never declares unused tensors


def test_utf8_byte_order_mark_is_accepted():
    g = ops.conv((2, 3, 8), (4, 3, 3))
    assert parse("\ufeff" + to_text(g)) == g
    assert parse(("\ufeff" + to_text(g)).encode("utf-8")) == g
