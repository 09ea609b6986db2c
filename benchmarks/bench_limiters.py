"""Compare the cost of one non-blocking acquire in syncq and in peer rate limiters.

Each contender is called the way its documentation shows, with its in-memory
backend, in two states: a limit so large that every call is granted, and a limit
that is used up, so every call is rejected. Each state runs on one thread and
then on four threads sharing one limiter. A plain token bucket written here, a
lock around the refill arithmetic and nothing else, is the floor that syncq is
measured against. Each of syncq's limiters sits next to the peers that use the
same algorithm. The keyed rows spread their calls over 1,000 keys in turn.
The combined rows enforce two limits at once, a second's and a minute's (in
the rejected state an hour's and a day's), each with a sliding log.

Run from the repository root::

    python -m benchmarks.bench_limiters [--quick] [--rounds N]
"""

from __future__ import annotations

import dataclasses
import functools
import gc
import itertools
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
from syncq import FixedWindow, KeyedLimiter, LeakyBucket, SlidingWindow, TokenBucket
from syncq.limiters import AllOf

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

# The maximum seconds to wait for peers' background threads to end before the
# next contender's memory is traced.
SETTLE_TIMEOUT = 5.0

# The key that keyed limiters are called with.
KEY = "bench"

# The keys that the keyed rows call in turn, each call with the next key.
KEYS = tuple(f"user-{index}" for index in range(1_000))


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
    reference: str
    """The name of the syncq row with the same algorithm, for "vs syncq"."""


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


def _repeat(call: Callable[[], object]) -> Loop:
    """Return a loop that makes `call()` `n` times."""

    def loop(n: int) -> None:
        for _ in range(n):
            call()

    return loop


def _rotate_keys(call: Callable[[str], object]) -> Loop:
    """Return a loop that makes `call(key)` `n` times, taking the KEYS in turn."""

    def loop(n: int) -> None:
        for key in itertools.islice(itertools.cycle(KEYS), n):
            call(key)

    return loop


def _probe_keys(call: Callable[[str], bool], granted: bool) -> Callable[[], bool]:
    """Return a probe that calls every key once.

    In the granted state it returns True only if every call was granted, and in
    the rejected state False only if every call was rejected. So a key in the
    wrong state makes the state check fail.
    """

    def probe() -> bool:
        results = [call(key) for key in KEYS]
        return all(results) if granted else any(results)

    return probe


def _build_syncq_sliding(granted: bool) -> Contender:
    if granted:
        window = SlidingWindow(GRANTED_PER_SECOND, 1.0)
    else:
        window = SlidingWindow(REJECTED_PER_HOUR, 3600.0)
        window.try_acquire()
    return Contender(_repeat(window.try_acquire), window.try_acquire)


def _build_syncq_fixed(granted: bool) -> Contender:
    if granted:
        window = FixedWindow(GRANTED_PER_SECOND, 1.0)
    else:
        # Windows are aligned to the zero of the monotonic clock, so a window of
        # an hour could end during the run and grant a call. A window as long
        # as the clock's reading plus an hour is window 0, which ends an hour
        # from now.
        window = FixedWindow(REJECTED_PER_HOUR, time.monotonic() + 3600.0)
        window.try_acquire()
    return Contender(_repeat(window.try_acquire), window.try_acquire)


def _build_syncq_leaky(granted: bool) -> Contender:
    if granted:
        # Each grant moves the schedule a nanosecond ahead, and the burst lets
        # it run a second ahead of the clock before a call is rejected.
        bucket = LeakyBucket(GRANTED_PER_SECOND, burst=GRANTED_PER_SECOND)
    else:
        # With no burst, the one grant puts the next one an hour away.
        bucket = LeakyBucket(f"{REJECTED_PER_HOUR}/h")
        bucket.try_acquire()
    return Contender(_repeat(bucket.try_acquire), bucket.try_acquire)


def _build_syncq_keyed(granted: bool) -> Contender:
    keyed: KeyedLimiter[str]
    if granted:
        keyed = KeyedLimiter(
            lambda: TokenBucket(GRANTED_PER_SECOND, GRANTED_PER_SECOND)
        )
    else:
        keyed = KeyedLimiter(lambda: TokenBucket(f"{REJECTED_PER_HOUR}/h"))
        for key in KEYS:
            keyed.try_acquire(key)
    return Contender(
        _rotate_keys(keyed.try_acquire), _probe_keys(keyed.try_acquire, granted)
    )


def _build_syncq_all_of(granted: bool) -> Contender:
    if granted:
        limiter = AllOf(
            SlidingWindow(GRANTED_PER_SECOND, 1.0),
            SlidingWindow(60 * GRANTED_PER_SECOND, 60.0),
        )
    else:
        limiter = AllOf(
            SlidingWindow(REJECTED_PER_HOUR, 3600.0),
            SlidingWindow(2 * REJECTED_PER_HOUR, 86400.0),
        )
        limiter.try_acquire()
    return Contender(_repeat(limiter.try_acquire), limiter.try_acquire)


# Peers are imported when their contender is built, so that a peer that is not
# installed drops out of the tables instead of stopping the benchmark.


def _build_pyrate(granted: bool, *, bucket: str) -> Contender:
    from pyrate_limiter import (  # noqa: PLC0415
        GCRA,
        Duration,
        InMemoryBucket,
        Limiter,
        MonotonicClock,
        Rate,
        StateBucket,
        limiter_factory,
    )
    from pyrate_limiter import FixedWindow as FixedWindowAlgorithm  # noqa: PLC0415

    if granted:
        limit, interval = GRANTED_PER_SECOND, int(Duration.SECOND)
    else:
        limit, interval = REJECTED_PER_HOUR, int(Duration.HOUR)
    if bucket == "token bucket":
        limiter = limiter_factory.create_token_bucket_limiter(limit, interval)
    elif bucket == "gcra":
        # burst=1 spaces the grants evenly. In the granted state the burst is
        # the limit, as syncq's LeakyBucket gets a large burst there.
        rate = Rate(limit, interval, burst=limit if granted else 1)
        limiter = Limiter(StateBucket([rate], algorithm=GCRA()))
    elif bucket == "fixed window":
        if not granted:
            # The windows are aligned to the zero of the bucket's monotonic
            # clock, in milliseconds, so this one ends an hour from now, as for
            # syncq's FixedWindow.
            interval = MonotonicClock().now() + int(Duration.HOUR)
        rate = Rate(limit, interval)
        limiter = Limiter(InMemoryBucket([rate], algorithm=FixedWindowAlgorithm()))
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


def _build_pyrate_two_rates(granted: bool) -> Contender:
    from pyrate_limiter import Duration, Limiter, Rate  # noqa: PLC0415

    # pyrate-limiter takes a list of rates, ordered from the shortest interval
    # to the longest. Its InMemoryBucket.put (version 4.6.0) checks each
    # request against every rate in one list of timestamps.
    if granted:
        rates = [
            Rate(GRANTED_PER_SECOND, Duration.SECOND),
            Rate(60 * GRANTED_PER_SECOND, Duration.MINUTE),
        ]
    else:
        rates = [
            Rate(REJECTED_PER_HOUR, Duration.HOUR),
            Rate(2 * REJECTED_PER_HOUR, Duration.DAY),
        ]
    limiter = Limiter(rates)
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
    return _build_pyrate(granted, bucket="log")


def _build_pyrate_state(granted: bool) -> Contender:
    return _build_pyrate(granted, bucket="token bucket")


def _build_pyrate_gcra(granted: bool) -> Contender:
    return _build_pyrate(granted, bucket="gcra")


def _build_pyrate_fixed(granted: bool) -> Contender:
    return _build_pyrate(granted, bucket="fixed window")


def _build_limits(granted: bool, *, moving: bool, keyed: bool = False) -> Contender:
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

    if keyed:

        def hit_key(key: str) -> bool:
            return hit(item, key)

        probe = _probe_keys(hit_key, granted)
        if not granted:
            for key in KEYS:
                hit(item, key)
        return Contender(_rotate_keys(hit_key), probe)

    def probe_one() -> bool:
        return hit(item, KEY)

    if not granted:
        probe_one()

    def loop(n: int) -> None:
        for _ in range(n):
            hit(item, KEY)

    return Contender(loop, probe_one)


def _build_limits_moving(granted: bool) -> Contender:
    return _build_limits(granted, moving=True)


def _build_limits_fixed(granted: bool) -> Contender:
    return _build_limits(granted, moving=False)


def _build_limits_moving_keyed(granted: bool) -> Contender:
    return _build_limits(granted, moving=True, keyed=True)


def _build_limits_fixed_keyed(granted: bool) -> Contender:
    return _build_limits(granted, moving=False, keyed=True)


def _build_token_bucket(granted: bool, *, keyed: bool = False) -> Contender:
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

    if keyed:
        if not granted:
            for key in KEYS:
                consume(key)
        return Contender(_rotate_keys(consume), _probe_keys(consume, granted))

    def probe() -> bool:
        return consume(KEY)

    if not granted:
        probe()

    def loop(n: int) -> None:
        for _ in range(n):
            consume(KEY)

    return Contender(loop, probe)


def _build_token_bucket_keyed(granted: bool) -> Contender:
    return _build_token_bucket(granted, keyed=True)


FLOOR = "floor: lock + arithmetic"
SYNCQ = "syncq TokenBucket.try_acquire"
SYNCQ_SLIDING = "syncq SlidingWindow.try_acquire"
SYNCQ_FIXED = "syncq FixedWindow.try_acquire"
SYNCQ_LEAKY = "syncq LeakyBucket.try_acquire"
SYNCQ_KEYED = "syncq KeyedLimiter.try_acquire(key)"
SYNCQ_ALL_OF = "syncq AllOf(2 SlidingWindow).try_acquire"

ENTRIES = (
    Entry(FLOOR, "token bucket", _build_floor, SYNCQ),
    Entry(SYNCQ, "token bucket", _build_syncq, SYNCQ),
    Entry(
        "pyrate-limiter token bucket .try_acquire",
        "token bucket (StateBucket)",
        _build_pyrate_state,
        SYNCQ,
    ),
    Entry(
        "token-bucket Limiter.consume",
        "token bucket (MemoryStorage)",
        _build_token_bucket,
        SYNCQ,
    ),
    Entry(SYNCQ_SLIDING, "sliding window (log)", _build_syncq_sliding, SYNCQ_SLIDING),
    Entry(
        "pyrate-limiter Limiter(Rate).try_acquire",
        "sliding log (InMemoryBucket)",
        _build_pyrate_log,
        SYNCQ_SLIDING,
    ),
    Entry(
        "limits MovingWindowRateLimiter.hit",
        "moving window (MemoryStorage)",
        _build_limits_moving,
        SYNCQ_SLIDING,
    ),
    Entry(SYNCQ_FIXED, "fixed window", _build_syncq_fixed, SYNCQ_FIXED),
    Entry(
        "pyrate-limiter FixedWindow .try_acquire",
        "fixed window (InMemoryBucket)",
        _build_pyrate_fixed,
        SYNCQ_FIXED,
    ),
    Entry(
        "limits FixedWindowRateLimiter.hit",
        "fixed window (MemoryStorage)",
        _build_limits_fixed,
        SYNCQ_FIXED,
    ),
    Entry(SYNCQ_LEAKY, "leaky bucket (GCRA)", _build_syncq_leaky, SYNCQ_LEAKY),
    Entry(
        "pyrate-limiter GCRA .try_acquire",
        "leaky bucket (GCRA, StateBucket)",
        _build_pyrate_gcra,
        SYNCQ_LEAKY,
    ),
    Entry(
        SYNCQ_ALL_OF,
        "two sliding windows (log each)",
        _build_syncq_all_of,
        SYNCQ_ALL_OF,
    ),
    Entry(
        "pyrate-limiter Limiter([Rate, Rate]).try_acquire",
        "two rates on one sliding log (InMemoryBucket)",
        _build_pyrate_two_rates,
        SYNCQ_ALL_OF,
    ),
    Entry(
        SYNCQ_KEYED,
        "token bucket per key, 1,000 keys",
        _build_syncq_keyed,
        SYNCQ_KEYED,
    ),
    Entry(
        "limits MovingWindowRateLimiter.hit(item, key)",
        "moving window per key, 1,000 keys",
        _build_limits_moving_keyed,
        SYNCQ_KEYED,
    ),
    Entry(
        "limits FixedWindowRateLimiter.hit(item, key)",
        "fixed window per key, 1,000 keys",
        _build_limits_fixed_keyed,
        SYNCQ_KEYED,
    ),
    Entry(
        "token-bucket Limiter.consume(key)",
        "token bucket per key, 1,000 keys",
        _build_token_bucket_keyed,
        SYNCQ_KEYED,
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
    medians = {entry.name: timing.median for entry, timing in zip(entries, timings)}
    floor = medians[FLOOR]
    headers = ["limiter", "algorithm", "median ns/call", "min ns/call"]
    if threads > 1:
        headers.append("calls/s (all threads)")
    headers += ["vs floor", "vs syncq"]
    rows = []
    for entry, timing in zip(entries, timings):
        syncq = medians[entry.reference]
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


def _settle() -> None:
    """Wait until only this thread runs, then collect garbage.

    tracemalloc counts the allocations of every thread. limits' MemoryStorage
    runs a timer thread that prunes its entries until shortly after its last
    hit, so it would otherwise be counted against the next contender.
    """
    deadline = time.monotonic() + SETTLE_TIMEOUT
    while threading.active_count() > 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    gc.collect()


def _memory_table(entries: Sequence[Entry], calls: int) -> str:
    rows = []
    for entry in entries:
        _settle()
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


# The exactness check: threads race for a bucket of this many tokens that
# refills too slowly to matter, in this many trials each.
RACE_CAPACITY = 50
RACE_THREADS = 4
RACE_CALLS_PER_THREAD = 200
RACE_TRIALS = 1000
RACE_TRIALS_QUICK = 100
# A switch interval this short makes threads swap often, inside any unguarded
# read-then-write of a limiter's state too.
RACE_SWITCH_INTERVAL = 1e-6


def _race_floor() -> Callable[[], bool]:
    return FloorBucket(1e-9, RACE_CAPACITY).try_acquire


def _race_syncq() -> Callable[[], bool]:
    return TokenBucket(1e-9, capacity=RACE_CAPACITY).try_acquire


def _race_token_bucket() -> Callable[[], bool]:
    import token_bucket  # noqa: PLC0415

    limiter = token_bucket.Limiter(1e-9, RACE_CAPACITY, token_bucket.MemoryStorage())
    return functools.partial(limiter.consume, KEY)


RACERS: tuple[tuple[str, Callable[[], Callable[[], bool]]], ...] = (
    (FLOOR, _race_floor),
    ("syncq TokenBucket.try_acquire", _race_syncq),
    ("token-bucket Limiter.consume", _race_token_bucket),
)


def _race_once(acquire: Callable[[], bool]) -> int:
    """Return how many calls of `RACE_THREADS` racing threads were granted."""
    granted = [0] * RACE_THREADS
    start = threading.Barrier(RACE_THREADS)

    def run(index: int) -> None:
        start.wait()
        count = 0
        for _ in range(RACE_CALLS_PER_THREAD):
            if acquire():
                count += 1
        granted[index] = count

    threads = [threading.Thread(target=run, args=(i,)) for i in range(RACE_THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(granted)


def _race_table(trials: int) -> str:
    rows = []
    previous = sys.getswitchinterval()
    sys.setswitchinterval(RACE_SWITCH_INTERVAL)
    try:
        for name, build in RACERS:
            try:
                build()
            except ImportError:
                continue
            totals = [_race_once(build()) for _ in range(trials)]
            over = [total for total in totals if total > RACE_CAPACITY]
            rows.append(
                [
                    name,
                    f"{trials}",
                    f"{len(over)}",
                    f"{max(totals)}",
                ]
            )
    finally:
        sys.setswitchinterval(previous)
    headers = ["limiter", "trials", "trials over the capacity", "most granted"]
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

    trials = RACE_TRIALS_QUICK if settings.quick else RACE_TRIALS
    print()
    print(
        f"## Exactness: {RACE_THREADS} threads race for {RACE_CAPACITY} tokens "
        f"({RACE_CALLS_PER_THREAD} calls each, switch interval "
        f"{RACE_SWITCH_INTERVAL:g} s)"
    )
    print()
    print(_race_table(trials))
    return 0


if __name__ == "__main__":
    sys.exit(main())
