"""``bias``: a sum of one native ``conv`` / ``transpose`` term and a broadcast term whose
variable sits exactly on the kernel's output-channel legs (groups included) becomes one
kernel call with that variable as its ``bias``. A rule on the compiled terms of a sum, after
``broadcast`` (:mod:`tndiag.codegen.fuse`).
"""

from __future__ import annotations

import dataclasses
from typing import List, Optional

from tndiag.codegen import cost
from tndiag.codegen.lowerings.base import Match, StepRule
from tndiag.codegen.lowerings.broadcast import broadcast_term, is_broadcast  # noqa: F401
from tndiag.codegen.native import NativeConv
from tndiag.codegen.program import LoweringKind, Operand, Program, Step, StepKind

__all__ = ["RULE", "fuse_bias"]


def _out(program: Program) -> str:
    return program.equation.split("->")[1]


def _single_kernel(program: Program) -> Optional[NativeConv]:
    """The NativeConv of a program that is one conv / transposed-conv step, else None."""
    if len(program.steps) != 1 or program.scale != 1:
        return None
    step = program.steps[0]
    if step.kind is not StepKind.NATIVE or step.info.role not in ("conv", "transpose") \
            or step.info.bias:
        return None
    return step.info if step.info.result == _out(program) else None


def fuse_bias(conv: Program, bias: Program) -> Optional[Program]:
    """One program computing ``conv + bias`` with the bias passed to the native kernel.

    ``bias`` must already be a broadcast term (:func:`broadcast_term`) whose variable lies
    on exactly the output legs that are the kernel's output channels; None otherwise.

    >>> from tndiag import compile, ops
    >>> s = compile(ops.conv((2, 3, 8), (4, 3, 3), bias=True), lowerings=("native",))
    >>> fused = fuse_bias(s.terms[0], broadcast_term(s.terms[1]))
    >>> [step.label for step in fused.steps], fused.inputs
    (['conv1d+bias'], ('X', 'W', 'B'))
    """
    spec = _single_kernel(conv)
    if spec is None or not is_broadcast(bias):
        return None
    c_out, b_out = _out(conv), _out(bias)
    (x,) = [op for op in bias.operands if op.lowering is LoweringKind.INPUT]
    where = sorted(b_out.index(ch) for ch in x.letters)
    if [c_out[p] for p in where] != list(spec.group + spec.b_free):
        return None
    letters = "".join(c_out[b_out.index(ch)] for ch in x.letters)
    info = dataclasses.replace(spec, bias=letters, bias_scale=bias.steps[0].info.factor)
    step = conv.steps[0]
    fused = Step(step.positions + (len(conv.operands),), f"{step.equation} + {letters}",
                 StepKind.NATIVE, info, step.label + "+bias",
                 step.flops + cost.prod(conv.output_shape), step.memory)
    operands = conv.operands + (Operand(x.tensor, letters, x.shape, LoweringKind.INPUT),)
    names = dict(zip(conv.inputs, conv.input_shapes))
    names.update(zip(bias.inputs, bias.input_shapes))
    return dataclasses.replace(conv, equation=f"{conv.equation} + {letters}->{c_out}",
                               operands=operands, inputs=tuple(names),
                               input_shapes=tuple(names.values()), path=(fused.positions,),
                               steps=(fused,), flops=fused.flops, parts=(conv,) + bias.parts)


def _match(terms: List[Program]) -> List[Match]:
    """The first (kernel term, broadcast term) pair that fuses."""
    for n, conv in enumerate(terms):
        if _single_kernel(conv) is None:
            continue
        for m, bias in enumerate(terms):
            fused = None if m == n else fuse_bias(conv, bias)
            if fused is not None:
                return [Match((n, m), "", fused)]
    return []


def _apply(terms: List[Program], match: Match) -> None:
    n, m = match.uids
    rest = [t for q, t in enumerate(terms) if q not in (n, m)]
    terms[:] = [match.info] + rest


def _cost(terms: List[Program], match: Match):
    return match.info.flops


RULE: StepRule[List[Program]] = StepRule(
    "bias", StepKind.NATIVE, _match, _apply, _cost,
                "a native conv term plus a broadcast bias term becomes the kernel's bias")
