"""Interleaved timing, peak extra memory, and the machine description printed with tables.

Timing: every implementation is warmed up, then timed once per round in a rotating order
(round r starts with implementation r mod k), with enough inner calls per sample to last
~2 ms; the reported time is the median over rounds. :func:`time_cold` times single calls
instead, each right after the CPU caches were flushed: inputs come from memory, as a layer's
saved input does in training. Memory: the peak of the running sum of
allocations minus frees during one warm call (every allocation event of the torch profiler on CPU,
``torch.cuda.max_memory_allocated`` on CUDA), minus the bytes of the result: the extra
memory beyond inputs and output.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import platform
import statistics
import sys
import time
from typing import Callable, Dict, List

import torch

from tndiag.errors import InvalidArgumentError

__all__ = ["time_interleaved", "time_cold", "peak_extra_bytes", "machine_info", "loadavg",
           "EVICT_BYTES"]


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _inner_calls(fn: Callable, device: str, target: float = 2e-3,
                 clock: Callable[[], float] = time.perf_counter) -> int:
    start = clock()
    fn()
    _sync(device)
    once = clock() - start
    return max(1, min(1000, int(target / max(once, 1e-7))))


def _orders(names: List[str], rounds: int) -> List[tuple]:
    """The order of each round: every permutation in turn (up to 4 implementations), so each
    follows each other one equally often; one fixed order beyond."""
    if not isinstance(rounds, int) or rounds < 1:
        raise InvalidArgumentError(f"rounds must be a positive int, got {rounds!r}")
    orders = list(itertools.permutations(names)) if len(names) <= 4 else [tuple(names)]
    return [orders[r % len(orders)] for r in range(rounds)]


def time_interleaved(impls: Dict[str, Callable], rounds: int, device: str = "cpu",
                     warmup: int = 2,
                     clock: Callable[[], float] = time.perf_counter) -> Dict[str, float]:
    """Median seconds per call of each implementation, timed round-robin.

    ``clock`` is wall time by default; ``time.process_time`` (CPU seconds of this process,
    all threads) is steadier on a machine that other jobs keep busy.

    >>> t = time_interleaved({"a": lambda: sum(range(10)), "b": lambda: None}, rounds=3)
    >>> sorted(t) == ["a", "b"] and all(v > 0 for v in t.values())
    True
    """
    names = list(impls)
    orders = _orders(names, rounds)
    for name in names:
        for _ in range(warmup):
            impls[name]()
    _sync(device)
    inner = {n: _inner_calls(impls[n], device, clock=clock) for n in names}
    samples: Dict[str, List[float]] = {n: [] for n in names}
    # Every ordering in turn, so each implementation follows each other one equally often,
    # and one untimed call first: a sample never pays for the caches and freed memory the
    # previous implementation left behind (einconv's large temporaries slowed whichever
    # implementation came right after it).
    for order in orders:
        for name in order:
            fn = impls[name]
            fn()
            _sync(device)
            start = clock()
            for _ in range(inner[name]):
                fn()
            _sync(device)
            samples[name].append((clock() - start) / inner[name])
    return {n: statistics.median(s) for n, s in samples.items()}


#: Bytes :func:`time_cold` writes between calls to flush the CPU caches: several times the
#: last-level cache of current server CPUs (32 MiB per CCD on the 2-core AMD machines here).
EVICT_BYTES = 128 << 20


def time_cold(impls: Dict[str, Callable], rounds: int, evict_bytes: int = EVICT_BYTES,
              clock: Callable[[], float] = time.perf_counter) -> Dict[str, float]:
    """Median seconds of one call of each implementation on cold caches (CPU only).

    Before every timed call a buffer of ``evict_bytes`` is written (not timed), which evicts
    the inputs and any memory the previous call left in cache. The order rotates as in
    :func:`time_interleaved`; each implementation is called once untimed first.

    >>> t = time_cold({"a": lambda: sum(range(10)), "b": lambda: None}, rounds=3,
    ...               evict_bytes=1 << 16)
    >>> sorted(t) == ["a", "b"] and all(v >= 0 for v in t.values())
    True
    """
    names = list(impls)
    orders = _orders(names, rounds)
    buffer = torch.empty(max(1, evict_bytes // 4))
    for name in names:
        impls[name]()
    samples: Dict[str, List[float]] = {n: [] for n in names}
    for r, order in enumerate(orders):
        for name in order:
            buffer.fill_(float(r))
            start = clock()
            impls[name]()
            samples[name].append(clock() - start)
    return {n: statistics.median(s) for n, s in samples.items()}


def _nbytes(result) -> int:
    if isinstance(result, torch.Tensor):
        return result.numel() * result.element_size()
    return 0


@contextlib.contextmanager
def _quiet_stderr():
    """Silence file descriptor 2 (the profiler's C++ start/stop lines) for the block."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def peak_extra_bytes(fn: Callable, device: str = "cpu") -> int:
    """Peak bytes allocated during one call of ``fn`` beyond its result (see module doc)."""
    if device.startswith("cuda"):
        torch.cuda.synchronize()
        base = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        out = fn()
        torch.cuda.synchronize()
        return max(0, torch.cuda.max_memory_allocated() - base - _nbytes(out))
    from torch.profiler import ProfilerActivity, profile

    with _quiet_stderr(), profile(activities=[ProfilerActivity.CPU],
                                  profile_memory=True) as prof:
        out = fn()
    sizes = sorted(_allocations(prof.profiler.kineto_results.experimental_event_tree()))
    current = peak = 0
    for _, size in sizes:
        current += size
        peak = max(peak, current)
    return max(0, peak - _nbytes(out))


def _allocations(events) -> List[tuple]:
    """``(start ns, bytes)`` of every allocation (+) and free (-) in a profiler event tree."""
    found, stack = [], list(events)
    while stack:
        e = stack.pop()
        fields = e.typed[1]
        if type(fields).__name__.endswith("Allocation"):
            found.append((e.start_time_ns, fields.alloc_size))
        stack.extend(e.children)
    return found


def loadavg() -> str:
    """The 1-minute load average (``?`` where /proc is missing)."""
    try:
        with open("/proc/loadavg") as f:
            return f.read().split()[0]
    except OSError:
        return "?"


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine_info(device: str = "cpu") -> Dict[str, str]:
    """torch version, threads, BLAS / oneDNN backends, CPU (and GPU) model, malloc settings."""
    config = torch.__config__.show()
    backends = [part for part in ("MKL", "MKL-DNN", "OpenBLAS", "NNPACK") if part in config]
    info = {
        "torch": torch.__version__,
        "threads": str(torch.get_num_threads()),
        "backends": ", ".join(backends),
        "cpu": f"{_cpu_model()} ({os.cpu_count()} logical cores)",
        "python": platform.python_version(),
        "malloc": f"MALLOC_MMAP_MAX_={os.environ.get('MALLOC_MMAP_MAX_', 'unset')} "
                  f"MALLOC_TRIM_THRESHOLD_={os.environ.get('MALLOC_TRIM_THRESHOLD_', 'unset')}",
        "loadavg at start": loadavg(),
    }
    if device.startswith("cuda") and torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name()
    return info
