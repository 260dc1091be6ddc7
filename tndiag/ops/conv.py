"""Builders for convolution and transposed convolution diagrams."""

from __future__ import annotations

from dataclasses import replace
from typing import Sequence

from tndiag.errors import InvalidArgumentError
from tndiag.ir import Diagram, Graph, Index, Role, Sum, constant, variable
from tndiag.ops.common import (
    channel_axis,
    check_groups,
    group_size,
    infer_ndim,
    shape_or_symbols,
    spatial_patterns,
)
from tndiag.ops.hyper import (
    PaddingArg,
    check_fits,
    check_flag,
    check_output_padding,
    conv_spec,
    transposed_input_size,
)

__all__ = ["conv", "conv_transpose"]


def _spatial_symbols(prefix: str, ndim: int):
    return [f"{prefix}{d + 1}" for d in range(ndim)]


def _with_bias(graph: Graph, bias: bool, channel) -> Diagram:
    """``graph`` plus a broadcast bias term ``B[(g co)] · 1[other output legs]``."""
    if not check_flag(bias, "bias"):
        return graph
    others = [ix for ix in graph.output_indices if ix not in channel]
    term = Graph.of([variable("B", [channel], Role.PARAMETER), constant("one", 1, others)],
                    graph.output)
    return Sum((graph, term))


def conv(input_shape: Sequence | None = None, weight_shape: Sequence | None = None, *,
         ndim: int | None = None, stride=1, padding: PaddingArg = 0, dilation=1,
         groups: int = 1, bias: bool = False) -> Diagram:
    """Diagram of an N-d convolution ``Y = conv(X, W) (+ B)`` with torch's semantics.

    Shapes default to symbols (``N, C_in, I1, ...``, ``C_out, K1, ...``); give
    ``input_shape = (N, C_in, *I)`` and/or ``weight_shape = (C_out, C_in/groups, *K)`` to fix
    them. Legs: X ``[n, (g ci), i..]``, W ``[(g co), ci, k..]``, Y ``[n, (g co), o..]``; the
    ``g`` leg exists only when ``groups > 1``. With ``bias=True`` the result is a
    :class:`~tndiag.ir.Sum` with a broadcast bias term.

    >>> g = conv((8, 4, 32, 32), (6, 2, 3, 3), stride=2, padding=1, groups=2)
    >>> g.output_shape
    (8, 6, 16, 16)
    """
    groups = check_groups(groups)
    ndim = infer_ndim(ndim, (input_shape, 2, "input"), (weight_shape, 2, "weight"))
    N, C_in, *I = shape_or_symbols(input_shape, ["N", "C_in", *_spatial_symbols("I", ndim)],
                                   "input")
    Cg = group_size(C_in, groups, "input channels")
    C_out, C_w, *K = shape_or_symbols(
        weight_shape, ["C_out", Cg, *_spatial_symbols("K", ndim)], "weight")
    if isinstance(C_w, int) and isinstance(Cg, int) and C_w != Cg:
        raise InvalidArgumentError(
            f"weight of shape {tuple(weight_shape or ())} expects {C_w * groups} input channels "
            f"(weight.shape[1] * groups), but the input has {C_in} channels")
    Co = group_size(C_out, groups, "output channels (weight.shape[0])")
    spec = conv_spec(ndim, K, stride, padding, dilation)
    O = check_fits(spec, I)
    pats, ins, outs, ks = spatial_patterns(spec, I, O)
    n = Index("n", N)
    g = Index("g", groups) if groups > 1 else None
    ci, co = Index("ci", C_w), Index("co", Co)
    X = variable("X", [n, channel_axis(g, ci), *ins], Role.INPUT)
    W = variable("W", [channel_axis(g, co), ci, *ks], Role.PARAMETER)
    graph = Graph.of([X, *pats, W], [n, channel_axis(g, co), *outs])
    return _with_bias(graph, bias, channel_axis(g, co))


def conv_transpose(input_shape: Sequence | None = None, weight_shape: Sequence | None = None, *,
                   ndim: int | None = None, stride=1, padding: PaddingArg = 0,
                   output_padding=0, groups: int = 1, dilation=1, bias: bool = False) -> Diagram:
    """Diagram of an N-d transposed convolution (the adjoint of :func:`conv`).

    ``input_shape = (N, C_in, *I)``, ``weight_shape = (C_in, C_out/groups, *K)`` as in torch.
    The patterns are those of the convolution mapping the result back to the input, so the
    input's spatial legs are Π's ``o`` legs and the result's are its ``i`` legs.

    >>> conv_transpose((2, 4, 5), (4, 3, 3), stride=2, output_padding=1).output_shape
    (2, 3, 12)
    """
    groups = check_groups(groups)
    ndim = infer_ndim(ndim, (input_shape, 2, "input"), (weight_shape, 2, "weight"))
    N, C_in, *Oin = shape_or_symbols(input_shape, ["N", "C_in", *_spatial_symbols("I", ndim)],
                                     "input")
    C_w, Cog, *K = shape_or_symbols(
        weight_shape, [C_in, "C_out", *_spatial_symbols("K", ndim)], "weight")
    if isinstance(C_w, int) and isinstance(C_in, int) and C_w != C_in:
        raise InvalidArgumentError(
            f"weight of shape {tuple(weight_shape or ())} expects {C_w} input channels "
            f"(weight.shape[0]), but the input has {C_in} channels")
    Cig = group_size(C_in, groups, "input channels")
    if isinstance(padding, str):
        raise InvalidArgumentError(
            f"padding for a transposed convolution must be an int or a tuple, got {padding!r}")
    spec = conv_spec(ndim, K, stride, padding, dilation)
    op = check_output_padding(output_padding, spec)
    I = transposed_input_size(spec, Oin, op)
    # output_padding extends the result on the right: as a pattern, that is right padding
    # reduced by output_padding (possibly negative), which keeps O = Oin exactly.
    pads = tuple((pl, pr - p) for (pl, pr), p in zip(spec.padding, op, strict=True))
    spec = replace(spec, padding=pads)
    pats, ins, outs, ks = spatial_patterns(spec, I, Oin)
    n = Index("n", N)
    g = Index("g", groups) if groups > 1 else None
    ci, co = Index("ci", Cig), Index("co", Cog)
    X = variable("X", [n, channel_axis(g, ci), *outs], Role.INPUT)
    W = variable("W", [channel_axis(g, ci), co, *ks], Role.PARAMETER)
    graph = Graph.of([X, *pats, W], [n, channel_axis(g, co), *ins])
    return _with_bias(graph, bias, channel_axis(g, co))
