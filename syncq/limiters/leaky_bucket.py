"""A leaky bucket that spaces grants evenly, with first-come, first-served waiters."""

from __future__ import annotations

import collections
import functools
import math
import sys

from syncq._checks import check_int, check_non_negative, check_positive, check_timeout
from syncq.clock import Clock
from syncq.errors import RateLimitExceeded
from syncq.limiters._rate import RateSpec, parse_rate
from syncq.limiters._two_phase import TwoPhaseLimiter, Undo
from syncq.limiters.base import Reservation, wait_for

__all__ = ["LeakyBucket"]


class LeakyBucket(TwoPhaseLimiter):
    """A limiter that spaces grants at least ``n / rate`` seconds apart.

    This is the leaky bucket used as a meter, computed as the generic cell rate
    algorithm (GCRA): for APIs that reject bursts. The limiter keeps one
    schedule. A grant of `n` tokens starts at the moment it is made and occupies
    the next ``n / rate`` seconds, so the grant after it comes that much later
    at the earliest. After an idle spell the first request is granted at once;
    idle time does not build up credit beyond `burst`.

    With ``burst=0`` (the default), two consecutive grants at times t1 < t2,
    the first of n1 tokens, satisfy ``t2 - t1 >= n1 / rate``. A `burst` of b
    tokens lets the schedule run up to ``b / rate`` seconds ahead of the clock
    (GCRA's tolerance tau): for any two grants i < j,
    ``t_j - t_i >= (n_i + ... + n_(j-1) - b) / rate``, so after an idle spell
    ``1 + floor(b)`` requests of one token pass back to back. The bound holds for the
    times at which `try_acquire` succeeds and at which reservations fall due. A
    caller that wakes late from its sleep proceeds later than that.

    There is no capacity that caps `n`, because a grant only delays the ones
    after it. Beyond the usual checks, only an `n` above about
    ``8.9e307 * min(rate, 1)`` raises ValueError, because its ``n / rate``
    seconds would overflow the schedule.

    `reserve` and `acquire` take the next free place in the schedule, after
    every earlier reservation. `try_acquire` succeeds only if a grant now keeps
    the spacing, which is never the case while a reservation waits, so it
    cannot overtake a waiter.

    An `AllOf` that contains the bucket may take tokens at a later time than
    the bucket alone would, because another limit makes it wait. The bucket
    counts that grant at the later time, and grants nothing before it, so
    the bound above holds for the grants in time order.

    `max_waiting` bounds the number of reservations that are not yet due. Once
    that many wait, a request that would have to wait is rejected at once:
    `reserve` returns None, and `acquire` returns False, or raises
    `RateLimitExceeded` if `raise_on_timeout` is true, as for a timeout that
    cannot be met. A request that needs no wait is never rejected this way.

    Args:
        rate: Tokens per second as a number, or a string such as ``"5/s"``,
            ``"100/min"``, ``"60/h"`` or ``"100/15min"``.
        burst: Tokens that may be granted ahead of the even schedule; 0 for
            strict spacing.
        max_waiting: The maximum number of reservations not yet due, or None
            for no limit. With 0, no caller may wait, so `acquire` succeeds
            only when a grant is possible at once.
        clock: The clock to read and sleep on. By default, the system clock.

    Raises:
        TypeError: `rate`, `burst`, `max_waiting` or `clock` has the wrong type.
        ValueError: `rate` is zero, negative, NaN or infinite, or a string of an
            unknown form; `burst` is negative, NaN or infinite, or so large that
            ``burst / rate`` overflows; `max_waiting` is negative.
    """

    __slots__ = (
        "_burst",
        "_gate",
        "_max_n",
        "_max_waiting",
        "_rate",
        "_tat",
        "_tolerance",
        "_waiting",
    )

    def __init__(
        self,
        rate: RateSpec,
        *,
        burst: float = 0,
        max_waiting: int | None = None,
        clock: Clock | None = None,
    ) -> None:
        super().__init__(clock)
        self._rate = parse_rate(rate).per_second
        self._burst = check_non_negative("burst", burst, unit=" of tokens")
        # GCRA's tau: how many seconds the schedule may run ahead of the clock.
        self._tolerance = self._burst / self._rate
        if not math.isfinite(self._tolerance):
            raise ValueError(
                f"burst={burst!r} is too large for rate={self._rate!r}: "
                "burst / rate overflows a float"
            )
        if max_waiting is not None:
            check_int("max_waiting", max_waiting, minimum=0)
        self._max_waiting = max_waiting
        # The largest n whose n / rate seconds stay below half the largest
        # float, so that adding them to the schedule cannot overflow to inf.
        self._max_n = sys.float_info.max / 2 * min(self._rate, 1.0)

        # The state below is guarded by _lock.
        # The theoretical arrival time: where the schedule becomes free.
        self._tat = self._monotonic()
        # The time from which a request may be granted: _tat - _tolerance, or
        # the time of the newest grant if that is later, which happens when an
        # AllOf took tokens at a later time. Before that time, the gate keeps
        # grants in the order of the schedule.
        self._gate = self._tat - self._tolerance
        # Ready times of the reservations that were not due when made, by
        # serial, in the order made, which is also the order of ready times.
        # Entries that have fallen due are dropped by _count_waiting, which each
        # reservation that must wait calls, so the map holds only the waiting.
        self._waiting: collections.OrderedDict[int, float] = collections.OrderedDict()

    @property
    def rate(self) -> float:
        """The rate in tokens per second."""
        return self._rate

    @property
    def burst(self) -> float:
        """The tokens that may be granted ahead of the even schedule."""
        return self._burst

    @property
    def max_waiting(self) -> int | None:
        """The maximum number of reservations not yet due, or None for no limit."""
        return self._max_waiting

    @property
    def waiting(self) -> int:
        """The number of reservations not yet due.

        The value is a snapshot that other threads may change at once.
        """
        with self._lock:
            return self._count_waiting(self._monotonic())

    def try_acquire(self, n: float = 1) -> bool:
        """Take `n` tokens if a grant now keeps the spacing (see `Limiter`)."""
        # An int that fits needs no further checks, and the default n=1 is one.
        if type(n) is not int or n <= 0 or n > self._max_n:
            n = self._check_n(n)
        with self._lock:
            now = self._monotonic()
            if now < self._gate:
                return False
            tat = self._tat
            tat = (tat if tat > now else now) + n / self._rate
            self._tat = tat
            # Not raised to now when the tolerance puts it earlier: every later
            # call reads a later clock, so the gate would not stop it anyway.
            self._gate = tat - self._tolerance
            return True

    def retry_after(self, n: float = 1) -> float:
        """Return the seconds until a grant keeps the spacing (see `Limiter`).

        The value is the same for every valid `n`, because the size of a grant
        delays only the grants after it. While reservations wait, it includes
        the time until all of them are due.
        """
        self._check_n(n)
        with self._lock:
            wait = self._gate - self._monotonic()
        return wait if wait > 0 else 0.0

    def reserve(
        self, n: float = 1, *, timeout: float | None = None
    ) -> Reservation | None:
        """Take the next free place in the schedule for `n` tokens (see `Limiter`).

        Also returns None, taking nothing, if the reservation would have to wait
        while `max_waiting` reservations already wait.

        Cancelling the reservation before it is due gives its place back only if
        no reservation was made after it. Otherwise the place stays in the
        schedule, unused, because later reservations keep their ready times and
        moving them forward would break their order. Either way the cancelled
        reservation stops counting towards `max_waiting`.
        """
        reservation, _ = self._reserve_or_reject(n, timeout)
        return reservation

    def acquire(
        self,
        n: float = 1,
        timeout: float | None = None,
        *,
        raise_on_timeout: bool = False,
    ) -> bool:
        """Block until `n` tokens are granted (see `Limiter`).

        If `max_waiting` reservations already wait and this call would have to
        wait too, it is rejected at once as if its timeout could not be met:
        it returns False, or raises `RateLimitExceeded` if `raise_on_timeout`
        is true. The exception's message then names `max_waiting`.
        """
        reservation, queue_full = self._reserve_or_reject(n, timeout)
        if reservation is None:
            if raise_on_timeout:
                raise self._rejection(n, timeout, queue_full)
            return False

        wait_for(reservation, self._clock)
        return True

    def _reserve_or_reject(
        self, n: float, timeout: float | None
    ) -> tuple[Reservation | None, bool]:
        """Reserve as `reserve` does; also return whether a full queue rejected it."""
        n = self._check_n(n)
        max_wait = check_timeout("timeout", timeout)
        with self._lock:
            now = self._monotonic()
            ready_at = self._earliest(n, now, now)
            wait = ready_at - now
            if max_wait is not None and wait > max_wait:
                return None, False
            if wait > 0 and not self._can_wait(now):
                return None, True
            undo = self._take_at(n, ready_at, now)

        on_cancel = functools.partial(self._undo, undo)
        return Reservation(ready_at, self._clock, on_cancel), False

    def _largest_n(self) -> float:
        return self._max_n

    def _earliest(self, n: float, now: float, not_before: float) -> float:
        start = self._gate if self._gate > now else now
        return start if start > not_before else not_before

    def _can_wait(self, now: float) -> bool:
        return self._max_waiting is None or (
            self._count_waiting(now) < self._max_waiting
        )

    def _take_at(self, n: float, at: float, now: float) -> Undo:
        previous = (self._tat, self._gate)
        tat = self._tat
        tat = (tat if tat > at else at) + n / self._rate
        self._tat = tat
        gate = tat - self._tolerance
        self._gate = gate if gate > at else at
        self._serial += 1
        if at > now:
            self._waiting[self._serial] = at
        return functools.partial(self._undo_take, self._serial, previous, at)

    def _take_now(self, n: float, now: float) -> None:
        tat = self._tat
        tat = (tat if tat > now else now) + n / self._rate
        self._tat = tat
        self._gate = tat - self._tolerance

    def _count_waiting(self, now: float) -> int:
        """Drop the reservations due by `now` and count the rest, under the lock."""
        waiting = self._waiting
        while waiting and next(iter(waiting.values())) <= now:
            waiting.popitem(last=False)
        return len(waiting)

    def _undo_take(
        self,
        serial: int,
        previous: tuple[float, float],
        ready_at: float,
        now: float,
    ) -> None:
        if now >= ready_at:
            return
        # Nothing was granted since this reservation was made, because the
        # gate stops every grant until it is due. So if no reservation
        # followed it, restoring the schedule from before it undoes it exactly.
        if serial == self._serial:
            self._tat, self._gate = previous
            # Move past this number, so a second cancel finds no match.
            self._serial += 1
        self._waiting.pop(serial, None)

    def _rejection(
        self, n: float, timeout: float | None, queue_full: bool
    ) -> RateLimitExceeded:
        retry_after = self.retry_after(n)
        if queue_full:
            reason = (
                f"{n!r} tokens cannot be reserved because max_waiting="
                f"{self._max_waiting!r} reservations already wait"
            )
        else:
            reason = (
                f"{n!r} tokens cannot be granted within timeout={timeout!r} seconds"
            )
        return RateLimitExceeded(
            f"{reason}, retry after {retry_after:.6g} seconds", retry_after
        )

    def _check_n(self, n: object) -> float:
        tokens = check_positive("n", n)
        if tokens > self._max_n:
            raise ValueError(
                f"n={n!r} is too large for rate={self._rate!r}: its n / rate "
                "seconds in the schedule would overflow a float, so pass a smaller n"
            )
        return tokens

    def __repr__(self) -> str:
        return (
            f"LeakyBucket(rate={self._rate!r}, burst={self._burst!r}, "
            f"max_waiting={self._max_waiting!r})"
        )
