"""Re-expressions of a native convolution step, run by torch kernels other than its own.

Each kernel takes the operands in the layout :func:`tndiag.backends.kernels.run_native` hands
torch's kernels (an asymmetric ``conv`` or ``weight`` input already padded) and a literal
``geometry`` from :func:`geometry`:

| role | a | b | result |
|---|---|---|---|
| ``conv`` | ``[N, G·C, *I]`` | ``[G·D, C, *K]`` | ``[N, G·D, *O]`` |
| ``transpose`` | ``[N, G·D, *O]`` | ``[G·D, C, *K]`` | ``[N, G·C, *I]`` |
| ``weight`` | ``[N, G·C, *I]`` | ``[N, G·D, *O]`` | ``[G·D, C, *K]`` |

Routes (their applicability and cost live in :mod:`tndiag.codegen.routes`): ``gemm`` — the
strided window view of the input copied once into im2col columns and one batched GEMM (the
transpose multiplies first, then folds the columns phase-major, no Π); ``depth2d`` — a 3-d
convolution whose depth windows become channels of a 2-d convolution over ``N·O_depth``
images; ``rows`` — a 2-d weight gradient as one batched GEMM per kernel row between whole
input rows and the output gradient, the kernel columns read off strided diagonals (torch's
own kernel is slow on depthwise layers with wide kernels).

:func:`run_routed` is the step kernel (the backend's runner and the exported call); this
module imports :class:`~tndiag.codegen.native.NativeConv` for annotations only, so
:func:`tndiag.export` writes its text into exported modules.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, List, Tuple

import torch
import torch.nn.functional as F

from tndiag.backends.kernels import native_operands
from tndiag.backends.routes.fold import crop, fold_axis, windows
from tndiag.codegen.native import NativeConv

__all__ = ["geometry", "gemm", "depth2d", "rows", "ROUTE_KERNELS", "run_routed"]


def geometry(s: NativeConv, padding: List[int]) -> Tuple:
    """``(role, G, K, I, O, stride, padding, dilation, pad_left, w_shape)`` of a step, as ints
    and tuples; ``padding`` is the symmetric padding still to apply, ``w_shape`` the 2-d
    weight-gradient shape of :func:`depth2d`."""
    size = lambda letters: tuple(int(s.size(c)) for c in letters)  # noqa: E731
    if s.role == "conv":
        i, o, k = s.a_spatial, s.out_spatial, s.b_spatial
    elif s.role == "transpose":
        i, o, k = s.out_spatial, s.a_spatial, s.b_spatial
    else:
        i, o, k = s.a_spatial, s.b_spatial, s.out_spatial
    G, K = int(s.size(s.group)), size(k)
    w_shape = (G * int(s.size(s.b_free)), int(s.size(s.a_free)) * K[0], *K[1:])
    return (s.role, G, K, size(i), size(o), tuple(s.stride), tuple(padding),
            tuple(s.dilation), tuple(s.pad_left), w_shape)


def _with_bias(y: torch.Tensor, bias) -> torch.Tensor:
    return y if bias is None else y + bias.view(-1, *[1] * (y.dim() - 2))


def _prod(values) -> int:
    n = 1
    for v in values:
        n *= int(v)
    return n


def _columns(a: torch.Tensor, G: int, K, stride, padding, dilation) -> torch.Tensor:
    """``[N, G·C, *I]`` -> the im2col matrix ``[N, G, C·∏K, ∏O]`` (one copy of the windows)."""
    nd = len(K)
    v = windows(a, 2, K, stride, [(p, p) for p in padding], dilation)  # [N, GC, *O, *K]
    v = v.permute(0, 1, *range(2 + nd, 2 + 2 * nd), *range(2, 2 + nd))  # [N, GC, *K, *O]
    return v.reshape(a.shape[0], G, -1, _prod(v.shape[2 + nd:]))


#: The weight gradient along ``gemm`` multiplies sample by sample ([N, G, D, C·∏K], summed
#: over N); samples go in chunks whose products hold at most this many elements (16 MiB of
#: float32), so a large batch never holds N weight-sized products at once.
WEIGHT_CHUNK_ELEMENTS = 1 << 22


def gemm(a: torch.Tensor, b: torch.Tensor, bias, geom: Tuple) -> torch.Tensor:
    """The step as one batched GEMM with the im2col matrix (see the module docstring).

    >>> x, w = torch.randn(2, 1, 40), torch.randn(4, 1, 10)
    >>> y = gemm(x, w, None, ("conv", 1, (10,), (40,), (7,), (5,), (0,), (1,), (0,), ()))
    >>> torch.allclose(y, F.conv1d(x, w, None, 5), atol=1e-5)
    True
    """
    role, G, K, I, O, stride, padding, dilation, pad_left, _ = geom
    if role == "conv":
        w = b.reshape(G, b.shape[0] // G, -1)  # [G, D, C·∏K]
        y = torch.matmul(w, _columns(a, G, K, stride, padding, dilation))  # [N, G, D, ∏O]
        return _with_bias(y.reshape(a.shape[0], -1, *O), bias)
    if role == "weight":
        g = b.reshape(b.shape[0], G, b.shape[1] // G, -1)  # [N, G, D, ∏O]
        cols = _columns(a, G, K, stride, padding, dilation).transpose(-1, -2)
        per_sample = g.shape[1] * g.shape[2] * cols.shape[-1]  # elements of one [G, D, C·∏K]
        chunk = max(1, min(g.shape[0], WEIGHT_CHUNK_ELEMENTS // per_sample))
        w = torch.matmul(g[:chunk], cols[:chunk]).sum(0)
        for start in range(chunk, g.shape[0], chunk):  # no [N, G, D, C·∏K] at large N
            w += torch.matmul(g[start:start + chunk], cols[start:start + chunk]).sum(0)
        return w.reshape(-1, w.shape[-1] // _prod(K), *K)
    w = b.reshape(G, b.shape[0] // G, -1)  # [G, D, C·∏K]
    cols = torch.matmul(w.transpose(-1, -2), a.reshape(a.shape[0], G, w.shape[1], -1))
    nd = len(K)
    t = cols.reshape(a.shape[0], G, -1, *K, *O)  # [N, G, C, *K, *O]
    for d in range(nd):  # each fold turns (K_d, O_d) into I_d
        t = fold_axis(t, 3, 3 + nd, I[d], stride[d], pad_left[d], dilation[d])
    return _with_bias(t.flatten(1, 2), bias)


def _unfold_depth(x: torch.Tensor, K, stride, padding, dilation) -> torch.Tensor:
    """``[N, C, D, H, W]`` -> ``[N·O_d, C·K_d, H, W]``: each depth window as channels."""
    v = windows(x, 2, K[:1], stride[:1], [(padding[0], padding[0])], dilation[:1])
    v = v.permute(0, 2, 1, 5, 3, 4)  # [N, O_d, C, K_d, H, W]
    return v.reshape(v.shape[0] * v.shape[1], -1, *v.shape[4:])


def _batch_depth(y: torch.Tensor) -> torch.Tensor:
    """``[N, C, O_d, H, W]`` -> ``[N·O_d, C, H, W]``."""
    return y.transpose(1, 2).flatten(0, 1)


def depth2d(a: torch.Tensor, b: torch.Tensor, bias, geom: Tuple) -> torch.Tensor:
    """A 3-d step as a 2-d one over ``N·O_depth`` images whose channels carry the depth taps.

    >>> x, w = torch.randn(1, 2, 5, 4, 4), torch.randn(3, 2, 3, 3, 3)
    >>> g = ("conv", 1, (3, 3, 3), (5, 4, 4), (3, 2, 2), (1, 1, 1), (0, 0, 0), (1, 1, 1),
    ...      (0, 0, 0), ())
    >>> torch.allclose(depth2d(x, w, None, g), F.conv3d(x, w), atol=1e-5)
    True
    """
    role, G, K, I, O, st, padding, dil, pad_left, w_shape = geom
    if role == "conv":
        y = F.conv2d(_unfold_depth(a, K, st, padding, dil), b.flatten(1, 2), bias, st[1:],
                     padding[1:], dil[1:], G)
        return y.unflatten(0, (a.shape[0], -1)).transpose(1, 2)
    if role == "weight":
        g = _batch_depth(b)
        w = torch.ops.aten.convolution_backward(
            g, _unfold_depth(a, K, st, padding, dil), g.new_empty(1).expand(w_shape), None,
            list(st[1:]), list(padding[1:]), list(dil[1:]), False, [0, 0], G,
            (False, True, False))[1]
        return w.unflatten(1, (-1, K[0]))
    y = F.conv_transpose2d(_batch_depth(a), b.flatten(1, 2), None, st[1:], 0, 0, G, dil[1:])
    for axis, size, start in ((2, I[1], pad_left[1]), (3, I[2], pad_left[2])):
        y = crop(y, axis, start, size)
    t = y.unflatten(0, (a.shape[0], -1)).unflatten(2, (-1, K[0]))  # [N, O_d, C, K_d, H, W]
    t = t.permute(0, 2, 3, 1, 4, 5)  # [N, C, K_d, O_d, H, W]
    return _with_bias(fold_axis(t, 2, 3, I[0], st[0], pad_left[0], dil[0]), bias)


def _phase_rows(a: torch.Tensor, G: int, taps, stride, padding, dilation, O) -> torch.Tensor:
    """``[N, G·C, H, W]`` -> ``[G, S_h, H_q, N, C, W_u]``: the padded input's rows split by
    residue mod the row stride (row ``q·S_h + p`` at ``[p, q]``), cropped to the ``W_u``
    columns the windows read; one copy per phase into a zeroed buffer."""
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = taps, stride, padding, dilation
    used_h, used_w = (kh - 1) * dh + (O[0] - 1) * sh + 1, (kw - 1) * dw + (O[1] - 1) * sw + 1
    hq = -(-used_h // sh)
    N, H, W = a.shape[0], a.shape[2], a.shape[3]
    out = a.new_zeros(G, sh, hq, N, a.shape[1] // G, used_w)
    cols = min(W, used_w - pw)
    for phase in range(sh):  # padded row q·S_h + phase is input row q·S_h + phase − P_h
        first, stop = max(0, -(-(ph - phase) // sh)), min(hq, -(-(H + ph - phase) // sh))
        if stop > first and cols > 0:
            row = first * sh + phase - ph
            src = a[:, :, row:row + (stop - first - 1) * sh + 1:sh, :cols].unflatten(1, (G, -1))
            out[:, phase, first:stop, :, :, pw:pw + cols].permute(2, 0, 3, 1, 4).copy_(src)
    return out


def rows(a: torch.Tensor, b: torch.Tensor, bias, geom: Tuple) -> torch.Tensor:
    """A 2-d weight gradient as a GEMM per kernel row (role ``weight``, any stride,
    dilation and groups): with the input as ``[G, S_h, H_q, N, C, W_u]``
    (:func:`_phase_rows`) the rows ``k_h·D_h + i·S_h`` (``i < O_h``) are a ``[G, O_h·N,
    C·W_u]`` view ``U``, ``P = Uᵀ [G, O_h·N, D·O_w]`` and ``dW[g, d, c, k_h, k_w] =
    Σ_j P[g, c, j·S_w + k_w·D_w, d, j]``, a strided diagonal summed over ``j``.

    >>> x, g = torch.randn(2, 4, 9, 8), torch.randn(2, 4, 5, 4)
    >>> geom = ("weight", 4, (3, 3), (9, 8), (5, 4), (2, 2), (1, 1), (1, 1), (1, 1), ())
    >>> w = torch.ops.aten.convolution_backward(g, x, torch.empty(4, 1, 3, 3), None, [2, 2],
    ...     [1, 1], [1, 1], False, [0, 0], 4, (False, True, False))[1]
    >>> torch.allclose(rows(x, g, None, geom), w, atol=1e-5)
    True
    """
    _, G, K, _, O, stride, padding, dilation, _, _ = geom
    x = _phase_rows(a, G, K, stride, padding, dilation, O)  # [G, S_h, H_q, N, C, W_u]
    N, C, used_w = x.shape[3], x.shape[4], x.shape[5]
    D = b.shape[1] // G
    g = b.view(N, G, D, O[0], O[1]).permute(1, 3, 0, 2, 4).reshape(G, O[0] * N, D * O[1])
    out = a.new_empty(G, D, C, K[0], K[1])
    for kh in range(K[0]):
        first, phase = divmod(kh * dilation[0], stride[0])
        u = x[:, phase, first:first + O[0]].reshape(G, O[0] * N, C * used_w)
        p = torch.bmm(u.transpose(1, 2), g)  # [G, C·W_u, D·O_w]
        diagonal = p.as_strided((G, D, C, K[1], O[1]), (p.stride(0), O[1], used_w * D * O[1],
                                                         dilation[1] * D * O[1],
                                                         stride[1] * D * O[1] + 1))
        out[:, :, :, kh] = diagonal.sum(-1)
    return out.reshape(G * D, C, K[0], K[1])


#: Route name -> ``kernel(a, b, bias, geometry)`` of a native step (``native``: torch's own,
#: :func:`tndiag.backends.kernels.run_native`).
ROUTE_KERNELS: Dict[str, Callable] = {"gemm": gemm, "depth2d": depth2d, "rows": rows}


def run_routed(recipe: tuple, taken: List[Any]) -> Any:
    """Arrange A, B (and the bias), pad, run the route's kernel, reshape to the result."""
    route, how_a, how_b, how_bias, pad, out_shape, geom = recipe
    y = ROUTE_KERNELS[route](*native_operands(taken, how_a, how_b, how_bias, pad), geom)
    return y if y.shape == out_shape else y.reshape(out_shape)
