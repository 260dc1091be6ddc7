"""Tensor dropout: unbiased weight-gradient estimates from kept slices of the input.

The weight VJP is linear in the input ``X`` (docs/method.md, tensor dropout), so keeping
each slice of one leg of ``X`` with probability ``keep`` and scaling by ``1/keep`` gives an
unbiased estimate. The diagram is sub-sampled by the ``subsample`` pass and compiled once
per number of kept slices; the positions are an input of the program, so the contraction
really runs on the smaller leg. :data:`SAMPLERS` holds one row per ``sample`` mode:

- ``"spatial"``: whole slices along one spatial leg, the first (``dim=0``, image rows) by
  default: a kept slice is one contiguous block of ``X`` per sample and channel, and its
  pattern becomes a sliced pattern that the codegen lowers to a gather of ``grad_output``.
- ``"channel"``: input channels ``ci``. With groups, the kept positions index channels
  within a group and the same ones are kept in every group (the weight has ``C_in/G``
  input channels, so the grouped layout stays intact); dropped channels get zero gradient.
- ``"crs"``: the baseline, Bernoulli column-row sampling of the unfolded product with
  norm-proportional probabilities (:mod:`tndiag.functional.crs`); it needs the output
  gradient's norms, so a module cannot drop input slices before backward.

The kept positions are drawn from ``generator`` (a :class:`torch.Generator`, or torch's
default one) on its device.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Dict, Optional, Sequence, Tuple

import torch

from tndiag import ops
from tndiag.backends.torch_gather import select_slices
from tndiag.codegen.program import AnyProgram, sample_inputs
from tndiag.errors import InvalidArgumentError
from tndiag.functional._common import compile_for, program_cache, run_program
from tndiag.passes.subsample import check_keep, subsample

__all__ = ["SAMPLERS", "Draw", "draw", "kept_input", "weight_vjp_from_kept", "check_sample",
           "check_generator", "spatial_estimate", "channel_estimate", "approximate_program",
           "approximate_weight_vjp", "check_keep"]


@dataclass(frozen=True)
class Draw:
    """One draw of kept slices: the diagram's ``leg``, the input's ``axis`` carrying it, the
    leg's full size, the ``positions`` kept (sorted, int64) and ``keep``."""

    leg: str
    axis: int
    size: int
    positions: torch.Tensor
    keep: float


def check_generator(generator: object) -> Optional[torch.Generator]:
    """``generator`` if it is None or a :class:`torch.Generator`, else a TypeError."""
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator or None, got "
                        f"{type(generator).__name__}")
    return generator


def check_sample(sample: object, modes: Sequence[str] = ()) -> str:
    """``sample`` if it is a mode of :data:`SAMPLERS` (or of ``modes``), else an error."""
    known = tuple(modes) or tuple(SAMPLERS)
    if not isinstance(sample, str) or sample not in known:
        raise InvalidArgumentError(f"sample must be one of {list(known)}, got {sample!r}")
    return sample


def _leg(sample: str, input_shape: Sequence[int], groups: int, dim: int) -> Tuple[str, int, int]:
    """``(leg name, input axis, leg size)`` sampled by ``sample`` (a layout of ``X``)."""
    nd = len(input_shape) - 2
    if sample == "channel":
        return "ci", 1, input_shape[1] // groups
    if isinstance(dim, bool) or not isinstance(dim, int) or not 0 <= dim < nd:
        raise InvalidArgumentError(f"dim must be a spatial dimension in [0, {nd}), got {dim!r}")
    size = input_shape[2 + dim]
    if size == 1:
        raise InvalidArgumentError(
            f"sample='spatial' needs spatial size > 1 along dim={dim}, but the input has "
            f"shape {list(input_shape)}; choose another dim or sample='channel'")
    return f"i{dim + 1}", 2 + dim, size


def draw(sample: str, input_shape: Sequence[int], groups: int, keep: float,
         generator: Optional[torch.Generator] = None, dim: int = 0) -> Draw:
    """Keep each slice of the leg that ``sample`` names with probability ``keep``.

    >>> d = draw("spatial", (2, 3, 8, 8), 1, 0.5, torch.Generator().manual_seed(0))
    >>> d.leg, d.axis, d.size, d.positions.dtype
    ('i1', 2, 8, torch.int64)
    """
    leg, axis, size = _leg(sample, input_shape, groups, dim)
    device = generator.device if generator is not None else None
    mask = torch.rand(size, generator=generator, device=device) < keep
    return Draw(leg, axis, size, mask.nonzero().flatten(), keep)


def kept_input(input: torch.Tensor, d: Draw, groups: int = 1) -> torch.Tensor:
    """The kept slices of ``input`` (a new tensor; channels gathered within each group).

    >>> x = torch.arange(8.).view(1, 4, 2)
    >>> d = Draw("ci", 1, 2, torch.tensor([1]), 0.5)
    >>> kept_input(x, d, groups=2)[0, :, 0].tolist()
    [2.0, 6.0]
    """
    positions = d.positions.to(input.device)
    if d.leg != "ci" or groups == 1:
        return select_slices(input, d.axis, positions)
    n, c, *rest = input.shape
    grouped = select_slices(input.reshape(n, groups, c // groups, *rest), 2, positions)
    return grouped.reshape(n, groups * positions.numel(), *rest)


@program_cache(1024)
def approximate_program(leg: str, kept: int, keep: float, input_shape, weight_shape,
                        stride=1, padding=0, dilation=1, groups=1,
                        lowerings: Optional[str] = None) -> AnyProgram:
    """The compiled weight VJP with ``kept`` slices of ``leg`` (cached; positions as input).

    >>> p = approximate_program("i1", 3, 0.5, (2, 3, 8), (4, 3, 3))
    >>> p.inputs, p.input_shapes
    (('X', 'V', 'keep_i1'), ((2, 3, 3), (2, 4, 6), (3,)))
    """
    diagram = ops.conv_weight_vjp(input_shape, weight_shape, stride=stride, padding=padding,
                                  dilation=dilation, groups=groups)
    return compile_for(subsample(diagram, leg, keep, "bernoulli", kept, f"keep_{leg}"),
                       lowerings)


def weight_vjp_from_kept(kept: torch.Tensor, d: Draw, input_shape: Tuple[int, ...],
                         weight_shape: Tuple[int, ...], grad_output: torch.Tensor,
                         hyper: tuple, lowerings: Optional[str] = None) -> torch.Tensor:
    """The unbiased weight-gradient estimate from the kept slices of the input.

    ``hyper`` is the checked ``(stride, padding, dilation, groups)``; dropped input channels
    get zero rows.
    """
    m = int(d.positions.numel())
    if m == 0:
        return grad_output.new_zeros(weight_shape)
    program = approximate_program(d.leg, m, d.keep, tuple(input_shape), tuple(weight_shape),
                                  *hyper, lowerings)
    positions = d.positions.to(grad_output.device)
    extra = {name: positions for name in sample_inputs(program)}  # spatial: the gather's
    g = run_program(program, "conv_weight_vjp", grad_output.dtype, X=kept, V=grad_output,
                    **extra)
    if d.leg != "ci":
        return g
    out = g.new_zeros(weight_shape)
    return out.index_copy_(1, positions, g)


def _estimate(sample: str) -> Callable[..., torch.Tensor]:
    def estimate(input: torch.Tensor, weight_shape: Tuple[int, ...],
                 grad_output: torch.Tensor, hyper: tuple, keep: float,
                 generator: Optional[torch.Generator], dim: int = 0,
                 lowerings: Optional[str] = None) -> torch.Tensor:
        groups = hyper[3]
        d = draw(sample, tuple(input.shape), groups, keep, generator, dim)
        return weight_vjp_from_kept(kept_input(input, d, groups), d, tuple(input.shape),
                                    weight_shape, grad_output, hyper, lowerings)
    estimate.__name__ = f"{sample}_estimate"
    estimate.__doc__ = f"The weight-gradient estimate keeping {sample} slices of the input."
    return estimate


spatial_estimate = _estimate("spatial")
channel_estimate = _estimate("channel")

#: sample mode -> ``estimate(input, weight_shape, grad_output, hyper, keep, generator, dim,
#: lowerings)`` returning an unbiased estimate of the weight gradient.
def _crs_estimate(*args: object) -> torch.Tensor:
    """:func:`tndiag.functional.crs.crs_estimate`, imported on first use (that module
    imports the functions that import this one)."""
    from tndiag.functional.crs import crs_estimate

    return crs_estimate(*args)  # type: ignore[arg-type]


SAMPLERS: Dict[str, Callable[..., torch.Tensor]] = {
    "spatial": spatial_estimate,
    "channel": channel_estimate,
    "crs": _crs_estimate,
}


def approximate_weight_vjp(input: torch.Tensor, weight_shape: Tuple[int, ...],
                           grad_output: torch.Tensor, hyper: tuple, keep: float,
                           sample: str, generator: Optional[torch.Generator], dim: int,
                           lowerings: Optional[str]) -> torch.Tensor:
    """Checks, then the estimate of :data:`SAMPLERS` ``[sample]`` (``keep < 1``; shapes are
    checked by :func:`tndiag.functional.conv_weight_vjp`)."""
    check_keep(keep)
    check_generator(generator)
    if not (input.dtype.is_floating_point or input.dtype.is_complex):
        raise InvalidArgumentError(f"conv_weight_vjp with keep < 1 rescales by 1/keep and "
                                   f"needs a floating-point input, got {input.dtype}")
    return SAMPLERS[sample](input, weight_shape, grad_output, hyper, keep, generator, dim,
                            lowerings)
