"""Re-expressions of a native convolution step, run by torch kernels other than its own.

Every factory takes the step's :class:`~tndiag.codegen.native.NativeConv` and the symmetric
padding still to apply (the native preparer has already padded an asymmetric ``conv`` or
``weight`` input) and returns ``kernel(a, b, bias)`` on the operands in the kernel layout of
:func:`tndiag.backends.torch_native.prepare_native`:

| role | a | b | result |
|---|---|---|---|
| ``conv`` | ``[N, G·C, *I]`` | ``[G·D, C, *K]`` | ``[N, G·D, *O]`` |
| ``transpose`` | ``[N, G·D, *O]`` | ``[G·D, C, *K]`` | ``[N, G·C, *I]`` |
| ``weight`` | ``[N, G·C, *I]`` | ``[N, G·D, *O]`` | ``[G·D, C, *K]`` |

Routes (their applicability and cost live in :mod:`tndiag.codegen.routes`): ``gemm`` — the
strided window view of the input copied once into im2col columns and one batched GEMM (the
transpose multiplies first, then folds the columns phase-major, no Π); ``depth2d`` — a 3-d
convolution whose depth windows become channels of a 2-d convolution over ``N·O_depth``
images.
"""

from __future__ import annotations

from typing import Callable, List

import torch
import torch.nn.functional as F

from tndiag.backends.routes.fold import crop, fold_axis, windows
from tndiag.codegen.native import NativeConv

__all__ = ["gemm", "depth2d"]

Kernel = Callable[..., torch.Tensor]


def _geometry(s: NativeConv):
    """(G, kernel sizes, input sizes, output sizes) of the forward convolution."""
    size = lambda letters: [int(s.size(c)) for c in letters]  # noqa: E731
    if s.role == "conv":
        i, o, k = s.a_spatial, s.out_spatial, s.b_spatial
    elif s.role == "transpose":
        i, o, k = s.out_spatial, s.a_spatial, s.b_spatial
    else:
        i, o, k = s.a_spatial, s.b_spatial, s.out_spatial
    return int(s.size(s.group)), size(k), size(i), size(o)


def _with_bias(y: torch.Tensor, bias) -> torch.Tensor:
    return y if bias is None else y + bias.view(-1, *[1] * (y.dim() - 2))


def _columns(a: torch.Tensor, s: NativeConv, G: int, K, padding) -> torch.Tensor:
    """``[N, G·C, *I]`` -> the im2col matrix ``[N, G, C·∏K, ∏O]`` (one copy of the windows)."""
    nd = s.ndim
    v = windows(a, 2, K, s.stride, [(p, p) for p in padding], s.dilation)  # [N, GC, *O, *K]
    v = v.permute(0, 1, *range(2 + nd, 2 + 2 * nd), *range(2, 2 + nd))  # [N, GC, *K, *O]
    return v.reshape(a.shape[0], G, -1, _prod(v.shape[2 + nd:]))


def _prod(values) -> int:
    n = 1
    for v in values:
        n *= int(v)
    return n


def gemm(s: NativeConv, padding: List[int]) -> Kernel:
    """The step as one batched GEMM with the im2col matrix (see the module docstring)."""
    G, K, I, O = _geometry(s)
    nd = s.ndim
    if s.role == "conv":
        def conv_kernel(a, b, bias):
            w = b.reshape(G, b.shape[0] // G, -1)  # [G, D, C·∏K]
            y = torch.matmul(w, _columns(a, s, G, K, padding))  # [N, G, D, ∏O]
            return _with_bias(y.reshape(a.shape[0], -1, *O), bias)
        return conv_kernel
    if s.role == "weight":
        def weight_kernel(a, b, bias):
            g = b.reshape(b.shape[0], G, b.shape[1] // G, -1)  # [N, G, D, ∏O]
            w = torch.matmul(g, _columns(a, s, G, K, padding).transpose(-1, -2)).sum(0)
            return w.reshape(-1, w.shape[-1] // _prod(K), *K)
        return weight_kernel

    def kernel(a, b, bias):
        w = b.reshape(G, b.shape[0] // G, -1)  # [G, D, C·∏K]
        cols = torch.matmul(w.transpose(-1, -2), a.reshape(a.shape[0], G, w.shape[1], -1))
        t = cols.reshape(a.shape[0], G, -1, *K, *O)  # [N, G, C, *K, *O]
        for d in range(nd):  # each fold turns (K_d, O_d) into I_d
            t = fold_axis(t, 3, 3 + nd, I[d], s.stride[d], s.pad_left[d], s.dilation[d])
        return _with_bias(t.flatten(1, 2), bias)
    return kernel


def depth2d(s: NativeConv, padding: List[int]) -> Kernel:
    """A 3-d step as a 2-d one over ``N·O_depth`` images whose channels carry the depth taps."""
    G, K, I, O = _geometry(s)
    st, dil = s.stride, s.dilation
    depth_pad = [(padding[0], padding[0])]

    def unfold_depth(x):  # [N, C, D, H, W] -> [N·O_d, C·K_d, H, W]
        v = windows(x, 2, K[:1], st[:1], depth_pad, dil[:1])  # [N, C, O_d, H, W, K_d]
        v = v.permute(0, 2, 1, 5, 3, 4)
        return v.reshape(v.shape[0] * v.shape[1], -1, *v.shape[4:])

    def batch_depth(y):  # [N, C, O_d, H, W] -> [N·O_d, C, H, W]
        return y.transpose(1, 2).flatten(0, 1)

    def unbatch(y, n):  # [N·O_d, C, H, W] -> [N, C, O_d, H, W]
        return y.unflatten(0, (n, -1)).transpose(1, 2)

    if s.role == "conv":
        def conv_kernel(a, b, bias):
            y = F.conv2d(unfold_depth(a), b.flatten(1, 2), bias, st[1:], padding[1:], dil[1:], G)
            return unbatch(y, a.shape[0])
        return conv_kernel
    if s.role == "weight":
        w_shape = [G * int(s.size(s.b_free)), int(s.size(s.a_free)) * K[0], *K[1:]]

        def weight_kernel(a, b, bias):
            g = batch_depth(b)
            w = torch.ops.aten.convolution_backward(
                g, unfold_depth(a), g.new_empty(1).expand(w_shape), None, list(st[1:]),
                padding[1:], list(dil[1:]), False, [0, 0], G, (False, True, False))[1]
            return w.unflatten(1, (-1, K[0]))
        return weight_kernel

    def kernel(a, b, bias):
        y = F.conv_transpose2d(batch_depth(a), b.flatten(1, 2), None, st[1:], 0, 0, G, dil[1:])
        for axis, size, pl in ((2, I[1], s.pad_left[1]), (3, I[2], s.pad_left[2])):
            y = crop(y, axis, pl, size)
        t = y.unflatten(0, (a.shape[0], -1)).unflatten(2, (-1, K[0]))  # [N, O_d, C, K_d, H, W]
        t = t.permute(0, 2, 3, 1, 4, 5)  # [N, C, K_d, O_d, H, W]
        t = fold_axis(t, 2, 3, I[0], st[0], s.pad_left[0], dil[0])
        return _with_bias(t, bias)
    return kernel
