"""Window views and their adjoint (fold) along chosen axes, the building blocks of the routes.

``windows`` turns ``[.., I, ..]`` into the strided view ``[.., O, .., K]`` with
``view[.., o, .., k] = padded[.., o·S + k·D, ..]`` and never copies unless padding is needed;
``fold_axis`` adds ``t[.., k, .., o, ..]`` into ``out[.., o·S + k·D − P, ..]`` (col2im along
one axis). With ``D = 1`` the fold runs phase-major: tap ``k = a·S + r`` lands in phase ``r``,
rows ``a .. a + O`` of an ``[S, rows]`` buffer, so it is ``⌈K/S⌉`` contiguous block adds and
one interleaving copy.
"""

from __future__ import annotations

from typing import List, Sequence

import torch
import torch.nn.functional as F

__all__ = ["windows", "fold_axis", "crop"]


def windows(t: torch.Tensor, first: int, kernel: Sequence[int], stride: Sequence[int],
            pads: Sequence[Sequence[int]], dilation: Sequence[int]) -> torch.Tensor:
    """The strided windows of ``t``'s axes ``first, first + 1, ..``; kernel axes last.

    >>> windows(torch.arange(5.0).view(1, 5), 1, [2], [2], [(0, 0)], [1]).tolist()
    [[[0.0, 1.0], [2.0, 3.0]]]
    """
    flat = [p for lr in reversed(list(pads)) for p in lr]
    if any(flat):
        flat = [0, 0] * (t.dim() - first - len(pads)) + flat
        t = F.pad(t, flat)
    for n, (k, s, d) in enumerate(zip(kernel, stride, dilation)):
        t = t.unfold(first + n, d * (k - 1) + 1, s)
    if any(d > 1 for d in dilation):
        t = t[(Ellipsis,) + tuple(slice(None, None, d) for d in dilation)]
    return t


def crop(t: torch.Tensor, axis: int, start: int, size: int) -> torch.Tensor:
    """``out[.., i, ..] = t[.., i + start, ..]`` for ``0 ≤ i < size``; zero where ``t`` ends.

    >>> crop(torch.arange(4.0), 0, 1, 4).tolist()
    [1.0, 2.0, 3.0, 0.0]
    """
    have = t.shape[axis]
    lo, hi = max(start, 0), min(start + size, have)
    if lo == 0 and hi - lo == size and start == 0:
        return t if have == size else t.narrow(axis, 0, size)
    if lo >= hi:
        shape = list(t.shape)
        shape[axis] = size
        return t.new_zeros(shape)
    part = t.narrow(axis, lo, hi - lo)
    before, after = lo - start, size - (hi - start)
    if before == 0 and after == 0:
        return part
    widths = [0, 0] * (t.dim() - 1 - axis) + [before, after]
    return F.pad(part, widths)


def fold_axis(t: torch.Tensor, k_axis: int, o_axis: int, size: int, stride: int,
              pad_left: int, dilation: int) -> torch.Tensor:
    """Fold ``t``'s kernel axis ``k_axis`` into its window axis ``o_axis > k_axis``.

    The result has the ``K`` axis removed and ``I = size`` positions where ``O`` was.

    >>> t = torch.ones(2, 3)  # K = 2 taps of O = 3 windows, stride 1: counts per position
    >>> fold_axis(t, 0, 1, 4, 1, 0, 1).tolist()
    [1.0, 2.0, 2.0, 1.0]
    """
    K, O = t.shape[k_axis], t.shape[o_axis]
    if dilation == 1:  # phase-major: tap a·S + r adds into phase r, rows a .. a + O
        A = -(-K // stride)
        shape = list(t.shape)
        shape[k_axis], shape[o_axis] = stride, O + A - 1
        buf = t.new_zeros(shape)
        for a in range(A):
            width = min(stride, K - a * stride)
            buf.narrow(k_axis, 0, width).narrow(o_axis, a, O).add_(
                t.narrow(k_axis, a * stride, width))
        flat = buf.movedim(k_axis, o_axis).flatten(o_axis - 1, o_axis)
    else:
        shape = list(t.shape)
        shape[o_axis] = (O - 1) * stride + dilation * (K - 1) + 1
        del shape[k_axis]
        flat = t.new_zeros(shape)
        lead: List[slice] = [slice(None)] * (o_axis - 1)
        for k in range(K):
            span = slice(k * dilation, k * dilation + (O - 1) * stride + 1, stride)
            flat[tuple(lead + [span])].add_(t.select(k_axis, k))
    return crop(flat, o_axis - 1, pad_left, size)
