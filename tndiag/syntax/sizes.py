"""Size expressions of the text language: symbols, allowed functions, bounds, inference.

Shared by the parser and the printer (no lark here): every identifier in a size is the
positive-integer symbol :func:`tndiag.ir.as_size` makes, the functions are those of
:data:`FUNCTIONS`, and numbers stay small enough that sympy cannot hang on them.
"""

from __future__ import annotations

import re
from typing import Dict, Iterable, Mapping, Optional, Tuple

import sympy

from tndiag.ir import PatternParams, Size, as_size

__all__ = ["FUNCTIONS", "NAME_RE", "MAX_BITS", "MAX_EXPONENT", "symbol", "power", "divide",
           "floor_divide", "check_number", "unprintable_part", "infer_sizes", "PatternLegs"]

#: Identifiers of the language (tensor, index and symbol names); the grammar's NAME terminal.
NAME_RE = re.compile(r"[^\W\d]\w*")

#: Functions allowed in size expressions, by the name sympy prints them with.
FUNCTIONS = {
    "floor": sympy.floor,
    "ceiling": sympy.ceiling,
    "Max": sympy.Max,
    "Min": sympy.Min,
    "Mod": sympy.Mod,
}

#: Largest magnitude (in bits) of a number inside a size expression.
MAX_BITS = 4096

#: Largest exponent of a symbolic power (larger ones make sympy's simplification crawl).
MAX_EXPONENT = 32

_BAD = (sympy.zoo, sympy.oo, -sympy.oo, sympy.nan)


def symbol(name: str) -> sympy.Symbol:
    """The size symbol called ``name`` (a positive integer), as :func:`as_size` makes it.

    >>> symbol("N") == as_size("N")
    True
    """
    return as_size(name)  # type: ignore[return-value]


def check_number(value: sympy.Expr) -> Optional[str]:
    """Why ``value`` is not a usable size expression (too large, undefined), or None."""
    if value.has(*_BAD):
        return "the expression is undefined (division by zero?)"
    for atom in value.atoms(sympy.Rational):
        if max(abs(atom.p).bit_length(), abs(atom.q).bit_length()) > MAX_BITS:
            return f"a number in the expression exceeds {MAX_BITS} bits"
    return None


def power(base: sympy.Expr, exponent: sympy.Expr) -> sympy.Expr:
    """``base ** exponent`` with bounds that keep sympy fast.

    Raises:
        ValueError: if the result would be a number larger than :data:`MAX_BITS` bits, or a
            symbolic power has a non-integer exponent or one above :data:`MAX_EXPONENT`.

    >>> power(symbol("N"), sympy.Integer(2))
    N**2
    """
    if exponent.is_Integer and base.is_Rational:
        bits = max(abs(base.p).bit_length(), abs(base.q).bit_length())
        if bits * abs(int(exponent)) > MAX_BITS:
            raise ValueError(f"the power's result exceeds {MAX_BITS} bits")
    elif not exponent.is_Integer or abs(exponent) > MAX_EXPONENT:
        raise ValueError(f"the exponent of a symbolic power must be an integer of at most "
                         f"{MAX_EXPONENT} in magnitude, got {exponent}")
    return base ** exponent


def divide(a: sympy.Expr, b: sympy.Expr) -> sympy.Expr:
    """``a / b``, refusing division by zero."""
    if b == 0:
        raise ValueError("division by zero")
    return a / b


def floor_divide(a: sympy.Expr, b: sympy.Expr) -> sympy.Expr:
    """``a // b`` as ``floor(a / b)``."""
    return sympy.floor(divide(a, b))


_ALLOWED = (sympy.Add, sympy.Mul, sympy.Pow, sympy.Integer, sympy.Rational, sympy.Symbol,
            *FUNCTIONS.values())


def unprintable_part(size: Size) -> Optional[str]:
    """Why ``size`` cannot be written in the language (None when it can).

    >>> unprintable_part(as_size("N") / 2) is None
    True
    >>> unprintable_part(sympy.Symbol("N"))
    "symbol 'N' is not a positive-integer size symbol (use tndiag.ir.as_size('N'))"
    """
    if isinstance(size, int):
        return None
    if not isinstance(size, sympy.Expr):
        return f"{size!r} is not an int or a sympy expression"
    if size.is_number:
        return "a size that is a number must be a positive integer"
    for node in sympy.preorder_traversal(size):
        if isinstance(node, sympy.Symbol):
            if not NAME_RE.fullmatch(node.name) or node != symbol(node.name):
                return (f"symbol {node.name!r} is not a positive-integer size symbol "
                        f"(use tndiag.ir.as_size({node.name!r}))")
        elif not isinstance(node, _ALLOWED) or (isinstance(node, sympy.Pow) and not (
                node.exp.is_Integer and abs(node.exp) <= MAX_EXPONENT)):
            return f"{node} is not an integer expression the language can write"
    return check_number(size)


#: A pattern's legs and parameters, as far as size inference needs them.
PatternLegs = Tuple[str, str, str, PatternParams]


def infer_sizes(known: Mapping[str, Size], patterns: Iterable[PatternLegs]) -> Dict[str, Size]:
    """Sizes of ``known`` plus every pattern ``o`` leg that follows from its ``i`` and ``k``.

    A pattern's ``o`` size is inferred only when it is not known; chains (one pattern's ``o``
    being another's ``i``) resolve in any order.

    >>> infer_sizes({"i": 5, "k": 3}, [("i", "o", "k", PatternParams(stride=2))])
    {'i': 5, 'k': 3, 'o': 2}
    """
    sizes = dict(known)
    pending = list(patterns)
    progress = True
    while progress:
        progress = False
        for legs in list(pending):
            i, o, k, params = legs
            if o in sizes:
                pending.remove(legs)
            elif i in sizes and k in sizes:
                sizes[o] = params.output_size(sizes[i], sizes[k])
                pending.remove(legs)
                progress = True
    return sizes
