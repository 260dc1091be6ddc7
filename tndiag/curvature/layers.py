"""The layers the curvature routines cover: which modules, their hyper-parameters, and how a
layer's input, output gradient and parameters are viewed as matrices.

A convolution's weight is viewed per group as ``[C_out/G, C_in/G·∏K]`` (rows ordered like
``unfold``'s rows); a transposed convolution's weight ``[C_in, C_out/G, *K]`` as
``[C_out/G, C_in/G·∏K]`` too, matching its transpose-unfolded input; ``Linear`` is a
1-d convolution with kernel size 1 over the extra (weight-sharing) dimensions ``T``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple

import torch
from torch import nn

from tndiag.errors import InvalidArgumentError, ShapeError

__all__ = ["Layer", "find_layers", "SUPPORTED"]

_CONV = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
_TRANSPOSED = (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)
SUPPORTED = (nn.Linear, *_CONV, *_TRANSPOSED)


@dataclass(eq=False)
class Layer:
    """One covered layer: module, kind (``conv``, ``transposed``, ``linear``) and parameters."""

    name: str
    module: Any  # one of SUPPORTED (typed loosely: torch types its attributes as Tensor | Module)
    weight: Optional[nn.Parameter]
    bias: Optional[nn.Parameter]
    kind: str = field(init=False)
    groups: int = field(init=False)

    def __post_init__(self) -> None:
        m = self.module
        self.kind = ("linear" if isinstance(m, nn.Linear) else
                     "transposed" if isinstance(m, _TRANSPOSED) else "conv")
        self.groups = 1 if self.kind == "linear" else int(m.groups)  # type: ignore[arg-type]

    @property
    def out_channels(self) -> int:
        m = self.module
        return int(m.out_features if self.kind == "linear" else m.out_channels)

    def as_conv_input(self, x: torch.Tensor) -> torch.Tensor:
        """The layer input as ``[N, C, *I]`` (explicitly padded for non-zero padding modes)."""
        if self.kind == "linear":
            if x.dim() < 2:
                raise ShapeError(f"layer {self.name!r}: Linear input must have a batch "
                                 f"dimension, got shape {list(x.shape)}")
            return x.reshape(x.shape[0], -1, x.shape[-1]).transpose(1, 2)
        ndim = self.module.weight.dim() - 2
        if x.dim() != ndim + 2:
            raise ShapeError(f"layer {self.name!r}: expected a batched input of rank "
                             f"{ndim + 2}, got shape {list(x.shape)}")
        mode = getattr(self.module, "padding_mode", "zeros")
        if mode != "zeros":
            pad = self.module._reversed_padding_repeated_twice  # type: ignore[union-attr]
            x = nn.functional.pad(x, tuple(pad), mode=mode)
        return x

    def as_conv_output(self, g: torch.Tensor) -> torch.Tensor:
        """An output (gradient) ``[M, ..., C_out]`` (Linear) or ``[M, C_out, *O]`` as the latter."""
        if self.kind == "linear":
            return g.reshape(g.shape[0], -1, g.shape[-1]).transpose(1, 2)
        return g

    def conv_output_shape(self, y_shape: Sequence[int]) -> Tuple[int, ...]:
        """The layer's output shape as :meth:`as_conv_output` sees it."""
        if self.kind == "linear":
            return (y_shape[0], y_shape[-1], math.prod(y_shape[1:-1]))
        return tuple(y_shape)

    def hyper(self, x: torch.Tensor, y_shape: Sequence[int]) -> Dict[str, Any]:
        """Keyword arguments of the per-layer diagrams for input ``x`` (as :meth:`as_conv_input`)
        and output shape ``y_shape`` (``[N, C_out, *O]``)."""
        m = self.module
        if self.kind == "linear":
            return dict(kernel_size=1, stride=1, padding=0, dilation=1, groups=1)
        padding = 0 if getattr(m, "padding_mode", "zeros") != "zeros" else m.padding
        out = dict(kernel_size=tuple(m.kernel_size), stride=tuple(m.stride), padding=padding,
                   dilation=tuple(m.dilation), groups=self.groups)
        if self.kind == "transposed":
            out.update(transposed=True, output_padding=self._output_padding(x, y_shape))
        return out

    def _output_padding(self, x: torch.Tensor, y_shape: Sequence[int]) -> Tuple[int, ...]:
        """The output padding actually used (``forward(x, output_size=...)`` may change it)."""
        m = self.module
        base = [(i - 1) * s - 2 * p + d * (k - 1) + 1 for i, s, p, d, k in zip(
            x.shape[2:], m.stride, m.padding, m.dilation, m.kernel_size, strict=True)]
        return tuple(int(o - b) for o, b in zip(y_shape[2:], base, strict=True))

    def weight_view(self, w: torch.Tensor) -> torch.Tensor:
        """A weight-shaped tensor viewed as ``[G, d_out, d_in]`` (see the module docstring)."""
        G = self.groups
        if self.kind == "linear":
            return w.unsqueeze(0)
        if self.kind == "conv":
            return w.reshape(G, w.shape[0] // G, -1)
        Cig, Cog = w.shape[0] // G, w.shape[1]
        return w.reshape(G, Cig, Cog, -1).permute(0, 2, 1, 3).reshape(G, Cog, -1)

    def bias_view(self, b: torch.Tensor) -> torch.Tensor:
        """A bias-shaped tensor viewed as ``[G, d_out, 1]``."""
        return b.reshape(self.groups, -1, 1)


def _covered(module: Any, chosen: Optional[set]) -> List[Optional[nn.Parameter]]:
    out = []
    for p in (module.weight, module.bias):
        wanted = p is not None and p.requires_grad and (chosen is None or id(p) in chosen)
        out.append(p if wanted else None)
    return out


def find_layers(model: nn.Module, params: Optional[Sequence[torch.Tensor]] = None
                ) -> List[Layer]:
    """The covered layers of ``model`` in module order.

    Without ``params`` every trainable parameter must belong to a supported layer; with
    ``params`` only those are covered, and each must belong to one.

    >>> [l.name for l in find_layers(nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(),
    ...                                             nn.Flatten(), nn.Linear(8, 3)))]
    ['0', '3']
    """
    chosen = None if params is None else _param_ids(params)
    layers, unsupported = [], []
    for name, module in model.named_modules():
        own = [p for p in module.parameters(recurse=False)
               if p.requires_grad and (chosen is None or id(p) in chosen)]
        if not own:
            continue
        if not isinstance(module, SUPPORTED):
            unsupported.append(f"{name or '<model>'} ({type(module).__name__})")
            continue
        weight, bias = _covered(module, chosen)
        layers.append(Layer(name, module, weight, bias))
    if unsupported:
        raise InvalidArgumentError(
            f"unsupported layers with trainable parameters: {', '.join(unsupported)}; "
            f"supported are {', '.join(t.__name__ for t in SUPPORTED)} (pass params= to "
            f"leave the others out)")
    if chosen is not None and len(chosen) != sum(
            (l.weight is not None) + (l.bias is not None) for l in layers):
        raise InvalidArgumentError("params contains tensors that are not trainable parameters "
                                   "of the model")
    if not layers:
        raise InvalidArgumentError("the model has no trainable parameters in supported layers")
    return layers


def _param_ids(params: Sequence[torch.Tensor]) -> set:
    if isinstance(params, torch.Tensor) or not all(isinstance(p, torch.Tensor)
                                                   for p in params):
        raise TypeError("params must be a list of the model's parameters (tensors)")
    return {id(p) for p in params}
