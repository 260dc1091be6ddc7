"""Independent oracles for the functional tests: torch's own kernels and explicit references.

torch's ``unfold``/``fold`` only handle 2-d, so N-d references are written here from
``F.pad`` and ``Tensor.unfold``; ``fold`` is the adjoint of unfold (its vector-Jacobian
product), and ``unfold_kernel`` is written out from the pattern's index relation.
"""

import itertools

import torch
import torch.nn.functional as F

TORCH_CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}
TORCH_CONV_T = {1: F.conv_transpose1d, 2: F.conv_transpose2d, 3: F.conv_transpose3d}


def assert_matches(ours, ref, tol=1e-10):
    """Max abs error <= ``tol`` relative to the output scale (float64), and equal shapes."""
    assert ours.shape == ref.shape, (ours.shape, ref.shape)
    assert ours.dtype == ref.dtype
    if ref.numel() == 0:
        return
    scale = max(1.0, ref.abs().max().item())
    err = (ours - ref).abs().max().item()
    assert err <= tol * scale, f"max abs error {err:.3g} > {tol:g} * {scale:.3g}"


def pairs(padding, ndim):
    """Padding as ``(left, right)`` pairs (ints, tuples and pair tuples)."""
    if isinstance(padding, int):
        return [(padding, padding)] * ndim
    if isinstance(padding[0], int):
        return [(p, p) for p in padding]
    return [tuple(p) for p in padding]


def pad_input(x, padding, ndim):
    """Zero-pad the last ``ndim`` axes of ``x`` by ``(left, right)`` pairs."""
    flat = []
    for left, right in reversed(pairs(padding, ndim)):
        flat += [left, right]
    return F.pad(x, flat)


def conv_reference(x, w, b, stride, padding, dilation, groups):
    """torch's conv (asymmetric padding: explicit ``F.pad`` then unpadded conv)."""
    ndim = w.dim() - 2
    if isinstance(padding, (tuple, list)) and not isinstance(padding[0], int):
        x, padding = pad_input(x, padding, ndim), 0
    return TORCH_CONV[ndim](x, w, b, stride, padding, dilation, groups)


def _tuple(v, ndim):
    return (v,) * ndim if isinstance(v, int) else tuple(v)


def unfold_reference(x, kernel_size, dilation=1, padding=0, stride=1):
    """N-d im2col ``[N, C·∏K, ∏O]`` from ``F.pad`` and ``Tensor.unfold`` (any ``ndim``)."""
    ndim = len(kernel_size)
    K, D, S = _tuple(kernel_size, ndim), _tuple(dilation, ndim), _tuple(stride, ndim)
    y = pad_input(x, padding, ndim)
    for d in range(ndim):
        # axis 2 + d becomes (O_d) and a trailing window of D·(K-1)+1 taps, sub-sampled by D
        y = y.unfold(2 + d, D[d] * (K[d] - 1) + 1, S[d])[..., ::D[d]]
    n, c = y.shape[:2]
    outs = y.shape[2:2 + ndim]
    perm = [0, 1, *range(2 + ndim, 2 + 2 * ndim), *range(2, 2 + ndim)]
    return y.permute(perm).reshape(n, c * _prod(K), _prod(outs))


def fold_reference(cols, output_size, kernel_size, dilation=1, padding=0, stride=1):
    """N-d col2im as the adjoint of :func:`unfold_reference` (its vector-Jacobian product)."""
    ndim = len(output_size)
    K = _tuple(kernel_size, ndim)
    n, ck, _ = cols.shape
    x = torch.zeros(n, ck // _prod(K), *output_size, dtype=cols.dtype, requires_grad=True)
    y = unfold_reference(x, K, dilation, padding, stride)
    (grad,) = torch.autograd.grad(y, x, cols)
    return grad


def unfold_kernel_reference(w, input_size, stride, padding, dilation, groups):
    """Toeplitz matrix written out from the index relation ``i = o·S + k·D − P_left``."""
    ndim = w.dim() - 2
    S, D = _tuple(stride, ndim), _tuple(dilation, ndim)
    pads = _same_pairs(padding, ndim, D, w.shape[2:])
    K = tuple(w.shape[2:])
    O = [(i + pl + pr - d * (k - 1) - 1) // s + 1
         for i, k, s, d, (pl, pr) in zip(input_size, K, S, D, pads)]
    c_out, ci_g = w.shape[0], w.shape[1]
    co_g = c_out // groups
    T = torch.zeros(c_out, *O, ci_g * groups, *input_size, dtype=w.dtype)
    for o in itertools.product(*map(range, O)):
        for k in itertools.product(*map(range, K)):
            i = [oo * s + kk * d - pl for oo, kk, s, d, (pl, _) in zip(o, k, S, D, pads)]
            if not all(0 <= ii < size for ii, size in zip(i, input_size)):
                continue
            for g in range(groups):
                rows, cols = slice(g * co_g, (g + 1) * co_g), slice(g * ci_g, (g + 1) * ci_g)
                T[(rows, *o, cols, *i)] += w[(rows, slice(None), *k)]
    return T.reshape(c_out * _prod(O), ci_g * groups * _prod(input_size))


def _same_pairs(padding, ndim, D, K):
    if padding == "valid":
        return [(0, 0)] * ndim
    if padding == "same":
        return [(d * (k - 1) // 2, d * (k - 1) - d * (k - 1) // 2) for d, k in zip(D, K)]
    return pairs(padding, ndim)


def _prod(values):
    out = 1
    for v in values:
        out *= v
    return out


def conv_nd_reference(x, w, stride, padding, dilation):
    """Ungrouped N-d conv for any ``ndim`` via the unfold reference (for ``ndim > 3``)."""
    ndim = w.dim() - 2
    cols = unfold_reference(x, tuple(w.shape[2:]), dilation, padding, stride)
    y = torch.einsum("nkl,ok->nol", cols, w.flatten(1))
    pads = pairs(padding, ndim)
    S, D = _tuple(stride, ndim), _tuple(dilation, ndim)
    outs = [(i + pl + pr - D[d] * (k - 1) - 1) // S[d] + 1 for d, (i, k, (pl, pr))
            in enumerate(zip(x.shape[2:], w.shape[2:], pads))]
    return y.reshape(x.shape[0], w.shape[0], *outs)


__all__ = ["assert_matches", "conv_reference", "unfold_reference", "fold_reference",
           "unfold_kernel_reference", "conv_nd_reference", "TORCH_CONV", "TORCH_CONV_T",
           "pad_input", "pairs"]
