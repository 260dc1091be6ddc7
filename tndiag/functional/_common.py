"""Argument checks and the run helper shared by the torch-facing functions.

They run on every call, so they stay thin. Hyper-parameters become cache keys only after
:func:`hashable` has checked their types: ``2.0 == 2`` and ``True == 1`` in Python, so a
cache keyed on raw values would accept a float once the int had been seen.
"""

from __future__ import annotations

import functools
import os
from typing import Any, Callable, Hashable, Optional, Sequence, Tuple

import torch

from tndiag.backends.torch import runner
from tndiag.codegen import compile
from tndiag.codegen.lowering import STRUCTURED
from tndiag.codegen.program import AnyProgram
from tndiag.codegen.tuning import on_change
from tndiag.errors import InvalidArgumentError, ShapeError
from tndiag.ir import Diagram
from tndiag.ops.hyper import is_int

__all__ = ["hashable", "check_tensors", "agree", "batched", "weight_ndim", "lowerings_for",
           "program_cache", "compile_for", "Call", "prepare_call", "run_program", "empty_batch",
           "pad_batch"]


def hashable(value: object, name: str) -> Hashable:
    """A typed cache key: ints (also numpy ints, 0-d int tensors) as ``int``, strings kept,
    sequences as tuples; anything else (a float, bool, None, tensor) raises here.

    >>> hashable([1, [2, 3]], "padding")
    (1, (2, 3))
    """
    kind = type(value)
    if kind is int:  # the common cases first: this runs on every call
        return value
    if kind is tuple and all(type(v) is int for v in value):  # type: ignore[attr-defined]
        return value
    if isinstance(value, str):
        return value
    if is_int(value):
        return int(value.__index__())  # type: ignore[attr-defined]
    if isinstance(value, (list, tuple)):
        return tuple(hashable(v, name) for v in value)
    raise InvalidArgumentError(f"{name} must be an int or a sequence of ints, got {value!r}")


def check_tensors(*, optional: Sequence[str] = (), **tensors: object) -> None:
    """Check the named tensors: torch tensors (else TypeError) with one dtype and device.

    The first keyword is the reference for dtype and device; names in ``optional`` may be None.

    >>> check_tensors(input=torch.ones(1), weight=None, optional=("weight",))
    """
    ref: Optional[Tuple[str, torch.Tensor]] = None
    for name, t in tensors.items():
        if t is None and name in optional:
            continue
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
        if ref is None:
            ref = (name, t)
            continue
        first, r = ref
        if t.dtype != r.dtype:
            raise InvalidArgumentError(f"{name} has dtype {t.dtype} but {first} has dtype "
                                       f"{r.dtype}; expected {name}.dtype == {first}.dtype")
        if t.device != r.device:
            raise InvalidArgumentError(f"{name} is on device {t.device} but {first} is on "
                                       f"{r.device}; expected {name}.device == {first}.device")


def agree(first: object, second: object) -> bool:
    """Whether both are torch tensors of one dtype and device: the common case, tested before
    :func:`check_tensors` (which then names what is wrong).

    >>> agree(torch.ones(1), torch.zeros(2)), agree(torch.ones(1), torch.ones(1).double())
    (True, False)
    """
    return (isinstance(first, torch.Tensor) and isinstance(second, torch.Tensor)
            and first.dtype == second.dtype and first.device == second.device)


def weight_ndim(weight_shape: Sequence[int]) -> int:
    """Number of spatial dimensions of a convolution weight ``(C_out, C_in/groups, *K)``."""
    if len(weight_shape) < 3:
        raise ShapeError(f"weight must have rank >= 3 (out channels, in channels / groups, "
                         f"*kernel_size), got shape {tuple(weight_shape)}")
    return len(weight_shape) - 2


def batched(input_shape: Sequence[int], ndim: int, what: str) -> bool:
    """Whether ``input_shape`` has a batch axis (rank ``ndim + 2``) or not (rank ``ndim + 1``)."""
    if len(input_shape) == ndim + 2:
        return True
    if len(input_shape) == ndim + 1:
        return False
    raise ShapeError(f"{what}: expected input of rank {ndim + 2} (batched) or {ndim + 1} "
                     f"(unbatched) for {ndim} spatial dimensions, got input of shape "
                     f"{tuple(input_shape)}")


def lowerings_for(dtype: torch.dtype, what: str, bool_ok: bool = False) -> Optional[str]:
    """``None`` (all lowerings) for floating and complex dtypes, ``"no-native"`` for integers.

    torch's convolution kernels lack most integer dtypes (and its backward kernels all of
    them), so integer tensors are contracted by einsum steps. ``torch.bool`` is refused,
    as torch refuses it, unless ``bool_ok``.
    """
    if dtype.is_floating_point or dtype.is_complex:
        return None
    if dtype == torch.bool and not bool_ok:
        raise InvalidArgumentError(f"{what} does not support dtype torch.bool (torch's "
                                   f"convolutions do not either); convert to a number type")
    return "no-native"


def program_cache(maxsize: int) -> Callable[[Callable], Callable]:
    """``functools.lru_cache(maxsize)`` for functions returning compiled programs; emptied
    when the tuning mode changes (:func:`tndiag.set_tuning`), as the programs depend on it."""
    def decorate(fn: Callable) -> Callable:
        cached = functools.lru_cache(maxsize=maxsize)(fn)
        on_change(cached.cache_clear)
        return cached
    return decorate


def compile_for(diagram: Diagram, lowerings: Optional[str]) -> AnyProgram:
    """Compile with every lowering, or (``"no-native"``) without torch's conv kernels."""
    if lowerings is None:
        return compile(diagram)
    return compile(diagram, lowerings=tuple(name for name in STRUCTURED if name != "native"))


@functools.lru_cache(maxsize=1)
def _physical_memory() -> Optional[int]:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # no sysconf on this platform
        return None


#: A prepared call of a program: ``call(dtype, tensors)`` runs it on checked positional tensors.
Call = Callable[[torch.dtype, Sequence[torch.Tensor]], torch.Tensor]


def prepare_call(program: AnyProgram, what: str) -> Call:
    """``call(dtype, tensors)`` running ``program`` on tensors checked by the caller; it
    refuses a plan whose intermediates at ``dtype``'s element size exceed the physical
    memory. Made once per program (the functions cache it with the program), so a call
    costs one comparison before the backend's runner. The result never aliases an input.

    >>> from tndiag import compile, ops
    >>> call = prepare_call(compile(ops.conv((1, 1, 4), (1, 1, 2))), "conv")
    >>> call(torch.float32, (torch.ones(1, 1, 4), torch.ones(1, 1, 2))).tolist()
    [[[2.0, 2.0, 2.0]]]
    """
    peak, limit = getattr(program, "peak_memory", 0), _physical_memory() or 0
    checked = limit > 0 and isinstance(peak, int) and peak > 0
    most = limit // peak if checked else 0  # the largest element size that fits
    run = runner(program)

    def call(dtype: torch.dtype, tensors: Sequence[torch.Tensor]) -> torch.Tensor:
        if checked and dtype.itemsize > most:
            raise InvalidArgumentError(
                f"{what}: the sizes and hyper-parameters need "
                f"{peak * dtype.itemsize / 2**30:.1f} GiB of intermediates, more than this "
                f"computer's memory ({limit / 2**30:.1f} GiB); check stride, padding, "
                f"dilation and the shapes")
        return run(tensors)
    return call


def run_program(program: AnyProgram, what: str, dtype: torch.dtype, *args: torch.Tensor,
                **kwargs: torch.Tensor) -> torch.Tensor:
    """Run ``program`` once (see :func:`prepare_call`, which repeated calls should keep);
    keyword tensors are taken in ``program.inputs`` order."""
    if kwargs:
        args = tuple(kwargs[name] for name in program.inputs)
    return prepare_call(program, what)(dtype, args)


def pad_batch(t: torch.Tensor) -> torch.Tensor:
    """``t`` with one zero sample appended on axis 0 (keeps autograd to ``t``)."""
    return torch.cat([t, t.new_zeros((1, *t.shape[1:]))])


def empty_batch(fn: Callable[..., torch.Tensor], *tensors: Any) -> torch.Tensor:
    """torch's answer for an empty batch (N = 0): ``fn`` on one zero sample, then sliced.

    Diagrams have positive sizes; evaluating one zero sample gives the right shape, dtype
    and device and keeps the result attached to the inputs for autograd.
    """
    return fn(*(pad_batch(t) for t in tensors))[:0]
