"""``broadcast``: a sum's term that is one variable times constant fills on the output legs
the variable lacks becomes the variable permuted, reshaped and ``expand``-ed (a view), added
in place. A rule on the compiled terms of a sum (:mod:`tndiag.codegen.fuse`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import List, Optional, Tuple

from tndiag.codegen import cost
from tndiag.codegen.lowerings.base import Match, StepRule
from tndiag.codegen.program import LoweringKind, Program, Step, StepKind
from tndiag.ir.sizes import Size

__all__ = ["RULE", "BroadcastSpec", "broadcast_term"]


@dataclass(frozen=True)
class BroadcastSpec:
    """``factor · x`` permuted by ``perm``, viewed as ``view`` and expanded to ``shape``.

    ``view`` is the flat output shape with 1 on every leg the variable does not carry.
    """

    perm: Tuple[int, ...]
    view: Tuple[Size, ...]
    shape: Tuple[Size, ...]
    factor: float


def broadcast_term(program: Program) -> Optional[Program]:
    """``program`` rebuilt as one ``broadcast`` step when it is ``x · fills`` (else None).

    >>> from tndiag import compile, ops
    >>> bias = compile(ops.conv((2, 3, 8), (4, 3, 3), bias=True), lowerings=()).terms[1]
    >>> [s.label for s in broadcast_term(bias).steps]
    ['broadcast']
    """
    ops = program.operands
    inputs = [n for n, op in enumerate(ops) if op.lowering is LoweringKind.INPUT]
    fills = [n for n, op in enumerate(ops) if op.lowering is LoweringKind.FILL]
    if len(inputs) != 1 or not fills or len(inputs) + len(fills) != len(ops):
        return None
    x, out = ops[inputs[0]], program.equation.split("->")[1]
    letters = "".join(op.letters for op in ops)
    if len(set(letters)) != len(letters) or sorted(letters) != sorted(out) or not x.letters:
        return None
    factor = program.scale
    for n in fills:
        factor *= ops[n].tensor.fill_value
    sizes = {ch: s for op in ops for ch, s in zip(op.letters, op.shape)}
    order = "".join(ch for ch in out if ch in x.letters)
    spec = BroadcastSpec(tuple(x.letters.index(ch) for ch in order),
                         tuple(sizes[ch] if ch in x.letters else 1 for ch in out),
                         tuple(sizes[ch] for ch in out), factor)
    operands = tuple(op if n in inputs else dataclasses.replace(
        op, lowering=LoweringKind.BROADCAST) for n, op in enumerate(ops))
    step = Step(tuple(inputs + fills), program.equation, StepKind.BROADCAST, spec,
                "broadcast", cost.prod(spec.shape), 0)
    return dataclasses.replace(program, operands=operands, path=(step.positions,),
                               steps=(step,), scale=1.0, flops=step.flops,
                               largest_intermediate=0, peak_memory=0, parts=(program,))


def _match(terms: List[Program]) -> List[Match]:
    found = []
    for n, term in enumerate(terms):
        rebuilt = None if term.parts else broadcast_term(term)
        if rebuilt is not None:
            found.append(Match((n,), "", rebuilt))
    return found


def _apply(terms: List[Program], match: Match) -> None:
    terms[match.uids[0]] = match.info


def _cost(terms: List[Program], match: Match):
    return match.info.flops


RULE: StepRule[List[Program]] = StepRule(
    "broadcast", StepKind.BROADCAST, _match, _apply, _cost,
                "a variable times constant fills becomes an expand view")


def is_broadcast(program: Program) -> bool:
    """Whether ``program`` is one broadcast step."""
    return bool(program.steps) and program.steps[0].kind is StepKind.BROADCAST
