"""Loss functions the curvature routines support, and square roots of their Hessians.

For a loss ``L = R · Σ_n ℓ(f_n, y_n)`` (``R = 1`` for ``reduction='sum'``, one over the number
of loss terms for ``'mean'``) the routines need columns ``S[z, n]`` with
``Σ_z S[z, n] S[z, n]ᵀ = R · ∇²_f ℓ(f_n, y_n)`` (type-2, exact), an unbiased Monte-Carlo
estimate of it (``'mc'``), or ``√R`` times the per-sample gradient (``'empirical'``).
"""

from __future__ import annotations

import math
from typing import Optional

import torch
from torch import nn

from tndiag.errors import InvalidArgumentError, ShapeError

__all__ = ["FISHER_TYPES", "check_loss", "reduction_factor", "hessian_sqrt"]

FISHER_TYPES = ("type-2", "mc", "empirical")


def check_loss(loss_fn: object) -> None:
    """Raise unless ``loss_fn`` is a plain ``CrossEntropyLoss`` or ``MSELoss``.

    >>> check_loss(nn.MSELoss(reduction="sum"))
    >>> check_loss(nn.L1Loss())
    Traceback (most recent call last):
    ...
    tndiag.errors.InvalidArgumentError: loss_fn must be torch.nn.CrossEntropyLoss or \
torch.nn.MSELoss, got L1Loss
    """
    if not isinstance(loss_fn, (nn.CrossEntropyLoss, nn.MSELoss)):
        raise InvalidArgumentError(f"loss_fn must be torch.nn.CrossEntropyLoss or "
                                   f"torch.nn.MSELoss, got {type(loss_fn).__name__}")
    if loss_fn.reduction not in ("mean", "sum"):
        raise InvalidArgumentError(f"loss_fn.reduction must be 'mean' or 'sum', got "
                                   f"{loss_fn.reduction!r}")
    if isinstance(loss_fn, nn.CrossEntropyLoss) and (
            loss_fn.weight is not None or loss_fn.label_smoothing != 0):
        raise InvalidArgumentError("CrossEntropyLoss with class weights or label smoothing is "
                                   "not supported; use weight=None, label_smoothing=0")


def check_output(loss_fn: nn.Module, output: torch.Tensor, targets: torch.Tensor) -> None:
    """Check that the model output and the targets fit the loss."""
    if isinstance(loss_fn, nn.CrossEntropyLoss):
        if output.dim() != 2:
            raise ShapeError(f"CrossEntropyLoss needs model outputs of shape [N, C], got "
                             f"{list(output.shape)}")
        if targets.dtype != torch.long or tuple(targets.shape) != (output.shape[0],):
            raise ShapeError(f"CrossEntropyLoss needs class-index targets (int64) of shape "
                             f"[{output.shape[0]}], got {targets.dtype} {list(targets.shape)}")
        if targets.numel() and (targets.min() < 0 or targets.max() >= output.shape[1]):
            raise InvalidArgumentError(f"targets must lie in [0, {output.shape[1]}); got values "
                                       f"in [{int(targets.min())}, {int(targets.max())}]")
    elif tuple(targets.shape) != tuple(output.shape):
        raise ShapeError(f"MSELoss needs targets shaped like the model output "
                         f"{list(output.shape)}, got {list(targets.shape)}")


def reduction_factor(loss_fn: nn.Module, output: torch.Tensor) -> float:
    """``R``: 1 for ``'sum'``, one over the number of loss terms for ``'mean'``.

    >>> reduction_factor(nn.MSELoss(), torch.zeros(4, 3))
    0.08333333333333333
    """
    if loss_fn.reduction == "sum":
        return 1.0
    terms = output.shape[0] if isinstance(loss_fn, nn.CrossEntropyLoss) else output.numel()
    return 1.0 / terms


def hessian_sqrt(loss_fn: nn.Module, output: torch.Tensor, targets: torch.Tensor,
                 fisher_type: str, mc_samples: int = 1,
                 generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """Columns ``S`` of shape ``[Z, N, *output.shape[1:]]`` (see the module docstring).

    ``Z`` is the number of classes resp. output entries per sample (type-2), ``mc_samples``
    (MC) or 1 (empirical).

    >>> f, y = torch.randn(2, 3, dtype=torch.float64), torch.tensor([0, 2])
    >>> S = hessian_sqrt(nn.CrossEntropyLoss(reduction="sum"), f, y, "type-2")
    >>> p = f.softmax(1)[0]
    >>> torch.allclose(S[:, 0].T @ S[:, 0], p.diag() - p.outer(p))
    True
    """
    root = math.sqrt(reduction_factor(loss_fn, output))
    if isinstance(loss_fn, nn.CrossEntropyLoss):
        return root * _ce_sqrt(output, targets, fisher_type, mc_samples, generator)
    return root * _mse_sqrt(output, targets, fisher_type, mc_samples, generator)


def _ce_sqrt(f, y, fisher_type, mc_samples, generator) -> torch.Tensor:
    p = f.softmax(dim=1)
    if fisher_type == "type-2":  # column z: √p_z (e_z − p)
        eye = torch.eye(f.shape[1], dtype=f.dtype, device=f.device)
        return p.sqrt().T.unsqueeze(-1) * (eye.unsqueeze(1) - p.unsqueeze(0))
    if fisher_type == "empirical":
        return (p - nn.functional.one_hot(y, f.shape[1]).to(p.dtype)).unsqueeze(0)
    drawn = torch.multinomial(p, mc_samples, replacement=True, generator=generator)
    onehot = nn.functional.one_hot(drawn.T, f.shape[1]).to(p.dtype)
    return (p.unsqueeze(0) - onehot) / math.sqrt(mc_samples)


def _mse_sqrt(f, y, fisher_type, mc_samples, generator) -> torch.Tensor:
    N, D = f.shape[0], f[0].numel()
    if fisher_type == "type-2":  # ∇² of Σ (f − y)² is 2·I
        eye = math.sqrt(2.0) * torch.eye(D, dtype=f.dtype, device=f.device)
        return eye.reshape(D, 1, *f.shape[1:]).expand(D, N, *f.shape[1:])
    if fisher_type == "empirical":
        return (2.0 * (f - y)).unsqueeze(0)
    noise = torch.randn((mc_samples, *f.shape), dtype=f.dtype, device=f.device,
                        generator=generator)
    return math.sqrt(2.0) * noise / math.sqrt(mc_samples)
