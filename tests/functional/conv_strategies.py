"""Hypothesis strategies for convolution configurations that torch accepts (tiny tensors)."""

from hypothesis import strategies as st


def _per_dim(draw, ndim, values, as_tuple):
    """An int or a tuple of ints, one per dimension."""
    if draw(as_tuple):
        return tuple(draw(values) for _ in range(ndim))
    return draw(values)


def _tuple(v, ndim):
    return (v,) * ndim if isinstance(v, int) else tuple(v)


@st.composite
def conv_configs(draw, transposed=False, max_ndim=3):
    """Shapes and hyper-parameters of a (transposed) convolution valid for torch.

    Returns a dict with ``x_shape, w_shape, bias, stride, padding, dilation, groups``
    (and ``output_padding`` when transposed).
    """
    ndim = draw(st.integers(1, max_ndim))
    as_tuple = st.booleans()
    groups = draw(st.integers(1, 3))
    cin_g, cout_g = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    max_k = 3 if ndim < 3 else 2
    K = tuple(draw(st.integers(1, max_k)) for _ in range(ndim))
    stride = _per_dim(draw, ndim, st.integers(1, 3), as_tuple)
    dilation = _per_dim(draw, ndim, st.integers(1, 3), as_tuple)
    S, D = _tuple(stride, ndim), _tuple(dilation, ndim)
    spans = [d * (k - 1) + 1 for d, k in zip(D, K)]
    if transposed:
        padding = _per_dim(draw, ndim, st.integers(0, 2), as_tuple)
        P = _tuple(padding, ndim)
        out_pad = tuple(draw(st.integers(0, max(s, d) - 1)) for s, d in zip(S, D))
        output_padding = out_pad if draw(as_tuple) or len(set(out_pad)) > 1 else out_pad[0]
        I = []
        for d in range(ndim):
            # torch needs a positive output size: (I-1)·S - 2P + span + op >= 1
            low = max(1, -(-(2 * P[d] - spans[d] - out_pad[d] + 1) // S[d]) + 1)
            I.append(draw(st.integers(low, low + 3)))
        extra = {"output_padding": output_padding}
        w_shape = (cin_g * groups, cout_g, *K)
        cout = cout_g * groups
    else:
        padding = draw(_conv_padding(ndim, S, as_tuple))
        pads = _pairs(padding, ndim, D, K)
        I = [draw(st.integers(max(1, span - pl - pr), max(1, span - pl - pr) + 3))
             for span, (pl, pr) in zip(spans, pads)]
        extra = {}
        w_shape = (cout_g * groups, cin_g, *K)
        cout = cout_g * groups
    batch = draw(st.sampled_from([None, 1, 2]))
    x_shape = (cin_g * groups, *I) if batch is None else (batch, cin_g * groups, *I)
    return dict(x_shape=x_shape, w_shape=w_shape, bias=(cout,) if draw(st.booleans()) else None,
                stride=stride, padding=padding, dilation=dilation, groups=groups, **extra)


@st.composite
def _conv_padding(draw, ndim, S, as_tuple):
    kinds = ["int", "tuple", "pairs", "valid"] + (["same"] if all(s == 1 for s in S) else [])
    kind = draw(st.sampled_from(kinds))
    if kind in ("same", "valid"):
        return kind
    if kind == "pairs":
        return tuple((draw(st.integers(0, 2)), draw(st.integers(0, 2))) for _ in range(ndim))
    return _per_dim(draw, ndim, st.integers(0, 2), st.just(kind == "tuple"))


def _pairs(padding, ndim, D, K):
    if padding == "valid":
        return [(0, 0)] * ndim
    if padding == "same":
        return [(d * (k - 1) // 2, d * (k - 1) - d * (k - 1) // 2) for d, k in zip(D, K)]
    if isinstance(padding, int):
        return [(padding, padding)] * ndim
    if isinstance(padding[0], int):
        return [(p, p) for p in padding]
    return list(padding)


@st.composite
def unfold_configs(draw, max_ndim=3):
    """``x_shape, kernel_size (tuple), dilation, padding, stride`` for N-d unfold/fold.

    ``padding`` is an int, a tuple, ``(left, right)`` pairs, ``'valid'`` or ``'same'``;
    ``pairs`` is the same padding resolved to pairs (for the reference).
    """
    ndim = draw(st.integers(1, max_ndim))
    as_tuple = st.booleans()
    max_k = 3 if ndim < 3 else 2
    K = tuple(draw(st.integers(1, max_k)) for _ in range(ndim))
    stride = _per_dim(draw, ndim, st.integers(1, 3), as_tuple)
    dilation = _per_dim(draw, ndim, st.integers(1, 3), as_tuple)
    S, D = _tuple(stride, ndim), _tuple(dilation, ndim)
    padding = draw(_conv_padding(ndim, S, as_tuple))
    pairs = _pairs(padding, ndim, D, K)
    low = [max(1, d * (k - 1) + 1 - pl - pr) for d, k, (pl, pr) in zip(D, K, pairs)]
    I = [draw(st.integers(m, m + 3)) for m in low]
    x_shape = (draw(st.integers(1, 2)), draw(st.integers(1, 3)), *I)
    return dict(x_shape=x_shape, kernel_size=K, dilation=dilation, padding=padding,
                stride=stride, pairs=tuple(pairs))
