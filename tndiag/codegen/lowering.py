"""How each node kind becomes an operand of the einsum program (one row per kind).

The codegen asks :data:`LOWERINGS` what to do with a tensor; the backend has a matching
table that turns each lowering into a runtime tensor. Structured lowerings (strided views,
banded sums, native convolution kernels) plug in here without touching the codegen.

| kind       | lowering           | runtime operand |
|------------|--------------------|-----------------|
| variable   | ``input``          | the user's tensor, reshaped to its flat legs |
| pattern    | ``dense-pattern``  | 0/1 tensor ``[I, O, K]`` (fallback) |
| reduced    | ``dense-reduced``  | counts tensor ``[I, K]`` = ``Σ_o Π`` |
| delta      | ``merge`` or ``dense-delta`` | none: legs renamed to one letter; dense only when two legs are open |
| constant   | ``scale`` or ``fill`` | a scalar factor; or a filled tensor when it has legs |
"""

from __future__ import annotations

from typing import Callable, Dict

from tndiag.ir import Kind, Tensor

__all__ = ["LOWERINGS", "lowering_for"]


def _variable(t: Tensor) -> str:
    return "input"


def _pattern(t: Tensor) -> str:
    return "dense-pattern"


def _reduced(t: Tensor) -> str:
    return "dense-reduced"


def _delta(t: Tensor) -> str:
    return "merge"


def _constant(t: Tensor) -> str:
    return "scale" if not t.indices else "fill"


#: Kind -> function choosing the tensor's lowering (a test checks every kind has a row).
LOWERINGS: Dict[Kind, Callable[[Tensor], str]] = {
    Kind.VARIABLE: _variable,
    Kind.PATTERN: _pattern,
    Kind.REDUCED: _reduced,
    Kind.DELTA: _delta,
    Kind.CONSTANT: _constant,
}


def lowering_for(t: Tensor) -> str:
    """The lowering name chosen for tensor ``t``."""
    return LOWERINGS[t.kind](t)
