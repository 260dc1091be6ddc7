"""Terms of a sum evaluated together: a bias fused into a native kernel, broadcast terms.

Recognised by structure (letters, lowerings and positions of the output legs; never by
tensor names), after each term of a :class:`~tndiag.ir.Sum` has been compiled on its own:

- ``broadcast``: a term is one variable times constant fills on the output legs the
  variable lacks → the variable reshaped and ``expand``-ed to the output (a view), added in
  place.
- ``bias``: one term is a single native ``conv`` / ``transpose`` step and a broadcast term's
  variable sits exactly on that kernel's output-channel legs (groups included) → the
  variable handed to the kernel as its ``bias`` (one call, no broadcast tensor).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

from tndiag.codegen import cost
from tndiag.codegen.program import AnyProgram, Operand, Program, Step, StepKind, SumProgram
from tndiag.ir.sizes import Size

__all__ = ["BroadcastSpec", "broadcast_term", "fuse_bias", "combine_terms", "unfused"]


@dataclass(frozen=True)
class BroadcastSpec:
    """``factor · x`` permuted by ``perm``, viewed as ``view`` and expanded to ``shape``.

    ``view`` is the flat output shape with 1 on every leg the variable does not carry.
    """

    perm: Tuple[int, ...]
    view: Tuple[Size, ...]
    shape: Tuple[Size, ...]
    factor: float


def _out(program: Program) -> str:
    return program.equation.split("->")[1]


def broadcast_term(program: Program) -> Optional[Program]:
    """``program`` rebuilt as one ``broadcast`` step when it is ``x · fills`` (else None).

    >>> from tndiag import compile, ops
    >>> bias = compile(ops.conv((2, 3, 8), (4, 3, 3), bias=True), lowerings=()).terms[1]
    >>> [s.label for s in broadcast_term(bias).steps]
    ['broadcast']
    """
    ops = program.operands
    inputs = [n for n, op in enumerate(ops) if op.lowering == "input"]
    fills = [n for n, op in enumerate(ops) if op.lowering == "fill"]
    if len(inputs) != 1 or not fills or len(inputs) + len(fills) != len(ops):
        return None
    x, out = ops[inputs[0]], _out(program)
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
    operands = tuple(op if n in inputs else dataclasses.replace(op, lowering="broadcast")
                     for n, op in enumerate(ops))
    step = Step(tuple(inputs + fills), program.equation, StepKind.BROADCAST, spec,
                "broadcast", cost.prod(spec.shape), 0)
    return dataclasses.replace(program, operands=operands, path=(step.positions,),
                               steps=(step,), scale=1.0, flops=step.flops,
                               largest_intermediate=0, peak_memory=0, parts=(program,))


def _single_kernel(program: Program):
    """The NativeConv of a program that is one conv / transposed-conv step, else None."""
    if len(program.steps) != 1 or program.scale != 1:
        return None
    step = program.steps[0]
    if step.kind != "native" or step.info.role not in ("conv", "transpose") or step.info.bias:
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
    if spec is None or not _is_broadcast(bias):
        return None
    c_out, b_out = _out(conv), _out(bias)
    (x,) = [op for op in bias.operands if op.lowering == "input"]
    channels = spec.group + spec.b_free
    where = sorted(b_out.index(ch) for ch in x.letters)
    if [c_out[p] for p in where] != list(channels):
        return None
    letters = "".join(c_out[b_out.index(ch)] for ch in x.letters)
    factor = bias.steps[0].info.factor
    info = dataclasses.replace(spec, bias=letters, bias_scale=factor)
    step = conv.steps[0]
    fused = Step(step.positions + (len(conv.operands),), f"{step.equation} + {letters}",
                 StepKind.NATIVE, info, step.label + "+bias",
                 step.flops + cost.prod(conv.output_shape), step.memory, step.routes,
                 step.route, step.tune)
    operands = conv.operands + (Operand(x.tensor, letters, x.shape, "input"),)
    names = dict(zip(conv.inputs, conv.input_shapes))
    names.update(zip(bias.inputs, bias.input_shapes))
    equation = f"{conv.equation} + {letters}->{c_out}"
    return dataclasses.replace(conv, equation=equation, operands=operands,
                               inputs=tuple(names), input_shapes=tuple(names.values()),
                               path=(fused.positions,), steps=(fused,), flops=fused.flops,
                               parts=(conv,) + bias.parts)


def combine_terms(terms: Sequence[Program], allowed: Sequence[str]) -> List[Program]:
    """Rewrite broadcast terms and fuse each into a native kernel term where allowed.

    >>> from tndiag import compile, ops
    >>> s = compile(ops.conv((2, 3, 8), (4, 3, 3), bias=True), lowerings=())
    >>> [p.steps[0].label for p in combine_terms(s.terms, ("native", "bias", "broadcast"))]
    ['einsum', 'broadcast']
    """
    if "broadcast" not in allowed and "bias" not in allowed:
        return list(terms)
    original = {}
    out = []
    for term in terms:
        rebuilt = broadcast_term(term)
        if rebuilt is not None:
            original[id(rebuilt)] = term
        out.append(term if rebuilt is None else rebuilt)
    if "bias" in allowed:
        out = _fuse_all(out)
    if "broadcast" not in allowed:  # a broadcast term left over keeps its einsum program
        out = [original.get(id(t), t) for t in out]
    return out


def _is_broadcast(program: Program) -> bool:
    return bool(program.steps) and program.steps[0].kind == "broadcast"


def _fuse_all(terms: List[Program]) -> List[Program]:
    for n, conv in enumerate(terms):
        if _single_kernel(conv) is None:
            continue
        for m, bias in enumerate(terms):
            if m == n or not _is_broadcast(bias):
                continue
            fused = fuse_bias(conv, bias)
            if fused is not None:
                rest = [t for q, t in enumerate(terms) if q not in (n, m)]
                return _fuse_all([fused] + rest)
    return terms


def unfused(program: AnyProgram) -> AnyProgram:
    """The program with every fused or broadcast term split back into its einsum terms.

    >>> from tndiag import compile, ops
    >>> fused = compile(ops.conv((2, 3, 8), (4, 3, 3), bias=True))
    >>> [len(t.steps) for t in unfused(fused).terms], unfused(fused).inputs
    ([1, 1], ('X', 'W', 'B'))
    """
    terms = program.terms if isinstance(program, SumProgram) else (program,)
    if not isinstance(program, (Program, SumProgram)) or not any(
            isinstance(t, Program) and t.parts for t in terms):
        return program
    split = tuple(p for t in terms for p in (
        t.parts if isinstance(t, Program) and t.parts else (t,)))
    if len(split) == 1:
        return dataclasses.replace(split[0], inputs=program.inputs,
                                   input_shapes=program.input_shapes)
    return SumProgram(split, program.inputs, program.input_shapes)
