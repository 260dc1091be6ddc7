"""How each node kind becomes an operand; the structured lowerings that follow.

The codegen asks :data:`LOWERINGS` what to do with a tensor (a
:class:`~tndiag.codegen.program.LoweringKind`); the backend has a matching table that turns
each into a runtime tensor.

- variable → ``input``: the user's tensor, reshaped to its flat legs.
- pattern → ``dense-pattern``: the 0/1 tensor ``[I, O, K]`` (the fallback).
- reduced → ``reduced-matrix``: counts ``[I, K]`` = ``Σ_o Π``, computed without the dense Π.
- sliced → ``sliced-pattern``: ``Π[s[j], o, k]`` built from the run-time positions ``s``
  (the fallback; the ``gather`` rule avoids it).
- delta → ``merge`` (legs renamed to one letter, no tensor) or ``dense-delta`` (only when two
  of its legs are open).
- constant → ``scale`` (a scalar factor) or ``fill`` (a filled tensor when it has legs).

First ``compile`` applies the diagram rewrites of :mod:`tndiag.codegen.rewrite`
(``sum-out``, ``dense``). Then the structured lowerings (one rule module each under
:mod:`tndiag.codegen.lowerings`, applied by :mod:`tndiag.codegen.engine`) replace parts of
the network by steps chosen by the structure of the letters, never by tensor names:
``fold-constant``, ``gram`` (mirrored halves), ``square`` (mirrored halves keeping no leg
apart: one half squared), ``gather`` (sliced patterns), ``native``,
``window-sum``, ``view``,
``scatter``, and on the terms of a sum ``broadcast`` and ``bias``. A pattern whose
subscripts repeat a letter (a δ joining two of its legs) gets no structured lowering.
Anything else keeps the dense Π and plain einsum steps.
"""

from __future__ import annotations

from typing import Callable, Dict, Tuple

from tndiag.codegen.lowerings import RULES, TERM_RULES
from tndiag.codegen.program import LoweringKind
from tndiag.codegen.rewrite import REWRITES
from tndiag.ir import Kind, Tensor

__all__ = ["LOWERINGS", "STRUCTURED", "lowering_for"]


def _variable(t: Tensor) -> LoweringKind:
    return LoweringKind.INPUT


def _pattern(t: Tensor) -> LoweringKind:
    return LoweringKind.DENSE_PATTERN


def _reduced(t: Tensor) -> LoweringKind:
    return LoweringKind.REDUCED_MATRIX


def _sliced(t: Tensor) -> LoweringKind:
    return LoweringKind.SLICED_PATTERN


def _delta(t: Tensor) -> LoweringKind:
    return LoweringKind.MERGE


def _constant(t: Tensor) -> LoweringKind:
    return LoweringKind.SCALE if not t.indices else LoweringKind.FILL


#: What ``compile(..., lowerings=...)`` may use, in the order it is applied: the diagram
#: rewrites (:mod:`tndiag.codegen.rewrite`), the lowering rules, the rules on sum terms.
STRUCTURED: Tuple[str, ...] = REWRITES + tuple(r.name for r in RULES + TERM_RULES)

#: Kind -> function choosing the tensor's lowering (a test checks every kind has a row).
LOWERINGS: Dict[Kind, Callable[[Tensor], LoweringKind]] = {
    Kind.VARIABLE: _variable,
    Kind.PATTERN: _pattern,
    Kind.REDUCED: _reduced,
    Kind.SLICED: _sliced,
    Kind.DELTA: _delta,
    Kind.CONSTANT: _constant,
}


def lowering_for(t: Tensor) -> LoweringKind:
    """The lowering chosen for tensor ``t`` on its own (before structure is seen).

    >>> from tndiag.ir import Index, pattern
    >>> lowering_for(pattern("P", Index("i", 5), Index("o", 3), Index("k", 3))).value
    'dense-pattern'
    """
    return LOWERINGS[t.kind](t)
