"""Many tensor-dropout draws at the cost of one: the weight gradient split by input slice.

The weight gradient is linear in the input, so with ``g_s`` the gradient computed from the
input's slice ``s`` alone (one image row, or one input channel), ``g = Σ_s g_s`` and a
Bernoulli draw that keeps the slices ``S`` gives exactly ``ĝ = Σ_{s ∈ S} g_s / keep``.
The ``g_s`` are computed once per layer by the same kept-slice programs that
``conv_weight_vjp(keep=...)`` runs (one slice kept, no rescaling); a draw is then a
weighted sum. Every point also checks a draw against ``conv_weight_vjp`` itself, with the
same kept positions (:func:`check_draw`).
"""

from __future__ import annotations

from typing import List, Tuple

import torch

from tndiag.bench.dropout_models import LayerCase
from tndiag.functional.dropout import Draw, draw, kept_input, weight_vjp_from_kept

__all__ = ["slice_contributions", "sliced_errors", "check_draw"]


def _leg(method: str, case: LayerCase) -> Tuple[str, int, int]:
    groups = case.hyper[3]
    if method == "channel":
        return "ci", 1, case.input.shape[1] // groups
    return "i1", 2, case.input.shape[2]


def slice_contributions(case: LayerCase, method: str) -> torch.Tensor:
    """``[slices, *weight_shape]``: the weight gradient from each input slice alone."""
    leg, axis, size = _leg(method, case)
    if method == "channel":  # slice c of the input only reaches the weight's channel c
        g = case.weight_grad
        parts = torch.zeros(size, *g.shape, dtype=g.dtype)
        for c in range(size):
            parts[c, :, c] = g[:, c]
        return parts
    out = []
    for s in range(size):
        d = Draw(leg, axis, size, torch.tensor([s]), 1.0)
        out.append(weight_vjp_from_kept(kept_input(case.input, d, case.hyper[3]), d,
                                        tuple(case.input.shape), case.weight_shape,
                                        case.grad_output, case.hyper))
    return torch.stack(out)


def sliced_errors(parts: torch.Tensor, exact: torch.Tensor, method: str, keep: float,
                  draws: int, groups: int, generator: torch.Generator) -> List[float]:
    """Squared errors ``‖ĝ - g‖²`` of ``draws`` Bernoulli draws, each drawn with the
    sampler's own :func:`tndiag.functional.dropout.draw` (same positions, same law)."""
    size = parts.shape[0]
    masks = torch.zeros(draws, size, dtype=parts.dtype)
    shape = (1, size * groups, 1, 1) if method == "channel" else (1, 1, size, 1)
    for k in range(draws):
        masks[k, draw(method, shape, groups, keep, generator).positions] = 1.0
    estimates = masks @ parts.reshape(size, -1) / keep
    return (estimates - exact.reshape(1, -1)).square().sum(dim=1).tolist()


def check_draw(case: LayerCase, parts: torch.Tensor, method: str, keep: float,
               generator: torch.Generator) -> float:
    """Relative deviation between ``conv_weight_vjp``'s estimate and the slice sum for the
    same kept positions (rounding only: ~1e-6 in float32)."""
    from tndiag.functional import conv_weight_vjp

    state = generator.get_state()
    stride, padding, dilation, groups = case.hyper
    direct = conv_weight_vjp(case.input, case.weight_shape, case.grad_output, stride,
                             padding, dilation, groups, keep=keep, sample=method,
                             generator=generator)
    generator.set_state(state)
    d = draw(method, tuple(case.input.shape), groups, keep, generator)
    summed = parts[d.positions].sum(dim=0) / keep
    scale = max(float(case.weight_grad.norm()), 1e-30)
    return float((direct - summed).norm()) / scale
