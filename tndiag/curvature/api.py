"""``kfac`` and ``ggn_diag``: curvature of a whole model from one forward and one backward."""

from __future__ import annotations

from typing import Dict, List, Optional, Sequence

import torch
from torch import nn

from tndiag.curvature import distributed, factors
from tndiag.curvature.capture import capture
from tndiag.curvature.checks import check_call
from tndiag.curvature.layers import Layer, find_layers
from tndiag.curvature.losses import check_output, hessian_sqrt
from tndiag.curvature.operator import KFAC, LayerFactors

__all__ = ["kfac", "ggn_diag"]


class _Factors:
    """Collects each layer's ``A`` during the forward pass and ``B`` during the backward."""

    def __init__(self, reduce: bool, merge: bool) -> None:
        self.reduce, self.merge = reduce, merge
        self.A: Dict[Layer, torch.Tensor] = {}
        self.B: Dict[Layer, torch.Tensor] = {}

    def on_input(self, layer: Layer, x: torch.Tensor, y_shape: torch.Size) -> None:
        if layer.weight is None:
            return
        u = layer.as_conv_input(x)
        hyper = layer.hyper(u, layer.conv_output_shape(y_shape))
        A = factors.input_factor(layer, u, hyper, y_shape, self.reduce)
        if self.merge and layer.bias is not None:
            a = factors.mean_patch(u, hyper).unsqueeze(-1)
            corner = torch.ones_like(a[:, :1])
            A = torch.cat([torch.cat([A, a], 2), torch.cat([a.mT, corner], 2)], 1)
        self.A[layer] = A

    def on_grad(self, layer: Layer, g: Optional[torch.Tensor]) -> None:
        d = layer.out_channels // layer.groups
        if g is None:
            B = layer.module.weight.new_zeros(layer.groups, d, d)
        else:
            B = factors.grad_output_factor(layer, layer.as_conv_output(g), self.reduce)
        self.B[layer] = B + self.B[layer] if layer in self.B else B

    def result(self, layer: Layer) -> LayerFactors:
        B = self.B[layer]
        merged = self.merge and layer.weight is not None and layer.bias is not None
        ones = None if merged or layer.bias is None else B.new_ones(layer.groups, 1, 1)
        return LayerFactors(layer.name, self.A.get(layer), B, ones, merged)


def _run(model, loss_fn, inputs, targets, layers: List[Layer], fisher_type: str,
         mc_samples: int, generator, on_input, on_grad) -> None:
    """One forward with hooks and one backward of the loss-Hessian square root."""
    with capture(layers, on_input) as rec:
        output = model(inputs)
        check_output(loss_fn, output, targets)
        with torch.no_grad():
            S = hessian_sqrt(loss_fn, output.detach(), targets, fisher_type, mc_samples,
                             generator)
        rec.backward(output, S, on_grad)


def kfac(model: nn.Module, loss_fn: nn.Module, inputs: torch.Tensor, targets: torch.Tensor,
         kfac_approx: str = "expand", fisher_type: str = "mc", mc_samples: int = 1,
         generator: Optional[torch.Generator] = None,
         params: Optional[Sequence[torch.Tensor]] = None,
         separate_weight_and_bias: bool = True, process_group: Optional[object] = None) -> KFAC:
    """KFAC (expand or reduce) of the Fisher / GGN of ``loss_fn(model(inputs), targets)``.

    Covers every ``Linear``, ``Conv{1,2,3}d`` and ``ConvTranspose{1,2,3}d`` (all
    hyper-parameters, groups as one block per group, every ``padding_mode``). Per layer
    ``B ⊗ A`` is Eschenhagen et al.'s (NeurIPS 2023) KFAC-expand / -reduce approximation of
    the Fisher of the loss as ``loss_fn`` reduces it; see docs/curvature.md for the scales.
    A transposed convolution's weight is viewed per group as ``[C_out/G, C_in/G·∏K]``
    (input factor from its transpose-unfolded input). Under ``torch.distributed`` the factors
    of all ranks are all-reduced (weighted by batch size) over ``process_group``.

    Args:
        model: the network (a ``DistributedDataParallel`` wrapper is unwrapped).
        loss_fn: ``nn.CrossEntropyLoss`` or ``nn.MSELoss`` (``'mean'`` or ``'sum'``).
        inputs, targets: one batch.
        kfac_approx: ``'expand'`` or ``'reduce'`` (treatment of the weight-sharing dims).
        fisher_type: ``'type-2'`` (exact Hessian square root), ``'mc'`` or ``'empirical'``.
        mc_samples, generator: number of MC samples and the generator drawing them.
        params: parameters to cover (default: every trainable one; all must be covered).
        separate_weight_and_bias: one block for the weight and one for the bias (True), or
            one joint block for ``[W | b]``.

    Returns:
        a :class:`~tndiag.curvature.operator.KFAC` operator.

    >>> net = nn.Sequential(nn.Conv1d(2, 3, 3), nn.Flatten(), nn.Linear(12, 4))
    >>> K = kfac(net, nn.CrossEntropyLoss(), torch.randn(5, 2, 6), torch.tensor([0, 1, 2, 3, 0]))
    >>> K.modules, K["0"].input.shape, K["0"].grad_output.shape
    (['0', '2'], torch.Size([1, 6, 6]), torch.Size([1, 3, 3]))
    """
    model = check_call(model, loss_fn, inputs, targets, fisher_type, mc_samples, generator,
                       kfac_approx=kfac_approx)
    layers = find_layers(model, params)
    acc = _Factors(kfac_approx == "reduce", not separate_weight_and_bias)
    _run(model, loss_fn, inputs, targets, layers, fisher_type, mc_samples, generator,
         acc.on_input, acc.on_grad)
    result = {l.name: acc.result(l) for l in layers}
    if distributed.active(process_group):
        mean = loss_fn.reduction == "mean"
        As = [f.input for f in result.values() if f.input is not None]
        Bs = [f.grad_output for f in result.values()]
        distributed.all_reduce_weighted(As + (Bs if mean else []), [] if mean else Bs,
                                        inputs.shape[0], process_group)
    names = {id(p): n for n, p in model.named_parameters()}
    return KFAC(layers, result, names)


class _Diag:
    """Keeps each layer's input until its output gradients arrive, then forms the diagonal."""

    def __init__(self) -> None:
        self.inputs: Dict[Layer, tuple] = {}
        self.out: Dict[int, torch.Tensor] = {}

    def on_input(self, layer: Layer, x: torch.Tensor, y_shape: torch.Size) -> None:
        u = layer.as_conv_input(x)
        hyper = layer.hyper(u, layer.conv_output_shape(y_shape))
        self.inputs[layer] = (u, hyper, y_shape)  # released with this object

    def on_grad(self, layer: Layer, g: Optional[torch.Tensor]) -> None:
        u, hyper, y_shape = self.inputs[layer]
        if g is None:
            g = u.new_zeros(y_shape)
        S = layer.as_conv_output(g).unflatten(0, (-1, y_shape[0]))
        if layer.weight is not None:
            self._add(layer.weight, factors.weight_ggn_diag(layer, u, S, hyper))
        if layer.bias is not None:
            self._add(layer.bias, factors.bias_ggn_diag(S))

    def _add(self, p: torch.Tensor, value: torch.Tensor) -> None:
        key = id(p)
        self.out[key] = value + self.out[key] if key in self.out else value


def ggn_diag(model: nn.Module, loss_fn: nn.Module, inputs: torch.Tensor, targets: torch.Tensor,
             fisher_type: str = "type-2", mc_samples: int = 1,
             generator: Optional[torch.Generator] = None,
             params: Optional[Sequence[torch.Tensor]] = None,
             process_group: Optional[object] = None) -> Dict[str, torch.Tensor]:
    """Diagonal of the GGN (type-2, exact) or of its MC / empirical Fisher estimate.

    Computed per layer with the weight-GGN-diagonal diagram from the back-propagated
    loss-Hessian square-root columns (no per-sample loops). Layers and arguments as in
    :func:`kfac`.

    Returns:
        parameter name (as in ``model.named_parameters()``) → tensor shaped like it.

    >>> net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten(), nn.Linear(8, 3))
    >>> x, y = torch.randn(4, 1, 4, 4), torch.tensor([0, 1, 2, 0])
    >>> d = ggn_diag(net, nn.CrossEntropyLoss(), x, y)
    >>> {k: tuple(v.shape) for k, v in d.items()}
    {'0.weight': (2, 1, 3, 3), '0.bias': (2,), '2.weight': (3, 8), '2.bias': (3,)}
    """
    model = check_call(model, loss_fn, inputs, targets, fisher_type, mc_samples, generator)
    layers = find_layers(model, params)
    acc = _Diag()
    _run(model, loss_fn, inputs, targets, layers, fisher_type, mc_samples, generator,
         acc.on_input, acc.on_grad)
    names = {id(p): n for n, p in model.named_parameters()}
    ordered = [p for l in layers for p in (l.weight, l.bias) if p is not None]
    out = {names[id(p)]: acc.out[id(p)] for p in ordered}
    if distributed.active(process_group):
        vals = list(out.values())
        mean = loss_fn.reduction == "mean"
        distributed.all_reduce_weighted(vals if mean else [], [] if mean else vals,
                                        inputs.shape[0], process_group)
    return out
