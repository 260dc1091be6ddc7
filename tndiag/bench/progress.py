"""Progress bar (tqdm, with ETA) and the banner warning that the machine is too busy to time.

A benchmark's timings are unreliable when other processes compete for the cores: with the
1-minute load average above half the logical cores, small kernels were measured many times
slower than on a quiet machine.
"""

from __future__ import annotations

import os
import sys
from typing import Iterable, Iterator, Optional, TypeVar

__all__ = ["progress", "load_is_high", "load_banner"]

T = TypeVar("T")


def progress(items: Iterable[T], total: int, enabled: bool = True,
             desc: str = "bench") -> Iterator[T]:
    """Iterate ``items`` behind a tqdm bar on stderr (rate, elapsed and ETA).

    >>> list(progress(range(3), total=3, enabled=False))
    [0, 1, 2]
    """
    if not enabled:
        yield from items
        return
    from tqdm import tqdm  # type: ignore[import-untyped]

    with tqdm(items, total=total, desc=desc, unit="row", file=sys.stderr,
              dynamic_ncols=True, leave=True) as bar:
        for item in bar:
            yield item


def _load() -> Optional[float]:
    try:
        with open("/proc/loadavg") as f:
            return float(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def load_is_high(load: Optional[float], cores: Optional[int] = None) -> bool:
    """Whether a 1-minute load average exceeds half of ``cores`` (default: this machine's).

    >>> load_is_high(1.5, cores=2), load_is_high(0.3, cores=2), load_is_high(None)
    (True, False, False)
    """
    if load is None:
        return False
    cores = cores or os.cpu_count() or 1
    return load > 0.5 * cores


def load_banner(load: Optional[float] = None, cores: Optional[int] = None,
                where: str = "below") -> str:
    """A boxed warning when the load average makes timings unreliable, else ``""``.

    ``where`` says where the timings are printed relative to the banner (below / above).

    >>> "WARNING" in load_banner(3.0, cores=2), load_banner(0.1, cores=2)
    (True, '')
    """
    load = _load() if load is None else load
    cores = cores or os.cpu_count() or 1
    if not load_is_high(load, cores):
        return ""
    rule = "!" * 78
    return (f"{rule}\n! WARNING: load average {load:.2f} on {cores} logical cores: other "
            f"processes compete\n! for the CPU and the timings {where} are unreliable (each "
            f"result records its load).\n{rule}")
