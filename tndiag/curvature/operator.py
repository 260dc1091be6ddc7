"""The block-diagonal Kronecker-factored curvature of a model as a linear operator."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Callable, Dict, List, Optional, Sequence, Tuple, Union

import torch

from tndiag.curvature.layers import Layer
from tndiag.errors import InvalidArgumentError, ShapeError

__all__ = ["LayerFactors", "KFAC"]

Vector = Union[torch.Tensor, Sequence[torch.Tensor]]


@dataclass(frozen=True)
class LayerFactors:
    """Kronecker factors of one layer; each block of the curvature is ``B ⊗ A`` per group.

    Attributes:
        name: the layer's module name.
        input: ``A`` ``[G, d_in, d_in]`` of the weight (``d_in = C_in/G·∏K``, plus one when
            the bias is merged into it), or None when the weight is not covered.
        grad_output: ``B`` ``[G, d_out, d_out]`` (``d_out = C_out/G``), shared by weight and bias.
        bias_input: ``[G, 1, 1]`` factor of a separate bias block (ones for the curvature
            itself), or None when the bias is merged or not covered.
        merged: whether the bias is a last column of the weight matrix ``[W | b]``.
    """

    name: str
    input: Optional[torch.Tensor]
    grad_output: torch.Tensor
    bias_input: Optional[torch.Tensor]
    merged: bool


def _blocks(layer: Layer, f: LayerFactors, offsets: Dict[int, int]):
    """``(A, B, index)`` per block; ``index[g, r, c]`` is the flat position of entry (r, c)."""
    pos = {}
    for p in (layer.weight, layer.bias):
        if p is not None:
            pos[id(p)] = torch.arange(p.numel()).add_(offsets[id(p)]).reshape(p.shape)
    out = []
    if layer.weight is not None:
        idx = layer.weight_view(pos[id(layer.weight)])
        if f.merged:
            idx = torch.cat([idx, layer.bias_view(pos[id(layer.bias)])], dim=2)
        out.append((f.input, f.grad_output, idx))
    if layer.bias is not None and not f.merged:
        out.append((f.bias_input, f.grad_output, layer.bias_view(pos[id(layer.bias)])))
    return out


class KFAC:
    """Block-diagonal KFAC approximation ``⊕_layers ⊕_groups B ⊗ A`` (see :func:`kfac`).

    Vectors are flat (the covered parameters concatenated in model order, see
    :attr:`param_names`) or lists of tensors shaped like those parameters.
    """

    def __init__(self, layers: List[Layer], factors: Dict[str, LayerFactors],
                 param_names: Dict[int, str]) -> None:
        self._layers = layers
        self._factors = factors
        self.params = [p for l in layers for p in (l.weight, l.bias) if p is not None]
        self.param_names = [param_names[id(p)] for p in self.params]
        starts = [0, *torch.tensor([p.numel() for p in self.params]).cumsum(0).tolist()]
        self._offsets = {id(p): s for p, s in zip(self.params, starts[:-1], strict=True)}
        self.dim = starts[-1]
        self._block_list: Optional[list] = None

    @property
    def modules(self) -> List[str]:
        """Names of the covered layers, in model order."""
        return [l.name for l in self._layers]

    def __getitem__(self, name: str) -> LayerFactors:
        if name not in self._factors:
            raise KeyError(f"no covered layer {name!r}; covered are {self.modules}")
        return self._factors[name]

    def _each_block(self):
        if self._block_list is None:
            self._block_list = [b for layer in self._layers for b in
                                _blocks(layer, self._factors[layer.name], self._offsets)]
        return self._block_list

    def _flat(self, v: Vector) -> Tuple[torch.Tensor, bool]:
        if isinstance(v, torch.Tensor):
            if v.shape != (self.dim,):
                raise ShapeError(f"vector has shape {list(v.shape)}, expected [{self.dim}]")
            return v, True
        v = list(v)
        shapes = [tuple(p.shape) for p in self.params]
        if [tuple(t.shape) for t in v] != shapes:
            raise ShapeError(f"vector list has shapes {[tuple(t.shape) for t in v]}, expected "
                             f"{shapes}")
        return torch.cat([t.reshape(-1) for t in v]), False

    def __matmul__(self, v: Vector) -> Vector:
        """``K @ v`` for a flat vector or a list of parameter-shaped tensors."""
        x, flat = self._flat(v)
        out = torch.empty_like(x)
        for A, B, idx in self._each_block():
            idx = idx.to(x.device)
            out[idx] = B @ x[idx] @ A.mT
        if flat:
            return out
        parts = out.split(self._sizes())
        return [t.reshape(p.shape) for t, p in zip(parts, self.params, strict=True)]

    def _sizes(self) -> List[int]:
        return [p.numel() for p in self.params]

    def _map(self, fn: Callable[[torch.Tensor], torch.Tensor]) -> "KFAC":
        factors = {k: replace(f, input=None if f.input is None else fn(f.input),
                              grad_output=fn(f.grad_output),
                              bias_input=None if f.bias_input is None else fn(f.bias_input))
                   for k, f in self._factors.items()}
        names = dict(zip(map(id, self.params), self.param_names, strict=True))
        return KFAC(self._layers, factors, names)

    def inverse(self, damping: float = 1e-3) -> "KFAC":
        """``⊕ (B + √λ I)⁻¹ ⊗ (A + √λ I)⁻¹``: each factor damped by ``√damping``, inverted.

        >>> from tndiag.curvature import kfac
        >>> K = kfac(torch.nn.Linear(3, 2), torch.nn.MSELoss(), torch.randn(8, 3),
        ...          torch.randn(8, 2), fisher_type="type-2")
        >>> v = torch.randn(K.dim)
        >>> torch.allclose(K.inverse(0.0) @ (K @ v), v, atol=1e-3)
        True
        """
        if not isinstance(damping, (int, float)) or isinstance(damping, bool) or damping < 0:
            raise InvalidArgumentError(f"damping must be a number >= 0, got {damping!r}")
        root = math.sqrt(damping)

        def inv(M: torch.Tensor) -> torch.Tensor:
            eye = torch.eye(M.shape[-1], dtype=M.dtype, device=M.device)
            return torch.linalg.inv(M + root * eye)
        return self._map(inv)

    def to_dense(self) -> torch.Tensor:
        """The ``[P, P]`` matrix (P = number of covered parameter entries); small models only.

        >>> from tndiag.curvature import kfac
        >>> K = kfac(torch.nn.Linear(3, 2), torch.nn.MSELoss(), torch.randn(8, 3),
        ...          torch.randn(8, 2))
        >>> K.to_dense().shape
        torch.Size([8, 8])
        """
        ref = next(iter(self._factors.values())).grad_output
        dense = torch.zeros(self.dim, self.dim, dtype=ref.dtype, device=ref.device)
        for A, B, idx in self._each_block():
            for g in range(idx.shape[0]):
                rows = idx[g].reshape(-1)
                dense[rows.unsqueeze(1), rows.unsqueeze(0)] = torch.kron(B[g], A[g])
        return dense

    def __repr__(self) -> str:
        return f"KFAC({len(self._layers)} layers, {self.dim} parameters)"

