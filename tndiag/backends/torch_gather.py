"""Runtime of sliced patterns: the ``gather`` step and the dense fallback ``Π[s[j], o, k]``.

Both read the run-time vector ``s`` of kept positions (an integer input of the program, see
:mod:`tndiag.codegen.gather`); nothing here is cached, since ``s`` changes with every draw.
"""

from __future__ import annotations

from typing import Callable, List, Tuple

import torch

from tndiag.codegen.gather import GatherSpec
from tndiag.codegen.program import Operand, Step

__all__ = ["prepare_gather", "dense_sliced", "gather_positions"]


def gather_positions(positions: torch.Tensor, out_size: int, taps: int, stride: int,
                     pad_left: int, dilation: int) -> Tuple[torch.Tensor, torch.Tensor]:
    """``(o, valid)``, both ``[m, K]``: the output position each kept input position meets
    with each tap (0 where it meets none) and whether it meets one.

    >>> o, valid = gather_positions(torch.tensor([0, 3]), 4, 2, 1, 0, 1)
    >>> o.tolist(), valid.tolist()
    ([[0, 0], [3, 2]], [[True, False], [True, True]])
    """
    taps_d = torch.arange(taps, device=positions.device) * dilation
    shifted = positions.view(-1, 1) + pad_left - taps_d  # = o·S where Π has an entry
    valid = (shifted >= 0) & (shifted < out_size * stride) & (shifted % stride == 0)
    return torch.where(valid, shifted // stride, 0), valid


def prepare_gather(step: Step) -> Callable:
    """The runner of a :class:`~tndiag.codegen.gather.GatherSpec` step: operands are the
    tensor carrying ``o`` and the position vector."""
    g: GatherSpec = step.info
    m, K = int(g.kept), int(g.taps)

    def run(taken: List[torch.Tensor]) -> torch.Tensor:
        t, positions = taken
        o, valid = gather_positions(positions, int(g.out_size), K, g.stride, g.pad_left,
                                    g.dilation)
        out = t.index_select(g.axis, o.reshape(-1)).unflatten(g.axis, (m, K))
        mask = valid.to(t.dtype).view(m, K, *([1] * (t.dim() - g.axis - 1)))
        return out.mul_(mask)
    return run


def dense_sliced(op: Operand, positions: torch.Tensor, dtype) -> torch.Tensor:
    """``Π[s[j], o, k]`` as a dense ``[m, O, K]`` tensor (the fallback lowering).

    >>> from tndiag.ir import Index, sliced_pattern
    >>> t = sliced_pattern("P", Index("j", 1), Index("o", 3), Index("k", 2), 4, "s")
    >>> dense_sliced(Operand(t, "jok", (1, 3, 2), "sliced-pattern"), torch.tensor([2]),
    ...              torch.float32)[0].tolist()
    [[0.0, 0.0], [0.0, 1.0], [1.0, 0.0]]
    """
    p = op.tensor.pattern_params
    _, O, K = (int(v) for v in op.shape)
    o, valid = gather_positions(positions, O, K, p.stride, p.pad_left, p.dilation)
    hits = (torch.arange(O, device=positions.device).view(1, O, 1) == o.unsqueeze(1))
    return (hits & valid.unsqueeze(1)).to(dtype)
