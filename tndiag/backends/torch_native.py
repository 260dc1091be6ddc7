"""Runtime of every step kind: a recipe per step, run by the kernels of
:mod:`tndiag.backends.kernels` (torch convolution kernels, strided views, Gram products, ...).

Each row of :data:`STEPS` turns a step into ``(kernel function, recipe)``: the recipe holds
what can be computed once (permutations, shapes, paddings, slices) as a literal. A preparer
binds the recipe to the kernel (the backend's runner); the export writes the same call into
standalone code (:mod:`tndiag.backends.torch_export`).
"""

from __future__ import annotations

import functools
import itertools
from typing import Any, Callable, Dict, List, Optional, Tuple

from tndiag.backends import kernels
from tndiag.backends.kernels import reduced_matrix, symmetric_product
from tndiag.backends.routes import WINDOW_RECIPES, native_route_recipe
from tndiag.backends.routes.patch_gram import run_patch_gram
from tndiag.backends.routes.window import classes_literal, run_axes
from tndiag.backends.torch_gather import gather_recipe
from tndiag.codegen.cost import gram_blocks, window_plan
from tndiag.codegen.lowerings.broadcast import BroadcastSpec
from tndiag.codegen.lowerings.gram import GramSpec
from tndiag.codegen.lowerings.patch_gram import batched_recipe, shifted_recipe, unfold_recipe
from tndiag.codegen.lowerings.scatter import ScatterSpec
from tndiag.codegen.lowerings.square import SquareSpec
from tndiag.codegen.lowerings.view import ViewSpec
from tndiag.codegen.lowerings.window_sum import WindowSpec, WindowSums
from tndiag.codegen.native import NativeConv
from tndiag.codegen.program import LoweringKind, Operand, Step, StepKind

__all__ = ["PREPARERS", "STEPS", "MATERIALIZERS", "prepare", "reduced_matrix", "symmetric_blocks",
           "symmetric_product"]

Recipe = Tuple[Callable[..., Any], Any]


def _how(letters: str, summed: str, order: str, shape) -> tuple:
    """The :func:`~tndiag.backends.kernels.arrange` recipe: sum ``summed``, permute the rest
    to ``order``, reshape to ``shape``."""
    dims = tuple(letters.index(c) for c in summed)
    rest = "".join(c for c in letters if c not in summed)
    perm = tuple(rest.index(c) for c in order)
    return dims, None if perm == tuple(range(len(perm))) else perm, tuple(int(v) for v in shape)


def _orders(s: NativeConv):
    """Letter order and kernel shape of A and B for each role (see codegen/native.py)."""
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


def _is_input_gradient(s: NativeConv) -> bool:
    """Whether the forward conv from the result's size reproduces A's spatial sizes."""
    for c_i, c_o, c_k, st, pl, pr, d in zip(s.out_spatial, s.a_spatial, s.b_spatial, s.stride,
                                            s.pad_left, s.pad_right, s.dilation):
        I, O, K = int(s.size(c_i)), int(s.size(c_o)), int(s.size(c_k))
        if (I + pl + pr - d * (K - 1) - 1) // st + 1 != O:
            return False
    return True


def _transpose_args(s: NativeConv, G: int) -> tuple:
    I = [int(s.size(c)) for c in s.out_spatial]
    O = [int(s.size(c)) for c in s.a_spatial]
    K = [int(s.size(c)) for c in s.b_spatial]
    full = [(o - 1) * st + d * (k - 1) + 1 for o, st, d, k in zip(O, s.stride, s.dilation, K)]
    extra = [i - (f - 2 * pl) for i, f, pl in zip(I, full, s.pad_left)]
    direct = all(pl >= 0 and 0 <= e < max(st, d) for pl, e, st, d in
                 zip(s.pad_left, extra, s.stride, s.dilation))
    crop = None if direct else (list(s.pad_left), I)
    return (s.ndim, list(s.stride), list(s.pad_left), extra, G, list(s.dilation), crop)


def _kernel_args(s: NativeConv) -> Tuple[str, tuple, bool]:
    """(kernel name, its arguments after ``a, b, bias``, whether A is padded first)."""
    G = int(s.size(s.group))
    pads = list(zip(s.pad_left, s.pad_right))
    symmetric = all(lo == hi and lo >= 0 for lo, hi in pads)
    padding = [lo for lo, _ in pads] if symmetric else [0] * s.ndim
    stride, dilation = list(s.stride), list(s.dilation)
    if (s.role == "transpose" and s.kernel == "input-grad" and symmetric
            and _is_input_gradient(s) and not s.bias):
        x_shape = (int(s.size(s.a_free)), G * int(s.size(s.b_free)),
                   *[int(s.size(c)) for c in s.out_spatial])
        return "input-grad", (x_shape, stride, padding, dilation, G), False
    if s.role == "transpose":
        return "transpose", _transpose_args(s, G), False
    if s.role == "conv":
        return "conv", (s.ndim, stride, padding, dilation, G), not symmetric
    w_shape = (G * int(s.size(s.b_free)), int(s.size(s.a_free)),
               *[int(s.size(c)) for c in s.out_spatial])
    return "weight", (w_shape, stride, padding, dilation, G), not symmetric


def native_recipe(step: Step) -> Recipe:
    """A :class:`~tndiag.codegen.native.NativeConv` step: torch's convolution kernels."""
    s: NativeConv = step.info
    (a_order, a_shape), (b_order, b_shape) = _orders(s)
    kernel, args, padded = _kernel_args(s)
    pad = [p for lr in reversed(list(zip(s.pad_left, s.pad_right))) for p in lr]
    bias = None
    if s.bias:
        channels = s.group + s.b_free
        bias = (_as_is(s, s.bias, _how(s.bias, "", channels, [s.size(channels)])),
                s.bias_scale)
    how_a = _as_is(s, s.a_letters, _how(s.a_letters, s.a_sum, a_order, a_shape))
    how_b = _as_is(s, s.b_letters, _how(s.b_letters, s.b_sum, b_order, b_shape))
    out_shape = tuple(int(s.size(c)) for c in s.result)
    if step.route not in ("", "native"):  # a re-expression (tndiag.codegen.routes)
        return native_route_recipe(step.route, s, how_a, how_b, bias, out_shape)
    same = out_shape == _kernel_shape(s)
    as_is = how_a is None and how_b is None and not padded and same
    if as_is and (bias is None or (bias[0] is None and bias[1] == 1)):
        if kernel == "conv":
            return kernels.run_conv, (args[0], bias is not None, *args[1:])
        if kernel == "transpose" and args[-1] is None:
            return kernels.run_conv_transpose, (args[0], bias is not None, *args[1:-1])
    return kernels.run_native, (kernel, how_a, how_b, bias, pad if padded else None,
                                None if same else out_shape, args)


def _as_is(s: NativeConv, letters: str, how: tuple) -> Optional[tuple]:
    """``None`` when the arrangement ``how`` leaves the operand (one axis per letter) as it
    is: nothing summed, no permutation, the same shape."""
    dims, perm, shape = how
    unchanged = not dims and perm is None and shape == tuple(int(s.size(c)) for c in letters)
    return None if unchanged else how


def _kernel_shape(s: NativeConv) -> tuple:
    """The shape torch's kernel returns: batch, channels (groups fused), spatial sizes."""
    G, spatial = int(s.size(s.group)), [int(s.size(c)) for c in s.out_spatial]
    if s.role == "weight":
        return (G * int(s.size(s.b_free)), int(s.size(s.a_free)), *spatial)
    return (int(s.size(s.a_free)), G * int(s.size(s.b_free)), *spatial)


def view_recipe(step: Step) -> Recipe:
    """Zero-pad the viewed axes once, then unfold each (see :class:`ViewSpec`)."""
    v: ViewSpec = step.info
    if v.im2col:  # torch's unfold, 1-d as 2-d with a unit leading axis
        lead = 2 - len(v.axes)
        two = lambda values, fill: (fill,) * lead + tuple(int(x) for x in values)  # noqa: E731
        return kernels.run_im2col, (lead == 1, two(v.kernels, 1), two(v.dilations, 1),
                                    two((lo for lo, _ in v.pads), 0), two(v.strides, 1))
    pads = [(0, 0)] * v.ndim
    for axis, lr in zip(v.axes, v.pads):
        pads[axis] = lr
    flat = [p for lr in reversed(pads[min(v.axes):]) for p in lr]
    unfolds = tuple((axis, d * (int(k) - 1) + 1, stride) for axis, d, k, stride
                    in zip(v.axes, v.dilations, v.kernels, v.strides))
    taps = (Ellipsis,) + tuple(slice(None, None, d) for d in v.dilations)
    return kernels.run_view, (flat if any(flat) else None, unfolds,
                              taps if any(d > 1 for d in v.dilations) else None)


def symmetric_blocks(n: int, count: int) -> List[Tuple[int, int]]:
    """Row ranges splitting ``n`` rows into ``count`` blocks (the cost model's choice,
    :func:`tndiag.codegen.cost.gram_blocks`).

    >>> symmetric_blocks(100, 1), symmetric_blocks(600, 4)
    ([(0, 100)], [(0, 150), (150, 300), (300, 450), (450, 600)])
    """
    edges = [round(n * j / count) for j in range(count + 1)]
    return list(zip(edges[:-1], edges[1:]))


def _numel(shape) -> int:
    n = 1
    for s in shape:
        n *= int(s)
    return n


def gram_recipe(step: Step) -> Recipe:
    """``M Mᵀ`` of one tensor with itself, batched over shared kept legs."""
    g: GramSpec = step.info
    batch, kept, summed = _numel(g.batch), _numel(g.kept), int(g.summed)
    shape = (*[int(v) for v in g.batch], *[int(v) for v in g.kept], *[int(v) for v in g.kept])
    blocks = symmetric_blocks(kept, gram_blocks(kept, summed, batch))
    identity = g.out_perm == tuple(range(len(g.out_perm)))
    if len(blocks) == 1 and _rows_first(g):
        return kernels.run_gram_rows, (summed, batch, kept, shape,
                                       None if identity else g.out_perm)
    return kernels.run_gram, (g.perm, (batch, kept, summed), shape, tuple(blocks),
                              None if identity else g.out_perm)


def patch_gram_recipe(step: Step) -> Recipe:
    """The Gram of a tensor's patches (see :mod:`tndiag.backends.routes.patch_gram`):
    ``unfold`` (the default), ``shifted`` or ``batched``."""
    spec = step.info
    if step.route == "shifted":
        return run_patch_gram, shifted_recipe(spec)
    if step.route == "batched":
        return run_patch_gram, batched_recipe(spec)
    rows = int(spec.c) * int(spec.taps)
    blocks = symmetric_blocks(rows, gram_blocks(rows, int(spec.columns), int(spec.g)))
    return run_patch_gram, unfold_recipe(spec, tuple(blocks))


def square_recipe(step: Step) -> Recipe:
    """``Σ T ⊙ T`` over the summed axes of one tensor."""
    spec: SquareSpec = step.info
    return kernels.run_square, (spec.summed, spec.out_perm)


def _rows_first(g: GramSpec) -> bool:
    """Whether the tensor's legs are (summed, batch, kept) in order: its rows are the summed
    legs (a window-sum result, samples first), so the product needs no permuting copy."""
    nb, nk = len(g.batch), len(g.kept)
    summed = g.perm[nb + nk:]
    return len(summed) > 0 and g.perm == (*range(len(summed), len(summed) + nb + nk),
                                          *range(len(summed))) \
        and summed == tuple(range(len(summed)))


def _taps_args(w: WindowSpec, classes: bool = True) -> tuple:
    """The :func:`~tndiag.backends.kernels.window_taps` literal of one axis: a tap whose
    window misses fewer positions of its residue class than it covers starts from the class
    sum (with ``classes`` False only at stride 1, the axis total: the ``direct`` route)."""
    plans = []
    for (first, last), length, cls in zip(w.windows, w.lengths, w.from_classes):
        if length <= 0:
            plans.append(("zero", 0, 0))
        elif cls and (classes or w.stride == 1):
            plans.append(("class", first, last))
        else:
            plans.append(("direct", first, last))
    needs = any(how == "class" for how, _, _ in plans)
    return (w.axis, w.size, w.stride, tuple(plans), needs)


def _view_args(w: WindowSpec) -> tuple:
    """``(axis, first, L, K, S, D)`` of an axis whose taps are one strided view."""
    firsts = [first for first, _ in w.windows]
    step = firsts[1] - firsts[0] if len(firsts) > 1 else 1
    return (w.axis, firsts[0], w.lengths[0], len(firsts), w.stride, step)


#: Elements an intermediate of a fused window-sum step may hold before the step runs on
#: slices of a leading axis (1 MiB of float32).
WINDOW_CHUNK = 1 << 18


def _chunk(spec: WindowSums, stages) -> Any:
    """``(axis, rows)`` slicing the step so that no intermediate exceeds WINDOW_CHUNK, or None."""
    if len(stages) < 2:
        return None
    summed = {w.axis for w in spec.axes}
    free = [a for a, s in enumerate(spec.shape) if a not in summed and int(s) > 1]
    shape = [int(s) for s in spec.shape]
    by_axis = {w.axis: w for w in spec.axes}
    first = stages[0][1] if stages[0][0] == "view" else (stages[0][1],)
    for a in first:
        shape[a] = len(by_axis[a].windows)
    middle = _numel(shape)
    if not free or middle <= WINDOW_CHUNK:
        return None
    axis = free[0]
    rows = max(1, shape[axis] * WINDOW_CHUNK // middle)
    return None if rows >= shape[axis] else (axis, rows)


def fused_window_recipe(spec: WindowSums) -> Recipe:
    """The ``fused`` window-sum kernel: the stages of :func:`tndiag.codegen.cost.window_plan`."""
    plan, _ = window_plan(spec)
    by_axis = {w.axis: w for w in spec.axes}
    stages: List[Tuple[str, tuple]] = []
    for how, where in plan:
        if how == "view":
            stages.append(("view", tuple(_view_args(by_axis[a]) for a in where)))
        elif how == "taps":
            stages.append(("taps", _taps_args(by_axis[where])))
        elif how == "classes":
            stages.append(("classes", classes_literal(by_axis[where])))
        else:
            w = by_axis[where]
            stages.append(("matmul", (w.axis, w.size, w.stride, w.windows)))
    return kernels.run_window_sum, (tuple(int(s) for s in spec.out_shape),
                                    _chunk(spec, plan), tuple(stages), spec.scale)


def window_sum_recipe(step: Step) -> Recipe:
    """Every summed pattern of one tensor (see :class:`WindowSums`): ``fused`` (the default),
    ``kron`` (one GEMM with the Kronecker count matrix), or axis by axis (last first) along
    ``direct``, ``classes`` or ``matmul``."""
    spec: WindowSums = step.info
    if step.route in ("", "fused"):
        return fused_window_recipe(spec)
    if step.route == "kron":  # the step's scale goes into the matrix
        axes = tuple((w.size, w.stride, w.windows) for w in sorted(spec.axes, key=lambda w: w.axis))
        return kernels.run_kron, (axes, spec.scale, tuple(int(s) for s in spec.out_shape))
    order = sorted(spec.axes, key=lambda w: -w.axis)
    if step.route == "direct":
        stages = tuple(("taps", _taps_args(w, classes=False)) for w in order)
        return kernels.run_window_sum, (tuple(int(s) for s in spec.out_shape), None, stages,
                                        spec.scale)
    return run_axes, (tuple((step.route, WINDOW_RECIPES[step.route](w)[1], w.axis)
                            for w in order), spec.scale)


def _moves(sc: ScatterSpec, dst_of) -> tuple:
    """Per tap combination, the (source, destination) index tuples of one add."""
    moves = []
    for combo in itertools.product(*sc.taps):
        src: list = [slice(None)] * sc.ndim
        dst = dst_of()
        for (k, lo, hi, first), o_axis, k_axis, stride in zip(combo, sc.o_axes, sc.k_axes,
                                                              sc.strides):
            src[k_axis], src[o_axis] = k, slice(lo, hi + 1)
            dst.place(o_axis, lo, hi, first, stride)
        moves.append((tuple(src), dst.index()))
    return tuple(moves)


class _Direct:
    """Destination of a direct scatter: a strided slice of the output axis."""

    def __init__(self, kept: List[int]) -> None:
        self.kept, self.dst = kept, [slice(None)] * len(kept)

    def place(self, o_axis: int, lo: int, hi: int, first: int, stride: int) -> None:
        self.dst[self.kept.index(o_axis)] = slice(first, first + (hi - lo) * stride + 1, stride)

    def index(self) -> tuple:
        return tuple(self.dst)


class _Phased:
    """Destination in the phase-major buffer: (phase, position) per o axis."""

    def __init__(self, axis_of: Dict[int, int], ndim: int) -> None:
        self.axis_of = axis_of
        self.dst: List[Any] = [slice(None)] * ndim

    def place(self, o_axis: int, lo: int, hi: int, first: int, stride: int) -> None:
        at = self.axis_of[o_axis]
        self.dst[at] = first % stride
        self.dst[at + 1] = slice(first // stride, first // stride + hi - lo + 1)

    def index(self) -> tuple:
        return tuple(self.dst)


def scatter_recipe(step: Step) -> Recipe:
    """col2im (see :class:`ScatterSpec`): adds into strided slices of a zero output; with a
    stride and at least two taps per output phase, into a phase-major buffer instead."""
    sc: ScatterSpec = step.info
    if sc.col2im:  # torch's fold
        return kernels.run_col2im, sc.col2im[:-1]
    kept = [a for a in range(sc.ndim) if a not in sc.k_axes]
    sizes = dict(zip(sc.o_axes, (int(s) for s in sc.sizes)))
    phases, taps = _numel(sc.strides), _numel(len(t) for t in sc.taps)
    if not (phases > 1 and taps >= 2 * phases):
        return kernels.run_scatter, (tuple((a, sizes.get(a)) for a in kept),
                                     _moves(sc, lambda: _Direct(kept)))
    where = {a: n for n, a in enumerate(kept)}
    axis_of = {o: where[o] + sum(1 for p in sc.o_axes if where[p] < where[o])
               for o in sc.o_axes}
    strides = dict(zip(sc.o_axes, sc.strides))
    Q = {o: -(-sizes[o] // strides[o]) for o in sc.o_axes}
    buffer: List[Tuple[int, Any]] = []
    merged: List[Tuple[int, Any]] = []
    perm: List[int] = []
    crop: List[slice] = []
    for a in kept:
        b = len(perm)
        perm += [b + 1, b] if a in Q else [b]
        buffer += [(a, strides[a]), (a, Q[a])] if a in Q else [(a, None)]
        merged.append((a, Q[a] * strides[a] if a in Q else None))
        crop.append(slice(0, sizes[a]) if a in Q else slice(None))
    moves = _moves(sc, lambda: _Phased(axis_of, len(kept) + len(sc.o_axes)))
    return kernels.run_phase_scatter, (tuple(buffer), moves, tuple(perm), tuple(merged),
                                       tuple(crop))


def broadcast_recipe(step: Step) -> Recipe:
    """The variable (first operand) permuted, scaled and expanded: a view, no copy."""
    b: BroadcastSpec = step.info
    identity = b.perm == tuple(range(len(b.perm)))
    return kernels.run_broadcast, (None if identity else b.perm, b.factor,
                                   tuple(int(v) for v in b.view),
                                   tuple(int(v) for v in b.shape))


def einsum_recipe(step: Step) -> Recipe:
    """A plain einsum step; one operand without repeated letters is summed and permuted
    directly (``run_arrange``: torch.einsum's Python entry costs more than the work on
    small tensors)."""
    lhs, out = step.equation.split("->")
    if "," in lhs or len(set(lhs)) != len(lhs):
        return kernels.run_einsum, step.equation
    dims = tuple(n for n, ch in enumerate(lhs) if ch not in out)
    rest = [ch for ch in lhs if ch in out]
    perm = tuple(rest.index(ch) for ch in out)
    return kernels.run_arrange, (dims, None if perm == tuple(range(len(perm))) else perm)


def _pattern(op: Operand) -> Recipe:
    p = op.tensor.pattern_params
    I, O, K = (int(s) for s in op.shape)
    return kernels.dense_pattern, (I, O, K, p.stride, p.pad_left, p.dilation)


def _reduced(op: Operand) -> Recipe:
    t, p = op.tensor, op.tensor.pattern_params
    I, K = (int(s) for s in op.shape)
    O = int(t.out_size) if t.out_size is not None else int(t.indices[1].size)
    return kernels.reduced_matrix, (I, O, K, p.stride, p.pad_left, p.dilation)


def _delta(op: Operand) -> Recipe:
    return kernels.delta_tensor, (tuple(int(s) for s in op.shape),)


def _fill(op: Operand) -> Recipe:
    return kernels.fill_tensor, (tuple(int(s) for s in op.shape), float(op.tensor.fill_value))


#: Lowering -> ``(builder, arguments)`` of a runtime operand; the builder also takes
#: ``device, dtype`` (``input`` is the user's tensor; consumed operands have none).
MATERIALIZERS: Dict[LoweringKind, Callable[[Operand], Recipe]] = {
    LoweringKind.DENSE_PATTERN: _pattern, LoweringKind.REDUCED_MATRIX: _reduced,
    LoweringKind.DENSE_DELTA: _delta, LoweringKind.FILL: _fill}


#: Step kind -> ``(kernel, recipe)`` of a step (every kind the engine emits has one).
STEPS: Dict[StepKind, Callable[[Step], Recipe]] = {
    StepKind.EINSUM: einsum_recipe, StepKind.NATIVE: native_recipe,
    StepKind.VIEW: view_recipe, StepKind.GRAM: gram_recipe, StepKind.SQUARE: square_recipe,
    StepKind.WINDOW_SUM: window_sum_recipe, StepKind.BROADCAST: broadcast_recipe,
    StepKind.SCATTER: scatter_recipe, StepKind.GATHER: gather_recipe,
    StepKind.PATCH_GRAM: patch_gram_recipe}


def prepare(step: Step) -> Callable[[List[Any]], Any]:
    """The runner of ``step``: its kind's kernel bound to the step's recipe (``STEPS``)."""
    kernel, args = STEPS[step.kind](step)
    return functools.partial(kernel, args)


#: Step kind -> preparer returning the step's runner (one for every kind in ``STEPS``).
PREPARERS: Dict[StepKind, Callable[[Step], Callable]] = {kind: prepare for kind in STEPS}
