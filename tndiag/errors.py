"""The one error root of tndiag and its precise subclasses.

Every error tndiag raises on purpose derives from :class:`TndiagError`, so callers can
catch ``tndiag.TndiagError`` once. Errors about bad arguments are also ``ValueError``s and
errors about unknown names are also ``KeyError``-free ``LookupError``s, so code written
against torch's exceptions keeps working.
"""

from __future__ import annotations

__all__ = [
    "TndiagError",
    "InvalidArgumentError",
    "ShapeError",
    "UnknownNameError",
    "VerifyError",
    "DiagramSyntaxError",
    "CompileError",
    "PassError",
    "RenderError",
]


class TndiagError(Exception):
    """Root of every error raised by tndiag."""


class InvalidArgumentError(TndiagError, ValueError):
    """A hyper-parameter or argument has an invalid value (names it and what was expected)."""


class ShapeError(TndiagError, ValueError):
    """A runtime tensor's shape does not match the diagram or the other arguments."""


class UnknownNameError(TndiagError, LookupError):
    """A tensor, index or pass name that does not exist was referenced."""

    def __str__(self) -> str:  # LookupError would quote the message like a KeyError
        return str(self.args[0]) if self.args else ""


class VerifyError(TndiagError):
    """A graph violates an IR invariant; the message names the culprit."""


class DiagramSyntaxError(TndiagError, ValueError):
    """Diagram text could not be parsed; carries ``line``, ``column`` and a caret snippet."""

    def __init__(self, message: str, line: int | None = None, column: int | None = None,
                 snippet: str | None = None) -> None:
        self.message = message
        self.line = line
        self.column = column
        self.snippet = snippet
        where = f"line {line}, column {column}: " if line is not None else ""
        text = where + message
        if snippet:
            text += "\n" + snippet
        super().__init__(text)


class CompileError(TndiagError):
    """A graph cannot be compiled (e.g. sizes still symbolic)."""


class PassError(TndiagError):
    """A pass failed, was misused, or broke an invariant (names the pass)."""


class RenderError(TndiagError):
    """A picture could not be drawn (graphviz missing or failing, unknown output format)."""
