"""Cost model: FLOPs and memory of each step and of a whole program, as ints or formulas.

Sizes are ints for a concrete diagram and sympy expressions for a symbolic one, so every
cost below is a number or a formula in the sizes. Π is priced by its lowering, never as a
dense tensor unless it is one: a strided view costs nothing, a summed pattern ``I·K``
elements, a native convolution ``2·(non-spatial sizes)·∏O·∏K`` FLOPs, and only the dense
fallback ``I·O·K`` elements.

Routes (:mod:`tndiag.codegen.routes`) are priced in modelled seconds by
:func:`route_seconds`: FLOPs at a sustained rate (lower where torch's kernel is known to be
weak), bytes moved at memory bandwidth (the im2col copy, the depth unfold, the window sums'
reads) and a fixed cost per torch call, so memory-bound steps are ranked by their traffic.

Memory is counted in elements: at each step, the intermediates still alive (results not yet
consumed and materialized pattern operands) plus what the step allocates (its result, and a
contiguous copy of any strided-view operand that einsum or a Gram product must reshape).
"""

from __future__ import annotations

from typing import Dict, Iterable, Sequence

import sympy

from tndiag.ir.sizes import Size

__all__ = ["prod", "smax", "einsum_flops", "native_flops", "native_kernel", "im2col_wins",
           "col2im_wins", "pattern_memory", "peak_memory", "route_seconds", "window_plan",
           "patch_gram_seconds", "gram_blocks", "symmetric_seconds", "kron_applies",
           "route_temporary"]


def prod(values: Iterable[Size]) -> Size:
    """Product of sizes (1 when empty).

    >>> prod([2, 3]), prod([sympy.Symbol("N"), 4])
    (6, 4*N)
    """
    out: Size = 1
    for v in values:
        out = out * v
    return out


def smax(values: Sequence[Size]) -> Size:
    """Maximum of sizes: an int when all are ints, else a simplified sympy ``Max``.

    >>> smax([3, 5]), smax([sympy.Symbol("N", positive=True), 2 * sympy.Symbol("N", positive=True)])
    (5, 2*N)
    """
    values = list(values) or [0]
    if all(isinstance(v, int) for v in values):
        return max(values)
    symbolic = [v for v in values if not (isinstance(v, int) and v == 0)]
    return sympy.Max(*symbolic)


def einsum_flops(equation: str, sizes: Dict[str, Size]) -> Size:
    """FLOPs of one einsum: ``2·∏(all letters)`` when it multiplies or sums, else a copy.

    >>> einsum_flops("ab,bc->ac", {"a": 2, "b": 3, "c": 4})
    48
    """
    lhs, out = equation.split("->")
    terms = lhs.split(",")
    letters = set("".join(terms))
    if len(terms) == 1 and letters == set(out):
        return prod(sizes[ch] for ch in out)
    return 2 * prod(sizes[ch] for ch in letters)


def native_flops(spec) -> Size:
    """FLOPs of a native convolution: ``2 · (A and B's non-spatial legs) · ∏O · ∏K``.

    >>> from tndiag.codegen.native import match_native
    >>> m = match_native(["nci", "iok", "dck"], [False, True, False], "ndo",
    ...                  {"n": 2, "c": 3, "i": 8, "o": 6, "k": 3, "d": 4}, {1: (1, 0, 0, 1)})
    >>> native_flops(m[0][1])  # 2 · n c d · o · k
    864
    """
    spatial = spec.a_spatial + spec.b_spatial + spec.out_spatial
    channels = set(spec.a_letters + spec.b_letters) - set(spatial)
    i_legs = {"conv": spec.a_spatial, "transpose": spec.out_spatial, "weight": spec.a_spatial}
    non_i = set(spatial) - set(i_legs[spec.role])
    return 2 * spec.size("".join(sorted(channels))) * spec.size("".join(sorted(non_i)))


def native_kernel(spec) -> str:
    """The torch kernel of a native step, by modelled seconds (see :data:`BACKWARD_CALL`):
    for a transposed convolution ``"input-grad"`` (``convolution_backward``'s input gradient)
    or ``""`` (``conv_transpose{1,2,3}d``); ``""`` for the other roles and symbolic sizes.

    >>> from tndiag.codegen.native import match_native
    >>> m = match_native(["ndo", "iok", "dck"], [False, True, False], "nci",
    ...                  {"n": 2, "c": 3, "i": 8, "o": 6, "k": 3, "d": 4}, {1: (1, 0, 0, 1)})
    >>> m[0][1].role, native_kernel(m[0][1])  # tiny: torch's fixed cost decides
    ('transpose', '')
    """
    flops = native_flops(spec)
    if spec.role != "transpose" or not isinstance(flops, int):
        return ""
    backward = flops / FLOP_RATE + BACKWARD_CALL
    transpose = flops / (FLOP_RATE * TRANSPOSE_EFFICIENCY) + CALL
    return "input-grad" if backward < transpose else ""


def im2col_wins(elements: int, padded: int, ndim: int, itemsize: int = 4) -> bool:
    """Whether torch's unfold (im2col, ``elements`` written at :data:`IM2COL_EFFICIENCY` of
    the bandwidth, one call) is cheaper than the strided view (a ``padded``-element zero-pad
    copy, the permuting copy of the result, ``3 + ndim`` calls).

    >>> im2col_wins(1152, 200, 2), im2col_wins(32 * 576 * 3136, 32 * 64 * 3364, 2)
    (True, False)
    """
    kernel = elements * itemsize / (BANDWIDTH * IM2COL_EFFICIENCY) + CALL
    view = (padded + elements) * itemsize / BANDWIDTH + (3 + ndim) * CALL
    return kernel < view


def col2im_wins(elements: int, taps: int, itemsize: int = 4) -> bool:
    """Whether torch's fold (col2im, reading ``elements`` at :data:`COL2IM_EFFICIENCY` of the
    bandwidth, one call) is cheaper than the scatter (per tap an add of a slice: about three
    passes over the input, three calls per tap).

    >>> col2im_wins(1152, 9), col2im_wins(32 * 576 * 3136, 9)
    (True, False)
    """
    kernel = elements * itemsize / (BANDWIDTH * COL2IM_EFFICIENCY) + CALL
    scatter = 3 * elements * itemsize / BANDWIDTH + 3 * taps * CALL
    return kernel < scatter


def pattern_memory(lowering: str, I: Size, O: Size, K: Size) -> Size:
    """Elements a pattern operand occupies under ``lowering``.

    >>> pattern_memory("dense-pattern", 10, 8, 3), pattern_memory("reduced-matrix", 10, 8, 3)
    (240, 30)
    """
    if lowering == "dense-pattern":
        return I * O * K
    if lowering == "reduced-matrix":
        return I * K
    return 0


def peak_memory(operand_memory: Sequence[Size], steps, result_sizes: Sequence[Size],
                temp_sizes: Sequence[Size]) -> Size:
    """Peak elements alive while running ``steps`` (see the module docstring).

    Args:
        operand_memory: elements held by each initial operand (0 for user inputs and views).
        steps: the program's steps (``positions`` are used).
        result_sizes: elements of each step's result (0 for a view).
        temp_sizes: elements each step allocates temporarily (copies of views).

    >>> from tndiag.codegen.program import Step
    >>> peak_memory([0, 0], [Step((0, 1), "a,a->")], [1], [0])
    1
    """
    live = list(operand_memory)
    peaks = [sum(live, 0)]
    for step, res, tmp in zip(steps, result_sizes, temp_sizes):
        peaks.append(sum(live, 0) + res + tmp)
        for p in sorted(step.positions, reverse=True):
            live.pop(p)
        live.append(res)
    return smax(peaks)


#: Constants of the route model (seconds = FLOPs / rate + bytes / bandwidth + calls · CALL),
#: fitted to the route measurements in docs/benchmarks.md (2-core CPU, float32). Only their
#: ratios matter: they decide which route of a step the "model" tuning mode runs.
FLOP_RATE = 15e9
BANDWIDTH = 8e9
CALL = 5e-6
#: Fixed seconds of one ``convolution_backward`` input-gradient call (26 µs on a 2×8×8
#: input with a 3×3 kernel, against 7.8 µs for ``conv_transpose2d``), and the fraction of its
#: rate ``conv_transpose{1,2,3}d`` reaches on large steps (the slowest layer measured: a 1×1
#: kernel, 128 channels, 1.18× the backward kernel's time; 3×3 layers ran 0.5–0.9×). A
#: transposed step calls ``conv_transpose`` when the fixed cost dominates.
BACKWARD_CALL = 20e-6
TRANSPOSE_EFFICIENCY = 0.85
#: Fractions of :data:`BANDWIDTH` torch's unfold (im2col) and fold (col2im) reach: on the
#: benchmark layers the strided view ran at 0.22× ``F.unfold``'s time and the scatter at
#: 0.30× ``F.fold``'s (docs/benchmarks.md); they win only where the per-call cost dominates.
IM2COL_EFFICIENCY = 0.25
COL2IM_EFFICIENCY = 0.1
#: Fraction of :data:`FLOP_RATE` torch's kernels reach on the shapes they handle poorly:
#: 3-d kernels with more than one depth tap, and transposed (input-gradient) kernels whose
#: result has at most two channels per group (e.g. a 1-channel signal's input gradient).
NATIVE_3D_EFFICIENCY = 0.3
NATIVE_NARROW_EFFICIENCY = 0.05
#: A pointwise step (1×1 kernel, stride 1, no padding, one group) of a convolution or a weight
#: gradient is a GEMM per sample. torch's kernel reaches about this fraction of the rate of those
#: GEMMs (the ``gemm`` route), which reach full rate from this many positions ∏O (the GEMM's
#: columns for ``conv``, its summed length for ``weight``) and fall off linearly below. Fitted to
#: 1×1 layers of ``benchmarks/paper_layers.json`` at batch 32 (docs/benchmarks.md, "Pointwise
#: steps"): the ``gemm`` forward took 0.35–0.93× torch's time from 8×8 outputs up and lost at 7×7
#: with 300 k weights (1.13–1.20×); the ``gemm`` weight gradient took 0.22–0.97× from 14×14 up
#: and lost below (1.08–4.2× at 7×7 and 8×8). The crossovers are put between: ∏O = 56 and 128.
#: With large weights torch's kernel wins (resnext101's 1024×1024, 1024×2048 and 2048×2048
#: layers: 1.22–5.4×; 512×1024 was even, 0.93× and 1.07×): steps with at least
#: :data:`POINTWISE_MAX_WEIGHT` weight elements are priced as other steps. So are forwards
#: with more than :data:`POINTWISE_MAX_CONV_POSITIONS` output positions: at 2 threads torch's
#: kernel won on resnext101's 56×56 layers (1.25–1.30×) and inceptionv3's 73×73 one (1.66×),
#: though at 1 thread the ``gemm`` forward won there too (0.71–0.91×) and at 2 threads it won
#: on mobilenetv2's 56×56 and 112×112 layers (0.62–0.85×); up to 35×35 it won at both.
NATIVE_POINTWISE_EFFICIENCY = 0.6
POINTWISE_MAX_WEIGHT = 2**19
POINTWISE_MAX_CONV_POSITIONS = 35 * 35
POINTWISE_GEMM_POSITIONS = {"conv": 56 / NATIVE_POINTWISE_EFFICIENCY,
                            "weight": 128 / NATIVE_POINTWISE_EFFICIENCY}
#: Fraction of :data:`FLOP_RATE` torch's weight-gradient kernel reaches on a grouped 2-d
#: layer with tiny groups (``C·D ≤`` :data:`TINY_GROUP` input times output channels per
#: group: depthwise, depth multipliers, pairs): 1.7–1.9 GFLOP/s measured on 5×5 and 7×7
#: depthwise layers at stride 1 (convnext 8×128×56², 168 ms; 8×240×28², 44 ms; 8×512×14²,
#: 42 ms) and 2.5 GFLOP/s with 1×2 and 2×2 channels per group; kernels of at most 3×3 run
#: faster (:data:`NATIVE_DEPTHWISE_3X3_WEIGHT_EFFICIENCY`: 4.5 GFLOP/s on mobilenetv2's
#: 8×144×56², 6.8 on 8×576×14², 4.8 with 4×4 channels per group). Stride 2 ran slower still
#: (0.5–0.7 GFLOP/s on 3×3 and 5×5), not modelled. With 8×8 channels per group torch ran at
#: 35–80 GFLOP/s. 2 threads, float32, ``aten.convolution_backward``.
NATIVE_DEPTHWISE_WEIGHT_EFFICIENCY = 0.12
NATIVE_DEPTHWISE_3X3_WEIGHT_EFFICIENCY = 0.3
TINY_GROUP = 16
#: Fraction of :data:`BANDWIDTH` a sum over the rows of a ``[.., I/S, S, ..]`` view reaches,
#: and a skinny GEMM with the ``[I, K]`` count matrix (both measured slower than per-tap sums
#: on large inputs; they win where the per-call cost dominates).
CLASS_SUM_EFFICIENCY = 0.3
SKINNY_GEMM_EFFICIENCY = 0.35


def route_seconds(step, route: str, itemsize: int = 4) -> float:
    """Modelled seconds of a native or window-sum ``step`` (concrete sizes) along ``route``.

    >>> from tndiag import compile, ops
    >>> s = compile(ops.conv((1, 8, 8, 16, 16), (8, 8, 3, 3, 3))).steps[0]
    >>> route_seconds(s, "depth2d") < route_seconds(s, "native")
    True
    """
    if step.kind.value == "window-sum":
        return _window_seconds(step, route, itemsize)
    if step.kind.value == "patch-gram":
        return patch_gram_seconds(step.info, route, itemsize)
    s = step.info
    flops = int(native_flops(s))
    a, b, y = (int(s.size(x)) for x in (s.a_letters, s.b_letters, s.result))
    io = (a + b + y) * itemsize / BANDWIDTH
    if route == "native":
        return flops / (FLOP_RATE * _native_efficiency(s)) + io + CALL
    if route == "rows":
        # _rows_seconds is in measured seconds, like the tiny-group native prices. Elsewhere
        # torch's kernel is priced at FLOP_RATE, about a quarter of the 64 GFLOP/s it reached
        # on a dense 3×3 layer (8×64×56²), so the estimate is scaled into those units
        # (unscaled, it undercut native on dense layers with small images such as ResNet-18's
        # 7×7 stage; on the dense and grouped layers measured, rows ran 3.5–17× slower).
        seconds = _rows_seconds(s, itemsize) + io
        return seconds if _tiny_groups(s) else seconds * GRAM_FLOP_RATE / FLOP_RATE
    if route == "depth2d":
        copy = _depth_copy(s) + y
        return flops / FLOP_RATE + io + 2 * copy * itemsize / BANDWIDTH + 4 * CALL
    if _gemm_pointwise(s):
        efficiency = min(1.0, _positions(s) / POINTWISE_GEMM_POSITIONS[s.role])
        return flops / (FLOP_RATE * efficiency) + io + (3 + s.ndim) * CALL
    reduction, columns = _gemm_shape(s)
    efficiency = min(1.0, reduction / 64) * min(1.0, columns / 16)
    cols = _im2col_elements(s)
    return flops / (FLOP_RATE * efficiency) + io + 3 * cols * itemsize / BANDWIDTH \
        + (3 + s.ndim) * CALL


def route_temporary(step, route: str) -> int:
    """Elements of the largest temporaries a native ``step`` (concrete sizes) allocates along
    ``route`` besides its operands and result: the im2col columns of ``gemm`` (a pointwise
    step multiplies the input as it lies), the depth-unfolded copy of ``depth2d``, the
    phase-split input and one kernel row's ``[G, C·W_u, D·O_w]`` product of ``rows``; 0 for
    ``native`` (torch's kernel) and for the other step kinds, whose routes hold at most
    input-sized intermediates. Measured tuning skips routes whose temporaries are large.

    >>> from tndiag import compile, ops
    >>> s = compile(ops.conv_weight_vjp((8, 64, 56, 56), (64, 64, 3, 3), padding=1)).steps[0]
    >>> route_temporary(s, "native"), route_temporary(s, "gemm")  # columns: 8·576·3136
    (0, 14450688)
    """
    if step.kind.value != "native" or route == "native":
        return 0
    s = step.info
    if route == "depth2d":
        return int(_depth_copy(s))
    if route == "rows":
        _, _, ow, used_w, G, C, D, _, padded = _rows_geometry(s)
        return padded + G * C * used_w * D * ow
    return 0 if pointwise(s) else _im2col_elements(s)


def _depth_copy(s) -> float:
    """Elements of the depth-unfolded copy of a 3-d step on the ``depth2d`` route."""
    k_d, s_d = _depth(s)
    return int(s.size(s.a_letters if s.role != "transpose" else s.result)) * k_d / s_d


def _im2col_elements(s) -> int:
    """Elements of the im2col matrix of a native step on the ``gemm`` route."""
    forward_out = s.channel if s.role == "transpose" else s.b_free
    return int(native_flops(s)) // (2 * int(s.size(forward_out)))


def pointwise(s) -> bool:
    """Whether a native step is a convolution or weight gradient with a 1×1 kernel, stride 1,
    no padding and one group: one GEMM per sample on the input as it lies.

    >>> from tndiag import compile, ops
    >>> [pointwise(compile(ops.conv((2, 8, 5, 5), (4, 8, k, k))).steps[0].info) for k in (1, 3)]
    [True, False]
    """
    if s.role == "transpose" or int(s.size(s.group)) != 1:
        return False
    taps = s.out_spatial if s.role == "weight" else s.b_spatial
    return (int(s.size(taps)) == 1 and all(v == 1 for v in s.stride)
            and not any(s.pad_left) and not any(s.pad_right))


def _positions(s) -> int:
    """∏O of a native step: its output's spatial size (the gradient's, for a weight step)."""
    return int(s.size(s.b_spatial if s.role == "weight" else s.out_spatial))


def _gemm_pointwise(s) -> bool:
    """A pointwise step the ``gemm`` route may win: fewer than :data:`POINTWISE_MAX_WEIGHT`
    weight elements and, for a forward, at most :data:`POINTWISE_MAX_CONV_POSITIONS` outputs."""
    weight = s.result if s.role == "weight" else s.b_letters
    return (pointwise(s) and int(s.size(weight)) < POINTWISE_MAX_WEIGHT
            and (s.role == "weight" or _positions(s) <= POINTWISE_MAX_CONV_POSITIONS))


def _native_efficiency(s) -> float:
    if _gemm_pointwise(s):
        return NATIVE_POINTWISE_EFFICIENCY
    if s.ndim == 3 and _depth(s)[0] > 1:
        return NATIVE_3D_EFFICIENCY
    if s.role == "transpose" and int(s.size(s.b_free)) <= 2:
        return NATIVE_NARROW_EFFICIENCY
    if _tiny_groups(s):
        small = all(int(s.size(k)) <= 3 for k in s.out_spatial)
        return NATIVE_DEPTHWISE_3X3_WEIGHT_EFFICIENCY if small \
            else NATIVE_DEPTHWISE_WEIGHT_EFFICIENCY
    return 1.0


def _tiny_groups(s) -> bool:
    """A 2-d weight step whose groups have at most :data:`TINY_GROUP` input times output
    channels (torch's slow depthwise weight-gradient kernel)."""
    return (s.role == "weight" and s.ndim == 2 and int(s.size(s.group)) > 1
            and int(s.size(s.a_free + s.b_free)) <= TINY_GROUP)


def _rows_seconds(s, itemsize: int) -> float:
    """The ``rows`` route of a 2-d weight step: per kernel row a batched GEMM between the
    ``W_u`` columns of whole input rows and the output gradient (the direct FLOPs times
    ``W_u / K_w``), its ``[G, C·W_u, D·O_w]`` product written and read by the diagonal sum;
    the padded input copied phase-major and the output gradient transposed once. The GEMMs
    are priced as the patch-gram ones (:func:`_gemm_seconds`); on 14 of 15 depthwise and
    grouped layers measured (2 threads, with an earlier two-copy input layout) the model was
    0.8–1.6× the measured time, on a 3×3 stride-2 depthwise layer 0.25×."""
    kh, oh, ow, used_w, G, C, D, N, padded = _rows_geometry(s)
    gemm = _gemm_seconds(G, C * used_w, D * ow, oh * N, itemsize)
    product = G * C * used_w * D * ow
    moved = 3 * padded + 2 * int(s.size(s.b_letters)) + 2 * kh * product
    return kh * gemm + moved * itemsize / BANDWIDTH + (4 * kh + 6) * CALL


def _rows_geometry(s) -> tuple:
    """``(K_h, O_h, O_w, W_u, G, C, D, N, padded input elements)`` of a 2-d weight step on
    the ``rows`` route (``W_u``: the input columns the windows read)."""
    (kh, kw), (oh, ow) = ([int(s.size(x)) for x in legs] for legs in (s.out_spatial,
                                                                     s.b_spatial))
    used_w = (kw - 1) * s.dilation[1] + (ow - 1) * s.stride[1] + 1
    G, C, D, N = (int(s.size(x)) for x in (s.group, s.a_free, s.b_free, s.channel))
    padded = N * G * C * int(prod(int(s.size(x)) + lo + hi for x, lo, hi in
                                  zip(s.a_spatial, s.pad_left, s.pad_right)))
    return kh, oh, ow, used_w, G, C, D, N, padded


def _depth(s):
    """(depth taps, depth stride) of a 3-d step."""
    k = s.out_spatial[0] if s.role == "weight" else s.b_spatial[0]
    return int(s.size(k)), s.stride[0]


def _gemm_shape(s):
    """(reduction length, output columns per group) of the im2col GEMM."""
    taps = int(s.size(s.out_spatial if s.role == "weight" else s.b_spatial))
    per_in, per_out = int(s.size(s.channel)), int(s.size(s.b_free))
    if s.role == "conv":
        return per_in * taps, per_out
    if s.role == "transpose":
        return per_in, per_out * taps
    return int(s.size(s.channel + s.b_spatial)), int(s.size(s.a_free)) * taps


#: Fraction of :data:`BANDWIDTH` a sum over a tensor's innermost axis reaches when it keeps
#: a short run of that axis (a ``[.., L, K]`` view, or residue classes mod S): the reduction
#: cannot run along contiguous memory (measured 3× slower than over an outer axis here).
INNER_EFFICIENCY = 0.3


def _inner(w, ndim: int, kept: int) -> float:
    return INNER_EFFICIENCY if w.axis == ndim - 1 and kept > 1 else 1.0


def _taps_seconds(w, elements: int, itemsize: int, ndim: int = 0) -> float:
    """One result slice per tap: the residue class's sum (one read for all taps) minus the
    positions outside the window, or the window's own strided sum when it is short."""
    reads, classes = 0.0, False
    for length, border, cls in zip(w.lengths, w.borders, w.from_classes):
        reads += border if cls else length
        classes |= cls
    seconds = reads / w.size * elements * itemsize / BANDWIDTH
    if classes:
        seconds += elements * itemsize / (BANDWIDTH * _inner(w, ndim, w.stride))
    return seconds + (2 + 3 * len(w.windows)) * CALL


def _matmul_seconds(w, elements: int, itemsize: int, last: bool) -> float:
    moved = 0 if last else 2 * elements  # matmul copies a moved axis
    rows, taps = elements // w.size, len(w.windows)  # a GEMV (K = 1) or few rows: slow
    efficiency = SKINNY_GEMM_EFFICIENCY * min(1.0, taps / 4) * min(1.0, rows / 64)
    return (elements / efficiency + moved) * itemsize / BANDWIDTH + 4 * CALL


def _classes_seconds(w, elements: int, itemsize: int) -> float:
    return elements * itemsize / (BANDWIDTH * CLASS_SUM_EFFICIENCY) + 7 * CALL


def _classes_stage_seconds(w, elements: int, itemsize: int, ndim: int) -> float:
    """All taps from the class sums (one read) and the border rows, concatenated, times one
    small matrix. Priced as the earlier kernel (index, two border products: 3 reads of the
    borders, 10 calls): pricing the concatenation's own 2 reads and 6 calls moved 12 plans of
    ``layers.json`` for a geometric mean of 1.00× and lost 1.26× on 3c3d/conv1 (docs)."""
    head = max(first for first, _ in w.windows)
    tail = w.size - 1 - min(last for _, last in w.windows)
    reads = 1 / _inner(w, ndim, w.stride) + 3 * (head + tail) / w.size
    return elements * reads * itemsize / BANDWIDTH + 10 * CALL


def _view_seconds(w, elements: int, itemsize: int, ndim: int) -> float:
    """A strided view ``[.., L, K, ..]`` of the axis summed over ``L``."""
    reads = w.lengths[0] * len(w.windows) / w.size
    return elements * reads * itemsize / (BANDWIDTH * _inner(w, ndim, len(w.windows))) \
        + 2 * CALL


#: Innermost axes shorter than this make a sum over an outer axis slow (short contiguous
#: runs): there all one-tap axes (1×1 layers at any stride) are summed in one strided view
#: (measured on 14×14 and 28×28 inputs: 0.69 vs 0.89 ms; at 56×56 one axis at a time won,
#: 0.15 vs 0.29 ms).
SHORT_ROW = 32


#: Largest Kronecker count matrix (``∏I·∏K`` entries) the ``kron`` route builds; the
#: fraction of :data:`FLOP_RATE` its GEMM reaches (with at least 16 result columns MKL ran
#: 37–61 GFLOP/s on the benchmark layers, with 2–9 columns 6–7 GFLOP/s; float32, 1 thread),
#: and of :data:`BANDWIDTH` as a GEMV (one tap: a 1×1 layer's whole-axes sum, which the GEMV
#: also scales) on inputs of at most :data:`KRON_GEMV_BYTES` (114 vs 141 µs for
#: all-cnn-c/conv8_1x1's program, 1.5 MiB; 60 vs 67 µs for mobilenetv2/pw_expand's, 2.3 MiB)
#: and beyond (1.0–1.1× the sums' time at 3.4–4.6 MiB, 1.2–1.8× on the paper's 1×1 layers of
#: 6–25 MiB).
KRON_ENTRIES = 1 << 18
KRON_EFFICIENCY = 2.5
KRON_NARROW_EFFICIENCY = 0.45
KRON_GEMV_EFFICIENCY = 1.25
KRON_GEMV_LARGE_EFFICIENCY = 0.7
KRON_GEMV_BYTES = 3 << 20


def kron_applies(spec) -> bool:
    """Whether a :class:`~tndiag.codegen.lowerings.window_sum.WindowSums` can run as one GEMM
    with the Kronecker product of its count matrices: the summed axes are the trailing ones
    and the matrix has at most :data:`KRON_ENTRIES` entries (concrete sizes).

    >>> from tndiag.codegen.lowerings.window_sum import WindowSpec, WindowSums
    >>> kron_applies(WindowSums((2, 8), (WindowSpec(1, 8, 2, ((0, 6), (1, 7))),)))
    True
    >>> kron_applies(WindowSums((8, 2), (WindowSpec(0, 8, 2, ((0, 6), (1, 7))),)))
    False
    """
    ndim, axes = len(spec.shape), sorted(w.axis for w in spec.axes)
    entries = prod(w.size * len(w.windows) for w in spec.axes)
    return axes == list(range(ndim - len(axes), ndim)) and entries <= KRON_ENTRIES


def _kron_seconds(spec, itemsize: int) -> float:
    """One GEMM of the tensor as ``[rows, ∏I]`` with the ``[∏I, ∏K]`` Kronecker count matrix."""
    elements, taps = int(prod(spec.shape)), int(prod(len(w.windows) for w in spec.axes))
    if taps == 1:
        small = elements * itemsize <= KRON_GEMV_BYTES
        efficiency = KRON_GEMV_EFFICIENCY if small else KRON_GEMV_LARGE_EFFICIENCY
        return elements * itemsize / (BANDWIDTH * efficiency) + 2 * CALL
    rate = FLOP_RATE * (KRON_EFFICIENCY if taps >= 16 else KRON_NARROW_EFFICIENCY)
    return 2 * elements * taps / rate + elements * itemsize / BANDWIDTH + 2 * CALL


def _whole(w) -> bool:
    """Whether the axis is summed whole (one tap, every position)."""
    return w.windows == ((0, w.size - 1),) and (w.stride == 1 or w.size == 1)


def window_plan(spec, itemsize: int = 4) -> tuple:
    """The stages of a ``fused`` window-sum step (a :class:`WindowSums`) and their modelled
    seconds: the axes summed whole (and, on short rows, every one-tap axis) in one reduction,
    then the most shrinking axis first
    (outer first among equals), per axis the cheapest of a strided-view sum (taps that are
    evenly spaced equal windows reading each position at most once), one slice per tap
    (``taps``), all taps from the class sums minus the borders (``classes``, no empty
    window) and the count-matrix product (``matmul``).

    >>> from tndiag.codegen.lowerings.window_sum import WindowSpec, WindowSums
    >>> stem = [WindowSpec(a, 16, 4, tuple((k, 12 + k) for k in range(4))) for a in (2, 3)]
    >>> window_plan(WindowSums((4, 3, 16, 16), tuple(stem)))[0]  # patchify S = K = 4
    (('view', (2,)), ('view', (3,)))
    """
    elements, ndim = int(prod(spec.shape)), len(spec.shape)
    short = int(spec.shape[-1]) < SHORT_ROW
    whole = tuple(w.axis for w in spec.axes
                  if _whole(w) or short and len(w.windows) == 1 and w.uniform)
    stages: list = []
    seconds = 0.0
    if whole:
        stages.append(("view", whole))
        reads = prod(w.lengths[0] / w.size for w in spec.axes if w.axis in whole)
        seconds += elements * reads * itemsize / BANDWIDTH + 2 * CALL
        elements //= int(prod(spec.shape[a] for a in whole))
    rest = sorted((w for w in spec.axes if w.axis not in whole),
                  key=lambda w: (len(w.windows) / w.size, w.axis))
    for w in rest:
        last = w.axis == ndim - 1 and not stages
        options = {"taps": _taps_seconds(w, elements, itemsize, ndim),
                   "matmul": _matmul_seconds(w, elements, itemsize, last)}
        if all(first <= last for first, last in w.windows):
            options["classes"] = _classes_stage_seconds(w, elements, itemsize, ndim)
        if w.uniform and w.lengths[0] * len(w.windows) <= w.size:
            options["view"] = _view_seconds(w, elements, itemsize, ndim)
        best = min(options, key=options.__getitem__)
        stages.append((best, (w.axis,) if best == "view" else w.axis))
        seconds += options[best]
        elements = elements * len(w.windows) // w.size
    return tuple(stages), seconds


def _window_seconds(step, route: str, itemsize: int) -> float:
    """A window-sum step along ``route``: ``fused`` by its plan, the others axis by axis
    (last axis first) with a stacked result each."""
    spec = step.info
    if route == "fused":
        return window_plan(spec, itemsize)[1]
    if route == "kron":
        return _kron_seconds(spec, itemsize)
    elements, seconds = int(prod(spec.shape)), 0.0
    for n, w in enumerate(sorted(spec.axes, key=lambda w: -w.axis)):
        last = n == 0 and w.axis == len(spec.shape) - 1
        if route == "classes":
            seconds += _classes_seconds(w, elements, itemsize)
        elif route == "matmul":
            seconds += _matmul_seconds(w, elements, itemsize, last)
        else:
            seconds += _taps_seconds(w, elements, itemsize, len(spec.shape))
        seconds += 2 * CALL  # the tap axis moved back into place, the next axis' result
        elements = elements * len(w.windows) // w.size
    return seconds


#: The symmetric product: a summed leg shorter than ``GRAM_BLOCK`` is memory-bound (one
#: block); at most ``GRAM_MOST_BLOCKS`` row blocks, each at least ``GRAM_MIN_ROWS`` rows (a
#: GEMM with fewer runs below its rate: measured on ``[rows, 2048..8192]`` matrices, 2 blocks
#: of 96 rows beat 1 of 192 by 16% and 3 of 64 rows lost again).
GRAM_BLOCK = 128
GRAM_MOST_BLOCKS = 6
GRAM_MIN_ROWS = 96


def symmetric_seconds(batch: int, rows: int, columns: int, blocks: int,
                      itemsize: int = 4) -> float:
    """Modelled seconds of ``M Mᵀ`` for ``M [batch, rows, columns]`` in ``blocks`` row
    blocks: the ``b(b+1)/2`` block products on and above the diagonal, each block below it a
    transposed copy of one above.

    >>> symmetric_seconds(1, 192, 2048, 2) < symmetric_seconds(1, 192, 2048, 1)
    True
    """
    size = rows // blocks
    seconds = blocks * (blocks + 1) // 2 * _gemm_seconds(batch, size, size, columns, itemsize)
    mirrored = blocks * (blocks - 1) // 2
    return seconds + mirrored * (2 * batch * size * size * itemsize / BANDWIDTH + 2 * GRAM_CALL)


def gram_blocks(rows: int, columns: int, batch: int = 1) -> int:
    """How many row blocks :func:`~tndiag.backends.kernels.symmetric_product` splits a
    ``[batch, rows, columns]`` matrix into: the cheapest by :func:`symmetric_seconds` with
    blocks of at least :data:`GRAM_MIN_ROWS` rows (one when the summed leg is shorter than
    :data:`GRAM_BLOCK`: the product is memory-bound).

    >>> gram_blocks(576, 25088), gram_blocks(192, 2048), gram_blocks(576, 64), gram_blocks(72, 9000)
    (6, 2, 1, 1)
    """
    if columns < GRAM_BLOCK:
        return 1
    counts = range(1, 1 + max(1, min(GRAM_MOST_BLOCKS, rows // GRAM_MIN_ROWS)))
    return min(counts, key=lambda b: symmetric_seconds(batch, rows, columns, b))


#: Rate of the BLAS GEMMs of a ``patch-gram`` step (measured single-threaded: 64–70
#: GFLOP/s on ``[≥ 96 rows, ≥ 2000]`` operands; batched ``[32, r, 6688]`` products ran at
#: 15, 26, 44 GFLOP/s for r = 8, 16, 32, 12 with one row) and the fixed cost of one of its
#: small calls (a slab, a GEMM on it: about 50 µs per derived block of a 3-channel layer).
GRAM_FLOP_RATE = 70e9
GRAM_CALL = 6e-6
#: Bandwidth of a GEMM streaming its operands (a product with one or a few rows is bound by
#: it: 43–49 GB/s measured on cached ``[144, 1, 26912]`` operands, 10–15 GB/s on bands of
#: tens of MB, beyond the cache).
GRAM_BANDWIDTH = 12e9


def _gemm_seconds(batch: int, rows: int, cols: int, length: int, itemsize: int) -> float:
    """A batched ``[rows, length] x [length, cols]`` product accumulated into its result:
    slower with few rows or columns (``(r / 96)^0.55`` of the rate for ``r`` rows, fitted to
    the measurements above, at least 0.18) or a short summed leg (the result is read and
    written once per call)."""
    flops = 2 * batch * rows * cols * length
    square = (rows * cols) ** 0.5
    efficiency = max(0.18, min(1.0, (square / GRAM_MIN_ROWS) ** 0.55)) \
        * min(1.0, max(1, length) / 128)
    written = 2 * batch * rows * cols * itemsize
    read = batch * (rows + cols) * length * itemsize
    return max(flops / (GRAM_FLOP_RATE * efficiency), read / GRAM_BANDWIDTH) \
        + written / BANDWIDTH + GRAM_CALL


#: Fraction of :data:`BANDWIDTH` the ``shifted`` route's phase-major copy of the input
#: reaches (it moves the batch leg innermost: a transposing copy; the zeros it lands in are
#: written at the full bandwidth). Fitted to measurements of both routes on the benchmark
#: layers (resnet18/layer2.conv1, 3×3 stride 2: 29.0 ms along ``shifted``, 34.2 along
#: ``unfold``).
LAYOUT_EFFICIENCY = 0.75


def patch_gram_seconds(spec, route: str, itemsize: int = 4) -> float:
    """Modelled seconds of a ``patch-gram`` step (concrete sizes) along ``route``:
    ``unfold`` — the padded input's unfolded copy (written and read) and the blocks of the
    symmetric product on and above the diagonal; ``batched`` — ``X_n X_nᵀ`` per sample with
    no copy, then the sum over samples; ``shifted`` — the phase-major copy, one band
    GEMM (and one GEMM per gap level, of copied runs) per base block, two thin-slab GEMMs per
    derived block (its slabs copied once each), and the blocks written into the result.

    >>> from tndiag import ops
    >>> from tndiag.functional._common import compile_for
    >>> (s,) = compile_for(ops.kfc((8, 64, 56, 56), 3, 1, 1, 1, 1, False, 0), None).steps
    >>> patch_gram_seconds(s.info, "shifted") < patch_gram_seconds(s.info, "unfold")
    True
    """
    G, C, N = int(spec.g), int(spec.c), int(spec.n)
    taps, columns = int(spec.taps), int(spec.columns)
    elements = N * G * C * int(prod(int(a[0]) for a in spec.axes))
    if route == "batched":  # one GEMM per sample and group, summed over the samples
        return _gemm_seconds(N * G, C, C, columns // N, itemsize) \
            + 2 * N * G * C * C * itemsize / BANDWIDTH + GRAM_CALL
    if route != "shifted":
        rows = C * taps
        unfolded = G * rows * columns
        seconds = (elements + 3 * unfolded) * itemsize / BANDWIDTH + 4 * GRAM_CALL
        return seconds + symmetric_seconds(G, rows, columns, gram_blocks(rows, columns, G),
                                           itemsize)
    return _shifted_seconds(spec, elements, itemsize)


def _shifted_seconds(spec, elements: int, itemsize: int) -> float:
    from tndiag.codegen.lowerings.patch_gram import geometry, shifted_plan

    G, C, N = int(spec.g), int(spec.c), int(spec.n)
    Q, O, _, spans, gaps, _ = geometry(spec)
    blocks, base, derived = shifted_plan(spec)
    phases = 1 + max(max(b[-2 if b[0] == "base" else 4][0], b[-1 if b[0] == "base" else 5][0])
                     for b in blocks)  # the phase-major copy holds every phase in use
    layout = G * C * int(prod(Q)) * N * phases
    seconds = (layout + 2 * elements / LAYOUT_EFFICIENCY) * itemsize / BANDWIDTH
    seconds += base * _gemm_seconds(G, C, C, spans[0], itemsize)
    for level, run in gaps:
        length = int(prod(O[:level])) * (O[level] - 1) * run
        seconds += base * (_gemm_seconds(G, C, C, length, itemsize)
                           + 4 * G * C * length * itemsize / BANDWIDTH + 4 * GRAM_CALL)
    box = int(prod(O)) * N
    copied = set()
    for block in blocks:
        if block[0] == "derive":
            axis, tau = block[6], block[7]
            slab = box // O[axis] * tau
            seconds += 2 * _gemm_seconds(G, C, C, slab, itemsize) + 4 * GRAM_CALL
            if any(O[x] > 1 for x in range(len(O) - 1) if x != axis) or (axis < len(O) - 1
                                                                       and tau > 1):
                for (p, a) in block[4:6]:  # the slabs of both boxes, each copied once
                    for lo in (a[axis], a[axis] + O[axis]):
                        copied.add((p, axis, a[:axis] + (lo,) + a[axis + 1:], tau))
    for _, axis, _, tau in copied:
        seconds += 2 * G * C * box // O[axis] * tau * itemsize / BANDWIDTH + 2 * GRAM_CALL
    return seconds + (base + derived) * 3 * G * C * C * itemsize / BANDWIDTH + 12 * GRAM_CALL
