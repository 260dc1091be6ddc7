"""Argument checks of :func:`~tndiag.curvature.kfac` and :func:`~tndiag.curvature.ggn_diag`."""

from __future__ import annotations

from typing import Optional

import torch
from torch import nn

from tndiag.curvature.losses import FISHER_TYPES, check_loss
from tndiag.errors import InvalidArgumentError, ShapeError, TndiagError

__all__ = ["NotATensorError", "check_call", "unwrap"]


class NotATensorError(TndiagError, TypeError):
    """A non-tensor was given where a tensor is needed."""


def unwrap(model: object) -> nn.Module:
    """The module inside a ``DistributedDataParallel`` / ``DataParallel`` wrapper.

    >>> unwrap(nn.DataParallel(nn.Linear(2, 2)))
    Linear(in_features=2, out_features=2, bias=True)
    """
    if not isinstance(model, nn.Module):
        raise NotATensorError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    from torch.nn.parallel import DataParallel, DistributedDataParallel

    return model.module if isinstance(model, (DataParallel, DistributedDataParallel)) else model


def _check_data(model: nn.Module, inputs: object, targets: object) -> None:
    for name, t in (("inputs", inputs), ("targets", targets)):
        if not isinstance(t, torch.Tensor):
            raise NotATensorError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
    assert isinstance(inputs, torch.Tensor) and isinstance(targets, torch.Tensor)
    if inputs.dim() == 0 or targets.dim() == 0:
        raise ShapeError("inputs and targets need a batch dimension")
    if inputs.shape[0] != targets.shape[0]:
        raise ShapeError(f"inputs and targets have different batch sizes: "
                         f"{inputs.shape[0]} vs {targets.shape[0]}")
    if inputs.shape[0] == 0:
        raise InvalidArgumentError("empty batch: inputs and targets have 0 samples")
    ref = next((p for p in model.parameters() if p.requires_grad), None)
    if ref is None:
        raise InvalidArgumentError("the model has no trainable parameters")
    if ref.device != inputs.device:
        raise InvalidArgumentError(f"the model is on {ref.device} but inputs are on "
                                   f"{inputs.device}; move both to one device")
    if inputs.is_floating_point() and ref.dtype != inputs.dtype:
        raise InvalidArgumentError(f"the model has dtype {ref.dtype} but inputs have dtype "
                                   f"{inputs.dtype}; convert one of them")


def check_call(model: object, loss_fn: object, inputs: object, targets: object,
               fisher_type: str, mc_samples: int, generator: Optional[torch.Generator],
               kfac_approx: str = "expand") -> nn.Module:
    """Check every argument; return the (unwrapped) model."""
    net = unwrap(model)
    check_loss(loss_fn)
    if kfac_approx not in ("expand", "reduce"):
        raise InvalidArgumentError(f"kfac_approx must be 'expand' or 'reduce', got "
                                   f"{kfac_approx!r}")
    if fisher_type not in FISHER_TYPES:
        raise InvalidArgumentError(f"fisher_type must be one of {FISHER_TYPES}, got "
                                   f"{fisher_type!r}")
    if isinstance(mc_samples, bool) or not isinstance(mc_samples, int) or mc_samples < 1:
        raise InvalidArgumentError(f"mc_samples must be an int >= 1, got {mc_samples!r}")
    if generator is not None and not isinstance(generator, torch.Generator):
        raise NotATensorError(f"generator must be a torch.Generator, got "
                              f"{type(generator).__name__}")
    _check_data(net, inputs, targets)
    return net
