"""``parse(text)``: the text language to the IR, with lark's LALR parser.

The grammar is ``tndiag/grammars/tndiag.lark`` (shipped as package data; the repository's
``grammars/tndiag.lark`` links to it). lark is imported on the first call, never by
``import tndiag``.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import Iterator, List, Optional, Tuple, Union

from tndiag.errors import DiagramSyntaxError, InvalidArgumentError
from tndiag.ir import Diagram
from tndiag.syntax.errors import syntax_error

__all__ = ["parse", "GRAMMAR_PATH"]

#: The grammar file inside the installed package.
GRAMMAR_PATH = Path(__file__).resolve().parent.parent / "grammars" / "tndiag.lark"

#: Deepest nesting of brackets and parentheses accepted (keeps the transformer's recursion
#: bounded).
MAX_DEPTH = 32

# A newline right after one of these continues the statement.
_CONTINUE = {"+", "+=", "*", ",", "->", ";", "=", ":", "(", "["}


class _TooDeep(Exception):
    """Raised by the post-lexer at a bracket nested deeper than :data:`MAX_DEPTH`."""

    def __init__(self, tok) -> None:
        super().__init__(f"brackets nested more than {MAX_DEPTH} deep")
        self.line, self.column = tok.line, tok.column


class _Layout:
    """Post-lexer: drop newlines inside brackets, after continuation tokens and repeated ones.

    Also bounds the bracket nesting depth to :data:`MAX_DEPTH`.
    """

    always_accept = ("_NL",)

    def process(self, stream) -> Iterator:
        depth, previous = 0, None
        for tok in stream:
            if tok.type == "_NL":
                if depth > 0 or previous is None or previous.type == "_NL" or (
                        previous in _CONTINUE):
                    continue
            elif tok in ("(", "["):
                depth += 1
                if depth > MAX_DEPTH:
                    raise _TooDeep(tok)
            elif tok in (")", "]"):
                depth = max(0, depth - 1)
            previous = tok
            yield tok


@functools.lru_cache(maxsize=1)
def _lark():
    import lark

    return lark.Lark(GRAMMAR_PATH.read_text(encoding="utf-8"), parser="lalr",
                     lexer="contextual", maybe_placeholders=True, postlex=_Layout())


#: Readable names of the grammar's regular-expression terminals, for error messages.
_TERMINALS = {
    "NAME": "a name", "INT": "an integer", "FLOAT": "a number", "_NL": "a new line",
    "$END": "the end of the text", "ADD_OP": "'+' or '-'", "MUL_OP": "'*', '/' or '//'",
    "POW_OP": "'**'", "ARROW": "'->'", "PLUS_EQ": "'+='", "PLUS": "'+'", "STAR": "'*'",
}


def parse(text: Union[str, bytes]) -> Diagram:
    """Parse the text language into a :class:`~tndiag.ir.Graph` or :class:`~tndiag.ir.Sum`.

    See ``docs/language.md`` for the language and ``grammars/tndiag.lark`` for its grammar.

    Args:
        text: the content of a ``.tnd`` file (``bytes`` are decoded as UTF-8).

    Returns:
        The diagram, checked by :func:`tndiag.verify`.

    Raises:
        DiagramSyntaxError: on any syntax or semantic error (unknown tensor or index, size
            conflict, wrong pattern arity, duplicate name, bad option, failed invariant),
            with ``line``, ``column`` and a caret ``snippet``.
        InvalidArgumentError: if ``text`` is not text.

    >>> g = parse('''
    ... index n: 2, i: 5, k: 3
    ... X : input [n, i]
    ... P = pattern(i -> o, k; padding=1)
    ... Y[n, o, k] = X * P
    ... ''')
    >>> g.output_shape
    (2, 5, 3)
    """
    text = _as_text(text)
    from lark.exceptions import UnexpectedInput, VisitError

    from tndiag.syntax.build import build
    from tndiag.syntax.transformer import ToStatements

    try:
        tree = _lark().parse(text)
    except UnexpectedInput as exc:
        raise _lark_error(text, exc) from None
    except _TooDeep as exc:
        raise syntax_error(text, str(exc), exc.line, exc.column) from None
    try:
        statements = ToStatements(text).transform(tree)
    except VisitError as exc:
        if isinstance(exc.orig_exc, DiagramSyntaxError):
            raise exc.orig_exc from None
        raise
    return build(statements, text)


def _as_text(text: object) -> str:
    if isinstance(text, (bytes, bytearray)):
        try:
            return bytes(text).decode("utf-8-sig")  # a byte-order mark is dropped
        except UnicodeDecodeError as exc:
            raise DiagramSyntaxError(f"the text is not valid UTF-8: {exc}") from None
    if not isinstance(text, str):
        raise InvalidArgumentError(f"parse expects the text of a .tnd file (str), got "
                                   f"{type(text).__name__}")
    return text[1:] if text.startswith("\ufeff") else text  # a UTF-8 byte-order mark


def _lark_error(text: str, exc) -> DiagramSyntaxError:
    """Translate a lark ``UnexpectedInput`` into a :class:`DiagramSyntaxError`."""
    from lark.exceptions import UnexpectedCharacters, UnexpectedToken

    line, column = getattr(exc, "line", -1), getattr(exc, "column", -1)
    accepts = set(getattr(exc, "accepts", None) or getattr(exc, "expected", None) or ())
    special = _explain(text, exc, accepts)
    if special is not None:
        message, line, column = special
    elif isinstance(exc, UnexpectedCharacters):
        message = f"unexpected character {exc.char!r}"
    elif isinstance(exc, UnexpectedToken) and exc.token.type != "$END":
        # ``accepts`` is what the parser accepts here (``expected`` adds the post-lexer's _NL)
        expected = _expected(exc.accepts or exc.expected)
        message = f"unexpected {_describe(exc.token)}; expected {expected}"
    else:  # the end of the text: point just after its last character
        wanted = getattr(exc, "accepts", None) or getattr(exc, "expected", None)
        message = "unexpected end of the text" + (
            f"; expected {_expected(wanted)}" if wanted else "")
        line = -1
    if line is None or line < 1:
        body = text.rstrip()
        line, column = body.count("\n") + 1, len(body.rsplit("\n", 1)[-1]) + 1
    return syntax_error(text, message, line, column)


_OPTION_BEFORE = re.compile(r"\b(stride|padding|dilation|O)\s*=\s*\(?\s*(?:[0-9]+\s*,\s*)?"
                            r"([+-]?[0-9]*)$")


def _explain(text: str, exc, accepts: set) -> Optional[Tuple[str, int, int]]:
    """A clearer message (and position) for a few common mistakes, or None."""
    line: int = getattr(exc, "line", None) or -1
    column: int = getattr(exc, "column", None) or 1
    if line < 1:
        line, column = text.count("\n") + 1, len(text.rsplit("\n", 1)[-1]) + 1
    offset = _offset(text, line, column)
    opened = _unclosed(text, offset)
    token = getattr(exc, "token", None)
    at_end = token is None or getattr(token, "type", "") == "$END"
    if opened is not None and (opened[0] < line or at_end) and accepts & {"RPAR", "RSQB"}:
        bracket, (at_line, at_col) = text[_offset(text, *opened)], opened
        where = "the end of the text" if at_end else f"line {line}"
        return f"unclosed {bracket!r}: no matching {_CLOSE[bracket]!r} before {where}", \
            at_line, at_col
    prefix = text.split("\n")[line - 1][:column - 1]
    m = _OPTION_BEFORE.search(prefix)
    rest = text[offset:].split("\n", 1)[0]
    number = re.match(r"[.0-9eE+-]*", rest)
    if m and number and re.match(r"\.[0-9]|[eE]", rest):
        value = m.group(2) + number.group(0)
        return f"{m.group(1)} must be an integer, got {value}", line, column - len(m.group(2))
    head = re.match(r"\s*([^\W\d]\w*)\s*=\s*$", prefix)
    if head and "PATTERN" in accepts:
        name = head.group(1)
        return (f"{name} = ... declares a structure (pattern, reduced, delta, const); "
                f"an output needs legs: {name}[...] = ..."), line, column
    return None


_CLOSE = {"(": ")", "[": "]"}


def _offset(text: str, line: int, column: int) -> int:
    return sum(len(ln) + 1 for ln in text.split("\n")[:line - 1]) + column - 1


def _unclosed(text: str, end: int) -> Optional[Tuple[int, int]]:
    """(line, column) of the last bracket still open at ``end`` (comments skipped), or None."""
    stack: List[Tuple[int, int]] = []
    line, column, in_comment = 1, 0, False
    for ch in text[:end]:
        column += 1
        if ch == "\n":
            line, column, in_comment = line + 1, 0, False
        elif in_comment:
            continue
        elif ch == "#":
            in_comment = True
        elif ch in "([":
            stack.append((line, column))
        elif ch in ")]" and stack:
            stack.pop()
    return stack[-1] if stack else None


def _describe(token) -> str:
    if token.type == "_NL":
        return "end of line"
    return f"{token.value!r}"


def _expected(names) -> str:
    terminals = {t.name: t for t in _lark().terminals}
    shown = set()
    for name in names:
        if name in _TERMINALS:
            shown.add(_TERMINALS[name])
        elif name in terminals and terminals[name].pattern.type == "str":
            shown.add(repr(terminals[name].pattern.value))
        else:
            shown.add(name)
    return ", ".join(sorted(shown))
