"""The lark transformer: one method per grammar rule, producing statement records and sizes.

Size expressions become sympy expressions here (every identifier a positive-integer symbol);
declarations, factors and output statements become :mod:`tndiag.syntax.statements` records
that :mod:`tndiag.syntax.build` assembles into the IR.
"""

from __future__ import annotations

import math
from typing import Any, Dict, Optional, Tuple

import sympy
from lark import Token, Transformer, v_args

from tndiag.ir import Kind, PatternParams, Role, as_size
from tndiag.syntax import sizes
from tndiag.syntax.errors import syntax_error
from tndiag.syntax.statements import Declaration, Factor, IndexSizes, Output, Pos, Ref, Term

__all__ = ["ToStatements"]

_MAX_DIGITS = 1300  # about MAX_BITS bits
_ARITY = {"floor": (1, 1), "ceiling": (1, 1), "Mod": (2, 2), "Max": (1, 64), "Min": (1, 64)}
_OPTIONS = {"pattern": ("stride", "padding", "dilation"),
            "reduced": ("stride", "padding", "dilation", "O"),
            "sliced": ("stride", "padding", "dilation", "I", "sample")}


def _params(given: Dict[str, Any]) -> PatternParams:
    pad = given.get("padding", (0, 0))
    return PatternParams(given.get("stride", 1), pad[0], pad[1], given.get("dilation", 1))


def _pos(tok: Token) -> Pos:
    return Pos(tok.line or 0, tok.column or 0)


@v_args(inline=True)
class ToStatements(Transformer):
    """Transform a parse tree of ``text`` into a list of statements."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text

    def _error(self, message: str, at: Any) -> Exception:
        pos = at if isinstance(at, Pos) else _pos(at)
        return syntax_error(self.text, message, pos.line, pos.column)

    # -- statements ----------------------------------------------------------------------
    def start(self, *statements):
        return [s for s in statements if s is not None]

    def index_stmt(self, *refs):
        return IndexSizes(tuple(refs))

    def sized_index(self, name, size):
        return Ref(str(name), self._size(size, name), _pos(name))

    def variable_stmt(self, name, role, legs):
        return Declaration(str(name), Kind.VARIABLE, legs, _pos(name), role=role)

    def input(self):
        return Role.INPUT

    def parameter(self):
        return Role.PARAMETER

    def vector(self):
        return Role.VECTOR

    def define_stmt(self, name, structure):
        kind, legs, attrs = structure
        return Declaration(str(name), kind, legs, _pos(name), **attrs)

    # -- structural tensors --------------------------------------------------------------
    def pattern(self, before, arrow, after, options):
        if len(before) != 1 or len(after) != 2:
            raise self._error(f"a pattern has one leg before '->' and two after it "
                              f"(i -> o, k), got {len(before)} and {len(after)}", arrow)
        params, _ = self._options("pattern", options)
        return Kind.PATTERN, ((before[0],), (after[0],), (after[1],)), {"params": params}

    def reduced(self, refs, options):
        if len(refs) != 2:
            raise self._error(f"a reduced pattern has two legs (i, k), got {len(refs)}",
                              refs[0].pos)
        params, out_size = self._options("reduced", options)
        attrs = {"params": params, "out_size": out_size}
        return Kind.REDUCED, ((refs[0],), (refs[1],)), attrs

    def sliced(self, before, arrow, after, options):
        if len(before) != 1 or len(after) != 2:
            raise self._error(f"a sliced pattern has one leg before '->' and two after it "
                              f"(j -> o, k), got {len(before)} and {len(after)}", arrow)
        given = self._given("sliced", options)
        for name in ("I", "sample"):
            if name not in given:
                raise self._error(f"a sliced pattern needs the option {name!r} "
                                  "(sliced(j -> o, k; I=..., sample=...))", arrow)
        attrs = {"params": _params(given), "full_size": given["I"], "sample": given["sample"]}
        return Kind.SLICED, ((before[0],), (after[0],), (after[1],)), attrs

    def delta(self, legs):
        return Kind.DELTA, legs, {}

    def const(self, value, legs):
        return Kind.CONSTANT, legs if legs is not None else (), {"value": value}

    def options(self, *options):
        return options

    def option(self, name, size):
        return name, size

    def pair_option(self, name, left, right):
        return name, (left, right)

    def _options(self, kind: str, options) -> Tuple[PatternParams, Optional[Any]]:
        given = self._given(kind, options)
        return _params(given), given.get("O")

    def _given(self, kind: str, options) -> Dict[str, Any]:
        given: Dict[str, Any] = {}
        for name, value in options or ():
            if name not in _OPTIONS[kind]:
                raise self._error(f"unknown option {str(name)!r} for {kind}; expected one of "
                                  f"{', '.join(_OPTIONS[kind])}", name)
            if name in given:
                raise self._error(f"option {str(name)!r} given twice", name)
            given[str(name)] = self._option_value(name, value)
        return given

    def _option_value(self, name: Token, value):
        if name == "sample":
            if not isinstance(value, sympy.Symbol):
                raise self._error(f"option 'sample' names the vector of kept positions (an "
                                  f"identifier), got {value}", name)
            return value.name
        if name in ("O", "I"):
            if isinstance(value, tuple):
                raise self._error(f"option {str(name)!r} is a size, not a pair", name)
            return self._size(value, name)
        pair = value if isinstance(value, tuple) else (value, value)
        if name != "padding" and isinstance(value, tuple):
            raise self._error(f"option {str(name)!r} takes one int, not a pair", name)
        if not all(isinstance(v, sympy.Integer) for v in pair):
            raise self._error(f"option {str(name)!r} must be an int (or a pair of ints for "
                              f"padding), got {value}", name)
        ints = tuple(int(v) for v in pair)
        if name in ("stride", "dilation") and ints[0] < 1:
            raise self._error(f"{name} must be >= 1, got {ints[0]}", name)
        if name == "padding" and ints[0] < 0:
            raise self._error(f"left padding must be >= 0, got {ints[0]}", name)
        return ints if name == "padding" else ints[0]

    # -- legs ----------------------------------------------------------------------------
    def legs(self, *axes):
        return tuple(a for a in axes if a is not None)

    def single_axis(self, ref):
        return (ref,)

    def fused_axis(self, *refs):
        return tuple(refs)

    def index_list(self, *refs):
        return refs

    def index_ref(self, name, size):
        return Ref(str(name), None if size is None else self._size(size, name), _pos(name))

    def _size(self, size: sympy.Expr, at: Token):
        if size.is_number and not (size.is_Integer and size > 0):
            raise self._error(f"a size must be a positive integer, got {size}", at)
        return as_size(size)

    # -- the diagram ---------------------------------------------------------------------
    def output(self, name, legs, terms):
        return Output(str(name), legs, False, terms, _pos(name))

    def output_add(self, name, legs, _op, terms):
        return Output(str(name), legs, True, terms, _pos(name))

    def products(self, *items):
        return tuple(t for t in items if isinstance(t, Term))

    def product(self, *items):
        factors = tuple(f for f in items if isinstance(f, Factor))
        return Term(factors, factors[0].pos)

    def empty_product(self, one):
        if str(one) != "1":
            raise self._error(f"a number in a product can only be 1 (no tensors), got {one}; "
                              "declare constants with const(...)", one)
        return Term((), _pos(one))

    def factor(self, name, legs):
        return Factor(str(name), legs, _pos(name))

    # -- size expressions ----------------------------------------------------------------
    def sum(self, first, *rest):
        value = first
        for op, term in zip(rest[::2], rest[1::2], strict=True):
            value = self._checked(value + term if op == "+" else value - term, op)
        return value

    def term(self, first, *rest):
        value = first
        ops = {"*": lambda a, b: a * b, "/": sizes.divide, "//": sizes.floor_divide}
        for op, factor in zip(rest[::2], rest[1::2], strict=True):
            try:
                value = self._checked(ops[str(op)](value, factor), op)
            except ValueError as exc:
                raise self._error(str(exc), op) from None
        return value

    def power(self, *items):
        # items: signs, atom, then (POW_OP, signs, atom)*; fold from the right, applying each
        # atom's signs to the power it is the base of: -a ** -b = -(a ** (-b)).
        chain, signs = [], 0
        for item in items:
            if isinstance(item, Token) and item.type == "ADD_OP":
                signs += item == "-"
            elif isinstance(item, Token):
                op = item
            else:
                chain.append((signs % 2, item, op if chain else None))
                signs = 0
        negative, value, op = chain[-1]
        value = -value if negative else value
        for negative, base, next_op in reversed(chain[:-1]):
            try:
                value = self._checked(sizes.power(base, value), op)
            except ValueError as exc:
                raise self._error(str(exc), op) from None
            value, op = (-value if negative else value), next_op
        return value

    def integer(self, tok):
        if len(tok) > _MAX_DIGITS:
            raise self._error(f"the number has more than {_MAX_DIGITS} digits", tok)
        return sympy.Integer(int(tok))

    def symbol(self, name):
        return sizes.symbol(str(name))

    def call(self, name, *args):
        if str(name) not in sizes.FUNCTIONS:
            raise self._error(f"unknown function {str(name)!r} in a size; expected one of "
                              f"{', '.join(sizes.FUNCTIONS)}", name)
        low, high = _ARITY[str(name)]
        if not low <= len(args) <= high:
            raise self._error(f"{name} takes {low}{'' if low == high else f' to {high}'} "
                              f"argument(s), got {len(args)}", name)
        try:
            return self._checked(sizes.FUNCTIONS[str(name)](*args), name)
        except (ValueError, TypeError, ArithmeticError) as exc:
            raise self._error(f"{name}(...) cannot be evaluated: {exc}", name) from None

    def _checked(self, value, at):
        problem = sizes.check_number(value)
        if problem is not None:
            raise self._error(problem, at)
        return value

    def value(self, sign, number):
        if len(number) > _MAX_DIGITS:
            raise self._error(f"the number has more than {_MAX_DIGITS} digits", number)
        text = (str(sign) if sign is not None else "") + str(number)
        if number.type == "INT":
            return int(text)
        result = float(text)
        if not math.isfinite(result):
            raise self._error(f"a constant must be finite, got {text}", number)
        return result
