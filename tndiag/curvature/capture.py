"""Hooks around a model: layer inputs from forward hooks, output gradients from one backward.

The backward pass propagates the loss-Hessian square-root columns ``S`` (``[Z, N, ...]``)
from the model output to every covered layer's output, never to the parameters (their
``.grad`` stay untouched and no weight gradient is computed). With ``Z = 1`` the gradients
are consumed in autograd node pre-hooks as they appear, so at most one is alive at a time;
with ``Z > 1`` all columns travel at once as a batch (``is_grads_batched``, no Python loop).
Every hook is removed when the context exits, also when the model or the loss raises.
"""

from __future__ import annotations

import contextlib
import math
from typing import Callable, Dict, Iterator, List, Optional

import torch
from torch.autograd.graph import GradientEdge, get_gradient_edge

from tndiag.curvature.layers import Layer
from tndiag.errors import InvalidArgumentError

__all__ = ["capture", "Recorder"]

#: Most layer-output elements (all layers, all columns of one chunk) alive in a batched backward.
COLUMN_BUDGET = 1 << 26

OnInput = Callable[[Layer, torch.Tensor, torch.Size], None]
OnGrad = Callable[[Layer, Optional[torch.Tensor]], None]


class Recorder:
    """What the forward hooks saw: each layer's output edge, output shape and call count."""

    def __init__(self, layers: List[Layer]) -> None:
        self.layers = layers
        self.edges: Dict[Layer, GradientEdge] = {}
        self.shapes: Dict[Layer, torch.Size] = {}

    def hook(self, layer: Layer, on_input: OnInput):
        def forward_hook(module, args, output) -> None:
            if layer in self.edges:
                raise InvalidArgumentError(
                    f"layer {layer.name!r} was called more than once in one forward pass; "
                    f"shared layers are not supported")
            if not isinstance(output, torch.Tensor) or output.grad_fn is None:
                raise InvalidArgumentError(f"layer {layer.name!r} produced no differentiable "
                                           f"output (is autograd disabled?)")
            self.edges[layer] = get_gradient_edge(output)
            self.shapes[layer] = output.shape
            with torch.no_grad():
                on_input(layer, args[0].detach(), output.shape)
        return forward_hook

    def backward(self, output: torch.Tensor, S: torch.Tensor, on_grad: OnGrad) -> None:
        """Propagate ``S`` (``[Z, *output.shape]``) and hand each layer's gradients to
        ``on_grad`` (``[Z'·N, ...]``, flattened over ``z`` and ``n``; None if unreachable).

        With ``Z > 1`` the columns travel in chunks of at most ``COLUMN_BUDGET`` elements
        of layer outputs each, so ``on_grad`` may be called several times per layer (once
        per chunk): it must accumulate.
        """
        missing = [l.name for l in self.layers if l not in self.edges]
        if missing:
            raise InvalidArgumentError(f"layers {missing} were not called in the forward pass")
        if S.shape[0] == 1:
            self._streamed(output, S[0], on_grad)
            return
        per_column = sum(math.prod(shape) for shape in self.shapes.values())
        chunks = S.split(max(1, COLUMN_BUDGET // max(per_column, 1)))
        edges = [self.edges[l] for l in self.layers]
        for i, chunk in enumerate(chunks):
            grads = torch.autograd.grad(output, edges, chunk, is_grads_batched=True,
                                        retain_graph=i + 1 < len(chunks), allow_unused=True)
            for layer, g in zip(self.layers, grads, strict=True):
                on_grad(layer, None if g is None else g.flatten(0, 1))

    def _streamed(self, output: torch.Tensor, S: torch.Tensor, on_grad: OnGrad) -> None:
        """Every layer's gradient in a pre-hook of its backward node, freed right after.

        Autograd is asked for the gradients of the *parameters* of the source layers only
        (see :meth:`_sources`), so every covered layer's node runs and no layer-output
        gradient is kept until the end; the few source-layer parameter gradients are
        discarded (``.grad`` is never written).
        """
        seen: set = set()

        def consume(layer: Layer, g: Optional[torch.Tensor]) -> None:
            seen.add(layer)
            on_grad(layer, g)
        handles = [self.edges[l].node.register_prehook(_pre(l, self.edges[l], consume))
                   for l in self.layers]
        try:
            targets = [p for p in (l.weight if l.weight is not None else l.bias
                                   for l in self._sources()) if p is not None]
            torch.autograd.grad(output, targets, S, allow_unused=True)
        finally:
            for h in handles:
                h.remove()
        for layer in self.layers:
            if layer not in seen:
                on_grad(layer, None)

    def _sources(self) -> List[Layer]:
        """Layers whose backward node reaches no other layer's node: requesting gradients
        behind them makes autograd run every layer's node (and its pre-hook)."""
        nodes = {self.edges[l].node: l for l in self.layers}
        return [l for l in self.layers if not _reaches(self.edges[l].node, nodes)]


def _pre(layer: Layer, edge: GradientEdge, on_grad: OnGrad):
    def prehook(grad_outputs):
        on_grad(layer, grad_outputs[edge.output_nr])
    return prehook


def _reaches(start, targets) -> bool:
    """Whether another node of ``targets`` is reachable from ``start`` via next_functions."""
    stack, seen = [start], {start}
    while stack:
        for nxt, _ in stack.pop().next_functions:
            if nxt is None or nxt in seen:
                continue
            if nxt in targets:
                return True
            seen.add(nxt)
            stack.append(nxt)
    return False


@contextlib.contextmanager
def capture(layers: List[Layer], on_input: OnInput) -> Iterator[Recorder]:
    """Install forward hooks on ``layers`` for the duration of the ``with`` block.

    >>> from tndiag.curvature.layers import find_layers
    >>> net = torch.nn.Linear(3, 2)
    >>> with capture(find_layers(net), lambda l, x, shape: None) as rec:
    ...     _ = net(torch.randn(4, 3))
    >>> list(rec.shapes.values()), len(net._forward_hooks)
    ([torch.Size([4, 2])], 0)
    """
    rec = Recorder(layers)
    handles = [l.module.register_forward_hook(rec.hook(l, on_input)) for l in layers]
    try:
        yield rec
    finally:
        for h in handles:
            h.remove()
