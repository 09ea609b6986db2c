"""Measure how exactly syncq's blocking limiters hold a rate under threads.

Eight threads each ask for tokens as fast as they can, one at a time, from one
limiter of 200 per second, for 5 seconds (1 second with ``--quick``). Each
request reserves its place and sleeps until the reservation is due, as
`acquire` does, so the benchmark can record both the time a grant was due and
the time the thread woke. The report gives the achieved rate, the most grants
seen in any window of one second against the most that the limiter's algorithm
allows there, and how late the threads woke.

The figures depend on the machine's scheduler: a sleeping thread wakes when
the operating system runs it, which is never early and sometimes late.

Run from the repository root::

    python -m benchmarks.bench_accuracy [--quick]
"""

from __future__ import annotations

import bisect
import dataclasses
import math
import pathlib
import sys
import threading
import time
from collections.abc import Sequence

if __package__ in (None, ""):
    # Run as a file: make the repository root importable, as `python -m` does.
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))

from benchmarks._harness import format_table, machine_lines, parse_settings
from syncq.limiters import (
    FixedWindow,
    LeakyBucket,
    Limiter,
    SlidingWindow,
    TokenBucket,
)

RATE = 200.0
THREADS = 8

# The span, in seconds, over which the most grants are counted.
SPAN = 1.0


@dataclasses.dataclass(frozen=True)
class Subject:
    """A limiter under test, with what its algorithm lets it grant."""

    name: str
    limiter: Limiter
    burst: int
    """The grants that the limiter makes at once when at rest. The steady rate
    leaves them out."""
    period: int
    """The grants in one repetition of the steady pattern: 1 for the buckets,
    which space grants evenly, and the limit for the windows, which grant a
    window's worth at a time. The steady rate is measured over whole
    repetitions."""
    bound: int
    """The maximum number of grants that the algorithm allows in any half-open SPAN."""


def _limiters() -> list[Subject]:
    """Return the limiters under test, each limiting to RATE per second."""
    limit = int(RATE)
    return [
        # A token bucket grants at most its capacity plus what refills in the span.
        Subject(
            "TokenBucket(200, capacity=1)",
            TokenBucket(RATE, capacity=1),
            burst=1,
            period=1,
            bound=1 + int(RATE * SPAN),
        ),
        Subject(
            "TokenBucket(200, capacity=200)",
            TokenBucket(RATE, capacity=RATE),
            burst=limit,
            period=1,
            bound=limit + int(RATE * SPAN),
        ),
        # A fixed window can grant its limit at the end of one window and again
        # at the start of the next, so twice the limit within one span.
        Subject(
            "FixedWindow(200, 1.0)",
            FixedWindow(RATE, 1.0),
            burst=limit,
            period=limit,
            bound=2 * limit,
        ),
        # A sliding window grants at most its limit in any half-open window.
        Subject(
            "SlidingWindow(200, 1.0)",
            SlidingWindow(RATE, 1.0),
            burst=limit,
            period=limit,
            bound=limit,
        ),
        # With no burst, grants are at least 1 / rate apart, so a span contains
        # at most rate * span of them plus the one at its start.
        Subject(
            "LeakyBucket(200)",
            LeakyBucket(RATE),
            burst=1,
            period=1,
            bound=int(RATE * SPAN) + 1,
        ),
    ]


def _hammer(limiter: Limiter, seconds: float) -> tuple[list[float], list[float]]:
    """Return the due times and wake times of every grant, in due order."""
    due: list[float] = []
    woke: list[float] = []
    lock = threading.Lock()
    barrier = threading.Barrier(THREADS)
    stop_at = [0.0]

    def run() -> None:
        barrier.wait()
        if not stop_at[0]:
            with lock:
                stop_at[0] = stop_at[0] or time.monotonic() + seconds
        while True:
            reservation = limiter.reserve(1)
            if reservation is None:
                raise RuntimeError("a reservation without a timeout was refused")
            if reservation.ready_at >= stop_at[0]:
                reservation.cancel()
                return
            delay = reservation.delay()
            if delay > 0:
                time.sleep(delay)
            now = time.monotonic()
            with lock:
                due.append(reservation.ready_at)
                woke.append(now)

    threads = [threading.Thread(target=run) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    pairs = sorted(zip(due, woke))
    return [pair[0] for pair in pairs], [pair[1] for pair in pairs]


def _max_in_window(times: Sequence[float], window: float) -> int:
    """Return the most entries of sorted `times` in any half-open `window`."""
    most = 0
    for index, start in enumerate(times):
        end = bisect.bisect_left(times, start + window, lo=index)
        most = max(most, end - index)
    return most


def _steady_rate(due: Sequence[float], subject: Subject) -> float:
    """Return the grants per second after the first burst, over whole periods."""
    steady = due[subject.burst :]
    grants = (len(steady) - 1) // subject.period * subject.period
    span = steady[grants] - steady[0] if grants > 0 else 0.0
    return grants / span if span > 0 else float("nan")


def _percentile(values: Sequence[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the accuracy measurement and print its report."""
    settings = parse_settings(__doc__.splitlines()[0], argv)
    seconds = 1.0 if settings.quick else 5.0
    print("# bench_accuracy: 8 threads against one limiter of 200 per second\n")
    for line in machine_lines(()):
        print(f"- {line}")
    print(f"- {THREADS} threads, {seconds:g} s per limiter\n")

    rows = []
    for subject in _limiters():
        due, woke = _hammer(subject.limiter, seconds)
        achieved = _steady_rate(due, subject)
        rate_text, error_text = "n/a", "n/a"
        if not math.isnan(achieved):
            rate_text = f"{achieved:.2f}"
            error_text = f"{(achieved - RATE) / RATE:+.2%}"
        lateness = [wake - ready for ready, wake in zip(due, woke)]
        rows.append(
            [
                subject.name,
                f"{len(due):,}",
                rate_text,
                error_text,
                f"{_max_in_window(due, SPAN)}",
                f"{subject.bound}",
                f"{_max_in_window(woke, SPAN)}",
                f"{_percentile(lateness, 0.5) * 1e3:.3f}",
                f"{_percentile(lateness, 0.99) * 1e3:.3f}",
                f"{max(lateness) * 1e3:.3f}",
            ]
        )
    headers = [
        "limiter",
        "grants",
        "steady /s",
        "vs 200/s",
        "max due in 1 s",
        "bound",
        "max woke in 1 s",
        "late p50 ms",
        "late p99 ms",
        "late max ms",
    ]
    print(format_table(headers, rows))
    print(
        "\nThe steady rate leaves out the grants that a limiter at rest makes at"
        " once, and spans whole windows' worth of grants for the window limiters."
        " The bound is the most grants that the algorithm allows in any"
        " half-open second. n/a: the run ended before one whole period after"
        " the first burst, as the window limiters' do with --quick."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
