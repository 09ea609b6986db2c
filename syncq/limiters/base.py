"""The limiter protocol, reservations, and a base class that builds on them."""

from __future__ import annotations

import abc
import functools
from types import TracebackType
from typing import Any, Callable, Protocol, TypeVar, cast, runtime_checkable

from syncq.clock import SYSTEM_CLOCK, Clock
from syncq.errors import RateLimitExceeded

__all__ = ["Limiter", "LimiterBase", "Reservation", "wait_for"]

_F = TypeVar("_F", bound=Callable[..., Any])
_L = TypeVar("_L", bound="LimiterBase")


class Reservation:
    """A claim on a limiter's capacity that may be used from `ready_at` on.

    A limiter returns one from `Limiter.reserve` after it has already counted the
    tokens as taken. The holder waits `delay()` seconds and then proceeds, or
    calls `cancel()` if it no longer needs the tokens.

    Thread-safe.
    """

    __slots__ = ("_clock", "_on_cancel", "_ready_at")

    def __init__(
        self,
        ready_at: float,
        clock: Clock,
        on_cancel: Callable[[], None] | None = None,
    ) -> None:
        """Create a reservation; limiters call this, users do not.

        Args:
            ready_at: The time on `clock` at which the tokens exist.
            clock: The clock of the limiter that made the reservation.
            on_cancel: Called by every `cancel()`. It must return the tokens only
                if the reservation is not yet due, return them at most once, and
                be safe to call from any thread. None if the tokens cannot be
                returned.
        """
        self._ready_at = ready_at
        self._clock = clock
        self._on_cancel = on_cancel

    @property
    def ready_at(self) -> float:
        """The time on the limiter's clock at which the reserved tokens exist."""
        return self._ready_at

    def delay(self) -> float:
        """Return the seconds left until `ready_at`, or 0.0 once it has passed."""
        remaining = self._ready_at - self._clock.monotonic()
        return remaining if remaining > 0 else 0.0

    def cancel(self) -> None:
        """Give the tokens back to the limiter if the reservation is not yet due.

        Once `ready_at` has passed, the holder may have used the tokens, so a
        late cancel changes nothing. Calling it more than once is harmless. A
        limiter may return part of the tokens, or none, when reservations made
        after this one still wait (see the limiter's documentation).
        """
        if self._on_cancel is not None:
            self._on_cancel()

    def __repr__(self) -> str:
        return f"Reservation(ready_at={self._ready_at!r})"


def wait_for(reservation: Reservation, clock: Clock) -> None:
    """Sleep on `clock` until `reservation` is due.

    If the sleep raises (KeyboardInterrupt, say), the reservation is cancelled
    and the exception propagates.
    """
    delay = reservation.delay()
    if delay > 0:
        try:
            clock.sleep(delay)
        except BaseException:
            reservation.cancel()
            raise


@runtime_checkable
class Limiter(Protocol):
    """A source of tokens that grants requests at a bounded rate.

    A request is for `n` tokens, a positive finite number, 1 by default. Every
    method is thread-safe. A request that can never be granted, because `n`
    exceeds what the limiter can hold at once, raises `ValueError` at once
    rather than waiting forever. Limiters read time only from their clock.
    """

    def try_acquire(self, n: float = 1) -> bool:
        """Take `n` tokens if they are available now, without blocking.

        A request never takes tokens that blocked callers have reserved, so it
        cannot jump ahead of them.

        Returns:
            True if the tokens were taken, False if nothing was taken.

        Raises:
            TypeError: `n` is not a number, or is a bool.
            ValueError: `n` is not positive and finite, or can never be granted.
        """
        ...

    def acquire(
        self,
        n: float = 1,
        timeout: float | None = None,
        *,
        raise_on_timeout: bool = False,
    ) -> bool:
        """Block until `n` tokens are granted, in the order the calls arrived.

        The call reserves its place first and then sleeps on the limiter's clock
        until its tokens exist, so waiters are served first come, first served,
        and none of them polls. If the sleep raises (KeyboardInterrupt, say),
        the reservation is cancelled and the exception propagates.

        Args:
            n: The number of tokens to take.
            timeout: The maximum seconds to wait. None or ``math.inf`` waits as
                long as needed, and 0 takes the tokens only if they are
                available now. If the tokens cannot be granted within
                `timeout`, the call takes nothing and returns at once, without
                waiting for the timeout to pass.
            raise_on_timeout: Raise `RateLimitExceeded` instead of returning
                False when the timeout cannot be met.

        Returns:
            True once the tokens are granted. False if the timeout cannot be
            met and `raise_on_timeout` is false.

        Raises:
            RateLimitExceeded: The timeout cannot be met and `raise_on_timeout`
                is true. Its `retry_after` is the wait that would have been
                needed.
            TypeError: `n` or `timeout` has the wrong type.
            ValueError: `n` or `timeout` is out of range, or `n` can never be
                granted.
        """
        ...

    def retry_after(self, n: float = 1) -> float:
        """Return the seconds until `n` tokens would be available, 0.0 if now.

        The value is a snapshot: other callers may take the tokens first.

        Raises:
            TypeError: `n` is not a number, or is a bool.
            ValueError: `n` is not positive and finite, or can never be granted.
        """
        ...

    def reserve(
        self, n: float = 1, *, timeout: float | None = None
    ) -> Reservation | None:
        """Take `n` tokens now and return when they may be used, without blocking.

        The tokens count as taken from the moment of the call, even though they
        may exist only later, which is how waiters keep their order. The caller
        should wait `delay()` on the reservation before it proceeds.

        Args:
            n: The number of tokens to take.
            timeout: None to accept any wait. Otherwise, if the wait would
                exceed `timeout` seconds, nothing is taken and the call
                returns None.

        Raises:
            TypeError: `n` or `timeout` has the wrong type.
            ValueError: `n` or `timeout` is out of range, or `n` can never be
                granted.
        """
        ...


class LimiterBase(abc.ABC):
    """A base for limiters: `acquire`, context manager and decorator on `reserve`.

    A subclass calls ``super().__init__(clock)`` and implements `try_acquire`,
    `retry_after` and `reserve` as `Limiter` describes. It then gets:

    - `acquire`, which reserves and then sleeps on the clock until the
      reservation is due;
    - ``with limiter:``, which blocks until one token is granted; leaving the
      block gives nothing back, because the token is spent;
    - ``@limiter``, a decorator that acquires one token, blocking, before each
      call of the function.
    """

    __slots__ = ("_clock",)

    def __init__(self, clock: Clock | None = None) -> None:
        """Store the clock that the limiter reads and sleeps on.

        Raises:
            TypeError: `clock` does not have `monotonic` and `sleep` methods.
        """
        if clock is None:
            clock = SYSTEM_CLOCK
        elif not isinstance(clock, Clock):
            raise TypeError(
                "clock must provide monotonic() and sleep(), "
                f"got {type(clock).__name__} {clock!r}"
            )
        self._clock: Clock = clock

    @abc.abstractmethod
    def try_acquire(self, n: float = 1) -> bool:
        """Take `n` tokens if they are available now (see `Limiter`)."""

    @abc.abstractmethod
    def retry_after(self, n: float = 1) -> float:
        """Return the seconds until `n` tokens would be available (see `Limiter`)."""

    @abc.abstractmethod
    def reserve(
        self, n: float = 1, *, timeout: float | None = None
    ) -> Reservation | None:
        """Take `n` tokens now and return when they may be used (see `Limiter`)."""

    def acquire(
        self,
        n: float = 1,
        timeout: float | None = None,
        *,
        raise_on_timeout: bool = False,
    ) -> bool:
        """Block until `n` tokens are granted (see `Limiter`)."""
        reservation = self.reserve(n, timeout=timeout)
        if reservation is None:
            if raise_on_timeout:
                retry_after = self.retry_after(n)
                raise RateLimitExceeded(
                    f"{n!r} tokens cannot be granted within timeout={timeout!r} "
                    f"seconds, retry after {retry_after:.6g} seconds",
                    retry_after,
                )
            return False

        wait_for(reservation, self._clock)
        return True

    def __enter__(self: _L) -> _L:
        """Block until one token is granted, then enter the block."""
        self.acquire(1)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Leave the block; the token stays spent and exceptions propagate."""
        return None

    def __call__(self, fn: _F) -> _F:
        """Wrap `fn` so that each call first blocks until one token is granted."""

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            self.acquire(1)
            return fn(*args, **kwargs)

        return cast(_F, wrapper)
