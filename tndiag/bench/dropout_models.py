"""Networks, data and measurements shared by the tensor-dropout experiments and benchmarks.

- :func:`allcnnc`: All-CNN-C as DeepOBS builds it for CIFAR-100 (without its dropout layers,
  so that the exact gradient is deterministic); :func:`sample_image_batch` (normalised 32×32
  crops of scikit-learn's two sample photographs) and :func:`gaussian_batch`.
- :func:`capture`: each convolution's input, output gradient and exact weight gradient from
  one autograd backward pass.
- :class:`SavedBytes`: bytes kept alive for backward, per convolution and for the whole
  model, measured with ``torch.autograd.graph.saved_tensors_hooks``.
- :func:`crs_dropout` / :func:`restore_crs`: swap every ``torch.nn.Conv{1,2,3}d`` for a
  module whose weight gradient is the CRS estimate (:func:`tndiag.functional.crs.crs_conv`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple, cast

import torch
from torch import nn
from torch.nn.modules.conv import _ConvNd

from tndiag.functional.crs import crs_conv
from tndiag.passes.subsample import check_keep

__all__ = ["allcnnc", "sample_image_batch", "gaussian_batch", "random_labels", "LayerCase",
           "capture", "conv_layers", "SavedBytes", "CRSConv", "crs_dropout", "restore_crs"]

_CONVS = (nn.Conv1d, nn.Conv2d, nn.Conv3d)


def allcnnc(num_classes: int = 100, seed: int = 0) -> nn.Sequential:
    """All-CNN-C for 32×32 inputs (DeepOBS's layers and initialisation, no dropout).

    The two stride-2 layers pad by (0, 1) per spatial dimension (TensorFlow's ``'same'``),
    written as a ``ZeroPad2d`` before an unpadded convolution.

    >>> allcnnc()(torch.randn(2, 3, 32, 32)).shape
    torch.Size([2, 100])
    """
    torch.manual_seed(seed)
    spec = [(3, 96, 3, 1), (96, 96, 3, 1), (96, 96, 3, 2), (96, 192, 3, 1), (192, 192, 3, 1),
            (192, 192, 3, 2), (192, 192, 3, 0), (192, 192, 1, 0), (192, num_classes, 1, 0)]
    layers: List[nn.Module] = []
    for c_in, c_out, k, mode in spec:
        if mode == 2:
            layers += [nn.ZeroPad2d((0, 1, 0, 1)), nn.Conv2d(c_in, c_out, k, stride=2)]
        else:
            layers.append(nn.Conv2d(c_in, c_out, k, padding=mode))
        conv = cast(nn.Conv2d, layers[-1])
        nn.init.xavier_normal_(conv.weight)
        nn.init.constant_(cast(torch.Tensor, conv.bias), 0.1)
        layers.append(nn.ReLU())
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten())


def sample_image_batch(batch: int, seed: int = 0, size: int = 32) -> torch.Tensor:
    """``[batch, 3, size, size]`` random crops of scikit-learn's sample photographs.

    Each channel is normalised by the mean and standard deviation of both photographs.

    >>> x = sample_image_batch(4)
    >>> x.shape, abs(x.mean().item()) < 1.5
    (torch.Size([4, 3, 32, 32]), True)
    """
    from sklearn.datasets import load_sample_images

    photos = [torch.tensor(im, dtype=torch.float32) for im in load_sample_images().images]
    images = torch.stack(photos).permute(0, 3, 1, 2)
    mean = images.mean(dim=(0, 2, 3), keepdim=True)
    std = images.std(dim=(0, 2, 3), keepdim=True)
    gen = torch.Generator().manual_seed(seed)
    which = torch.randint(len(images), (batch,), generator=gen)
    top = torch.randint(images.shape[2] - size + 1, (batch,), generator=gen)
    left = torch.randint(images.shape[3] - size + 1, (batch,), generator=gen)
    crops = [images[i, :, t:t + size, s:s + size] for i, t, s in zip(which, top, left)]
    return (torch.stack(crops) - mean[0]) / std[0]


def gaussian_batch(batch: int, seed: int = 0, size: int = 32) -> torch.Tensor:
    """``[batch, 3, size, size]`` standard normal entries."""
    return torch.randn(batch, 3, size, size, generator=torch.Generator().manual_seed(seed))


def random_labels(batch: int, num_classes: int = 100, seed: int = 0) -> torch.Tensor:
    """Fixed random class labels (the untrained network has nothing to learn from)."""
    return torch.randint(num_classes, (batch,), generator=torch.Generator().manual_seed(seed))


def conv_layers(model: nn.Module) -> List[Tuple[str, _ConvNd]]:
    """The ``torch.nn.Conv{1,2,3}d`` modules of ``model`` with their names, in order."""
    return [(n, cast(_ConvNd, m)) for n, m in model.named_modules() if isinstance(m, _CONVS)]


@dataclass
class LayerCase:
    """One convolution of a captured backward pass: enough to redo its weight gradient."""

    name: str
    input: torch.Tensor
    grad_output: torch.Tensor
    weight_grad: torch.Tensor
    hyper: Tuple[tuple, tuple, tuple, int]  # stride, padding, dilation, groups

    @property
    def weight_shape(self) -> Tuple[int, ...]:
        return tuple(self.weight_grad.shape)


def capture(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> List[LayerCase]:
    """Inputs, output gradients and exact (autograd) weight gradients of every convolution
    for the cross-entropy loss (mean over the batch) of ``model(x)`` against ``y``."""
    inputs: Dict[str, torch.Tensor] = {}
    grads: Dict[str, torch.Tensor] = {}

    def hook(name: str):
        def fn(module, args, out):
            inputs[name] = args[0].detach()
            out.register_hook(lambda g: grads.__setitem__(name, g.detach()))
        return fn

    layers = conv_layers(model)
    handles = [m.register_forward_hook(hook(n)) for n, m in layers]
    try:
        model.zero_grad(set_to_none=True)
        nn.functional.cross_entropy(model(x), y).backward()
    finally:
        for h in handles:
            h.remove()
    return [LayerCase(n, inputs[n], grads[n], cast(torch.Tensor, m.weight.grad).detach().clone(),
                      (tuple(m.stride), tuple(m.padding), tuple(m.dilation), m.groups))
            for n, m in layers]


class SavedBytes:
    """Bytes saved for backward during a forward pass, per convolution and in total.

    A saved tensor counts with the whole storage it keeps alive, each storage once;
    parameters are not counted (they live anyway). ``per_layer[name]`` holds what the
    convolution ``name`` saved; ``total`` what the whole forward pass saved.

    >>> model = allcnnc()
    >>> with SavedBytes(model) as saved:
    ...     _ = model(torch.randn(2, 3, 32, 32))
    >>> saved.per_layer["0"]  # the first layer keeps its input: 2·3·32·32 floats
    24576
    """

    def __init__(self, model: nn.Module) -> None:
        self.model = model
        self.per_layer: Dict[str, int] = {}
        self.total = 0
        self._current: Optional[str] = None
        self._seen: Dict[int, int] = {}
        self._layer_seen: Dict[str, set] = {}
        self._params = {p.data_ptr() for p in model.parameters()}
        self._handles: list = []

    def _pack(self, t: torch.Tensor) -> torch.Tensor:
        storage = t.untyped_storage()
        ptr = storage.data_ptr()
        if ptr in self._params or t.numel() == 0:
            return t
        self._seen[ptr] = storage.nbytes()
        if self._current is not None:
            seen = self._layer_seen.setdefault(self._current, set())
            if ptr not in seen:
                seen.add(ptr)
                self.per_layer[self._current] = (self.per_layer.get(self._current, 0)
                                                 + storage.nbytes())
        return t

    def _enter(self, name: str):
        def pre(module, args):
            self._current = name
            self.per_layer.setdefault(name, 0)
        return pre

    def _leave(self, module, args, out) -> None:
        self._current = None

    def __enter__(self) -> "SavedBytes":
        for name, module in self.model.named_modules():
            if isinstance(module, (*_CONVS, CRSConv)) or _is_tndiag_conv(module):
                if any(name.startswith(p + ".") for p in self.per_layer):
                    continue  # a wrapper's inner convolution counts with the wrapper
                self._handles += [module.register_forward_pre_hook(self._enter(name)),
                                  module.register_forward_hook(self._leave)]
                self.per_layer[name] = 0
        self._hooks = torch.autograd.graph.saved_tensors_hooks(self._pack, lambda t: t)
        self._hooks.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self._hooks.__exit__(*exc)
        for h in self._handles:
            h.remove()
        self.total = sum(self._seen.values())


def _is_tndiag_conv(module: nn.Module) -> bool:
    return type(module).__module__ == "tndiag.nn" and type(module).__name__ in (
        "Conv1d", "Conv2d", "Conv3d")


class CRSConv(nn.Module):
    """A ``torch.nn.Conv{1,2,3}d`` (shared, as ``.conv``) whose training-mode weight
    gradient is the CRS estimate; exact output, input and bias gradients."""

    def __init__(self, conv: _ConvNd, keep: float,
                 generator: Optional[torch.Generator] = None) -> None:
        super().__init__()
        if conv.padding_mode != "zeros":
            raise ValueError(f"CRSConv supports padding_mode='zeros', got {conv.padding_mode!r}")
        self.conv, self.keep, self.generator = conv, check_keep(keep), generator

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        c = self.conv
        if not (self.training and torch.is_grad_enabled()):
            return c(input)
        return crs_conv(input, c.weight, c.bias, c.stride, c.padding, c.dilation, c.groups,
                        keep=self.keep, generator=self.generator)


def crs_dropout(model: nn.Module, keep: float,
                generator: Optional[torch.Generator] = None) -> nn.Module:
    """Wrap every ``torch.nn.Conv{1,2,3}d`` of ``model`` (in place) in :class:`CRSConv`.

    >>> model = crs_dropout(allcnnc(), keep=0.5)
    >>> type(model[0]).__name__, type(restore_crs(model)[0]).__name__
    ('CRSConv', 'Conv2d')
    """
    keep = check_keep(keep)
    for name, conv in conv_layers(model):
        _replace(model, name, CRSConv(conv, keep, generator))
    return model


def restore_crs(model: nn.Module) -> nn.Module:
    """Undo :func:`crs_dropout`: put the wrapped convolutions back (in place)."""
    for name, module in list(model.named_modules()):
        if isinstance(module, CRSConv):
            _replace(model, name, module.conv)
    return model


def _replace(model: nn.Module, name: str, new: nn.Module) -> None:
    parent, _, child = name.rpartition(".")
    setattr(model.get_submodule(parent) if parent else model, child, new)
