"""Compare the cost of one non-blocking acquire in syncq and in peer rate limiters.

Each contender is called the way its documentation shows, with its in-memory
backend, in two states: a limit so large that every call is granted, and a limit
that is used up, so every call is rejected. Each state runs on one thread and
then on four threads sharing one limiter. A plain token bucket written here, a
lock around the refill arithmetic and nothing else, is the floor that syncq is
measured against.

Run from the repository root::

    python -m benchmarks.bench_limiters [--quick] [--rounds N]
"""

from __future__ import annotations

import dataclasses
import pathlib
import sys
import threading
import time
import tracemalloc
from collections.abc import Sequence
from typing import Callable

if __package__ in (None, ""):
    # Run as a file: make the repository root importable, as `python -m` does.
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))

from benchmarks._harness import (
    Case,
    Loop,
    Settings,
    Timing,
    format_ns,
    format_ratio,
    format_table,
    machine_lines,
    parse_settings,
    time_cases,
)
from syncq import TokenBucket

PEERS = ("pyrate-limiter", "limits", "token-bucket")

THREADS = 4

# A granted limit: a billion tokens per second, with a burst of as many. The
# contenders here make at most a few million calls per second, so none is rejected.
GRANTED_PER_SECOND = 1_000_000_000

# A rejected limit: one token per hour, taken before timing starts. It refills
# by a twentieth of a token in three minutes, so every timed call is rejected.
REJECTED_PER_HOUR = 1

# Granted calls per contender in the memory measurement.
MEMORY_CALLS = 100_000
MEMORY_CALLS_QUICK = 10_000

# The key that keyed limiters are called with.
KEY = "bench"


class FloorBucket:
    """A token bucket reduced to a lock and the refill arithmetic.

    It checks no argument and supports no waiting, so its cost is that of the
    lock and the arithmetic alone. It reads `time.monotonic`, as syncq's
    default clock does.
    """

    __slots__ = ("_capacity", "_last", "_lock", "_rate", "_tokens")

    def __init__(self, rate: float, capacity: float) -> None:
        self._rate = rate
        self._capacity = capacity
        self._tokens = capacity
        self._last = time.monotonic()
        # Guards _tokens and _last.
        self._lock = threading.Lock()

    def try_acquire(self, n: float = 1) -> bool:
        """Take `n` tokens if the bucket has them now."""
        with self._lock:
            now = time.monotonic()
            tokens = self._tokens + (now - self._last) * self._rate
            # A conditional expression, as in syncq, because min() costs more per call.
            tokens = tokens if tokens < self._capacity else self._capacity
            self._last = now
            if tokens >= n:
                self._tokens = tokens - n
                return True
            self._tokens = tokens
            return False


@dataclasses.dataclass(frozen=True)
class Contender:
    """A limiter prepared for one state, with a loop over its acquire call."""

    loop: Loop
    probe: Callable[[], bool]
    """One acquire call, to check that the limiter is in the intended state."""
    close: Callable[[], None] = lambda: None


@dataclasses.dataclass(frozen=True)
class Entry:
    """A contender's name, its algorithm and how to build it in either state."""

    name: str
    algorithm: str
    build: Callable[[bool], Contender]


def _build_floor(granted: bool) -> Contender:
    if granted:
        bucket = FloorBucket(GRANTED_PER_SECOND, GRANTED_PER_SECOND)
    else:
        bucket = FloorBucket(REJECTED_PER_HOUR / 3600, REJECTED_PER_HOUR)
        bucket.try_acquire()
    try_acquire = bucket.try_acquire

    def loop(n: int) -> None:
        for _ in range(n):
            try_acquire()

    return Contender(loop, try_acquire)


def _build_syncq(granted: bool) -> Contender:
    if granted:
        bucket = TokenBucket(GRANTED_PER_SECOND, GRANTED_PER_SECOND)
    else:
        bucket = TokenBucket(f"{REJECTED_PER_HOUR}/h")
        bucket.try_acquire()
    try_acquire = bucket.try_acquire

    def loop(n: int) -> None:
        for _ in range(n):
            try_acquire()

    return Contender(loop, try_acquire)


# Peers are imported when their contender is built, so that a peer that is not
# installed drops out of the tables instead of stopping the benchmark.


def _build_pyrate(granted: bool, *, token_bucket: bool) -> Contender:
    from pyrate_limiter import Duration, Limiter, Rate, limiter_factory  # noqa: PLC0415

    if granted:
        limit, interval = GRANTED_PER_SECOND, Duration.SECOND
    else:
        limit, interval = REJECTED_PER_HOUR, Duration.HOUR
    if token_bucket:
        limiter = limiter_factory.create_token_bucket_limiter(limit, interval)
    else:
        # A Limiter built from a Rate keeps its log in an InMemoryBucket.
        limiter = Limiter(Rate(limit, interval))
    try_acquire = limiter.try_acquire

    def probe() -> bool:
        return try_acquire(KEY, blocking=False) is True

    if not granted:
        probe()

    def loop(n: int) -> None:
        for _ in range(n):
            try_acquire(KEY, blocking=False)

    return Contender(loop, probe, limiter.close)


def _build_pyrate_log(granted: bool) -> Contender:
    return _build_pyrate(granted, token_bucket=False)


def _build_pyrate_state(granted: bool) -> Contender:
    return _build_pyrate(granted, token_bucket=True)


def _build_limits(granted: bool, *, moving: bool) -> Contender:
    from limits import parse, storage, strategies  # noqa: PLC0415

    if granted:
        item = parse(f"{GRANTED_PER_SECOND}/second")
    else:
        item = parse(f"{REJECTED_PER_HOUR}/hour")
    memory = storage.MemoryStorage()
    limiter: strategies.RateLimiter
    if moving:
        limiter = strategies.MovingWindowRateLimiter(memory)
    else:
        limiter = strategies.FixedWindowRateLimiter(memory)
    hit = limiter.hit

    def probe() -> bool:
        return hit(item, KEY)

    if not granted:
        probe()

    def loop(n: int) -> None:
        for _ in range(n):
            hit(item, KEY)

    return Contender(loop, probe)


def _build_limits_moving(granted: bool) -> Contender:
    return _build_limits(granted, moving=True)


def _build_limits_fixed(granted: bool) -> Contender:
    return _build_limits(granted, moving=False)


def _build_token_bucket(granted: bool) -> Contender:
    import token_bucket  # noqa: PLC0415

    if granted:
        limiter = token_bucket.Limiter(
            GRANTED_PER_SECOND, GRANTED_PER_SECOND, token_bucket.MemoryStorage()
        )
    else:
        limiter = token_bucket.Limiter(
            REJECTED_PER_HOUR / 3600, REJECTED_PER_HOUR, token_bucket.MemoryStorage()
        )
    consume = limiter.consume

    def probe() -> bool:
        return consume(KEY)

    if not granted:
        probe()

    def loop(n: int) -> None:
        for _ in range(n):
            consume(KEY)

    return Contender(loop, probe)


FLOOR = "floor: lock + arithmetic"
SYNCQ = "syncq TokenBucket.try_acquire"

ENTRIES = (
    Entry(FLOOR, "token bucket", _build_floor),
    Entry(SYNCQ, "token bucket", _build_syncq),
    Entry(
        "pyrate-limiter Limiter(Rate).try_acquire",
        "sliding log (InMemoryBucket)",
        _build_pyrate_log,
    ),
    Entry(
        "pyrate-limiter token bucket .try_acquire",
        "token bucket (StateBucket)",
        _build_pyrate_state,
    ),
    Entry(
        "limits MovingWindowRateLimiter.hit",
        "moving window (MemoryStorage)",
        _build_limits_moving,
    ),
    Entry(
        "limits FixedWindowRateLimiter.hit",
        "fixed window (MemoryStorage)",
        _build_limits_fixed,
    ),
    Entry(
        "token-bucket Limiter.consume",
        "token bucket (MemoryStorage)",
        _build_token_bucket,
    ),
)


def _available_entries() -> tuple[list[Entry], list[str]]:
    # Build and call each contender once to find the peers that are missing, or
    # whose installed version has another API than the one called here.
    available: list[Entry] = []
    skipped: list[str] = []
    for entry in ENTRIES:
        try:
            contender = entry.build(True)
        except ImportError as exc:
            skipped.append(f"{entry.name}: not installed ({exc})")
            continue
        try:
            contender.probe()
        except (AttributeError, TypeError) as exc:
            skipped.append(f"{entry.name}: unsupported version ({exc!r})")
            continue
        finally:
            contender.close()
        available.append(entry)
    return available, skipped


def _check_state(entry: Entry, contender: Contender, granted: bool) -> None:
    result = contender.probe()
    if result is not granted:
        state = "granted" if granted else "rejected"
        raise RuntimeError(
            f"{entry.name}: a call that should be {state} returned {result!r}, "
            "so the benchmark's limits no longer put the limiter in that state"
        )


def _time_state(
    entries: Sequence[Entry], settings: Settings, *, granted: bool, threads: int
) -> list[Timing]:
    contenders = [entry.build(granted) for entry in entries]
    try:
        for entry, contender in zip(entries, contenders):
            _check_state(entry, contender, granted)
        cases = [
            Case(entry.name, contender.loop)
            for entry, contender in zip(entries, contenders)
        ]
        timings = time_cases(cases, settings, threads=threads)
        for entry, contender in zip(entries, contenders):
            _check_state(entry, contender, granted)
    finally:
        for contender in contenders:
            contender.close()
    return timings


def _timing_table(
    entries: Sequence[Entry], timings: Sequence[Timing], *, threads: int
) -> str:
    names = [entry.name for entry in entries]
    floor = timings[names.index(FLOOR)].median
    syncq = timings[names.index(SYNCQ)].median
    headers = ["limiter", "algorithm", "median ns/call", "min ns/call"]
    if threads > 1:
        headers.append("calls/s (all threads)")
    headers += ["vs floor", "vs syncq"]
    rows = []
    for entry, timing in zip(entries, timings):
        row = [
            entry.name,
            entry.algorithm,
            format_ns(timing.median),
            format_ns(timing.minimum),
        ]
        if threads > 1:
            row.append(f"{1 / timing.median:,.0f}")
        row += [format_ratio(timing.median, floor), format_ratio(timing.median, syncq)]
        rows.append(row)
    return format_table(headers, rows, text_columns=2)


def _memory_table(entries: Sequence[Entry], calls: int) -> str:
    rows = []
    for entry in entries:
        contender = entry.build(True)
        try:
            tracemalloc.start()
            before, _ = tracemalloc.get_traced_memory()
            contender.loop(calls)
            after, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
        finally:
            contender.close()
        rows.append(
            [
                entry.name,
                f"{(after - before) / 1024:,.1f}",
                f"{(peak - before) / 1024:,.1f}",
            ]
        )
    headers = ["limiter", "KiB retained after the calls", "KiB peak during them"]
    return format_table(headers, rows)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the limiter benchmark, print its tables and return the exit status."""
    settings = parse_settings(__doc__.splitlines()[0] if __doc__ else "", argv)
    entries, skipped = _available_entries()
    print("# bench_limiters: one non-blocking acquire call")
    print()
    for line in machine_lines(PEERS):
        print(f"- {line}")
    print(
        f"- {settings.rounds} rounds of about {settings.round_seconds:g} s per case, "
        "cases interleaved, after a warm-up; median and min of the time per call"
    )
    for reason in skipped:
        print(f"- skipped {reason}")

    for granted in (True, False):
        for threads in (1, THREADS):
            state = "granted" if granted else "rejected"
            where = "1 thread" if threads == 1 else f"{threads} threads, one limiter"
            timings = _time_state(entries, settings, granted=granted, threads=threads)
            print()
            print(f"## Every call {state}, {where}")
            print()
            print(_timing_table(entries, timings, threads=threads))

    calls = MEMORY_CALLS_QUICK if settings.quick else MEMORY_CALLS
    print()
    print(f"## Memory: {calls:,} granted calls on a fresh limiter (tracemalloc)")
    print()
    print(_memory_table(entries, calls))
    return 0


if __name__ == "__main__":
    sys.exit(main())
