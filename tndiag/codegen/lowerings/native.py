"""``native``: operands that form a convolution, its transpose or its weight gradient become
one torch kernel call (the structure is recognised by :mod:`tndiag.codegen.native`).

The step is priced by :func:`tndiag.codegen.cost.native_flops`; the driver keeps the einsum
route when that is cheaper. Which torch kernel a transposed convolution calls is the cost
model's choice too (:func:`tndiag.codegen.cost.native_kernel`), kept in the step's
description.
"""

from __future__ import annotations

import dataclasses
from typing import List

from tndiag.codegen import cost
from tndiag.codegen.lowerings.base import EntryKind, Match, State, StepRule, pattern_params
from tndiag.codegen.native import NativeConv, match_native
from tndiag.codegen.program import LoweringKind, StepKind

__all__ = ["RULE", "label"]


def _match(state: State) -> List[Match]:
    patterns = [k is EntryKind.PATTERN for k in state.kinds()]
    params = {n: pattern_params(state, e.uid) for n, e in enumerate(state.stack)
              if e.kind is EntryKind.PATTERN}
    found = match_native(state.letters(), patterns, state.out, state.sizes, params)
    return [Match(tuple(state.stack[p].uid for p in group), spec.result, spec)
            for group, spec in found]


def label(spec: NativeConv) -> str:
    """The printed name of a native step (``conv2d``, ``conv_transpose1d``, ...)."""
    nd = spec.ndim
    return {"conv": f"conv{nd}d", "transpose": f"conv_transpose{nd}d",
            "weight": f"conv{nd}d-weight"}[spec.role]


def _apply(state: State, match: Match) -> None:
    for u in match.uids[2:]:
        state.relower(u, LoweringKind.NATIVE)
    info = dataclasses.replace(match.info, kernel=cost.native_kernel(match.info))
    state.push(match.uids, match.result, StepKind.NATIVE, info, label(info),
               _cost(state, match))


def _cost(state: State, match: Match):
    return cost.native_flops(match.info)


RULE = StepRule("native", StepKind.NATIVE, _match, _apply, _cost,
                "a conv / transposed conv / weight gradient becomes one torch kernel call")
