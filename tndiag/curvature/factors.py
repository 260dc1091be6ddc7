"""Per-layer curvature blocks from the compiled diagrams of :mod:`tndiag.functional` and
:mod:`tndiag.ops`: KFAC input factors (expand / reduce), the mean patch a merged bias needs,
grad-output factors per group, and the weight / bias GGN diagonals.

Scales (``T`` = number of output positions of the layer, ``M`` = columns ``z·n``):

- input, expand: ``1/(N·T) Σ_{n,t} u uᵀ``; reduce: ``1/N Σ_n ū ūᵀ`` with ``ū = mean_t u``;
- grad output, expand: ``Σ_{m,t} s sᵀ``; reduce: ``Σ_m (Σ_t s)(Σ_t s)ᵀ``.
"""

from __future__ import annotations

import functools
import math
from typing import Any, Dict, Hashable

import torch

from tndiag import functional
from tndiag.codegen import compile
from tndiag.codegen.program import AnyProgram
from tndiag.codegen.tuning import on_change
from tndiag.curvature.layers import Layer
from tndiag.ops import curvature as diagrams

__all__ = ["input_factor", "mean_patch", "grad_output_factor", "weight_ggn_diag",
           "bias_ggn_diag"]


@functools.lru_cache(maxsize=512)
def _program(builder: str, *args: Hashable, **kwargs: Hashable) -> AnyProgram:
    return compile(getattr(diagrams, builder)(*args, **kwargs))


on_change(_program.cache_clear)  # the programs depend on the tuning mode


def _positions(layer: Layer, y_shape) -> int:
    """Number of output positions ``T`` (weight-sharing dimension)."""
    if layer.kind == "linear":
        return math.prod(y_shape[1:-1])
    return math.prod(y_shape[2:])


def input_factor(layer: Layer, x: torch.Tensor, hyper: Dict[str, Any], y_shape,
                 reduce: bool) -> torch.Tensor:
    """``A`` of shape ``[G, d_in, d_in]`` from the (conv-shaped) layer input ``x``.

    >>> from tndiag.curvature.layers import Layer
    >>> lin = torch.nn.Linear(3, 2)
    >>> layer, x = Layer("", lin, lin.weight, lin.bias), torch.randn(5, 3)
    >>> A = input_factor(layer, layer.as_conv_input(x), layer.hyper(x, (5, 2)), (5, 2), False)
    >>> torch.allclose(A[0], x.T @ x / 5, atol=1e-6)
    True
    """
    fn = functional.kfac_reduce if reduce else functional.kfc
    A = fn(x, **hyper)
    return A if reduce else A.div_(_positions(layer, y_shape))


def mean_patch(x: torch.Tensor, hyper: Dict[str, Any]) -> torch.Tensor:
    """``[G, d_in]``: the mean (transpose-)unfolded input column over samples and positions."""
    return _program("patch_mean", tuple(x.shape), **hyper)(X=x)


def grad_output_factor(layer: Layer, g: torch.Tensor, reduce: bool) -> torch.Tensor:
    """``B`` of shape ``[G, d_out, d_out]`` from conv-shaped output gradients ``[M, C, *O]``."""
    B = _program("grad_output_kfac", tuple(g.shape), reduce, 1.0, layer.groups)(V=g)
    return B if layer.groups > 1 else B.unsqueeze(0)


#: Most elements of per-sample weight gradients ``[Z', N, *W]`` formed at once.
PER_SAMPLE_BUDGET = 1 << 25


def weight_ggn_diag(layer: Layer, x: torch.Tensor, S: torch.Tensor,
                    hyper: Dict[str, Any]) -> torch.Tensor:
    """GGN diagonal of the weight, shaped like it, from ``S`` of shape ``[Z, N, C, *O]``.

    The weight-GGN-diagonal diagram is two identical copies of the per-sample weight VJP
    joined over ``z``, ``n`` and the weight legs; its compiled plan (the ``square`` rule)
    contracts one copy and squares it, but forms every per-sample gradient at once. Here the
    per-sample VJP is compiled alone and squared in chunks over ``z`` (at most
    :data:`PER_SAMPLE_BUDGET` elements at a time).
    """
    W = layer.module.weight
    chunk = max(1, PER_SAMPLE_BUDGET // max(1, S.shape[1] * W.numel()))
    diag = None
    for part in S.split(chunk):
        grads = _program("per_sample_weight_vjp", tuple(x.shape), tuple(part.shape),
                         **hyper)(X=x, S=part)
        term = grads.square().sum((0, 1))
        diag = term if diag is None else diag + term
    assert diag is not None
    return diag.reshape(W.shape)


def bias_ggn_diag(S: torch.Tensor) -> torch.Tensor:
    """GGN diagonal of the bias ``[C]`` from ``S`` of shape ``[Z, N, C, *O]``."""
    return S.flatten(3).sum(-1).square().sum((0, 1)) if S.dim() > 3 else \
        S.square().sum((0, 1))
