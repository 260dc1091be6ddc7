"""Building :class:`~tndiag.errors.DiagramSyntaxError` with a caret snippet from source text."""

from __future__ import annotations

from typing import Optional

from tndiag.errors import DiagramSyntaxError

__all__ = ["syntax_error", "caret_snippet", "UnusedTensorWarning"]


class UnusedTensorWarning(UserWarning):
    """A tensor is declared in diagram text but no term of the diagram uses it."""


def caret_snippet(text: str, line: Optional[int], column: Optional[int]) -> Optional[str]:
    """The source line ``line`` (1-based) with a caret under ``column`` (1-based).

    >>> print(caret_snippet("a = 1\\nb = ?", 2, 5))
    b = ?
        ^
    """
    if line is None:
        return None
    lines = text.split("\n")  # lark counts lines by "\n" only
    if not 1 <= line <= len(lines):
        return None
    source = lines[line - 1].rstrip("\r").expandtabs(1)
    column = max(1, min(column or 1, len(source) + 1))
    return f"{source}\n{' ' * (column - 1)}^"


def syntax_error(text: str, message: str, line: Optional[int] = None,
                 column: Optional[int] = None) -> DiagramSyntaxError:
    """A :class:`DiagramSyntaxError` at ``line``/``column`` of ``text`` with its snippet.

    >>> err = syntax_error("X : inptu [n]", "unknown role", 1, 5)
    >>> (err.line, err.column, err.snippet.splitlines()[1])
    (1, 5, '    ^')
    """
    return DiagramSyntaxError(message, line, column, caret_snippet(text, line, column))
