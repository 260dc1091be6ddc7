"""Fuzz ``parse``: thousands of mutated and random inputs raise only DiagramSyntaxError.

Inputs are deterministic (seeded): mutations of valid texts (the corpus printed by
``to_text``, the language doc's examples and the gallery's ``examples/*.tnd``) by character
and token deletions, insertions, swaps and replacements, plus random byte strings, random
token soups and texts generated from the grammar by hypothesis. A parse that succeeds must
return a diagram that round-trips through ``to_text``. A watchdog turns a hang into a failure
naming the input.
"""

import random
import re
import signal
from contextlib import contextmanager
from pathlib import Path

import lark
import pytest
from corpus import CORPUS
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.lark import from_lark

import tndiag
from tndiag import DiagramSyntaxError, parse
from tndiag.syntax import GRAMMAR_PATH

ROOT = Path(__file__).resolve().parents[2]
TOKENS = ["index", "input", "parameter", "vector", "pattern", "reduced", "delta", "const",
          "(", ")", "[", "]", ",", ":", ";", "=", "+=", "+", "-", "*", "/", "//", "**", "^",
          "->", "\n", "#", "\\\n", " ", "X", "W", "n", "o1", "N", "I1", "0", "1", "2", "-1",
          "99999999999999999999", "1e5", "0.5", ".", "floor", "Mod", "Max", "O", "stride",
          "padding", "dilation", "δ", "\t", "\r\n", "Y[n]", "X * X", "(g co)", "\x00"]
_SPLIT = re.compile(r"\w+|\*\*|//|->|\+=|\s+|\S")
WATCHDOG_S = 30  # generous: a parse takes milliseconds; this only catches hangs


def _seeds():
    texts = [tndiag.to_text(thunk()) for _, thunk in CORPUS]
    doc = (ROOT / "docs" / "language.md").read_text()
    return texts + re.findall(r"```tnd\n(.*?)```", doc, re.S)


def _mutation_seeds():
    """The seeds plus the hand-written gallery files (comments, alignment, long names)."""
    return _seeds() + [path.read_text() for path in sorted((ROOT / "examples").glob("*.tnd"))]


def _mutate(rng: random.Random, text: str) -> str:
    for _ in range(rng.randint(1, 4)):
        tokens = _SPLIT.findall(text) or [""]
        a, b = sorted(rng.randrange(len(tokens)) for _ in range(2))
        op = rng.randrange(9)
        if op == 0:    # delete a character range
            i = rng.randrange(len(text) + 1)
            text = text[:i] + text[i + rng.randint(1, 5):]
        elif op == 1:  # insert a random character
            i = rng.randrange(len(text) + 1)
            text = text[:i] + chr(rng.choice([rng.randrange(32, 127), rng.randrange(0x110000)
                                              if rng.random() < 0.1 else 10])) + text[i:]
        elif op == 2:  # swap two characters
            chars = list(text)
            if chars:
                i, j = rng.randrange(len(chars)), rng.randrange(len(chars))
                chars[i], chars[j] = chars[j], chars[i]
            text = "".join(chars)
        elif op == 3:
            del tokens[a]
        elif op == 4:
            tokens.insert(a, tokens[b])
        elif op == 5:
            tokens[a], tokens[b] = tokens[b], tokens[a]
        elif op == 6:
            tokens[a] = rng.choice(TOKENS)
        elif op == 7:
            tokens.insert(a, rng.choice(TOKENS))
        else:          # swap two lines
            lines = text.split("\n")
            i, j = rng.randrange(len(lines)), rng.randrange(len(lines))
            lines[i], lines[j] = lines[j], lines[i]
            tokens = ["\n".join(lines)]
        if op >= 3:
            text = "".join(tokens)
    return text


class _Hang(Exception):
    pass


@contextmanager
def _watchdog(seconds: int):
    def alarm(signum, frame):
        raise _Hang()

    old = signal.signal(signal.SIGALRM, alarm)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def _check(text) -> bool:
    """Parse ``text``; True if it parsed (and round-tripped), False on DiagramSyntaxError."""
    try:
        with _watchdog(WATCHDOG_S):
            diagram = parse(text)
    except DiagramSyntaxError as err:
        if err.line is not None:  # a position inside the text, shown with a caret
            lines = text.count(b"\n" if isinstance(text, bytes) else "\n") + 1
            assert 1 <= err.line <= lines and err.column >= 1, err
            assert err.snippet is None or err.snippet.endswith("^"), err
        return False
    except _Hang:
        pytest.fail(f"parse hung on {text!r}")
    except Exception as exc:  # noqa: BLE001 - the point of the test
        pytest.fail(f"parse raised {type(exc).__name__}: {exc} on {text!r}")
    assert parse(tndiag.to_text(diagram)) == diagram
    return True


@pytest.mark.parametrize("chunk", range(8))
def test_mutated_valid_texts(chunk):
    """8 x 250 = 2000 mutations of valid texts."""
    rng = random.Random(1000 + chunk)
    seeds = _mutation_seeds()
    results = [_check(_mutate(rng, rng.choice(seeds))) for _ in range(250)]
    assert not all(results)  # the mutations do break texts


def test_random_bytes_and_token_soups():
    """300 random byte strings and 300 random token sequences."""
    rng = random.Random(7)
    for _ in range(300):
        _check(bytes(rng.randrange(256) for _ in range(rng.randrange(60))))
    for _ in range(300):
        _check("".join(rng.choice(TOKENS) for _ in range(rng.randrange(40))))


def test_the_seeds_parse():
    """The unmutated seeds are valid, so mutation results are meaningful."""
    assert all(_check(text) for text in _seeds())


_GRAMMAR = lark.Lark(GRAMMAR_PATH.read_text(), parser="lalr", lexer="contextual",
                     maybe_placeholders=True)
_NAMES = st.sampled_from([" X ", " W ", " n ", " i ", " o ", " k ", " P ", " N ", " O ",
                          " stride ", " padding ", " floor ", " input "])


@settings(max_examples=100)  # generating from the grammar is the slow part
@given(from_lark(_GRAMMAR, explicit={"NAME": _NAMES, "INT": st.sampled_from([" 1 ", " 2 "]),
                                     "_NL": st.just("\n")}))
def test_texts_generated_from_the_grammar(text):
    """Texts shaped by the grammar itself reach the semantic checks; still only our error."""
    _check(text)
