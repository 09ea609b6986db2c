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
    """Outcomes of recent calls; the breaker calls it with its lock held.

    `calls`, `failures` and `slow_calls` count the outcomes in the window as of
    the latest `record` or `expire`.
    """

    calls: int
    failures: int
    slow_calls: int
    # True if outcomes leave the window as time passes, not only as calls come.
    ages: bool

    def record(self, now: float, failed: bool, slow: bool) -> None:
        """Add the outcome of a call that ended at `now`."""
        ...

    def expire(self, now: float) -> None:
        """Drop the outcomes that are out of the window at `now`."""
        ...

    def clear(self) -> None:
        """Drop every outcome."""
        ...


def window_totals(window: Window, now: float) -> WindowTotals:
    """Return the counts of the outcomes in `window` at `now`."""
    window.expire(now)
    return WindowTotals(window.calls, window.failures, window.slow_calls)


class CountWindow:
    """The outcomes of the last `size` calls, in a ring of one byte per call."""

    __slots__ = ("_next", "_ring", "_size", "calls", "failures", "slow_calls")

    ages = False

    def __init__(self, size: int) -> None:
        self._size = size
        self._ring = bytearray(size)
        self._next = 0
        self.calls = 0
        self.failures = 0
        self.slow_calls = 0

    def record(self, now: float, failed: bool, slow: bool) -> None:
        index = self._next
        if self.calls == self._size:
            oldest = self._ring[index]
            if oldest:
                self.failures -= oldest & _FAILED
                self.slow_calls -= oldest >> 1
        else:
            self.calls += 1
        code = 0
        if failed:
            code = _FAILED
            self.failures += 1
        if slow:
            code |= _SLOW
            self.slow_calls += 1
        self._ring[index] = code
        index += 1
        self._next = 0 if index == self._size else index

    def expire(self, now: float) -> None:
        pass

    def clear(self) -> None:
        self._ring = bytearray(self._size)
        self._next = 0
        self.calls = 0
        self.failures = 0
        self.slow_calls = 0


class TimeWindow:
    """The outcomes of the calls that ended in the last `seconds`, in buckets.

    The window is split into equal buckets and drops outcomes a whole bucket at
    a time, so it covers between `seconds` minus one bucket and `seconds`.
    """

    __slots__ = (
        "_bucket_calls",
        "_bucket_failures",
        "_bucket_slow",
        "_count",
        "_latest",
        "_width",
        "calls",
        "failures",
        "slow_calls",
    )

    ages = True

    def __init__(self, seconds: float) -> None:
        self._count = min(_MAX_BUCKETS, max(_MIN_BUCKETS, math.ceil(seconds)))
        self._width = seconds / self._count
        self._bucket_calls = [0] * self._count
        self._bucket_failures = [0] * self._count
        self._bucket_slow = [0] * self._count
        # Number of the newest bucket: floor(time / width). None while empty.
        self._latest: int | None = None
        self.calls = 0
        self.failures = 0
        self.slow_calls = 0

    @property
    def bucket_seconds(self) -> float:
        """Width of one bucket in seconds."""
        return self._width

    def record(self, now: float, failed: bool, slow: bool) -> None:
        slot = self._advance(now)
        self._bucket_calls[slot] += 1
        self.calls += 1
        if failed:
            self._bucket_failures[slot] += 1
            self.failures += 1
        if slow:
            self._bucket_slow[slot] += 1
            self.slow_calls += 1

    def expire(self, now: float) -> None:
        self._advance(now)

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
        self.calls -= self._bucket_calls[slot]
        self.failures -= self._bucket_failures[slot]
        self.slow_calls -= self._bucket_slow[slot]
        self._bucket_calls[slot] = 0
        self._bucket_failures[slot] = 0
        self._bucket_slow[slot] = 0
