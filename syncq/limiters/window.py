"""Window limiters: a fixed window per aligned interval, and an exact sliding window."""

from __future__ import annotations

import collections
import functools
import math
from typing import TypeVar

from syncq._checks import check_positive
from syncq.clock import Clock
from syncq.limiters._rate import parse_rate
from syncq.limiters._two_phase import TwoPhaseLimiter, Undo
from syncq.limiters.base import Reservation

__all__ = ["FixedWindow", "SlidingWindow"]

_W = TypeVar("_W", bound="_WindowLimiter")


class _WindowLimiter(TwoPhaseLimiter):
    """The parameters and checks that both window limiters share."""

    __slots__ = ("_limit", "_window")

    def __init__(
        self, limit: float, window: float, *, clock: Clock | None = None
    ) -> None:
        super().__init__(clock)
        self._limit = check_positive("limit", limit)
        self._window = check_positive("window", window, unit=" of seconds")

    @classmethod
    def from_rate(cls: type[_W], rate: str, *, clock: Clock | None = None) -> _W:
        """Create a limiter from a rate string such as ``"100/min"``.

        The count of the string is the limit and its period is the window:
        ``"100/15min"`` allows 100 tokens per 900-second window. The string
        forms are those of `syncq.limiters.parse_rate`.

        Raises:
            TypeError: `rate` is not a string, or `clock` has the wrong type.
            ValueError: `rate` is not a valid rate string.
        """
        if not isinstance(rate, str):
            raise TypeError(
                "rate must be a string such as '100/min' or '60/h', "
                f"got {type(rate).__name__} {rate!r}"
            )
        parsed = parse_rate(rate)
        # A string always yields a count and a period; a number never gets here.
        if parsed.limit is None or parsed.period is None:
            raise ValueError(f"invalid rate {rate!r}: expected a count and a period")
        return cls(parsed.limit, parsed.period, clock=clock)

    @property
    def limit(self) -> float:
        """The maximum number of tokens granted per window."""
        return self._limit

    @property
    def window(self) -> float:
        """The length of a window in seconds."""
        return self._window

    def _largest_n(self) -> float:
        return self._limit

    def _check_n(self, n: object) -> float:
        tokens = check_positive("n", n)
        if tokens > self._limit:
            raise ValueError(
                f"n={n!r} is larger than the window's limit={self._limit!r}, "
                "so it can never be granted"
            )
        return tokens

    def __repr__(self) -> str:
        return f"{type(self).__name__}(limit={self._limit!r}, window={self._window!r})"


class FixedWindow(_WindowLimiter):
    """A limiter that grants at most `limit` tokens per aligned window.

    Window number k covers the times t on the clock with
    ``math.floor(t / window) == k``, which is ``[k * window, (k + 1) * window)``
    up to float rounding. The zero of a monotonic clock is arbitrary (boot time
    on Linux), so windows do not line up with wall-clock minutes. The count
    starts again at zero in each window. The limit applies to the times at
    which `try_acquire` succeeds and at which reservations fall due. A caller
    that wakes late from its sleep proceeds later than that.

    NOTE: the limit applies per window, not per interval of length `window`. A
    burst of `limit` tokens at the end of one window and another at the start
    of the next grants ``2 * limit`` tokens within a moment. This is the known
    weakness of fixed windows. Use `SlidingWindow` where that matters.

    A reservation that does not fit in the window where the queue ends is due
    at the start of the next window. Waiters are placed in windows in order, so
    a small request does not take room that is left in a window that an earlier,
    larger request had to skip. That room stays unused. `try_acquire` fails
    while a reservation waits for a later window.

    An `AllOf` that contains the limiter may take tokens at a later time than
    the limiter alone would, because another limit makes it wait. They count
    in the window that contains that time.

    Tokens are counted as floats, so fractional requests are allowed. Their sums are
    subject to float rounding, and whole numbers of tokens are exact.

    Args:
        limit: The maximum number of tokens per window, which is also the
            largest request. A positive finite number.
        window: The length of a window in seconds, positive and finite.
        clock: The clock to read and sleep on. By default, the system clock.

    Raises:
        TypeError: `limit`, `window` or `clock` has the wrong type.
        ValueError: `limit` or `window` is zero, negative, NaN or infinite.
    """

    __slots__ = ("_index", "_next_start", "_start", "_used")

    def __init__(
        self, limit: float, window: float, *, clock: Clock | None = None
    ) -> None:
        super().__init__(limit, window, clock=clock)
        # The newest window that contains grants or reservations: its number, its
        # first and its past-the-end time, and the tokens counted in it. Every
        # earlier window is closed to new requests. _start > now means that
        # reservations wait for that window.
        self._index = 0
        self._start = 0.0
        self._next_start = 0.0
        self._used = 0.0
        self._open_window(math.floor(self._monotonic() / self._window))

    def try_acquire(self, n: float = 1) -> bool:
        """Take `n` tokens if the current window has room for them (see `Limiter`)."""
        # An int that fits needs no further checks, and the default n=1 is one.
        if type(n) is not int or n <= 0 or n > self._limit:
            n = self._check_n(n)
        with self._lock:
            now = self._monotonic()
            if now >= self._next_start:
                self._open_window(math.floor(now / self._window))
            elif now < self._start:
                return False
            used = self._used + n
            if used <= self._limit:
                self._used = used
                return True
            return False

    def retry_after(self, n: float = 1) -> float:
        """Return the seconds until a window has room for `n` (see `Limiter`).

        While reservations wait, this is the wait of a reservation made now,
        which goes after them.
        """
        n = self._check_n(n)
        with self._lock:
            now = self._monotonic()
            if now >= self._next_start:
                return 0.0
            if self._used + n <= self._limit:
                ready_at = self._start
            else:
                ready_at = self._next_start
        return ready_at - now if ready_at > now else 0.0

    def reserve(
        self, n: float = 1, *, timeout: float | None = None
    ) -> Reservation | None:
        """Take `n` tokens in the first window with room (see `Limiter`).

        The window is the one where the last reservation went, if it has room,
        or else the one after it. The reservation is due at that window's start,
        or now if that window is the current one.

        Cancelling the reservation before it is due returns its tokens only if
        no reservation was made after it. Otherwise the tokens are forfeited,
        because later reservations have been placed in windows after them.
        """
        return self._reserve_earliest(n, timeout)

    def _earliest(self, n: float, now: float, not_before: float) -> float:
        start = not_before if not_before > now else now
        if start >= self._next_start:
            # A window after the newest one has nothing counted in it yet.
            return start
        if self._used + n <= self._limit:
            return start if start > self._start else self._start
        return self._next_start

    def _take_at(self, n: float, at: float, now: float) -> Undo:
        if now >= self._next_start:
            self._open_window(math.floor(now / self._window))
        previous = (self._index, self._start, self._next_start, self._used)
        if at >= self._next_start:
            self._open_window(math.floor(at / self._window))
            self._used = n
        else:
            self._used += n
        self._serial += 1
        return functools.partial(self._undo_take, self._serial, n, at, previous)

    def _take_now(self, n: float, now: float) -> None:
        if now >= self._next_start:
            self._open_window(math.floor(now / self._window))
        self._used += n

    def _undo_take(
        self,
        serial: int,
        n: float,
        ready_at: float,
        previous: tuple[int, float, float, float],
        now: float,
    ) -> None:
        if serial != self._serial or now >= ready_at:
            return
        if self._index != previous[0] and self._start > now:
            # The grant opened a window that has not begun, so nothing else
            # is counted in it: the windows from before are restored exactly.
            self._index, self._start, self._next_start, self._used = previous
        else:
            # The window contains other grants, or has begun and try_acquire
            # may have counted tokens in it since, so only these tokens come off.
            self._used -= n
        # Move past this number, so a second cancel finds no match.
        self._serial += 1

    def _open_window(self, index: int) -> None:
        """Make window `index` the newest, with nothing counted in it yet."""
        self._index = index
        self._start = self._window_start(index)
        self._next_start = self._window_start(index + 1)
        self._used = 0.0

    def _window_start(self, index: int) -> float:
        """Return the smallest float t with ``math.floor(t / window) >= index``."""
        # index * window can land a float step on either side of the boundary
        # that floor(t / window) draws. Moving to the exact boundary keeps the
        # ready times of reservations inside the window they were counted in.
        start = index * self._window
        while math.floor(start / self._window) < index:
            start = math.nextafter(start, math.inf)
        while True:
            before = math.nextafter(start, -math.inf)
            if math.floor(before / self._window) < index:
                return start
            start = before


class SlidingWindow(_WindowLimiter):
    """A limiter that grants at most `limit` tokens in any interval of `window`.

    A grant at time g counts against the limit from g until ``g + window``,
    when it expires. So a grant at time t is allowed only if the unexpired
    grants and the request total at most `limit`. That makes the bound exact
    for half-open intervals: at most `limit` tokens in every
    ``[t, t + window)``. A closed interval of length `window` can contain
    twice as many, for example `limit` tokens at its start and `limit` more at its
    end. Unlike `FixedWindow`, no burst across a boundary exceeds the limit.
    As with `FixedWindow`, the bound applies to the times at which grants are
    made and reservations fall due, not to when callers wake.

    A reservation is due at the earliest time, and no earlier than the
    reservation before it, at which granting it keeps the bound, given every
    earlier grant and reservation. `try_acquire` fails while a reservation
    waits. An `AllOf` that contains the limiter may take tokens at a later
    time than the limiter alone would, because another limit makes it wait.
    That grant then counts from the later time, as a reservation does.

    The limiter stores one entry per grant time that may still count, in time
    order. Grants at the same time share an entry. With whole numbers of
    tokens it stores at most ``limit + 1`` entries. An entry of less than one
    token takes in the next grant, which then counts from the later time. That
    bounds memory for fractional requests as well, at the cost of counting
    their tokens for longer than `window`, so they may wait longer than they
    need to.

    Args:
        limit: The maximum number of tokens in any interval of `window`
            seconds, which is also the largest request. A positive finite
            number.
        window: The length of the interval in seconds, positive and finite.
        clock: The clock to read and sleep on. By default, the system clock.

    Raises:
        TypeError: `limit`, `window` or `clock` has the wrong type.
        ValueError: `limit` or `window` is zero, negative, NaN or infinite.
    """

    __slots__ = ("_entries", "_last_ready", "_total", "_undo_floor")

    def __init__(
        self, limit: float, window: float, *, clock: Clock | None = None
    ) -> None:
        super().__init__(limit, window, clock=clock)
        # (time, tokens) of grants and reservations, oldest first. Entries
        # expire at time + window and are dropped lazily from the left.
        self._entries: collections.deque[tuple[float, float]] = collections.deque()
        # The sum of the tokens in _entries.
        self._total = 0.0
        # The ready time of the newest reservation. Later than now while it waits.
        self._last_ready = -math.inf
        # The ready time before the newest reservation, which its cancel
        # restores: no request is granted before it, so entries expired by then
        # can go.
        self._undo_floor = -math.inf

    def try_acquire(self, n: float = 1) -> bool:
        """Take `n` tokens if the last `window` seconds leave room (see `Limiter`)."""
        # An int that fits needs no further checks, and the default n=1 is one.
        if type(n) is not int or n <= 0 or n > self._limit:
            n = self._check_n(n)
        with self._lock:
            now = self._monotonic()
            # A grant now would overtake the waiting reservation and break the
            # time order of the entries.
            if now < self._last_ready:
                return False
            self._drop_expired(now)
            if self._total + n > self._limit:
                return False
            self._record(now, n)
            return True

    def retry_after(self, n: float = 1) -> float:
        """Return the seconds until `n` tokens fit in the window (see `Limiter`).

        While reservations wait, this is the wait of a reservation made now,
        which goes after them.
        """
        n = self._check_n(n)
        with self._lock:
            now = self._monotonic()
            start = self._last_ready if self._last_ready > now else now
            ready_at = self._earliest_grant(start, n)
        return ready_at - now

    def reserve(
        self, n: float = 1, *, timeout: float | None = None
    ) -> Reservation | None:
        """Take `n` tokens at the earliest time that keeps the bound (see `Limiter`).

        Cancelling the reservation before it is due removes its tokens only if
        no reservation was made after it. Otherwise the tokens are forfeited,
        because later reservations keep their ready times, which were computed
        with these tokens counted.
        """
        return self._reserve_earliest(n, timeout)

    def _earliest(self, n: float, now: float, not_before: float) -> float:
        start = self._last_ready if self._last_ready > now else now
        # Entries that expire before `start` but after _undo_floor must stay:
        # a cancel of the newest reservation brings requests back that early.
        self._drop_expired(self._undo_floor if self._undo_floor > now else now)
        return self._earliest_grant(max(start, not_before), n)

    def _take_at(self, n: float, at: float, now: float) -> Undo:
        previous = (self._last_ready, self._record(at, n))
        self._undo_floor = self._last_ready
        self._last_ready = at
        self._serial += 1
        return functools.partial(self._undo_take, self._serial, n, at, previous)

    def _take_now(self, n: float, now: float) -> None:
        # _earliest has just dropped the entries expired at `now`.
        self._record(now, n)

    def _undo_take(
        self,
        serial: int,
        n: float,
        ready_at: float,
        previous: tuple[float, tuple[float, float] | None],
        now: float,
    ) -> None:
        """Undo a grant, given _last_ready and the entry it replaced in `previous`."""
        if serial != self._serial or now >= ready_at:
            return
        previous_ready, replaced = previous
        # The reservation's entry is still the newest, because try_acquire
        # fails while it waits and a later reservation has a new serial.
        self._entries.pop()
        if replaced is not None:
            self._entries.append(replaced)
        self._total -= n
        self._last_ready = previous_ready
        # The reservation before this one cannot be cancelled any more.
        self._undo_floor = previous_ready
        # Move past this number, so a second cancel finds no match.
        self._serial += 1

    def _drop_expired(self, now: float) -> None:
        """Drop the entries that no longer count at time `now`."""
        entries = self._entries
        window = self._window
        while entries and entries[0][0] + window <= now:
            self._total -= entries.popleft()[1]
        if not entries:
            # Forget the rounding error that fractional tokens leave behind.
            self._total = 0.0

    def _earliest_grant(self, start: float, n: float) -> float:
        """Return the first time from `start` on at which `n` more tokens fit.

        `start` must be no earlier than the newest entry, which keeps the
        entries in time order when the grant is recorded.
        """
        excess = self._total + n - self._limit
        if excess <= 0:
            return start
        # The oldest entries expire first, so walk until enough have expired.
        freed = 0.0
        expires_at = start
        for time, tokens in self._entries:
            freed += tokens
            expires_at = time + self._window
            if freed >= excess:
                break
        # With n <= limit the loop always frees enough, unless rounding of
        # fractional tokens leaves it short. The newest entry's expiry is then a
        # safe result.
        return expires_at if expires_at > start else start

    def _record(self, time: float, n: float) -> tuple[float, float] | None:
        """Add a grant of `n` at `time`, the newest; return the entry it replaced."""
        entries = self._entries
        self._total += n
        if entries:
            last_time, last_tokens = entries[-1]
            if last_time == time or last_tokens < 1:
                entries[-1] = (time, last_tokens + n)
                return (last_time, last_tokens)
        entries.append((time, n))
        return None
