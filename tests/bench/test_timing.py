"""Cold-cache timing: every timed call follows a flush, orders rotate, the median is kept."""

import itertools

import pytest

from tndiag.bench import timing
from tndiag.errors import InvalidArgumentError


def test_time_cold_flushes_before_every_timed_call_in_rotating_orders():
    log = []
    impls = {name: (lambda name=name: log.append(name)) for name in "abc"}
    ticks = itertools.count()
    times = timing.time_cold(impls, rounds=6, evict_bytes=1 << 12,
                             clock=lambda: float(next(ticks)))
    assert log[:3] == ["a", "b", "c"]  # one untimed call each
    orders = [tuple(log[3 + 3 * r:6 + 3 * r]) for r in range(6)]
    assert orders == list(itertools.permutations("abc"))  # every order once
    assert times == {"a": 1.0, "b": 1.0, "c": 1.0}  # one clock tick per timed call


def test_time_cold_takes_the_median_of_single_calls():
    durations = iter([0.0, 5.0, 1.0, 3.0])  # the untimed call, then three rounds
    now = [0.0]

    def fn():
        now[0] += next(durations)

    times = timing.time_cold({"a": fn}, rounds=3, evict_bytes=1 << 12, clock=lambda: now[0])
    assert times == {"a": 3.0}


def test_both_timers_reject_a_round_count_below_one():
    for timer in (timing.time_interleaved, timing.time_cold):
        with pytest.raises(InvalidArgumentError, match="rounds"):
            timer({"a": lambda: None}, rounds=0)
