"""Builders for unfold (im2col), fold (col2im) and kernel unfold (Toeplitz matrix)."""

from __future__ import annotations

from typing import Sequence

from tndiag.errors import InvalidArgumentError
from tndiag.ir import Graph, Index, Role, delta, variable
from tndiag.ir.nodes import _prod
from tndiag.ir.sizes import as_size
from tndiag.ops.common import (
    as_shape,
    check_groups,
    check_size,
    group_size,
    infer_ndim,
    shape_or_symbols,
    spatial_patterns,
)
from tndiag.ops.hyper import PaddingArg, check_fits, conv_spec, is_int

__all__ = ["unfold", "fold", "unfold_kernel"]


def _single(value: object) -> bool:
    return isinstance(value, (int, str)) or hasattr(value, "free_symbols") or is_int(value)


def _kernel(kernel_size, ndim: int | None):
    if _single(kernel_size):
        if ndim is None:
            raise InvalidArgumentError(
                "kernel_size is a single value: give ndim or a shape to fix the dimensions")
        return (check_size(kernel_size, "kernel_size"),) * ndim
    return tuple(check_size(k, "kernel_size") for k in as_shape(kernel_size, "kernel_size"))


def unfold(input_shape: Sequence | None = None, kernel_size=3, dilation=1,
           padding: PaddingArg = 0, stride=1, *, ndim: int | None = None) -> Graph:
    """Diagram of N-d unfold (im2col) in torch's layout ``[N, C·∏K, ∏O]``.

    >>> unfold((2, 3, 8, 8), 3, padding=1).output_shape
    (2, 27, 64)
    """
    if input_shape is None and ndim is None and not _single(kernel_size):
        ndim = len(as_shape(kernel_size, "kernel_size"))
    ndim = infer_ndim(ndim, (input_shape, 2, "input"))
    K = _kernel(kernel_size, ndim)
    N, C, *I = shape_or_symbols(input_shape, ["N", "C", *[f"I{d + 1}" for d in range(ndim)]],
                                "input")
    spec = conv_spec(ndim, K, stride, padding, dilation)
    O = check_fits(spec, I)
    pats, ins, outs, ks = spatial_patterns(spec, I, O)
    n, c = Index("n", N), Index("c", C)
    X = variable("X", [n, c, *ins], Role.INPUT)
    return Graph.of([X, *pats], [n, (c, *ks), tuple(outs)])


def fold(input_shape: Sequence | None = None, output_size: Sequence | None = None,
         kernel_size=3, dilation=1, padding: PaddingArg = 0, stride=1) -> Graph:
    """Diagram of N-d fold (col2im), the adjoint of :func:`unfold`.

    ``input_shape = (N, C·∏K, L)``; ``output_size`` gives the spatial sizes ``I``.

    >>> fold((2, 27, 64), (8, 8), 3, padding=1).output_shape
    (2, 3, 8, 8)
    """
    if output_size is None:
        raise InvalidArgumentError("fold needs output_size (the spatial sizes of the result)")
    sizes = (output_size,) if _single(output_size) else as_shape(output_size, "output_size")
    I = tuple(check_size(s, "output_size") for s in sizes)
    ndim = len(I)
    K = _kernel(kernel_size, ndim)
    spec = conv_spec(ndim, K, stride, padding, dilation)
    O = check_fits(spec, I)
    N, CK, L = shape_or_symbols(input_shape, ["N", as_size("C") * _prod(K), _prod(O)], "input")
    prodK, prodO = _prod(K), _prod(O)
    if isinstance(CK, int) and isinstance(prodK, int) and CK % prodK:
        raise InvalidArgumentError(
            f"expected input.shape[1]={CK} to be divisible by the product of kernel_size "
            f"{tuple(K)} = {prodK}")
    if isinstance(L, int) and isinstance(prodO, int) and L != prodO:
        raise InvalidArgumentError(
            f"expected input.shape[2]={L} to equal the number of sliding blocks {prodO} "
            f"(output_size={tuple(I)}, kernel_size={tuple(K)}, dilation={spec.dilation}, "
            f"padding={spec.padding}, stride={spec.stride})")
    C = CK // prodK if isinstance(CK, int) and isinstance(prodK, int) else as_size(CK / prodK)
    pats, ins, outs, ks = spatial_patterns(spec, I, O)
    n, c = Index("n", N), Index("c", C)
    X = variable("X", [n, (c, *ks), tuple(outs)], Role.INPUT)
    return Graph.of([X, *pats], [n, c, *ins])


def unfold_kernel(weight_shape: Sequence | None = None, input_size: Sequence | None = None,
                  stride=1, padding: PaddingArg = 0, dilation=1, groups: int = 1, *,
                  ndim: int | None = None) -> Graph:
    """Diagram of the Toeplitz matrix ``T`` of a convolution, shape ``[C_out·∏O, C_in·∏I]``.

    ``conv(x, W).flatten(1) == x.flatten(1) @ T.T``; block-diagonal over groups (a δ joins
    the two group legs).

    >>> unfold_kernel((4, 1, 3), (10,), groups=2).output_shape
    (32, 20)
    """
    groups = check_groups(groups)
    ndim = infer_ndim(ndim, (weight_shape, 2, "weight"), (input_size, 0, "input_size"))
    C_out, Cg, *K = shape_or_symbols(
        weight_shape, ["C_out", "C_in", *[f"K{d + 1}" for d in range(ndim)]], "weight")
    I = shape_or_symbols(input_size, [f"I{d + 1}" for d in range(ndim)], "input_size")
    Co = group_size(C_out, groups, "output channels (weight.shape[0])")
    spec = conv_spec(ndim, K, stride, padding, dilation)
    O = check_fits(spec, I)
    pats, ins, outs, ks = spatial_patterns(spec, I, O)
    ci, co = Index("ci", Cg), Index("co", Co)
    if groups > 1:
        g, h = Index("g", groups), Index("h", groups)
        W = variable("W", [(g, co), ci, *ks], Role.PARAMETER)
        return Graph.of([*pats, W, delta("D", [g, h])],
                        [(g, co, *outs), (h, ci, *ins)])
    W = variable("W", [co, ci, *ks], Role.PARAMETER)
    return Graph.of([*pats, W], [(co, *outs), (ci, *ins)])
