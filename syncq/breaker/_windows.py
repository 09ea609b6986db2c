"""Sliding windows of recent call outcomes, for the breaker's rate triggers.

A window counts the calls it holds, how many of them failed and how many were
slow. The breaker calls every method with its lock held, so the windows need no
lock of their own. Memory is fixed when a window is built.
"""

from __future__ import annotations

import math
from typing import NamedTuple, Protocol

# Bits of one outcome in a count window's ring.
_FAILED = 1
_SLOW = 2

# A time window of T seconds keeps between these many buckets of T/n seconds:
# one per second for windows of 10 to 100 s, and finer or coarser outside.
_MIN_BUCKETS = 10
_MAX_BUCKETS = 100


class WindowTotals(NamedTuple):
    """Counts of the outcomes in a window."""

    calls: int
    failures: int
    slow_calls: int


class Window(Protocol):
    """Outcomes of recent calls; the breaker calls it with its lock held."""

    def record(self, now: float, *, failed: bool, slow: bool) -> None:
        """Add the outcome of a call that ended at `now`."""
        ...

    def totals(self, now: float) -> WindowTotals:
        """Return the counts of the outcomes still in the window at `now`."""
        ...

    def clear(self) -> None:
        """Forget every outcome."""
        ...


class CountWindow:
    """The outcomes of the last `size` calls, in a ring of one byte per call."""

    __slots__ = ("_calls", "_failures", "_next", "_ring", "_size", "_slow")

    def __init__(self, size: int) -> None:
        self._size = size
        self._ring = bytearray(size)
        self._next = 0
        self._calls = 0
        self._failures = 0
        self._slow = 0

    def record(self, now: float, *, failed: bool, slow: bool) -> None:
        if self._calls == self._size:
            oldest = self._ring[self._next]
            self._failures -= oldest & _FAILED
            self._slow -= (oldest & _SLOW) >> 1
        else:
            self._calls += 1
        code = 0
        if failed:
            code |= _FAILED
        if slow:
            code |= _SLOW
        self._ring[self._next] = code
        self._failures += failed
        self._slow += slow
        self._next = (self._next + 1) % self._size

    def totals(self, now: float) -> WindowTotals:
        return WindowTotals(self._calls, self._failures, self._slow)

    def clear(self) -> None:
        self._ring = bytearray(self._size)
        self._next = 0
        self._calls = 0
        self._failures = 0
        self._slow = 0


class TimeWindow:
    """The outcomes of the calls that ended in the last `seconds`, in buckets.

    The window is split into equal buckets and drops outcomes a whole bucket at
    a time, so it covers between `seconds` minus one bucket and `seconds`.
    """

    __slots__ = (
        "_bucket_calls",
        "_bucket_failures",
        "_bucket_slow",
        "_calls",
        "_count",
        "_failures",
        "_latest",
        "_slow",
        "_width",
    )

    def __init__(self, seconds: float) -> None:
        self._count = min(_MAX_BUCKETS, max(_MIN_BUCKETS, math.ceil(seconds)))
        self._width = seconds / self._count
        self._bucket_calls = [0] * self._count
        self._bucket_failures = [0] * self._count
        self._bucket_slow = [0] * self._count
        # Number of the newest bucket: floor(time / width). None while empty.
        self._latest: int | None = None
        self._calls = 0
        self._failures = 0
        self._slow = 0

    @property
    def bucket_seconds(self) -> float:
        """Width of one bucket in seconds."""
        return self._width

    def record(self, now: float, *, failed: bool, slow: bool) -> None:
        slot = self._advance(now)
        self._bucket_calls[slot] += 1
        self._calls += 1
        if failed:
            self._bucket_failures[slot] += 1
            self._failures += 1
        if slow:
            self._bucket_slow[slot] += 1
            self._slow += 1

    def totals(self, now: float) -> WindowTotals:
        self._advance(now)
        return WindowTotals(self._calls, self._failures, self._slow)

    def clear(self) -> None:
        for slot in range(self._count):
            self._empty(slot)
        self._latest = None

    def _advance(self, now: float) -> int:
        # Empties the buckets that fell out of the window since the newest one,
        # at most all of them, and returns the slot of the bucket holding `now`.
        bucket = math.floor(now / self._width)
        latest = self._latest
        if latest is None or bucket - latest >= self._count:
            self.clear()
        elif bucket > latest:
            for number in range(latest + 1, bucket + 1):
                self._empty(number % self._count)
        elif bucket < latest:
            # NOTE: a monotonic clock never goes back, but a bucket computed from
            # a time read just before another thread's later one can be older.
            # Its outcome joins the newest bucket, which expires a little later.
            bucket = latest
        self._latest = bucket
        return bucket % self._count

    def _empty(self, slot: int) -> None:
        self._calls -= self._bucket_calls[slot]
        self._failures -= self._bucket_failures[slot]
        self._slow -= self._bucket_slow[slot]
        self._bucket_calls[slot] = 0
        self._bucket_failures[slot] = 0
        self._bucket_slow[slot] = 0
