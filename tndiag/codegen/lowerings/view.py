"""``view``: patterns whose ``i`` legs are on exactly one other tensor become one zero-pad and
strided view of it (``Tensor.unfold``; a plain strided slice, ``view:slice``, when every
kernel has one tap). This is the kernel for *any* pattern on one holder — padding, dilation
and sizes that do not divide included; the down-sampling rule, which rewrites the diagram,
is a different fact.

When the view is the whole network, its result is torch's unfold layout (``N, C, K.., O..``
of a 1-d or 2-d input, symmetric padding) and torch's kernels are allowed (the ``native``
lowering), the cost model (:func:`tndiag.codegen.cost.im2col_wins`) may choose
``torch.nn.functional.unfold`` instead (``im2col``: one call, a fresh result, cheaper where
the fixed cost of the view's several calls dominates).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Dict, List, Sequence, Tuple

from tndiag.codegen import cost
from tndiag.codegen.lowerings.base import (
    EntryKind,
    Match,
    State,
    StepRule,
    exclusive_holder,
    pattern_params,
)
from tndiag.codegen.program import LoweringKind, StepKind
from tndiag.ir.sizes import Size

__all__ = ["RULE", "ViewSpec", "view_spec"]


@dataclass(frozen=True)
class ViewSpec:
    """Zero-pad some axes of a tensor at once, then view each as ``(windows O, taps K)``.

    Axis ``axes[j]`` of size ``I`` becomes the ``O`` windows in place and a new trailing axis
    (in order of ``axes``) the ``K`` taps: ``out[.., o, .., k] = padded[.., o·S + k·D, ..]``.
    Padding every axis before the first unfold keeps the padded copy as small as the input.
    ``im2col``, when not empty, is the shape of the result ``(N, C, K.., O..)`` that
    ``torch.nn.functional.unfold`` computes instead (a new tensor, not a view).
    """

    axes: Tuple[int, ...]
    ndim: int
    strides: Tuple[int, ...]
    pads: Tuple[Tuple[int, int], ...]
    dilations: Tuple[int, ...]
    kernels: Tuple[Size, ...]
    im2col: Tuple[int, ...] = ()

    @property
    def label(self) -> str:
        """``im2col`` (torch's unfold), ``view:slice`` when every kernel has one tap,
        ``view:unfold`` otherwise."""
        if self.im2col:
            return "im2col"
        return "view:slice" if all(k == 1 for k in self.kernels) else "view:unfold"

    @property
    def allocates(self) -> bool:
        """Whether the step's result is a new tensor (torch's unfold) rather than a view."""
        return bool(self.im2col)


def view_spec(letters: str, patterns: Sequence[str], params: Sequence[tuple],
              kernels: Sequence[Size]) -> Tuple[ViewSpec, str]:
    """The view of a tensor with subscripts ``letters`` through patterns (i, o, k) at once.

    >>> spec, out = view_spec("ncij", ["iok", "jpl"], [(2, 1, 1, 1), (1, 0, 0, 1)], [3, 2])
    >>> out, spec.axes, spec.label
    ('ncopkl', (2, 3), 'view:unfold')
    """
    out = list(letters)
    for p in patterns:
        out[letters.index(p[0])] = p[1]
    spec = ViewSpec(tuple(letters.index(p[0]) for p in patterns), len(letters),
                    tuple(q[0] for q in params), tuple((q[1], q[2]) for q in params),
                    tuple(q[3] for q in params), tuple(kernels))
    return spec, "".join(out) + "".join(p[2] for p in patterns)


def _match(state: State) -> List[Match]:
    """The first holder with its patterns (all viewed at once)."""
    by_holder: Dict[int, List[int]] = {}
    for pos, entry in enumerate(state.stack):
        if entry.kind is EntryKind.PATTERN:
            holder = exclusive_holder(state, entry.letters[0], pos)
            if holder is not None:
                by_holder.setdefault(holder, []).append(pos)
    if not by_holder:
        return []
    holder, pats = next(iter(by_holder.items()))
    base, entries = state.stack[holder], [state.stack[p] for p in pats]
    spec, result = view_spec(base.letters, [p.letters for p in entries],
                             [pattern_params(state, p.uid) for p in entries],
                             [state.sizes[p.letters[2]] for p in entries])
    shape = _im2col_shape(state, base.letters, [p.letters for p in entries], spec)
    if shape:
        spec, result = dataclasses.replace(spec, im2col=shape), state.out
    return [Match((base.uid, *(p.uid for p in entries)), result, spec)]


def _im2col_shape(state: State, letters: str, patterns: Sequence[str],
                  spec: ViewSpec) -> Tuple[int, ...]:
    """The result shape when torch's unfold computes this view (see the module docstring),
    else ``()``: the view is all that is left, the output is ``N, C, K.., O..`` of a 1-d or
    2-d input viewed on its trailing axes, padding is symmetric, sizes are concrete and the
    cost model prefers the kernel."""
    nd = len(patterns)
    if "native" not in state.allowed or nd not in (1, 2) or len(letters) != 2 + nd:
        return ()
    if len(state.active()) != 1 + nd or spec.axes != tuple(range(2, 2 + nd)):
        return ()
    want = letters[:2] + "".join(p[2] for p in patterns) + "".join(p[1] for p in patterns)
    shape = [state.sizes[ch] for ch in want]
    if state.out != want or not all(isinstance(v, int) for v in shape):
        return ()
    if any(lo != hi or lo < 0 for lo, hi in spec.pads):
        return ()
    padded = cost.prod(state.sizes[ch] + sum(spec.pads[n]) for n, ch in enumerate(letters[2:]))
    moved = cost.prod(shape[:2]) * padded  # the view's zero-padded copy
    if not cost.im2col_wins(cost.prod(shape), moved if any(sum(lr) for lr in spec.pads) else 0,
                            nd):
        return ()
    return tuple(int(v) for v in shape)


def _apply(state: State, match: Match) -> None:
    base = state.entry(match.uids[0])
    spec: ViewSpec = match.info
    for u in match.uids[1:]:
        state.relower(u, LoweringKind.VIEW)
    if spec.im2col:  # torch's unfold: a new tensor in the output's layout
        state.push(match.uids, match.result, StepKind.VIEW, spec, spec.label,
                   state.size(match.result), key=None)
        return
    key = None if base.key is None else ("view", base.key, spec)
    pad: Size = 0
    if any(lo or hi for lo, hi in spec.pads):  # the view holds one zero-padded copy
        pad = cost.prod(state.sizes[ch] + sum(spec.pads[spec.axes.index(n)])
                        if n in spec.axes else state.sizes[ch]
                        for n, ch in enumerate(base.letters))
    state.push(match.uids, match.result, StepKind.VIEW, spec, spec.label, 0,
               entry=EntryKind.VIEW, key=key, memory=pad)


def _cost(state: State, match: Match):
    """A view is free; torch's unfold copies its result (one element per output element)."""
    return state.size(match.result) if match.info.im2col else 0


RULE = StepRule("view", StepKind.VIEW, _match, _apply, _cost,
                "patterns on one tensor's axes become a zero-pad and strided view")
