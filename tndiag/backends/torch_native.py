"""Runtime of the structured steps: torch convolution kernels, strided views, Gram products.

Each runner takes the step and its operand tensors and returns the step's result with the
step's result letters as axes (see :mod:`tndiag.codegen.lowering`). Per-spec preparation
(permutations, reshapes, paddings) is computed once and memoised.
"""

from __future__ import annotations

import functools
from typing import List, Tuple

import torch
import torch.nn.functional as F

from tndiag.codegen.lowering import GramSpec, ViewSpec
from tndiag.codegen.native import NativeConv
from tndiag.codegen.program import Step

__all__ = ["STEP_RUNNERS", "run_native", "run_view", "run_gram", "reduced_matrix"]

_CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}
_CONV_T = {1: F.conv_transpose1d, 2: F.conv_transpose2d, 3: F.conv_transpose3d}


def reduced_matrix(I: int, O: int, K: int, stride: int, pad_left: int, dilation: int,
                   device=None, dtype=None) -> torch.Tensor:
    """``Σ_o Π[i, o, k]`` as an ``[I, K]`` count matrix, without forming the dense Π.

    >>> reduced_matrix(4, 2, 3, 1, 0, 1).tolist()
    [[1.0, 0.0, 0.0], [1.0, 1.0, 0.0], [0.0, 1.0, 1.0], [0.0, 0.0, 1.0]]
    """
    i = torch.arange(I, device=device).view(I, 1)
    k = torch.arange(K, device=device).view(1, K)
    shifted = i + pad_left - k * dilation  # = o·S for a hit
    hit = (shifted % stride == 0) & (shifted >= 0) & (shifted < O * stride)
    return hit.to(dtype or torch.get_default_dtype())


def _arrange(t: torch.Tensor, letters: str, summed: str, order: str, shape) -> torch.Tensor:
    if summed:
        t = t.sum([letters.index(c) for c in summed])
        letters = "".join(c for c in letters if c not in summed)
    perm = tuple(letters.index(c) for c in order)
    if perm != tuple(range(len(perm))):
        t = t.permute(perm)
    return t.reshape(shape)


def _flat_pad(pads: List[Tuple[int, int]]) -> List[int]:
    return [p for lr in reversed(pads) for p in lr]


@functools.lru_cache(maxsize=4096)
def _conv_plan(s: NativeConv):
    sz, sp = s.size, lambda letters: [s.size(c) for c in letters]
    G = sz(s.group)
    if s.role == "conv":
        a = (s.a_free + s.group + s.channel + s.a_spatial, [sz(s.a_free), G * sz(s.channel), *sp(s.a_spatial)])
        b = (s.group + s.b_free + s.channel + s.b_spatial, [G * sz(s.b_free), sz(s.channel), *sp(s.b_spatial)])
    elif s.role == "transpose":
        a = (s.a_free + s.group + s.channel + s.a_spatial, [sz(s.a_free), G * sz(s.channel), *sp(s.a_spatial)])
        b = (s.group + s.channel + s.b_free + s.b_spatial, [G * sz(s.channel), sz(s.b_free), *sp(s.b_spatial)])
    else:
        a = (s.channel + s.group + s.a_free + s.a_spatial, [sz(s.channel), G * sz(s.a_free), *sp(s.a_spatial)])
        b = (s.channel + s.group + s.b_free + s.b_spatial, [sz(s.channel), G * sz(s.b_free), *sp(s.b_spatial)])
    out_shape = [s.size(c) for c in s.result]
    pads = list(zip(s.pad_left, s.pad_right))
    symmetric = all(l == r and l >= 0 for l, r in pads)
    padding = [l for l, _ in pads] if symmetric else [0] * s.ndim
    return a, b, out_shape, G, pads, symmetric, padding


def run_native(step: Step, taken: List[torch.Tensor]) -> torch.Tensor:
    """Run a :class:`~tndiag.codegen.native.NativeConv` step with torch's kernels."""
    s: NativeConv = step.info
    (a_order, a_shape), (b_order, b_shape), out_shape, G, pads, symmetric, padding = _conv_plan(s)
    a = _arrange(taken[0], s.a_letters, s.a_sum, a_order, a_shape)
    b = _arrange(taken[1], s.b_letters, s.b_sum, b_order, b_shape)
    if s.role == "transpose":
        return _transpose(s, a, b, G).reshape(out_shape)
    if not symmetric:
        a = F.pad(a, _flat_pad(pads))
    if s.role == "conv":
        return _CONV[s.ndim](a, b, None, s.stride, padding, s.dilation, G).reshape(out_shape)
    weight = b.new_empty(1).expand([G * s.size(s.b_free), s.size(s.a_free),
                                    *[s.size(c) for c in s.out_spatial]])
    grad = torch.ops.aten.convolution_backward(
        b, a, weight, None, list(s.stride), padding, list(s.dilation), False,
        [0] * s.ndim, G, (False, True, False))[1]
    return grad.reshape(out_shape)


def _transpose(s: NativeConv, a: torch.Tensor, b: torch.Tensor, G: int) -> torch.Tensor:
    I = [s.size(c) for c in s.out_spatial]
    O = [s.size(c) for c in s.a_spatial]
    K = [s.size(c) for c in s.b_spatial]
    full = [(o - 1) * st + d * (k - 1) + 1 for o, st, d, k in zip(O, s.stride, s.dilation, K)]
    extra = [i - (f - 2 * pl) for i, f, pl in zip(I, full, s.pad_left)]
    direct = all(pl >= 0 and 0 <= e < max(st, d) for pl, e, st, d in
                 zip(s.pad_left, extra, s.stride, s.dilation))
    if direct:
        return _CONV_T[s.ndim](a, b, None, s.stride, list(s.pad_left), extra, G, s.dilation)
    y = _CONV_T[s.ndim](a, b, None, s.stride, 0, 0, G, s.dilation)
    return F.pad(y, _flat_pad([(-pl, i + pl - f) for pl, i, f in zip(s.pad_left, I, full)]))


def run_view(step: Step, taken: List[torch.Tensor]) -> torch.Tensor:
    """Zero-pad one axis and view it as ``(windows, taps)`` (see :class:`ViewSpec`)."""
    v: ViewSpec = step.info
    t = taken[0]
    if v.pad_left or v.pad_right:
        trailing = v.ndim - 1 - v.axis
        t = F.pad(t, [0, 0] * trailing + [v.pad_left, v.pad_right])
    window = v.dilation * (int(v.kernel) - 1) + 1
    t = t.unfold(v.axis, window, v.stride)
    if v.dilation > 1:
        t = t[..., ::v.dilation]
    return t


def run_gram(step: Step, taken: List[torch.Tensor]) -> torch.Tensor:
    """``M Mᵀ`` of one tensor with itself, batched over shared kept legs."""
    g: GramSpec = step.info
    batch, F_ = _numel(g.batch), _numel(g.kept)
    m = taken[0].permute(g.perm).reshape(batch, F_, g.summed)
    r = torch.bmm(m, m.transpose(1, 2))
    r = r.reshape(*g.batch, *g.kept, *g.kept)
    if g.out_perm != tuple(range(len(g.out_perm))):
        r = r.permute(g.out_perm)
    return r


def _numel(shape) -> int:
    n = 1
    for s in shape:
        n *= int(s)
    return n


def run_einsum(step: Step, taken: List[torch.Tensor]) -> torch.Tensor:
    """A plain einsum step."""
    return torch.einsum(step.equation, *taken)


#: Step kind -> runner (a test checks every kind the planner emits has one).
STEP_RUNNERS = {"einsum": run_einsum, "native": run_native, "view": run_view,
                "gram": run_gram}
