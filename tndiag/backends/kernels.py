"""Runtime kernels of the torch backend: plain functions of a recipe and operand tensors.

A recipe is a literal (ints, floats, strings, tuples, slices, None) computed once per step
when a program is prepared (:mod:`tndiag.backends.torch_native`). This module imports only
torch; :func:`tndiag.export` writes its text into every exported module, so exported code and
compiled programs run the very same functions.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["dense_pattern", "reduced_matrix", "delta_tensor", "fill_tensor", "cached", "arrange",
           "placeholder", "native_operands", "run_native", "run_conv", "run_conv_transpose",
           "run_view", "run_im2col", "run_gram", "symmetric_product", "run_gram_rows",
           "run_window_sum",
           "window_stages", "window_view", "window_taps", "window_matmul", "count_matrix",
           "class_sums", "outer_sum", "axis_product", "last_axis_product", "window_classes",
           "run_kron", "kron_matrix", "literal_tensor",
           "WINDOW_STAGES", "run_scatter",
           "run_col2im", "run_phase_scatter", "run_broadcast", "run_arrange", "run_einsum",
           "finish", "run_sum", "run_sliced", "ANY_LAYOUT", "run_square"]

CONVS = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}
CONV_TRANSPOSES = {1: F.conv_transpose1d, 2: F.conv_transpose2d, 3: F.conv_transpose3d}


def dense_pattern(I, O, K, stride, pad_left, dilation, device=None, dtype=None):
    """The 0/1 index pattern ``Π[i, o, k] = [i == o·S + k·D − P_l]`` as a dense tensor.

    >>> dense_pattern(3, 3, 1, 1, 0, 1).squeeze(-1)
    tensor([[1., 0., 0.],
            [0., 1., 0.],
            [0., 0., 1.]])
    """
    i = torch.arange(I, device=device).view(I, 1, 1)
    o = torch.arange(O, device=device).view(1, O, 1)
    k = torch.arange(K, device=device).view(1, 1, K)
    return (i == o * stride + k * dilation - pad_left).to(dtype or torch.get_default_dtype())


def reduced_matrix(I, O, K, stride, pad_left, dilation, device=None, dtype=None):
    """``Σ_o Π[i, o, k]`` as an ``[I, K]`` count matrix, without forming the dense Π.

    >>> reduced_matrix(4, 2, 3, 1, 0, 1).tolist()
    [[1.0, 0.0, 0.0], [1.0, 1.0, 0.0], [0.0, 1.0, 1.0], [0.0, 0.0, 1.0]]
    """
    i = torch.arange(I, device=device).view(I, 1)
    k = torch.arange(K, device=device).view(1, K)
    shifted = i + pad_left - k * dilation  # = o·S for a hit
    hit = (shifted % stride == 0) & (shifted >= 0) & (shifted < O * stride)
    return hit.to(dtype or torch.get_default_dtype())


def delta_tensor(shape, device=None, dtype=None):
    """The Kronecker δ with legs ``shape`` (all one size): ones on the diagonal."""
    out = torch.zeros(shape, device=device, dtype=dtype)
    idx = torch.arange(shape[0], device=device)
    out[(idx,) * len(shape)] = 1
    return out


def fill_tensor(shape, value, device=None, dtype=None):
    """A constant tensor of ``shape`` filled with ``value``."""
    return torch.full(shape, value, device=device, dtype=dtype)


def cached(store, key, build, *args):
    """``store[key]``, made by ``build(*args)`` the first time."""
    found = store.get(key)
    if found is None:
        found = store[key] = build(*args)
    return found


def arrange(t, how):
    """Sum the legs ``dims``, permute by ``perm`` (None: keep), reshape to ``shape``."""
    dims, perm, shape = how
    if dims:
        t = t.sum(dims)
    if perm is not None:
        t = t.permute(perm)
    return t if t.shape == shape else t.reshape(shape)


def conv_kernel(a, b, bias, ndim, stride, padding, dilation, groups):
    """``conv{1,2,3}d`` of A (input) and B (weight)."""
    return CONVS[ndim](a, b, bias, stride, padding, dilation, groups)


#: (dtype, device, shape) -> the argument whose values ``convolution_backward`` never reads
#: (only its shape), made once per key.
_PLACEHOLDERS: dict = {}
#: Up to this many elements a placeholder is a contiguous (uninitialized) tensor; beyond, one
#: element expanded. torch's kernel copies an expanded weight (a 256×256×3×3 weight
#: gradient allocated 6 weight sizes instead of 2) and is 1–2 µs slower with it on tiny
#: inputs; a cached contiguous one would hold a weight-sized buffer per shape for good.
PLACEHOLDER_ELEMENTS = 65536


def placeholder(like, shape):
    """A tensor of ``shape`` (a tuple) with ``like``'s dtype and device whose values are
    never read, cached per key (never written, never returned)."""
    key = (like.dtype, like.device, shape)
    found = _PLACEHOLDERS.get(key)
    if found is None:
        numel = 1
        for s in shape:
            numel *= s
        small = numel <= PLACEHOLDER_ELEMENTS
        found = like.new_empty(shape) if small else like.new_empty(1).expand(shape)
        _PLACEHOLDERS[key] = found
    return found


def input_grad_kernel(a, b, bias, x_shape, stride, padding, dilation, groups):
    """The input gradient of a convolution: torch's own backward kernel."""
    return torch.ops.aten.convolution_backward(
        a, placeholder(a, x_shape), b, None, stride, padding, dilation, False,
        [0] * len(stride), groups, (True, False, False))[0]


def weight_kernel(a, b, bias, w_shape, stride, padding, dilation, groups):
    """The weight gradient of a convolution (A the input, B the output gradient)."""
    return torch.ops.aten.convolution_backward(
        b, a, placeholder(b, w_shape), None, stride, padding, dilation, False,
        [0] * len(stride), groups, (False, True, False))[1]


def transpose_kernel(a, b, bias, ndim, stride, pad_left, extra, groups, dilation, crop):
    """``conv_transpose{1,2,3}d``; with ``crop`` = (starts, sizes) the full result is cut to
    the window (zeros where the kernel never reaches)."""
    if crop is None:
        return CONV_TRANSPOSES[ndim](a, b, bias, stride, pad_left, extra, groups, dilation)
    y = window(CONV_TRANSPOSES[ndim](a, b, None, stride, 0, 0, groups, dilation), *crop)
    return y if bias is None else y.add_(bias.view(-1, *[1] * ndim))


def window(y, starts, sizes):
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


NATIVE_KERNELS = {"conv": conv_kernel, "input-grad": input_grad_kernel,
                  "weight": weight_kernel, "transpose": transpose_kernel}


def native_operands(taken, how_a, how_b, how_bias, pad):
    """A, B and the bias of a convolution-family step, arranged (and A padded) for its kernel
    (a ``None`` recipe: the operand as it is)."""
    a = taken[0] if how_a is None else arrange(taken[0], how_a)
    b = taken[1] if how_b is None else arrange(taken[1], how_b)
    bias = None
    if how_bias is not None:
        bias = taken[-1] if how_bias[0] is None else arrange(taken[-1], how_bias[0])
        bias = bias if how_bias[1] == 1 else bias * how_bias[1]
    if pad is not None:
        a = F.pad(a, pad)
    return a, b, bias


def run_native(recipe, taken):
    """One convolution-family kernel call: arrange A, B (and the bias), pad, call, reshape
    (``out_shape`` None: the kernel's result has the step's shape)."""
    kernel, how_a, how_b, how_bias, pad, out_shape, args = recipe
    y = NATIVE_KERNELS[kernel](*native_operands(taken, how_a, how_b, how_bias, pad), *args)
    return y if out_shape is None else y.reshape(out_shape)


def run_conv(recipe, taken):
    """``conv{1,2,3}d`` on the step's operands as they are (input, weight, bias last)."""
    ndim, bias, stride, padding, dilation, groups = recipe
    return CONVS[ndim](taken[0], taken[1], taken[-1] if bias else None, stride, padding,
                       dilation, groups)


def run_conv_transpose(recipe, taken):
    """``conv_transpose{1,2,3}d`` on the step's operands as they are (bias last)."""
    ndim, bias, stride, padding, output_padding, groups, dilation = recipe
    return CONV_TRANSPOSES[ndim](taken[0], taken[1], taken[-1] if bias else None, stride,
                                 padding, output_padding, groups, dilation)


def run_view(recipe, taken):
    """Zero-pad once, then unfold each viewed axis (every ``dilation``-th tap kept)."""
    pad, unfolds, taps = recipe
    t = F.pad(taken[0], pad) if pad is not None else taken[0]
    for axis, size, stride in unfolds:
        t = t.unfold(axis, size, stride)
    return t[taps] if taps is not None else t


def run_im2col(recipe, taken):
    """torch's unfold (im2col) of a 2-d input (1-d: with a unit axis inserted): the step's
    ``(N, C, K.., O..)`` in the layout ``(N, C·∏K, ∏O)`` (the step is a whole program, whose
    output reshape takes it as it is)."""
    unit, kernel_size, dilation, padding, stride = recipe
    t = taken[0].unsqueeze(2) if unit else taken[0]
    return F.unfold(t, kernel_size, dilation, padding, stride)


def symmetric_product(m, blocks):
    """``m mᵀ`` (batched) computing only the row blocks on and above the diagonal.

    >>> m = torch.randn(2, 5, 7, dtype=torch.float64)
    >>> torch.allclose(symmetric_product(m, ((0, 2), (2, 5))), m @ m.transpose(1, 2))
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


def run_gram(recipe, taken):
    """``M Mᵀ`` of one tensor permuted and reshaped to (batch, kept, summed)."""
    perm, matrix, shape, blocks, out_perm = recipe
    r = symmetric_product(taken[0].permute(perm).reshape(matrix), blocks).reshape(shape)
    return r if out_perm is None else r.permute(out_perm)


def run_gram_rows(recipe, taken):
    """``Mᵀ M`` per batch entry of a tensor laid out ``(summed, batch, kept)``: the summed
    legs are its rows, so BLAS reads it transposed in place (no permuting copy; one ``mm``
    when the batch is one entry).

    >>> t = torch.randn(4, 1, 3, dtype=torch.float64)  # (n, g, c): 4 samples, 1 group
    >>> m = t.reshape(4, 3)
    >>> torch.allclose(run_gram_rows((4, 1, 3, (1, 3, 3), None), [t])[0], m.T @ m)
    True
    """
    summed, batch, kept, shape, out_perm = recipe
    if batch == 1:
        m = taken[0].reshape(summed, kept)
        r = torch.mm(m.t(), m).view(shape)
    else:
        a = taken[0].reshape(summed, batch, kept).transpose(0, 1)
        r = torch.bmm(a.transpose(1, 2), a).view(shape)
    return r if out_perm is None else r.permute(out_perm)


def run_window_sum(recipe, taken):
    """Every summed pattern of one tensor in one step, times ``scale``: ``stages`` run in
    order (:data:`WINDOW_STAGES`), the last writing into one preallocated result (a single
    stage allocates its own); with ``chunk = (axis, rows)`` they run on ``rows``-long slices
    of that axis (small intermediates).

    >>> x = torch.arange(8.0).reshape(2, 4)  # taps of S = K = 2 on axis 1: a strided view
    >>> run_window_sum(((2, 2), None, (("view", ((1, 0, 2, 2, 2, 1),)),), 1.0), [x]).tolist()
    [[2.0, 4.0], [10.0, 12.0]]
    """
    shape, chunk, stages, scale = recipe
    x = taken[0]
    if chunk is None and len(stages) == 1:
        how, args = stages[0]
        out = WINDOW_STAGES[how](x, args, None)
    else:
        out = x.new_empty(shape)
        if chunk is None:
            window_stages(x, out, stages)
        else:
            axis, rows = chunk
            for start in range(0, x.shape[axis], rows):
                n = min(rows, x.shape[axis] - start)
                window_stages(x.narrow(axis, start, n), out.narrow(axis, start, n), stages)
    return out if scale == 1 else out.mul_(scale)


def window_stages(x, out, stages):
    """Run window-sum ``stages`` on ``x``; the last one writes into ``out``."""
    for n, (how, args) in enumerate(stages):
        x = WINDOW_STAGES[how](x, args, out if n == len(stages) - 1 else None)
    return out


def _into(out, shape, like):
    return like.new_empty(shape) if out is None else out


#: Dtypes :func:`outer_sum` hands to the channels-last pooling kernel on the CPU, and the
#: least contiguous run after the summed dim and the least bytes for which it does: on cold
#: inputs of 8 MiB pooling took 0.41–0.81× torch's sum for runs of 56–224 elements but
#: 1.0–2.4× for runs of 4–17, and up to 1.7× on inputs of 1 MiB (1 thread). With cold
#: caches (flushed, as for a layer's saved input in training), KFAC-reduce of the 4.6–7.6 MiB
#: inputs that sum over an outer axis took 0.69–0.84× as long with this threshold at 2 MiB
#: as at 8 MiB; called again at once (hot, as ``tndiag bench`` does) 0.88–1.09×, the A/A
#: spread, where an earlier machine had 1.2× (docs/benchmarks.md, "Cold caches").
STREAMED_DTYPES = (torch.float32, torch.float64)
STREAM_MIN_RUN = 48
STREAM_MIN_BYTES = 2 << 20


def outer_sum(x, dim):
    """``x.sum(dim)`` over a dim that is not the last, reading ``x`` in memory order.

    torch's CPU reduction over a middle dim walks down column strips, which the hardware
    prefetcher follows badly once ``x`` is not in cache (about 3× a full ``x.sum()`` on a
    cold 14 MiB input); the channels-last pooling kernel adds whole contiguous rows instead
    (about 1.1×). Short runs, small inputs, other devices, dtypes and layouts take
    ``x.sum(dim)`` (:data:`STREAM_MIN_RUN`, :data:`STREAM_MIN_BYTES`).

    >>> x = torch.arange(2 * 3 * 2**19, dtype=torch.float64).reshape(2, 3, 2**19)
    >>> torch.equal(outer_sum(x, 1), x.sum(1))
    True
    """
    return _pooled_sum(x, dim) if _streams(x, dim) else x.sum(dim)


def _pooled_sum(x, dim):
    """``x.sum(dim)`` by the channels-last pooling kernel (``x`` contiguous)."""
    dim %= x.dim()
    shape = list(x.shape)
    rows, inner = shape[dim], _run(x, dim)
    lanes = x.view(-1, rows, 1, inner).permute(0, 3, 1, 2)  # channels-last [B, L, R, 1]
    summed = F.avg_pool2d(lanes, (rows, 1), divisor_override=1)
    return summed.view(shape[:dim] + shape[dim + 1:])


def _run(x, dim):
    """Elements after ``dim`` (one contiguous run of a contiguous tensor)."""
    inner = 1
    for s in x.shape[dim % x.dim() + 1:]:
        inner *= s
    return inner


def _streams(x, dim):
    """Whether :func:`outer_sum` pools ``x`` over ``dim`` rather than calling ``sum``."""
    return (x.device.type == "cpu" and x.dtype in STREAMED_DTYPES
            and x.numel() * x.element_size() >= STREAM_MIN_BYTES
            and _run(x, dim) >= STREAM_MIN_RUN and x.is_contiguous())


def sum_into(x, dims, out):
    """``x.sum(dims)`` written into ``out`` (a new tensor when ``out`` is None; through a copy
    when autograd records ``x``, which ``out=`` does not support); one dim that is not the
    last is summed by :func:`outer_sum`."""
    dim = dims if isinstance(dims, int) else dims[0] if len(dims) == 1 else None
    if dim is not None and _streams(x, dim):
        r = _pooled_sum(x, dim)
        return r if out is None else out.copy_(r)
    if out is None:
        return x.sum(dims)
    if x.requires_grad and torch.is_grad_enabled():
        return out.copy_(x.sum(dims))
    return torch.sum(x, dims, out=out)


def window_view(x, axes, out):
    """Axes whose taps all sum ``L`` positions from evenly spaced starts: ``(axis, first, L,
    K, S, D)`` each, one strided view ``[.., L, K, ..]`` of ``x`` summed over every ``L``."""
    sizes, strides, offset = list(x.shape), list(x.stride()), x.storage_offset()
    for axis, first, length, taps, stride, step in sorted(axes, reverse=True):
        st = strides[axis]
        offset += first * st
        sizes[axis:axis + 1] = [length, taps]
        strides[axis:axis + 1] = [stride * st, step * st]
    dims = [axis + n for n, (axis, *_) in enumerate(sorted(axes))]
    return sum_into(x.as_strided(sizes, strides, offset), dims, out)


def class_sums(x, axis, stride):
    """``out[.., c, ..] = Σ_{i ≡ c (mod S)} x[.., i, ..]`` (``S`` entries on ``axis``; one read).

    Over the last axis with ``S > 1`` it is one GEMM with the ``[I, S]`` residue matrix:
    torch's sum over the short middle dim of ``[.., I/S, S]`` took 1.7–3.1× as long
    (``[5, 128, 7, 56]``, S = 2: 397 against 130 µs; 1 thread).

    >>> class_sums(torch.arange(5.0), 0, 2).tolist()  # 0+2+4, 1+3
    [6.0, 4.0]
    """
    size = x.shape[axis]
    if stride > 1 and _is_last(x, axis):
        return last_axis_product(x, residue_matrix(size, stride, x.dtype, x.device))
    rows = size // stride
    out = outer_sum(x.narrow(axis, 0, rows * stride).unflatten(axis, (rows, stride)), axis)
    if size > rows * stride:
        out.narrow(axis, 0, size - rows * stride).add_(x.narrow(axis, rows * stride,
                                                                size - rows * stride))
    return out


#: Up to this many border positions of one tap are subtracted one by one (a view each)
#: rather than summed first: torch's sum over a short outer dim was the slower of the two
#: (a 7×7 'same' depthwise step: 0.32 ms in the 3-row sums).
BORDER_ROWS = 4


def _subtract_positions(dst, x, axis, start, stop, stride):
    """``dst -= Σ x`` over positions ``start:stop:stride`` of ``axis`` (none: nothing)."""
    positions = range(start, stop, stride)
    if len(positions) <= BORDER_ROWS:
        for i in positions:
            dst.sub_(x.select(axis, i))
    else:
        dst.sub_(_strided(x, axis, start, stop, stride).sum(axis))


def _is_last(x, axis):
    return axis % x.dim() == x.dim() - 1


def last_axis_product(x, m):
    """``x @ m`` for a ``[I, K]`` matrix with few columns, as ``(mᵀ xᵀ)ᵀ``: MKL's GEMM with a
    narrow right operand ran at 6–11 GFLOP/s on an AMD EPYC (K = 2–11; MKL 2024.2), with the
    narrow operand on the left at 3–5× that (a ``[5376, 224]`` times ``[224, 4]``: 1.50
    against 0.30 ms; 1 thread). The result is a transposed view. One column stays a GEMV
    (the transposed form took 1.13–1.31× as long on the 1×1 layers' window sums).

    >>> last_axis_product(torch.ones(2, 3, 4), torch.ones(4, 2)).tolist()
    [[[4.0, 4.0], [4.0, 4.0], [4.0, 4.0]], [[4.0, 4.0], [4.0, 4.0], [4.0, 4.0]]]
    """
    if m.shape[1] == 1:
        return x @ m
    rows = x.reshape(-1, x.shape[-1])
    return torch.mm(m.t(), rows.t()).t().view(*x.shape[:-1], m.shape[1])


def _strided(x, axis, start, stop, stride):
    index = [slice(None)] * x.dim()
    index[axis] = slice(start, stop, stride)
    return x[tuple(index)]


def window_taps(x, args, out):
    """One result slice per tap along ``axis``: a tap whose window covers most of its residue
    class mod S is that class's sum (one read of ``x`` for all of them) minus the positions
    before and after the window, a short window its own strided sum (``plans``: per tap
    ``("class", first, last)``, ``("direct", first, last)`` or ``("zero", 0, 0)``)."""
    axis, size, stride, plans, needs_classes = args
    shape = list(x.shape)
    shape[axis] = len(plans)
    out = _into(out, shape, x)
    classes = class_sums(x, axis, stride) if needs_classes else None
    for k, (how, first, last) in enumerate(plans):
        dst = out.select(axis, k)
        if how == "class":
            dst.copy_(classes.select(axis, first % stride))
            _subtract_positions(dst, x, axis, first % stride, first, stride)
            _subtract_positions(dst, x, axis, last + stride, size, stride)
        elif how == "direct":
            sum_into(_strided(x, axis, first, last + 1, stride), axis, dst)
        else:
            dst.zero_()
    return out


_COUNT_MATRICES: dict = {}


def residue_matrix(size, stride, dtype, device):
    """The ``[I, S]`` 0/1 matrix ``[i ≡ c (mod S)]`` (kept per dtype/device).

    >>> residue_matrix(3, 2, torch.float32, torch.device("cpu")).tolist()
    [[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]]
    """
    return count_matrix(size, stride, tuple((c, size - 1) for c in range(stride)), dtype,
                        device)


def count_matrix(size, stride, windows, dtype, device):
    """The ``[I, K]`` 0/1 matrix ``Σ_o Π[i, o, k]`` of per-tap windows (kept per dtype/device).

    >>> count_matrix(3, 1, ((0, 1), (1, 2)), torch.float32, torch.device("cpu")).tolist()
    [[1.0, 0.0], [1.0, 1.0], [0.0, 1.0]]
    """
    key = (size, stride, windows, dtype, device)
    found = _COUNT_MATRICES.get(key)
    if found is None:
        if len(_COUNT_MATRICES) > 256:
            _COUNT_MATRICES.clear()
        i = torch.arange(size, device=device).view(size, 1)
        first = torch.tensor([f for f, _ in windows], device=device)
        last = torch.tensor([t for _, t in windows], device=device)
        hit = (i >= first) & (i <= last) & ((i - first) % stride == 0)
        found = _COUNT_MATRICES[key] = hit.to(dtype)
    return found


def window_matmul(x, args, out):
    """The axis times the ``[I, K]`` count matrix: one GEMM (:func:`axis_product`)."""
    axis, size, stride, windows = args
    y = axis_product(x, count_matrix(size, stride, windows, x.dtype, x.device), axis)
    return y if out is None else out.copy_(y)


def kron_matrix(axes, scale, dtype, device):
    """``scale`` times the Kronecker product of the count matrices of ``axes`` (``(size,
    stride, windows)`` each, outer first): the ``[∏I, ∏K]`` matrix that sums every window of
    the trailing axes at once (kept per dtype/device).

    >>> kron_matrix(((2, 1, ((0, 0), (1, 1))), (2, 1, ((0, 1),))), 1.0, torch.float32,
    ...             torch.device("cpu")).tolist()
    [[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0]]
    """
    key = ("kron", axes, scale, dtype, device)
    found = _COUNT_MATRICES.get(key)
    if found is None:
        if len(_COUNT_MATRICES) > 256:
            _COUNT_MATRICES.clear()
        found = torch.ones((1, 1), dtype=dtype, device=device)
        for size, stride, windows in axes:
            found = torch.kron(found, count_matrix(size, stride, windows, dtype, device))
        found = _COUNT_MATRICES[key] = found if scale == 1 else found.mul_(scale)
    return found


#: (id of a kron recipe, dtype, device) -> (the recipe, its matrix): the recipe is held
#: by its prepared step, so a repeated call skips hashing it.
_KRON_BY_RECIPE: dict = {}


def run_kron(recipe, taken):
    """Every window of the trailing axes in one GEMM (the ``kron`` route of a window-sum
    step): the tensor as ``[rows, ∏I]`` times :func:`kron_matrix` of ``(axes, scale)``, viewed
    as ``shape``. The operand may come in any shape with these trailing elements.

    >>> x = torch.arange(8.0).reshape(2, 4)  # taps of S = K = 2 on axis 1
    >>> run_kron((((4, 2, ((0, 2), (1, 3))),), 1.0, (2, 2)), [x]).tolist()
    [[2.0, 4.0], [10.0, 12.0]]
    """
    x = taken[0]
    key = (id(recipe), x.dtype, x.device)
    found = _KRON_BY_RECIPE.get(key)
    if found is None or found[0] is not recipe:
        if len(_KRON_BY_RECIPE) > 256:
            _KRON_BY_RECIPE.clear()
        found = _KRON_BY_RECIPE[key] = (recipe, kron_matrix(recipe[0], recipe[1], x.dtype,
                                                            x.device))
    m = found[1]
    return torch.mm(x.reshape(-1, m.shape[0]), m).view(recipe[2])


def literal_tensor(rows, dtype, device):
    """``torch.tensor(rows)`` of a literal (kept per dtype/device)."""
    key = ("literal", rows, dtype, device)
    found = _COUNT_MATRICES.get(key)
    if found is None:
        if len(_COUNT_MATRICES) > 256:
            _COUNT_MATRICES.clear()
        found = _COUNT_MATRICES[key] = torch.tensor(rows, dtype=dtype, device=device)
    return found


def axis_product(x, m, axis):
    """``Σ_i x[.., i, ..]·m[i, k]``, the taps ``k`` in ``axis``' place, as one wide GEMM:
    over the last axis :func:`last_axis_product`; over another, ``mᵀ`` times ``x`` with the
    axis moved first (``x`` comes so from :func:`window_classes`' concatenation), the result a
    view with the taps moved back.

    >>> axis_product(torch.ones(2, 3), torch.tensor([[1.0], [0.0], [1.0]]), 1).tolist()
    [[2.0], [2.0]]
    """
    if _is_last(x, axis):
        return last_axis_product(x, m)
    rows = x.movedim(axis, 0)
    y = m.t() @ rows.reshape(rows.shape[0], -1)
    return y.view(m.shape[1], *rows.shape[1:]).movedim(0, axis)


def window_classes(x, args, out):
    """Every tap at once from the residue-class sums: the ``S`` class sums, the ``head``
    positions before ``head`` and those from ``start`` side by side on the axis (moved first
    unless last, where the product needs it), times one ``[S + head + tail, K]`` matrix
    ``rows`` that picks each tap's class and subtracts the positions of that class outside its
    window — four calls for any K (one index, two border products and two subtractions took
    1.3–1.7× as long on the 7×7 and 11×11 stems and 7×7 depthwise layers).

    >>> x = torch.arange(5.0)  # taps (0, 2) and (1, 3) at S = 2: 0+2, 1+3
    >>> window_classes(x, (0, 2, 5, 0, 4, ((1.0, 0.0), (0.0, 1.0), (-1.0, 0.0))), None).tolist()
    [2.0, 4.0]
    """
    axis, stride, size, head, start, rows = args
    parts = [class_sums(x, axis, stride)]
    if head:
        parts.append(x.narrow(axis, 0, head))
    if start < size:
        parts.append(x.narrow(axis, start, size - start))
    if len(parts) == 1:
        z = parts[0]
    elif _is_last(x, axis):
        z = torch.cat(parts, -1)
    else:  # concatenated along a new first axis: the product reads it without a copy
        z = torch.cat([p.movedim(axis, 0) for p in parts]).movedim(0, axis)
    r = axis_product(z, literal_tensor(rows, x.dtype, x.device), axis)
    return r if out is None else out.copy_(r)


#: Stage name -> ``stage(x, args, out)`` of a window-sum step (``out`` None: allocate).
WINDOW_STAGES = {"view": window_view, "taps": window_taps, "classes": window_classes,
                 "matmul": window_matmul}


def run_scatter(recipe, taken):
    """col2im: per tap combination, a slice of the tensor added into a slice of zeros."""
    sizes, moves = recipe
    t = taken[0]
    out = t.new_zeros([t.shape[a] if s is None else s for a, s in sizes])
    for src, dst in moves:
        out[dst].add_(t[src])
    return out


#: torch's col2im operator, called without ``F.fold``'s argument normalization (the recipe
#: holds the checked pairs already; 4.2 µs against 6.4 µs per call on a tiny fold);
#: ``F.fold`` itself where the binding is missing.
COL2IM = getattr(getattr(torch._C, "_nn", None), "col2im", None) or F.fold


def run_col2im(recipe, taken):
    """torch's fold (col2im) of the step's ``(N, C, K.., O..)`` operand: ``(N, C, I..)``
    (1-d: ``(N, C, 1, I)``; the step is a whole program, whose output reshape takes it).

    >>> cols = torch.ones(1, 4, 4)  # 2×2 blocks of a 3×3 image (C = 1)
    >>> run_col2im(((1, 4, 4), (3, 3), (2, 2), (1, 1), (0, 0), (1, 1)), [cols])[0, 0].tolist()
    [[1.0, 2.0, 1.0], [2.0, 4.0, 2.0], [1.0, 2.0, 1.0]]
    """
    shape, output_size, kernel_size, dilation, padding, stride = recipe
    t = taken[0]
    return COL2IM(t if t.shape == shape else t.reshape(shape), output_size, kernel_size,
                  dilation, padding, stride)



#: Kernels that reshape their (first) operand themselves: a runner may hand them an input in
#: the shape the caller gave it, without the plan's reshape to the operand's axes.
ANY_LAYOUT = frozenset({run_kron, run_col2im})


def run_phase_scatter(recipe, taken):
    """col2im into a phase-major buffer (contiguous adds), interleaved by one copy."""
    buffer, moves, perm, merged, crop = recipe
    t = taken[0]
    buf = t.new_zeros([t.shape[a] if s is None else s for a, s in buffer])
    for src, dst in moves:
        buf[dst].add_(t[src])
    return buf.permute(perm).reshape([t.shape[a] if s is None else s for a, s in merged])[crop]


def run_broadcast(recipe, taken):
    """The variable permuted, scaled and expanded: a view, no copy."""
    perm, factor, view, shape = recipe
    x = taken[0] if perm is None else taken[0].permute(perm)
    if factor != 1:
        x = x * factor
    return x.reshape(view).expand(shape)


def run_arrange(recipe, taken):
    """A one-operand einsum without repeated letters: sum ``dims`` (integers promoted to
    int64, as einsum does), then permute (a view)."""
    dims, perm = recipe
    t = taken[0].sum(dims) if dims else taken[0]
    return t if perm is None else t.permute(perm)


def run_einsum(equation, taken):
    """A plain einsum step (one or two operands: no path search at run time)."""
    return torch.einsum(equation, *taken)


def finish(result, scale, fresh, own, shape):
    """A program's result: scaled (in place when ``fresh``), reshaped to ``shape``, copied
    when ``own`` asks for a tensor no input shares (unless the reshape copied already: a
    permuted view is copied once, not twice)."""
    if scale != 1:
        result = result.mul_(scale) if fresh else result * scale
    elif own and not fresh:
        out = result if result.shape == shape else result.reshape(shape)
        copied = out is not result and out.data_ptr() != result.data_ptr()
        return out if copied else out.clone()
    return result if result.shape == shape else result.reshape(shape)


def run_sum(terms):
    """Add the terms' results (``term(own)`` each) into the first one, in place."""
    result = terms[0](True)
    for term in terms[1:]:
        value = term(False)
        if result.shape == value.shape and result.dtype == value.dtype:
            result.add_(value)
        else:
            result = result + value
    return result


def run_sliced(inputs, chunks, whole, own, axes, per, out_axis, out_per, out_shape):
    """Memory-bounded evaluation: ``chunk(sub_inputs, own)`` per ``(start, stop, chunk)``,
    written into the result along ``out_axis`` or (None) added up; ``whole(own)`` when
    ``chunks`` is None (slicing would not lower the peak)."""
    if chunks is None:
        return whole(own)
    result = None
    for start, stop, chunk in chunks:
        sub = [t if axis is None else t.narrow(axis, start * n, (stop - start) * n)
               for t, axis, n in zip(inputs, axes, per)]
        if out_axis is None:
            value = chunk(sub, result is None)
            result = value if result is None else result.add_(value)
            continue
        value = chunk(sub, False)
        if result is None:
            result = value.new_empty(out_shape)
        result.narrow(out_axis, start * out_per, (stop - start) * out_per).copy_(value)
    return result


def run_square(recipe, taken):
    """``Σ T ⊙ T`` over the axes ``summed`` of the one operand, the rest permuted by
    ``out_perm``.

    >>> run_square(((0,), None), [torch.tensor([[1.0, 2.0], [3.0, 4.0]])]).tolist()
    [10.0, 20.0]
    """
    summed, out_perm = recipe
    t = taken[0]
    r = torch.mul(t, t)
    r = r.sum(summed) if summed else r
    return r if out_perm is None else r.permute(out_perm)
