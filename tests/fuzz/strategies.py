"""Shared pieces of the fuzz suite: pools of bad values by kind, call templates, the rule.

The rule every public entry point follows: it returns, or raises a ``tndiag.TndiagError``
subclass, or a ``TypeError`` when a non-tensor was given where a tensor is required —
nothing else (no ``AttributeError``, ``KeyError``, raw torch errors, hangs), and quickly.

A *template* is an entry point with a valid call (each argument tagged with its kind); a
fuzz example replaces one or two arguments by values drawn for their kind (mostly bad,
sometimes other valid ones) and checks the rule with :func:`check_rule`.
"""

from __future__ import annotations

import gc
import signal
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Iterator, List, Tuple

import numpy as np
import torch
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

import tndiag

#: Settings of every fuzz test: fixed seed, 200 examples per entry point, no deadline
#: (the rule's own time guard is per call).
FUZZ = settings(max_examples=200, derandomize=True, deadline=None, database=None,
                suppress_health_check=list(HealthCheck))
# CPU seconds of the calling thread one call may take, garbage collection paused: robust to
# a busy machine and to other threads; far below what a runaway plan or allocation costs
# (two CI runs billed one cached-plan export 2.8 and 3.6 s once, then ≤ 0.08 s on replay).
CPU_LIMIT_S = 5.0
WATCHDOG_S = 30  # wall seconds before a call counts as a hang

HUGE = [2**63, 10**30, -2**63, 2**63 - 1]
BAD_INTS = [-1, 0, *HUGE]
ODD = [None, True, False, 2.0, 2.5, float("nan"), float("inf"), 1j, "", "3", "abc", b"x", [],
       (), {}, {"a": 1}, object(), slice(1), np.float64(2.0), np.array([1, 2]), (1, None),
       (2.0, 1), (True,), [[-1, 0]], ((1, 2), (3,)), "a|b", "X", 1e300]
TENSOR_LIKE = [torch.tensor([1.0, 2.0]), torch.tensor(2.0), torch.tensor([1, 2]),
               torch.tensor(True), torch.tensor(2), np.int64(2)]
PAD_EXTRA = ["same", "valid", "full", ((1, 2),), ((1, -1), (0, 0)), ((1, 2, 3),), ((0, 1),) * 3,
             (0, 1), [1, 1], 2**62]
SIZE_EXTRA = [(), (0,), (3, 3, 3, 3), (2**63,), (1.5,), (None,), ((1, 2),), (2, 2), [2], 1, 3]
FLAG_EXTRA = [0, 1, np.bool_(True), torch.tensor(True), torch.tensor([1.0, 0.0])]
NDIM_EXTRA = [2**31, 10**5, 17, 16, 1, 3, -3]


def shape_variants(shape: Tuple[int, ...]) -> List[Any]:
    """Wrong and right ways to give ``shape``."""
    return [shape, list(shape), torch.Size(shape), shape[:-1], shape[:1], shape + (2,),
            "abcd", "1,2,3", ",".join(map(str, shape)), (0, *shape[1:]), (-1, *shape[1:]),
            (2.5, *shape[1:]), (None, *shape[1:]), (10**30, *shape[1:]), np.array(shape),
            (*shape[:-1], "I1"), (*shape[:-1], ","), (True, *shape[1:])]


def tensor_variants(shape: Tuple[int, ...]) -> List[Callable[[], Any]]:
    """Factories of wrong and right tensors (and non-tensors) for a tensor of ``shape``."""
    def make(s, **kw):
        return lambda: torch.ones(s, **kw)
    return [make(shape), make(shape, dtype=torch.float32), make(shape, dtype=torch.int64),
            make(shape, dtype=torch.int32), make(shape, dtype=torch.bool),
            make(shape, dtype=torch.complex128), make((0, *shape[1:])), make(shape[:-1]),
            make((*shape, 1)), make((*shape[:-1], shape[-1] + 1)), make(()),
            make(shape, device="meta"),
            lambda: torch.ones(shape[::-1]).permute(*reversed(range(len(shape)))),
            make(shape, requires_grad=True), lambda: None, lambda: [1.0, 2.0],
            lambda: np.ones(shape), lambda: 3.0, lambda: "x"]


@dataclass(frozen=True)
class Arg:
    """One argument of a template: its kind and its valid value (a factory for tensors)."""

    kind: str
    valid: Any


@dataclass(frozen=True)
class Template:
    """An entry point and one valid call of it (keyword arguments)."""

    name: str
    fn: Callable[..., Any]
    args: Dict[str, Arg] = field(default_factory=dict)


def _pool(arg: Arg) -> List[Any]:
    """Candidate values for ``arg`` (tensor kinds: factories)."""
    if arg.kind == "tensor":
        return tensor_variants(tuple(arg.valid().shape))
    extra = {"shape": shape_variants(arg.valid) if isinstance(arg.valid, tuple) else [],
             "int": [1, 2, 3], "pad": PAD_EXTRA + [0, 1], "size": SIZE_EXTRA,
             "flag": FLAG_EXTRA, "ndim": NDIM_EXTRA, "scale": [0.5, -1.0, 1],
             "any": []}[arg.kind]
    return [arg.valid, *extra, *BAD_INTS, *ODD, *TENSOR_LIKE]


@st.composite
def calls(draw, template: Template) -> Tuple[Dict[str, Any], bool]:
    """Keyword arguments with one or two replaced, and whether a tensor became a non-tensor."""
    names = list(template.args)
    chosen = draw(st.lists(st.sampled_from(names), min_size=1, max_size=2, unique=True))
    kwargs: Dict[str, Any] = {}
    non_tensor = False
    for name, arg in template.args.items():
        value = draw(st.sampled_from(_pool(arg))) if name in chosen else arg.valid
        if arg.kind == "tensor":
            value = value()
            non_tensor |= value is not None and not isinstance(value, torch.Tensor)
            non_tensor |= value is None  # None where a tensor is required
        kwargs[name] = value
    return kwargs, non_tensor


class Hang(Exception):
    """Raised by the watchdog: the call did not return in time."""


@contextmanager
def watchdog(seconds: float = WATCHDOG_S) -> Iterator[None]:
    """Turn a hang into :class:`Hang` (SIGALRM; the main thread of each test process)."""
    def handler(signum, frame):
        raise Hang(f"no answer within {seconds} s")
    old = signal.signal(signal.SIGALRM, handler)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def check_rule(call: Callable[[], Any], what: str, non_tensor: bool = False) -> Any:
    """Run ``call`` and assert the rule; returns the result (None when it raised)."""
    result = None
    gc.disable()  # a collection of the whole test process's heap is not the call's cost
    start = time.thread_time()
    try:
        with watchdog():
            result = call()
    except tndiag.TndiagError as err:
        assert str(err), f"{what}: {type(err).__name__} without a message"
    except TypeError as err:
        assert non_tensor, f"{what}: TypeError although every tensor argument is a tensor: {err}"
    except Hang as err:  # pragma: no cover - a failure
        raise AssertionError(f"{what}: {err}") from None
    except Exception as err:  # noqa: BLE001 - the point of the check
        raise AssertionError(f"{what}: raised {type(err).__name__}: {err}") from err
    finally:
        spent = time.thread_time() - start
        gc.enable()
    assert spent < CPU_LIMIT_S, f"{what}: took {spent:.2f} CPU seconds"
    return result


def describe(kwargs: Dict[str, Any]) -> str:
    """Short printable form of a call's arguments (tensors by shape and dtype)."""
    def show(v):
        if isinstance(v, torch.Tensor):
            return f"tensor{list(v.shape)}:{v.dtype}:{v.device.type}"
        return repr(v)[:60]
    return ", ".join(f"{k}={show(v)}" for k, v in kwargs.items())
