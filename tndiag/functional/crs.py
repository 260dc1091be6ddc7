"""Bernoulli column-row sampling (CRS) of a convolution's weight gradient: the baseline.

Adelman et al. ("Faster neural network training with approximate tensor operations",
NeurIPS 2021) approximate a matrix product ``A B = Σ_t A[:, t] B[t, :]`` by keeping each
column-row pair ``t`` independently with probability ``p_t`` and rescaling it by ``1/p_t``
(unbiased). For a convolution the weight gradient is such a product once the input is
unfolded: per group ``g``, ``dW_g = G_gᵀ U_g`` whose inner dimension ``t = (n, o)`` runs
over the batch and every output position, with ``G_t = grad_output[n, g, :, o]`` (``C_out /
groups`` entries) and ``U_t`` the unfolded input column (``C_in / groups · ∏K`` entries).

The probabilities are proportional to the pair norms, capped at one::

    p_t = min(1, c · ‖G_t‖ ‖U_t‖ / Σ_s ‖G_s‖ ‖U_s‖),   c chosen so that Σ_t p_t = keep · T

(``T = N · ∏O`` pairs per group; every group gets its own probabilities). The cap is
resolved exactly, by water-filling (:func:`crs_probabilities`): the pairs with the largest
norms are set to one, one at a time, until the rescaled rest stays below one. Pairs with a
zero norm contribute nothing and get ``p_t = 0``; when fewer than ``keep · T`` pairs have a
non-zero norm they are all kept (the estimate is then exact).

Because ``p_t`` needs ``‖G_t‖``, the probabilities are only known in the backward pass:
:func:`crs_conv` must save the whole input in the forward pass, so CRS saves computation in
the weight gradient but no activation memory.
"""

from __future__ import annotations

import copy
import functools
import math
from typing import Any, Optional, Sequence, Tuple, cast

import torch

from tndiag import ops
from tndiag.errors import InvalidArgumentError, ShapeError
from tndiag.functional._common import check_tensors, hashable, weight_ndim
from tndiag.functional.conv import conv
from tndiag.functional.curvature import conv_input_vjp
from tndiag.functional.unfold import unfold
from tndiag.passes.subsample import check_keep

__all__ = ["crs_probabilities", "crs_weight_vjp", "CRSSampler", "crs_estimate", "crs_conv"]


def crs_probabilities(weights: torch.Tensor, keep: float) -> torch.Tensor:
    """Keep probabilities ``min(1, c · w_t)`` with ``Σ_t p_t = keep · T`` along the last axis.

    ``c`` is found exactly: with the weights sorted in decreasing order, the smallest
    number ``m`` of capped pairs for which ``c_m = (k - m) / Σ_{j >= m} w_(j)`` keeps the
    largest uncapped pair at or below one (``c_m · w_(m) <= 1``) is the solution
    (``k = keep · T``). Zero weights get probability zero.

    Args:
        weights: ``(..., T)`` non-negative pair weights ``‖G_t‖ ‖U_t‖``.
        keep: expected fraction of pairs kept, in (0, 1].

    Returns:
        Probabilities of ``weights``' shape and dtype.

    >>> p = crs_probabilities(torch.tensor([8.0, 1.0, 1.0, 0.0]), 0.5)
    >>> p.tolist(), p.sum().item()
    ([1.0, 0.5, 0.5, 0.0], 2.0)
    """
    keep = check_keep(keep)
    if not isinstance(weights, torch.Tensor):
        raise TypeError(f"weights must be a torch.Tensor, got {type(weights).__name__}")
    if weights.dim() == 0 or weights.shape[-1] == 0 or bool((weights < 0).any()):
        raise InvalidArgumentError("weights must be a non-empty tensor of non-negative "
                                   f"numbers, got shape {list(weights.shape)}")
    k = keep * weights.shape[-1]
    ws = weights.sort(dim=-1, descending=True).values
    rest = ws.flip(-1).cumsum(-1).flip(-1)  # rest[m] = Σ_{j >= m} w_(j)
    m = torch.arange(ws.shape[-1], device=ws.device, dtype=ws.dtype)
    valid = (k - m) * ws <= rest
    first = valid.to(torch.uint8).argmax(dim=-1, keepdim=True)  # smallest valid m
    total = rest.gather(-1, first)
    c = (k - first.to(ws.dtype)) / total
    c = torch.where(total > 0, c, torch.full_like(c, math.inf))
    p = torch.where(weights > 0, (c * weights).clamp(max=1.0), torch.zeros_like(weights))
    return p.clamp(min=0.0)


@functools.lru_cache(maxsize=256)
def _output_shape(input_shape, weight_shape, stride, padding, dilation, groups):
    return ops.conv(input_shape, weight_shape, stride=stride, padding=padding,
                    dilation=dilation, groups=groups).output_shape


def _pairs(input: torch.Tensor, w_shape: Tuple[int, ...], grad_output: torch.Tensor,
           hyper: tuple) -> Tuple[torch.Tensor, torch.Tensor]:
    """The product's factors per group: ``G`` as ``(groups, T, C_out/g)``, ``U`` as
    ``(groups, T, C_in/g · ∏K)``, with ``T = N · ∏O`` (pairs ordered by ``n``, then ``o``)."""
    stride, padding, dilation, groups = hyper
    cols = unfold(input, tuple(w_shape[2:]), dilation, padding, stride)  # (N, C·∏K, L)
    n, _, length = cols.shape
    u = cols.reshape(n, groups, -1, length).permute(1, 0, 3, 2).reshape(groups, n * length, -1)
    g = grad_output.reshape(n, groups, -1, length).permute(1, 0, 3, 2)
    return g.reshape(groups, n * length, -1), u


def _check(input: Any, w_shape: Any, grad_output: Any, hyper: tuple) -> tuple:
    check_tensors(input=input, grad_output=grad_output)
    if not isinstance(w_shape, (tuple, list, torch.Size)):
        raise InvalidArgumentError(f"weight_size must be a sequence of ints, got {w_shape!r}")
    w_shape = cast(Tuple[int, ...], hashable(tuple(w_shape), "weight_size"))
    ndim = weight_ndim(w_shape)
    if input.dim() != ndim + 2:
        raise ShapeError(f"crs_weight_vjp: input must have shape (N, C_in, *I) with {ndim} "
                         f"spatial dimensions, got {list(input.shape)}")
    if not input.dtype.is_floating_point:
        raise InvalidArgumentError(f"crs_weight_vjp: input must be floating-point (the "
                                   f"estimate rescales by 1/p), got {input.dtype}")
    args = tuple(hashable(v, name) for v, name in
                 zip(hyper, ("stride", "padding", "dilation", "groups"), strict=True))
    want = _output_shape(tuple(input.shape), w_shape, *args)
    if tuple(grad_output.shape) != tuple(want):
        raise ShapeError(f"grad_output has shape {list(grad_output.shape)}, expected "
                         f"{list(want)}")
    return w_shape, args


def crs_weight_vjp(input: torch.Tensor, weight_size: Sequence[int], grad_output: torch.Tensor,
                   stride=1, padding=0, dilation=1, groups: int = 1, keep: float = 1.0,
                   generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """Unbiased CRS estimate of a convolution's weight gradient (any number of dims).

    The unfolded product ``dW_g = G_gᵀ U_g`` is sampled as the module docstring describes:
    pair ``t`` is kept with probability ``p_t`` (:func:`crs_probabilities` of the pair
    norms) and rescaled by ``1/p_t``; only the kept pairs are multiplied.

    Args:
        input: ``(N, C_in, *I)``.
        weight_size: ``(C_out, C_in / groups, *K)``.
        grad_output: ``(N, C_out, *O)``.
        stride, padding, dilation, groups: as in :func:`tndiag.functional.conv`.
        keep: expected fraction of the ``N · ∏O`` column-row pairs kept, in (0, 1].
        generator: random source of the draw (``None``: torch's default generator).

    Returns:
        ``(C_out, C_in / groups, *K)``; exact (up to rounding) when ``keep=1``.

    Raises:
        InvalidArgumentError: ``keep`` outside (0, 1], a bad hyper-parameter or dtype.
        ShapeError: ``input`` or ``grad_output`` has the wrong shape.

    >>> x, v = torch.randn(2, 3, 7, dtype=torch.float64), torch.randn(2, 4, 5, dtype=torch.float64)
    >>> exact = torch.nn.grad.conv1d_weight(x, (4, 3, 3), v)
    >>> torch.allclose(crs_weight_vjp(x, (4, 3, 3), v), exact)
    True
    >>> g = torch.Generator().manual_seed(0)
    >>> torch.allclose(crs_weight_vjp(x, (4, 3, 3), v, keep=0.3, generator=g), exact)
    False
    """
    sampler = CRSSampler(input, weight_size, grad_output, stride, padding, dilation, groups,
                         keep)
    return sampler.draw(generator)


class CRSSampler:
    """The unfolded product and its CRS probabilities, prepared once for many draws.

    ``CRSSampler(...).draw(generator)`` is one :func:`crs_weight_vjp` draw (same arguments,
    same distribution); the factors ``G``, ``U`` and the probabilities ``p`` (``(groups,
    N·∏O)``) stay in memory between draws.

    >>> x, v = torch.randn(2, 3, 7), torch.randn(2, 4, 5)
    >>> s = CRSSampler(x, (4, 3, 3), v, keep=0.5)
    >>> s.probabilities.shape, round(s.probabilities.sum().item(), 3)
    (torch.Size([1, 10]), 5.0)
    >>> s.draw(torch.Generator().manual_seed(0)).shape
    torch.Size([4, 3, 3])
    """

    def __init__(self, input: torch.Tensor, weight_size: Sequence[int],
                 grad_output: torch.Tensor, stride=1, padding=0, dilation=1, groups: int = 1,
                 keep: float = 1.0) -> None:
        self.keep = check_keep(keep)
        self.weight_shape, hyper = _check(input, weight_size, grad_output,
                                          (stride, padding, dilation, groups))
        self.g, self.u = _pairs(input, self.weight_shape, grad_output, hyper)
        self.weights = (torch.linalg.vector_norm(self.g, dim=-1)
                        * torch.linalg.vector_norm(self.u, dim=-1))
        self.probabilities = crs_probabilities(self.weights, self.keep)

    def with_keep(self, keep: float) -> "CRSSampler":
        """The same product sampled at another ``keep`` (the factors are shared, not copied).

        >>> s = CRSSampler(torch.randn(2, 3, 7), (4, 3, 3), torch.randn(2, 4, 5), keep=0.5)
        >>> round(s.with_keep(0.2).probabilities.sum().item(), 3)
        2.0
        """
        other = copy.copy(self)
        other.keep = check_keep(keep)
        other.probabilities = crs_probabilities(self.weights, other.keep)
        return other

    def draw(self, generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """One unbiased estimate: keep pair ``t`` with probability ``p_t``, rescale by
        ``1/p_t``, multiply the kept pairs only (per group, padded to the largest count)."""
        p = self.probabilities
        kept = torch.rand(p.shape, generator=generator, dtype=p.dtype, device=p.device) < p
        if p.shape[0] == 1:  # one group: plain row selection
            idx = kept[0].nonzero().flatten()
            g_kept = self.g[0].index_select(0, idx) / p[0].index_select(0, idx)[:, None]
            return (g_kept.T @ self.u[0].index_select(0, idx)).reshape(self.weight_shape)
        count = kept.sum(dim=-1)
        width = max(int(count.max().item()), 1)
        # kept pairs first (stable), padded to the largest count with zero-scaled pairs
        order = torch.argsort((~kept).to(torch.uint8), dim=-1, stable=True)[:, :width]
        valid = torch.arange(width, device=p.device) < count[:, None]
        inverse = 1.0 / p.gather(1, order).clamp(min=torch.finfo(p.dtype).tiny)
        scale = torch.where(valid, inverse, torch.zeros((), dtype=p.dtype, device=p.device))
        g_kept = self.g.gather(1, order[..., None].expand(-1, -1, self.g.shape[-1]))
        u_kept = self.u.gather(1, order[..., None].expand(-1, -1, self.u.shape[-1]))
        return torch.bmm((g_kept * scale[..., None]).transpose(1, 2),
                         u_kept).reshape(self.weight_shape)


def crs_estimate(input: torch.Tensor, weight_shape: Tuple[int, ...], grad_output: torch.Tensor,
                 hyper: tuple, keep: float, generator: Optional[torch.Generator],
                 dim: int = 0, lowerings: Optional[str] = None) -> torch.Tensor:
    """The ``"crs"`` row of :data:`tndiag.functional.dropout.SAMPLERS` (same signature as
    the other rows; ``dim`` and ``lowerings`` do not apply): one :class:`CRSSampler` draw.

    >>> from tndiag.functional import conv_weight_vjp
    >>> x, v = torch.randn(2, 3, 7), torch.randn(2, 4, 5)
    >>> conv_weight_vjp(x, (4, 3, 3), v, keep=0.5, sample="crs").shape
    torch.Size([4, 3, 3])
    """
    stride, padding, dilation, groups = hyper
    return CRSSampler(input, weight_shape, grad_output, stride, padding, dilation, groups,
                      keep).draw(generator)


class _CRSConv(torch.autograd.Function):
    """Exact convolution whose backward pass estimates the weight gradient by CRS."""

    @staticmethod
    def forward(ctx: Any, input: torch.Tensor, weight: torch.Tensor,
                bias: Optional[torch.Tensor], hyper: tuple, keep: float,
                generator: Optional[torch.Generator]) -> torch.Tensor:
        ctx.hyper, ctx.keep, ctx.generator = hyper, keep, generator
        ctx.has_bias = bias is not None
        # the probabilities need ‖G_t‖, known only in backward: the whole input is saved
        ctx.save_for_backward(input, weight)
        return conv(input, weight, bias, *hyper)

    @staticmethod
    def backward(ctx: Any, grad_output: torch.Tensor) -> tuple:
        input, weight = ctx.saved_tensors
        grad_output = grad_output.contiguous()
        gx = gw = gb = None
        if ctx.needs_input_grad[0]:
            gx = conv_input_vjp(input.shape, weight, grad_output, *ctx.hyper)
        if ctx.needs_input_grad[1]:
            stride, padding, dilation, groups = ctx.hyper
            gw = crs_weight_vjp(input, weight.shape, grad_output, stride, padding, dilation,
                                groups, keep=ctx.keep, generator=ctx.generator)
        if ctx.has_bias and ctx.needs_input_grad[2]:
            gb = grad_output.sum(dim=[0, *range(2, grad_output.dim())])
        return gx, gw, gb, None, None, None


def crs_conv(input: torch.Tensor, weight: torch.Tensor, bias: Optional[torch.Tensor] = None,
             stride=1, padding=0, dilation=1, groups: int = 1, keep: float = 1.0,
             generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """Convolution (exact output and input gradient) with a CRS weight-gradient estimate.

    Saved for backward: the whole input and the weight (the CRS probabilities depend on the
    output gradient, which the forward pass does not know).

    Args:
        input: ``(N, C_in, *I)``.
        weight: ``(C_out, C_in / groups, *K)``.
        bias: ``(C_out,)`` or None (its gradient is exact).
        stride, padding, dilation, groups: as in :func:`tndiag.functional.conv`.
        keep: expected fraction of column-row pairs kept in the weight gradient.
        generator: random source of the backward pass's draw.

    Returns:
        ``(N, C_out, *O)``.

    >>> x = torch.randn(2, 3, 8, 8, dtype=torch.float64)
    >>> w = torch.randn(4, 3, 3, 3, dtype=torch.float64, requires_grad=True)
    >>> crs_conv(x, w, padding=1, keep=0.5).square().sum().backward()
    >>> w.grad.shape
    torch.Size([4, 3, 3, 3])
    """
    check_tensors(input=input, weight=weight, bias=bias, optional=("bias",))
    keep = check_keep(keep)
    if input.dim() != weight.dim():
        raise ShapeError(f"crs_conv: input must be batched, shape (N, C_in, *I) with "
                         f"{weight.dim() - 2} spatial dimensions, got {list(input.shape)}")
    hyper = (stride, padding, dilation, groups)
    return _CRSConv.apply(input, weight, bias, hyper, keep, generator)
