"""Runtime of sliced patterns: the ``gather`` step and the dense fallback ``Π[s[j], o, k]``.

Both read the run-time vector ``s`` of kept positions (an int64 input of the program, see
:mod:`tndiag.codegen.lowerings.gather`); nothing here is cached, since ``s`` changes with
every draw. :func:`gather_recipe` is the :data:`~tndiag.backends.torch_native.STEPS` row of
the step kind ``gather``; :func:`run_gather` its kernel.
"""

from __future__ import annotations

import math
from typing import Any, List, Tuple

import torch

from tndiag.codegen.lowerings.gather import GatherSpec
from tndiag.codegen.program import Operand, Step

__all__ = ["gather_positions", "gather_recipe", "run_gather", "dense_sliced",
           "sliced_pattern_tensor", "select_slices"]


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


def select_slices(t: torch.Tensor, axis: int, index: torch.Tensor) -> torch.Tensor:
    """``t.index_select(axis, index)`` through a 3-d view ``[before, size, after]`` (torch's
    kernel for an inner axis of a 4-d or 5-d tensor is many times slower on CPU).

    >>> t, index = torch.arange(24.).view(2, 3, 4), torch.tensor([2, 0])
    >>> torch.equal(select_slices(t, 1, index), t.index_select(1, index))
    True
    """
    shape = t.shape
    before, after = math.prod(shape[:axis]), math.prod(shape[axis + 1:])
    out = t.reshape(before, shape[axis], after).index_select(1, index)
    return out.view(*shape[:axis], index.numel(), *shape[axis + 1:])


def gather_recipe(step: Step) -> Tuple[Any, tuple]:
    """``(run_gather, recipe)`` of a :class:`~tndiag.codegen.lowerings.gather.GatherSpec` step."""
    g: GatherSpec = step.info
    return run_gather, (g.axis, int(g.kept), int(g.out_size), int(g.taps), g.stride,
                        g.pad_left, g.dilation)


def run_gather(recipe: tuple, taken: List[torch.Tensor]) -> torch.Tensor:
    """The tensor carrying ``o`` (``taken[0]``) read at the kept positions (``taken[1]``).

    >>> t = torch.arange(4.).view(1, 4)  # o = 0..3
    >>> run_gather((1, 2, 4, 2, 1, 0, 1), [t, torch.tensor([0, 3])]).tolist()
    [[[0.0, 0.0], [3.0, 2.0]]]
    """
    axis, m, O, K, stride, pad_left, dilation = recipe
    t, positions = taken
    o, valid = gather_positions(positions, O, K, stride, pad_left, dilation)
    out = select_slices(t, axis, o.reshape(-1)).unflatten(axis, (m, K))
    mask = valid.to(t.dtype).view(m, K, *([1] * (t.dim() - axis - 1)))
    return out.mul_(mask)


def sliced_pattern_tensor(positions: torch.Tensor, O: int, K: int, stride: int,
                          pad_left: int, dilation: int, dtype) -> torch.Tensor:
    """``Π[s[j], o, k]`` as a dense ``[m, O, K]`` tensor from literal pattern parameters.

    >>> sliced_pattern_tensor(torch.tensor([2]), 3, 2, 1, 0, 1, torch.float32)[0].tolist()
    [[0.0, 0.0], [0.0, 1.0], [1.0, 0.0]]
    """
    o, valid = gather_positions(positions, O, K, stride, pad_left, dilation)
    hits = torch.arange(O, device=positions.device).view(1, O, 1) == o.unsqueeze(1)
    return (hits & valid.unsqueeze(1)).to(dtype)


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
    return sliced_pattern_tensor(positions, O, K, p.stride, p.pad_left, p.dilation, dtype)
