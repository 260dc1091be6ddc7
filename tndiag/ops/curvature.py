"""Curvature diagrams (docs/method.md §2): KFC, KFAC-reduce, GGN diagonal / Gram / block, and the
grad-output KFAC factors, composed from the builders and the passes.

Every quantity here is "two copies of a smaller diagram, joined": KFC joins two (transpose-)
unfolded inputs over ``n`` and the spatial legs, KFAC-reduce over ``n`` only (then the
``sum-out`` pass turns each Π into ``Σ_o Π``), and the GGN quantities join two copies of the
per-sample weight VJP (the ``vjp`` pass with the batch leg kept open, and ``expand-batch``
adding the leg ``z`` of the loss-Hessian factor ``S``). Groups come from the
``expand-groups`` pass. Shapes must be concrete (the scales are numbers).

>>> kfc((2, 4, 6, 6), (3, 3), groups=2).output_shape
(2, 18, 18)
"""

from __future__ import annotations

import math
from typing import Sequence, Tuple, cast

from tndiag.errors import InvalidArgumentError, ShapeError
from tndiag.ir import Diagram, Graph, Index, Role, constant, variable
from tndiag.ir.nodes import _prod
from tndiag.ops.common import as_shape, check_groups, check_size, group_size, infer_ndim
from tndiag.ops.conv import conv, conv_transpose
from tndiag.ops.hyper import check_flag, ntuple
from tndiag.ops.unfold import unfold
from tndiag.passes.base import PASSES
from tndiag.passes.differentiate import vjp
from tndiag.passes.expand import expand_batch, expand_groups

__all__ = ["kfc", "kfac_reduce", "weight_ggn_diag", "weight_ggn_gram", "weight_ggn",
           "grad_output_kfac", "patch_mean"]



def _graph(diagram: Diagram) -> Graph:
    """A builder or pass result known to have one term (no bias): the Graph itself."""
    return cast(Graph, diagram)

def pair(graph: Graph, shared: Sequence[str], suffix: str = "_b") -> Graph:
    """A second copy of ``graph``: indices not in ``shared`` and non-variable tensors renamed.

    >>> from tndiag.ir import Graph, Index, variable
    >>> g = Graph.of([variable("V", [Index("n", 2), Index("c", 3)])], [Index("c", 3)])
    >>> pair(g, ["n"]).tensors[0]
    V:variable input[n:2, c_b:3]
    """
    mapping = {name: name + suffix for name in graph.indices() if name not in shared}
    copy = graph.rename_indices(mapping)
    return copy.replace(tensors=[t if t.kind.value == "variable" else
                                 t.replace(name=t.name + suffix) for t in copy.tensors])


def _concrete(shape, what: str, rank: int) -> Tuple[int, ...]:
    """A concrete shape of at least ``rank`` positive ints (the leading ones and >= 1 spatial)."""
    if shape is None:
        raise InvalidArgumentError(f"{what} must be a concrete shape of positive ints, got None")
    sizes = tuple(check_size(s, f"{what} sizes") for s in as_shape(shape, what))
    if not all(isinstance(s, int) for s in sizes):
        raise InvalidArgumentError(
            f"{what} must be a concrete shape of positive ints, got {shape!r}")
    if len(sizes) < rank:
        raise InvalidArgumentError(f"{what} must have at least {rank} dimensions (the leading "
                                   f"ones and one spatial dimension or more), got {shape!r}")
    infer_ndim(None, (sizes, rank - 1, what))
    return sizes  # type: ignore[return-value]


def _patches(input_shape, kernel_size, stride, padding, dilation, groups: int,
             transposed: bool, output_padding) -> Tuple[Graph, Index, Tuple[Index, ...]]:
    """One group's (transpose-)unfolded input ``[n, (c k..), (spatial..)]``.

    Returns the graph, the channel index and the spatial legs that the copies share in KFC.
    """
    N, C, *I = _concrete(input_shape, "input_shape", 3)
    ndim = len(I)
    K = ntuple(kernel_size, ndim, "kernel_size", 1)
    Cg = group_size(C, groups, "input channels")
    if not transposed:
        g = unfold((N, Cg, *I), K, dilation, padding, stride)
        return g, g.index("c"), g.output[2]
    if isinstance(padding, str):
        raise InvalidArgumentError(
            f"padding for a transposed convolution must be an int or a tuple, got {padding!r}")
    full = _graph(conv_transpose((N, Cg, *I), (Cg, 1, *K), stride=stride, padding=padding,
                                 output_padding=output_padding, dilation=dilation))
    W = full.tensor("W")
    ks = W.indices[2:]
    rest = [t for t in full.tensors if t.name != "W"]
    ci = full.index("ci")
    spatial = tuple(ix for axis in full.output[2:] for ix in axis)
    return Graph.of(rest, [full.output[0], (ci, *ks), spatial]), ci, spatial


def _is_zero(value: object) -> bool:
    """Whether ``output_padding`` is 0 or all zeros (valid values are checked later)."""
    values = value if isinstance(value, (tuple, list)) else (value,)
    return all(isinstance(v, int) and not isinstance(v, bool) and v == 0 for v in values)


def _kronecker_factor(input_shape, kernel_size, stride, padding, dilation, groups,
                      transposed, output_padding, reduce: bool) -> Graph:
    groups = check_groups(groups)
    if not check_flag(transposed, "transposed") and not _is_zero(output_padding):
        raise InvalidArgumentError(f"output_padding={output_padding!r} applies only with "
                                   f"transposed=True")
    one, c, spatial = _patches(input_shape, kernel_size, stride, padding, dilation, groups,
                               transposed, output_padding)
    n = one.index("n")
    shared = [n.name] + ([] if reduce else [ix.name for ix in spatial])
    other = pair(one, shared)
    rows, cols = one.output[1], other.output[1]
    N, P = int(n.size), int(_prod(ix.size for ix in spatial))
    scale = 1.0 / (N * P * P) if reduce else 1.0 / N
    g = Graph.of([*one.tensors, *other.tensors, constant("scale", scale)], [rows, cols])
    g = _graph(expand_groups(g, groups, (c.name, c.name + "_b"), "g"))
    return _graph(PASSES["sum-out"](g)) if reduce else g


def kfc(input_shape: Sequence, kernel_size, stride=1, padding=0, dilation=1, groups: int = 1,
        transposed: bool = False, output_padding=0) -> Graph:
    """KFC (KFAC-expand) input factor ``[G, (C/G)·∏K, (C/G)·∏K]``, scaled by ``1/N``.

    Rows are ordered like ``unfold``'s rows (channel major, then kernel taps). With
    ``transposed=True``, ``input_shape`` is the input of a transposed convolution and the
    factor is built from its transpose-unfolded input.

    >>> kfc((2, 3, 5), 2, transposed=True, stride=2, output_padding=1).output_shape
    (1, 6, 6)
    """
    return _kronecker_factor(input_shape, kernel_size, stride, padding, dilation, groups,
                             transposed, output_padding, reduce=False)


def kfac_reduce(input_shape: Sequence, kernel_size, stride=1, padding=0, dilation=1,
                groups: int = 1, transposed: bool = False, output_padding=0) -> Graph:
    """KFAC-reduce input factor, like :func:`kfc` but each copy sums its own spatial legs.

    Scaled by ``1/(N·(∏O)²)`` (``1/(N·(∏I)²)`` when ``transposed``, ``I`` being the
    transposed convolution's output size); the ``sum-out`` pass replaces each Π by
    ``Σ_o Π``, so no unfolded input is ever formed.

    >>> sorted(t.kind.value for t in kfac_reduce((2, 3, 6), 3).tensors)
    ['constant', 'reduced', 'reduced', 'variable', 'variable']
    """
    return _kronecker_factor(input_shape, kernel_size, stride, padding, dilation, groups,
                             transposed, output_padding, reduce=True)


def per_sample_weight_vjp(input_shape: Sequence, factor_shape: Sequence, kernel_size,
                          stride=1, padding=0, dilation=1, groups: int = 1,
                          transposed: bool = False, output_padding=0) -> Graph:
    """``[Z, N, *W.shape]``: the weight VJP of each sample ``n`` with each column ``S[z, n]``.

    With ``transposed=True`` the layer is a transposed convolution (weight
    ``[C_in, C_out/G, *K]``) and ``output_padding`` applies.

    >>> per_sample_weight_vjp((2, 3, 6), (4, 2, 5, 4), 3).output_shape
    (4, 2, 5, 3, 3)
    >>> per_sample_weight_vjp((2, 4, 3), (1, 2, 6, 7), 3, stride=2, groups=2,
    ...                       transposed=True).output_shape
    (1, 2, 4, 3, 3)
    """
    N, C_in, *I = _concrete(input_shape, "input_shape", 3)
    Z, N_s, C_out, *O = _concrete(factor_shape, "grad_output_factor shape", 4)
    K = ntuple(kernel_size, len(I), "kernel_size", 1)
    groups = check_groups(groups)
    if transposed:
        fwd = conv_transpose((N, C_in, *I), (C_in, group_size(C_out, groups, "output channels"),
                                             *K), stride=stride, padding=padding,
                             output_padding=output_padding, dilation=dilation, groups=groups)
    else:
        fwd = conv((N, C_in, *I), (C_out, group_size(C_in, groups, "input channels"), *K),
                   stride=stride, padding=padding, dilation=dilation, groups=groups)
    fwd = _graph(fwd)
    want = (N, C_out, *fwd.output_shape[2:])
    if (N_s, C_out, *O) != want:
        raise ShapeError(f"grad_output_factor must have shape [Z, {', '.join(map(str, want))}] "
                         f"for this convolution, got {list(factor_shape)}")
    grads = _graph(vjp(fwd, "W", "S"))
    grads = grads.replace(output=((fwd.index("n"),), *grads.output))
    return _graph(expand_batch(grads, Z, "S", "z"))


def _ggn(input_shape, factor_shape, kernel_size, stride, padding, dilation, groups, kind: str,
         transposed: bool = False, output_padding=0) -> Graph:
    one = per_sample_weight_vjp(input_shape, factor_shape, kernel_size, stride, padding,
                                dilation, groups, transposed, output_padding)
    z_axis, n_axis, *w_axes = one.output
    w_names = [ix.name for axis in w_axes for ix in axis]
    z, n = z_axis[0], n_axis[0]
    shared = {"diag": [z.name, n.name, *w_names], "gram": w_names,
              "full": [z.name, n.name]}[kind]
    other = pair(one, shared)
    if kind == "diag":
        output = w_axes
    elif kind == "gram":
        output = [(z, n), (*other.output[0], *other.output[1])]
    else:
        output = [*w_axes, *other.output[2:]]
    return Graph.of([*one.tensors, *other.tensors], output)


def weight_ggn_diag(input_shape: Sequence, factor_shape: Sequence, kernel_size, stride=1,
                    padding=0, dilation=1, groups: int = 1, transposed: bool = False,
                    output_padding=0) -> Graph:
    """GGN diagonal w.r.t. the weight, shaped like it, from ``S`` of shape ``[Z, N, C_out, *O]``.

    ``Σ_{z,n} (J_nᵀ S[z,n])²`` where ``Σ_z S Sᵀ`` is the per-sample loss Hessian. With
    ``transposed=True`` the layer is a transposed convolution (see
    :func:`per_sample_weight_vjp`).

    >>> weight_ggn_diag((2, 3, 6), (4, 2, 5, 4), 3).output_shape
    (5, 3, 3)
    """
    return _ggn(input_shape, factor_shape, kernel_size, stride, padding, dilation, groups,
                "diag", transposed, output_padding)


def weight_ggn_gram(input_shape: Sequence, factor_shape: Sequence, kernel_size, stride=1,
                    padding=0, dilation=1, groups: int = 1) -> Graph:
    """GGN Gram matrix ``[Z·N, Z·N]`` (rows ``(z n)``): the weight legs joined across copies.

    >>> weight_ggn_gram((2, 3, 6), (4, 2, 5, 4), 3).output_shape
    (8, 8)
    """
    return _ggn(input_shape, factor_shape, kernel_size, stride, padding, dilation, groups,
                "gram")


def weight_ggn(input_shape: Sequence, factor_shape: Sequence, kernel_size, stride=1,
               padding=0, dilation=1, groups: int = 1) -> Graph:
    """Full GGN block of the weight, ``[*W.shape, *W.shape]`` (weight legs kept separate).

    >>> weight_ggn((2, 3, 6), (4, 2, 5, 4), 3).output_shape
    (5, 3, 3, 5, 3, 3)
    """
    return _ggn(input_shape, factor_shape, kernel_size, stride, padding, dilation, groups,
                "full")


def grad_output_kfac(grad_output_shape: Sequence, reduce: bool = False, scale: float = 1.0,
                     groups: int = 1) -> Graph:
    """Grad-output KFAC factor from ``V`` of shape ``[N, C, *O]`` (no Π involved).

    expand: ``Σ_{n,o} V[n,c,o] V[n,c',o]``; reduce: ``Σ_n (Σ_o V[n,c,o]) (Σ_o V[n,c',o])``;
    both times ``scale`` (no normalisation by default). The result is ``[C, C]``, or
    ``[G, C/G, C/G]`` (one block per group) when ``groups > 1``.

    >>> grad_output_kfac((2, 3, 4, 4), reduce=True).output_shape
    (3, 3)
    >>> grad_output_kfac((2, 6, 5), groups=3).output_shape
    (3, 2, 2)
    """
    N, C, *O = _concrete(grad_output_shape, "grad_output_shape", 3)
    ndim = len(O)
    reduce = check_flag(reduce, "reduce")
    if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not math.isfinite(scale):
        raise InvalidArgumentError(f"scale must be a finite real number, got {scale!r}")
    groups = check_groups(groups)
    n, c = Index("n", N), Index("c", group_size(C, groups, "channels"))
    outs = [Index(f"o{d + 1}", O[d]) for d in range(ndim)]
    one = Graph.of([variable("V", [n, c, *outs], Role.VECTOR)], [c])
    other = pair(one, [n.name] + ([] if reduce else [o.name for o in outs]))
    extra = [constant("scale", scale)] if scale != 1 else []
    g = Graph.of([*one.tensors, *other.tensors, *extra], [c, other.output[0][0]])
    return _graph(expand_groups(g, groups, (c.name, c.name + "_b"), "g")) if groups > 1 else g


def patch_mean(input_shape: Sequence, kernel_size, stride=1, padding=0, dilation=1,
               groups: int = 1, transposed: bool = False, output_padding=0) -> Graph:
    """Mean (transpose-)unfolded input column ``[G, (C/G)·∏K]``: ``1/(N·P) Σ_{n,p} U[n, :, p]``.

    ``P`` is the number of columns (output positions). Rows are ordered as in :func:`kfc`;
    this is the off-diagonal block that a bias merged into the weight adds to either KFAC
    input factor. Each Π is summed over its output leg (``sum-out``).

    >>> patch_mean((2, 4, 6), 3, groups=2).output_shape
    (2, 6)
    """
    groups = check_groups(groups)
    one, c, spatial = _patches(input_shape, kernel_size, stride, padding, dilation, groups,
                               transposed, output_padding)
    N, P = int(one.index("n").size), int(_prod(ix.size for ix in spatial))
    g = Graph.of([*one.tensors, constant("scale", 1.0 / (N * P))], [one.output[1]])
    return _graph(PASSES["sum-out"](expand_groups(g, groups, (c.name,), "g")))
