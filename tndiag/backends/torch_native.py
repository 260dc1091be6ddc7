"""Runtime of the structured steps: torch convolution kernels, strided views, Gram products.

Each runner takes the step and its operand tensors and returns the step's result with the
step's result letters as axes (see :mod:`tndiag.codegen.lowering`). Per-spec preparation
(permutations, reshapes, paddings) is computed once and memoised.
"""

from __future__ import annotations

import itertools
from typing import Callable, Dict, List, Tuple

import torch
import torch.nn.functional as F

from tndiag.backends.torch_gather import prepare_gather
from tndiag.codegen.fuse import BroadcastSpec
from tndiag.codegen.lowering import GramSpec, ScatterSpec, ViewSpec, WindowSpec
from tndiag.codegen.native import NativeConv
from tndiag.codegen.program import Step, StepKind

__all__ = ["PREPARERS", "prepare_native", "prepare_view", "prepare_gram", "prepare_einsum",
           "prepare_broadcast", "prepare_scatter", "reduced_matrix"]

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


def _arranger(letters: str, summed: str, order: str, shape):
    """A function summing ``summed`` legs, permuting to ``order`` and reshaping to ``shape``."""
    dims = [letters.index(c) for c in summed]
    rest = "".join(c for c in letters if c not in summed)
    perm = tuple(rest.index(c) for c in order)
    identity = perm == tuple(range(len(perm)))
    shape = tuple(int(v) for v in shape)

    def arrange(t: torch.Tensor) -> torch.Tensor:
        if dims:
            t = t.sum(dims)
        if not identity:
            t = t.permute(perm)
        return t if t.shape == shape else t.reshape(shape)
    return arrange


def _flat_pad(pads: List[Tuple[int, int]]) -> List[int]:
    return [p for lr in reversed(pads) for p in lr]


def _orders(s: NativeConv):
    """Letter order and kernel shape of A and B for each role (see the module table)."""
    sz, sp = s.size, lambda letters: [s.size(c) for c in letters]
    G = sz(s.group)
    if s.role == "conv":
        return ((s.a_free + s.group + s.channel + s.a_spatial,
                 [sz(s.a_free), G * sz(s.channel), *sp(s.a_spatial)]),
                (s.group + s.b_free + s.channel + s.b_spatial,
                 [G * sz(s.b_free), sz(s.channel), *sp(s.b_spatial)]))
    if s.role == "transpose":
        return ((s.a_free + s.group + s.channel + s.a_spatial,
                 [sz(s.a_free), G * sz(s.channel), *sp(s.a_spatial)]),
                (s.group + s.channel + s.b_free + s.b_spatial,
                 [G * sz(s.channel), sz(s.b_free), *sp(s.b_spatial)]))
    return ((s.channel + s.group + s.a_free + s.a_spatial,
             [sz(s.channel), G * sz(s.a_free), *sp(s.a_spatial)]),
            (s.channel + s.group + s.b_free + s.b_spatial,
             [sz(s.channel), G * sz(s.b_free), *sp(s.b_spatial)]))


def prepare_native(step: Step) -> Callable:
    """The runner of a :class:`~tndiag.codegen.native.NativeConv` step (torch's kernels)."""
    s: NativeConv = step.info
    (a_order, a_shape), (b_order, b_shape) = _orders(s)
    arrange_a = _arranger(s.a_letters, s.a_sum, a_order, a_shape)
    arrange_b = _arranger(s.b_letters, s.b_sum, b_order, b_shape)
    out_shape = tuple(int(s.size(c)) for c in s.result)
    G = int(s.size(s.group))
    pads = list(zip(s.pad_left, s.pad_right))
    symmetric = all(l == r and l >= 0 for l, r in pads)
    padding = [l for l, _ in pads] if symmetric else [0] * s.ndim
    flat = _flat_pad(pads)
    stride, dilation = list(s.stride), list(s.dilation)
    if s.role == "transpose" and symmetric and _is_input_gradient(s) and not s.bias:
        x_shape = [int(s.size(s.a_free)), G * int(s.size(s.b_free)),
                   *[int(s.size(c)) for c in s.out_spatial]]

        def kernel(a, b, bias):  # the input gradient of a conv: torch's own backward kernel
            fake = a.new_empty(1).expand(x_shape)
            return torch.ops.aten.convolution_backward(
                a, fake, b, None, stride, padding, dilation, False, [0] * s.ndim, G,
                (True, False, False))[0]
    elif s.role == "transpose":
        def kernel(a, b, bias):
            return _transpose(s, a, b, G, bias)
    elif s.role == "conv":
        conv = _CONV[s.ndim]

        def kernel(a, b, bias):
            return conv(a, b, bias, stride, padding, dilation, G)
    else:
        w_shape = [G * int(s.size(s.b_free)), int(s.size(s.a_free)),
                   *[int(s.size(c)) for c in s.out_spatial]]

        def kernel(a, b, bias):
            weight = b.new_empty(1).expand(w_shape)
            return torch.ops.aten.convolution_backward(
                b, a, weight, None, stride, padding, dilation, False, [0] * s.ndim, G,
                (False, True, False))[1]
    arrange_bias = _bias_arranger(s)

    def run(taken: List[torch.Tensor]) -> torch.Tensor:
        a, b = arrange_a(taken[0]), arrange_b(taken[1])
        if not symmetric and s.role != "transpose":
            a = F.pad(a, flat)
        y = kernel(a, b, arrange_bias(taken[-1]) if s.bias else None)
        return y if y.shape == out_shape else y.reshape(out_shape)
    return run


def _bias_arranger(s: NativeConv) -> Callable:
    """Bias operand (letters ``s.bias``) -> the kernel's ``[G·C_out]`` vector, scaled."""
    channels = s.group + s.b_free
    if not s.bias:
        return lambda t: t
    arrange = _arranger(s.bias, "", channels, [s.size(channels)])

    def run(t: torch.Tensor) -> torch.Tensor:
        v = arrange(t)
        return v if s.bias_scale == 1 else v * s.bias_scale
    return run


def _is_input_gradient(s: NativeConv) -> bool:
    """Whether the forward conv from the result's size reproduces A's spatial sizes."""
    for c_i, c_o, c_k, st, pl, pr, d in zip(s.out_spatial, s.a_spatial, s.b_spatial, s.stride,
                                            s.pad_left, s.pad_right, s.dilation):
        I, O, K = int(s.size(c_i)), int(s.size(c_o)), int(s.size(c_k))
        if (I + pl + pr - d * (K - 1) - 1) // st + 1 != O:
            return False
    return True


def _transpose(s: NativeConv, a: torch.Tensor, b: torch.Tensor, G: int,
               bias=None) -> torch.Tensor:
    I = [s.size(c) for c in s.out_spatial]
    O = [s.size(c) for c in s.a_spatial]
    K = [s.size(c) for c in s.b_spatial]
    full = [(o - 1) * st + d * (k - 1) + 1 for o, st, d, k in zip(O, s.stride, s.dilation, K)]
    extra = [i - (f - 2 * pl) for i, f, pl in zip(I, full, s.pad_left)]
    direct = all(pl >= 0 and 0 <= e < max(st, d) for pl, e, st, d in
                 zip(s.pad_left, extra, s.stride, s.dilation))
    if direct:
        return _CONV_T[s.ndim](a, b, bias, s.stride, list(s.pad_left), extra, G, s.dilation)
    y = _window(_CONV_T[s.ndim](a, b, None, s.stride, 0, 0, G, s.dilation), s.pad_left, I)
    return y if bias is None else y.add_(bias.view(-1, *[1] * s.ndim))


def _window(y: torch.Tensor, starts, sizes) -> torch.Tensor:
    """``out[.., i] = y[.., i + start]`` on the trailing dims, zero where ``y`` has no entry."""
    nd = len(sizes)
    src, dst = [], []
    for start, size, have in zip(starts, sizes, y.shape[-nd:]):
        lo, hi = max(start, 0), min(start + size, have)
        if hi <= lo:
            return y.new_zeros((*y.shape[:-nd], *sizes))
        src.append(slice(lo, hi))
        dst.append(slice(lo - start, hi - start))
    if all(s.start == 0 and s.stop == have and d.stop - d.start == size for s, d, have, size
           in zip(src, dst, y.shape[-nd:], sizes)):
        return y
    out = y.new_zeros((*y.shape[:-nd], *sizes))
    out[(Ellipsis,) + tuple(dst)] = y[(Ellipsis,) + tuple(src)]
    return out


def prepare_view(step: Step) -> Callable:
    """Zero-pad the viewed axes once, then unfold each (see :class:`ViewSpec`)."""
    v: ViewSpec = step.info
    pads = [(0, 0)] * v.ndim
    for axis, lr in zip(v.axes, v.pads):
        pads[axis] = lr
    first = min(v.axes)
    flat = [p for lr in reversed(pads[first:]) for p in lr]
    padded = any(flat)
    windows = [d * (int(k) - 1) + 1 for d, k in zip(v.dilations, v.kernels)]
    steps = tuple(slice(None, None, d) for d in v.dilations)
    dilated = any(d > 1 for d in v.dilations)

    def run(taken: List[torch.Tensor]) -> torch.Tensor:
        t = F.pad(taken[0], flat) if padded else taken[0]
        for axis, window, stride in zip(v.axes, windows, v.strides):
            t = t.unfold(axis, window, stride)
        return t[(Ellipsis,) + steps] if dilated else t
    return run


def prepare_gram(step: Step) -> Callable:
    """``M Mᵀ`` of one tensor with itself, batched over shared kept legs."""
    g: GramSpec = step.info
    batch, kept, summed = _numel(g.batch), _numel(g.kept), int(g.summed)
    shape = (*[int(v) for v in g.batch], *[int(v) for v in g.kept], *[int(v) for v in g.kept])
    identity = g.out_perm == tuple(range(len(g.out_perm)))

    # with a short summed leg the product is memory-bound: mirrored blocks would only add copies
    blocks = symmetric_blocks(kept) if summed >= GRAM_BLOCK else [(0, kept)]

    def run(taken: List[torch.Tensor]) -> torch.Tensor:
        m = taken[0].permute(g.perm).reshape(batch, kept, summed)
        r = symmetric_product(m, blocks).reshape(shape)
        return r if identity else r.permute(g.out_perm)
    return run


#: Smallest block of the symmetric product (smaller blocks make GEMMs inefficient).
GRAM_BLOCK = 128


def symmetric_blocks(n: int, block: int = GRAM_BLOCK, most: int = 6) -> List[Tuple[int, int]]:
    """Row ranges splitting ``n`` into at most ``most`` blocks of at least ``block`` rows.

    >>> symmetric_blocks(100), symmetric_blocks(600)
    ([(0, 100)], [(0, 150), (150, 300), (300, 450), (450, 600)])
    """
    count = max(1, min(most, n // block))
    edges = [round(n * j / count) for j in range(count + 1)]
    return list(zip(edges[:-1], edges[1:]))


def symmetric_product(m: torch.Tensor, blocks: List[Tuple[int, int]]) -> torch.Tensor:
    """``m mᵀ`` (batched) computing only the blocks on and above the diagonal.

    With b blocks this costs (b+1)/(2b) of the full product's FLOPs.

    >>> m = torch.randn(2, 5, 7, dtype=torch.float64)
    >>> torch.allclose(symmetric_product(m, [(0, 2), (2, 5)]), m @ m.transpose(1, 2))
    True
    """
    if len(blocks) == 1:
        return torch.bmm(m, m.transpose(1, 2))
    r = m.new_empty(m.shape[0], m.shape[1], m.shape[1])
    for n, (a0, a1) in enumerate(blocks):
        rows = m[:, a0:a1]
        for b0, b1 in blocks[n:]:
            part = torch.bmm(rows, m[:, b0:b1].transpose(1, 2))
            r[:, a0:a1, b0:b1] = part
            if b0 != a0:
                r[:, b0:b1, a0:a1] = part.transpose(1, 2)
    return r


def _numel(shape) -> int:
    n = 1
    for s in shape:
        n *= int(s)
    return n


def prepare_window_sum(step: Step) -> Callable:
    """K window sums along one axis, stacked as a new last axis (see :class:`WindowSpec`).

    At stride 1 a window longer than half the axis is the axis total minus its borders, so
    the tensor is read about once whatever K is.
    """
    w: WindowSpec = step.info
    axis, I, S = w.axis, w.size, w.stride
    plans = []
    for first, last in w.windows:
        length = last - first + 1
        if length <= 0:
            plans.append(("zero", 0, 0))
        elif S == 1 and length > I - length:
            plans.append(("total", first, last))
        else:
            plans.append(("direct", first, last))
    needs_total = any(kind == "total" for kind, _, _ in plans)

    def run(taken: List[torch.Tensor]) -> torch.Tensor:
        a = taken[0]
        total = a.sum(axis) if needs_total else a
        outs: List[torch.Tensor] = []
        for kind, first, last in plans:
            if kind == "total":
                r = total
                if first > 0:
                    r = r - a.narrow(axis, 0, first).sum(axis)
                if last < I - 1:
                    r = r - a.narrow(axis, last + 1, I - 1 - last).sum(axis)
            elif kind == "direct":
                part = a.narrow(axis, first, last - first + 1)
                if S > 1:
                    part = part.unfold(axis, 1, S)
                r = part.sum(axis) if S == 1 else part.sum((axis, -1))
            else:
                r = a.sum(axis) * 0
            outs.append(r)
        return outs[0].unsqueeze(-1) if len(outs) == 1 else torch.stack(outs, -1)
    return run


def prepare_scatter(step: Step) -> Callable:
    """col2im: per combination of kernel taps, a slice of the tensor added in place into a
    strided slice of a zero output (see :class:`ScatterSpec`); no padded buffer, no Π.

    With a stride and at least two taps per output phase (``i mod S``), the adds go into a
    phase-major buffer instead (contiguous writes), interleaved into the output by one copy.
    """
    sc: ScatterSpec = step.info
    kept = [a for a in range(sc.ndim) if a not in sc.k_axes]
    phases, taps = _numel(sc.strides), _numel(len(t) for t in sc.taps)
    if phases > 1 and taps >= 2 * phases:
        return _phase_scatter(sc, kept)
    moves = []
    for combo in itertools.product(*sc.taps):
        src: list = [slice(None)] * sc.ndim
        dst: list = [slice(None)] * len(kept)
        for (k, lo, hi, first), o_axis, k_axis, stride in zip(combo, sc.o_axes, sc.k_axes,
                                                              sc.strides):
            src[k_axis], src[o_axis] = k, slice(lo, hi + 1)
            dst[kept.index(o_axis)] = slice(first, first + (hi - lo) * stride + 1, stride)
        moves.append((tuple(src), tuple(dst)))
    sizes = dict(zip(sc.o_axes, sc.sizes))

    def run(taken: List[torch.Tensor]) -> torch.Tensor:
        t = taken[0]
        out = t.new_zeros([sizes.get(a, t.shape[a]) for a in kept])
        for src, dst in moves:
            out[dst].add_(t[src])
        return out
    return run


def _phase_scatter(sc: ScatterSpec, kept: List[int]) -> Callable:
    """Each o axis of the output becomes (phase S, position Q = ⌈I/S⌉) in a buffer."""
    where = {a: n for n, a in enumerate(kept)}  # kept axis -> output axis
    axis_of = {o: where[o] + sum(1 for p in sc.o_axes if where[p] < where[o])
               for o in sc.o_axes}  # o axis -> its phase axis in the buffer
    Q = {o: -(-int(i) // s) for o, i, s in zip(sc.o_axes, sc.sizes, sc.strides)}
    moves = []
    for combo in itertools.product(*sc.taps):
        src: list = [slice(None)] * sc.ndim
        dst: list = [slice(None)] * (len(kept) + len(sc.o_axes))
        for (k, lo, hi, first), o, k_axis, stride in zip(combo, sc.o_axes, sc.k_axes,
                                                         sc.strides):
            src[k_axis], src[o] = k, slice(lo, hi + 1)
            dst[axis_of[o]] = first % stride
            dst[axis_of[o] + 1] = slice(first // stride, first // stride + hi - lo + 1)
        moves.append((tuple(src), tuple(dst)))
    perm: List[int] = []
    crop: List[slice] = []
    for a in kept:
        b = len(perm)
        perm += [b + 1, b] if a in Q else [b]
        crop.append(slice(0, int(dict(zip(sc.o_axes, sc.sizes))[a])) if a in Q else slice(None))
    strides = dict(zip(sc.o_axes, sc.strides))

    def run(taken: List[torch.Tensor]) -> torch.Tensor:
        t = taken[0]
        shape = [d for a in kept for d in ((strides[a], Q[a]) if a in Q else (t.shape[a],))]
        buf = t.new_zeros(shape)
        for src, dst in moves:
            buf[dst].add_(t[src])
        merged = [Q[a] * strides[a] if a in Q else t.shape[a] for a in kept]
        return buf.permute(perm).reshape(merged)[tuple(crop)]
    return run


def prepare_broadcast(step: Step) -> Callable:
    """The variable (first operand) permuted, scaled and expanded: a view, no copy."""
    b: BroadcastSpec = step.info
    identity = b.perm == tuple(range(len(b.perm)))
    view, shape = [int(v) for v in b.view], [int(v) for v in b.shape]

    def run(taken: List[torch.Tensor]) -> torch.Tensor:
        x = taken[0] if identity else taken[0].permute(b.perm)
        if b.factor != 1:
            x = x * b.factor
        return x.reshape(view).expand(shape)
    return run


def prepare_einsum(step: Step) -> Callable:
    """A plain einsum step."""
    equation = step.equation

    def run(taken: List[torch.Tensor]) -> torch.Tensor:
        return torch.einsum(equation, *taken)
    return run


#: Step kind -> preparer returning the step's runner (every kind the planner emits has one).
PREPARERS: Dict[StepKind, Callable[[Step], Callable]] = {
    StepKind.EINSUM: prepare_einsum, StepKind.NATIVE: prepare_native, StepKind.VIEW: prepare_view,
    StepKind.GRAM: prepare_gram, StepKind.WINDOW_SUM: prepare_window_sum,
    StepKind.BROADCAST: prepare_broadcast, StepKind.SCATTER: prepare_scatter,
    StepKind.GATHER: prepare_gather}
