"""Sizes of indices: plain ints or sympy expressions, and the pattern size relation."""

from __future__ import annotations

from typing import Mapping, Union

import sympy

from tndiag.errors import InvalidArgumentError

__all__ = [
    "Size",
    "as_size",
    "is_concrete",
    "sizes_equal",
    "pattern_output_size",
    "substitute_size",
    "size_str",
]

Size = Union[int, sympy.Expr]


def as_size(value: object) -> Size:
    """Normalise ``value`` to a size: an ``int`` when it is a number, else a sympy expression.

    Strings are read as symbol names (positive integers), e.g. ``"C_in"``.

    >>> as_size(3), as_size("I1")
    (3, I1)
    """
    if isinstance(value, bool):
        raise InvalidArgumentError(f"a size must be a positive int, a symbol name or a sympy "
                                   f"expression, got {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        return sympy.Symbol(value, integer=True, positive=True)
    if isinstance(value, sympy.Basic):
        if value.is_Integer:
            return int(value)
        return value
    if hasattr(value, "__index__"):
        return int(value.__index__())
    raise InvalidArgumentError(f"a size must be a positive int, a symbol name or a sympy "
                                   f"expression, got {value!r}")


def is_concrete(size: Size) -> bool:
    """Whether ``size`` is a plain int."""
    return isinstance(size, int)


def sizes_equal(a: Size, b: Size) -> bool | None:
    """Decide ``a == b``: True/False when decidable, None when sympy cannot tell."""
    if isinstance(a, int) and isinstance(b, int):
        return a == b
    diff = sympy.simplify(sympy.sympify(a) - sympy.sympify(b))
    if diff == 0:
        return True
    if diff.is_zero is False:
        return False
    return None


def pattern_output_size(I: Size, K: Size, stride: int, pad_left: int, pad_right: int,
                        dilation: int) -> Size:
    """Output size ``O = 1 + floor((I + P_l + P_r - D·(K-1) - 1) / S)`` of an index pattern.

    >>> pattern_output_size(5, 3, 1, 1, 1, 1)
    5
    """
    numerator = I + pad_left + pad_right - dilation * (K - 1) - 1
    if isinstance(numerator, int):
        return 1 + numerator // stride
    return as_size(1 + sympy.floor(numerator / stride))


def substitute_size(size: Size, values: Mapping[str, int]) -> Size:
    """Replace the symbols named in ``values`` inside ``size``."""
    if isinstance(size, int):
        return size
    subs = {s: values[s.name] for s in size.free_symbols if s.name in values}
    return as_size(size.subs(subs)) if subs else size


def size_str(size: Size) -> str:
    """Readable text form of a size (``ints`` as digits, expressions via sympy)."""
    return str(size)
