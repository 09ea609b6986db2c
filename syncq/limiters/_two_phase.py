"""A grant in two steps, find a time and then take, which `AllOf` builds on."""

from __future__ import annotations

import abc
import functools
import threading
from typing import Callable

from syncq._checks import check_timeout
from syncq.clock import Clock
from syncq.limiters.base import LimiterBase, Reservation

__all__ = ["TwoPhaseLimiter", "Undo"]

Undo = Callable[[float], None]
"""Undoes one grant under the limiter's cancel rule. It takes the time now and
must be called with the limiter's lock held."""


class TwoPhaseLimiter(LimiterBase):
    """A limiter whose grant is split into finding a time and taking the tokens.

    The split lets `AllOf` hold the locks of several limiters, find one time
    that suits all of them, and then take the tokens at that time from each,
    or take nothing at all. The limiter counts such a grant as made at that
    time, even though the time may be in the future, so its bound holds for
    the times at which the tokens are used. A subclass implements these steps.
    Each one runs with `_lock` held by the caller:

    - `_earliest(n, now, not_before)` returns the earliest time, at or after
      both `now` and `not_before`, at which the limiter could grant `n`
      tokens. It is never before a reservation the limiter already made,
      unless granting earlier cannot delay that reservation.
    - `_take_at(n, at, now)` counts `n` tokens as granted at time `at` and
      returns an `Undo` that gives them back under the limiter's cancel
      rule. `at` must be a time for which ``_earliest(n, now, at) == at``.
    - `_take_now(n, now)` counts `n` tokens as granted now, like
      ``_take_at(n, now, now)`` but with nothing to undo. It too requires
      ``_earliest(n, now, now) == now``.
    - `_can_wait(now)` returns False if the limiter rejects a reservation
      that has to wait, as a full queue does.

    `n` has been checked with `_check_n` before any of them is called.
    `_reserve_earliest` is `_earliest` and `_take_at` under the lock, which is
    what `reserve` does.
    """

    __slots__ = ("_lock", "_monotonic", "_serial")

    def __init__(self, clock: Clock | None = None) -> None:
        """Store the clock and create the lock (see `LimiterBase`)."""
        super().__init__(clock)
        # Looked up once, because try_acquire is a hot path.
        self._monotonic = self._clock.monotonic
        # Guards _serial and the state that the subclass keeps.
        self._lock = threading.Lock()
        # Number of the newest reservation. Cancelling an older one returns
        # less, or nothing, under the subclass's cancel rule.
        self._serial = 0

    @abc.abstractmethod
    def _check_n(self, n: object) -> float:
        """Return `n` as a float, or raise if it is invalid or too large."""

    @abc.abstractmethod
    def _largest_n(self) -> float:
        """Return the largest `n` that the limiter can ever grant."""

    @abc.abstractmethod
    def _earliest(self, n: float, now: float, not_before: float) -> float:
        """Return the earliest time at which `n` tokens could be granted."""

    @abc.abstractmethod
    def _take_at(self, n: float, at: float, now: float) -> Undo:
        """Count `n` tokens as granted at time `at`; return how to undo it."""

    @abc.abstractmethod
    def _take_now(self, n: float, now: float) -> None:
        """Count `n` tokens as granted at time `now`."""

    def _can_wait(self, now: float) -> bool:
        """Return True if the limiter accepts a reservation that must wait."""
        return True

    def _reserve_earliest(self, n: object, timeout: object) -> Reservation | None:
        """Reserve as `Limiter.reserve` describes, taking at the earliest time."""
        tokens = self._check_n(n)
        max_wait = check_timeout("timeout", timeout)
        with self._lock:
            now = self._monotonic()
            ready_at = self._earliest(tokens, now, now)
            if max_wait is not None and ready_at - now > max_wait:
                return None
            undo = self._take_at(tokens, ready_at, now)

        on_cancel = functools.partial(self._undo, undo)
        return Reservation(ready_at, self._clock, on_cancel)

    def _undo(self, undo: Undo) -> None:
        with self._lock:
            undo(self._monotonic())
