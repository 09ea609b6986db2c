"""Retry policies: how many attempts, which errors retry, and the backoff between."""

from __future__ import annotations

import functools
import logging
import math
import random
from typing import Any, Callable, Protocol, TypeVar

from syncq._checks import check_non_negative
from syncq.clock import SYSTEM_CLOCK, Clock

__all__ = ["Backoff", "ExponentialBackoff", "FixedBackoff", "Retry"]

logger = logging.getLogger(__name__)

T = TypeVar("T")
ExceptionTypes = tuple[type[BaseException], ...]


def _check_exception_types(name: str, value: object) -> ExceptionTypes:
    if isinstance(value, type):
        value = (value,)
    if not isinstance(value, tuple) or not all(
        isinstance(cls, type) and issubclass(cls, BaseException) for cls in value
    ):
        raise TypeError(
            f"{name} must be an exception class or a tuple of them, got {value!r}"
        )
    return value


class Backoff(Protocol):
    """A strategy that gives the delay before the next attempt."""

    def delay(self, attempt: int) -> float:
        """Return the seconds to wait after failed attempt number `attempt` (from 1)."""
        ...


class FixedBackoff:
    """Wait the same `delay` seconds after every failed attempt."""

    def __init__(self, delay: float) -> None:
        self._delay = check_non_negative("delay", delay, unit=" of seconds")

    def delay(self, attempt: int) -> float:
        """Return the fixed delay."""
        return self._delay

    def __repr__(self) -> str:
        return f"FixedBackoff({self._delay!r})"


class ExponentialBackoff:
    """Wait `initial * multiplier ** (attempt - 1)` seconds, capped at `max_delay`.

    With `jitter=True` the delay is drawn uniformly between zero and that value
    ("full jitter"), so that many clients failing together do not retry together.
    The delay stays at the cap for any number of attempts; it never overflows.
    """

    def __init__(
        self,
        initial: float = 0.1,
        multiplier: float = 2.0,
        max_delay: float = 30.0,
        *,
        jitter: bool = False,
    ) -> None:
        self.initial = check_non_negative("initial", initial, unit=" of seconds")
        self.max_delay = check_non_negative("max_delay", max_delay, unit=" of seconds")
        self.multiplier = check_non_negative("multiplier", multiplier)
        if self.multiplier < 1:
            raise ValueError(f"multiplier must be >= 1, got {multiplier!r}")
        self.jitter = jitter
        # Past this many steps the delay reaches the cap; computing the power
        # beyond it would overflow a float after about a thousand attempts.
        grows = self.initial > 0 and self.multiplier > 1
        if grows and self.max_delay > self.initial:
            self._steps_to_cap = math.log(self.max_delay / self.initial) / math.log(
                self.multiplier
            )
        else:
            self._steps_to_cap = 0.0
        self._capped_delay = (
            self.max_delay if grows else min(self.initial, self.max_delay)
        )

    def delay(self, attempt: int) -> float:
        """Return the delay after failed attempt `attempt`, with jitter if enabled."""
        steps = max(attempt - 1, 0)
        if steps >= self._steps_to_cap:
            base = self._capped_delay
        else:
            base = min(self.max_delay, self.initial * self.multiplier**steps)
        if self.jitter:
            return random.uniform(0.0, base)
        return base

    def __repr__(self) -> str:
        return (
            f"ExponentialBackoff(initial={self.initial!r}, "
            f"multiplier={self.multiplier!r}, max_delay={self.max_delay!r}, "
            f"jitter={self.jitter!r})"
        )


class Retry:
    """A retry policy: up to `attempts` runs in all, with `backoff` between them.

    An exception is retried when it is an instance of `retry_on` and not of
    `give_up_on`. `KeyboardInterrupt`, `SystemExit` and other exceptions that do
    not derive from `Exception` are never retried. An exception with a numeric
    `retry_after` attribute (such as `RateLimitExceeded`) sets a floor for the
    next delay.

    The policy is immutable and may be shared by threads and pools. Used as a
    decorator or through `call`, it runs the function in the calling thread and
    sleeps on `clock` between attempts. A worker pool instead schedules the next
    attempt without holding a thread.

    Args:
        attempts: Total number of runs, the first included; 1 disables retries.
        backoff: The delay strategy; defaults to `ExponentialBackoff()`.
        retry_on: Exception classes that are retried.
        give_up_on: Exception classes that fail at once, even if in `retry_on`.
        clock: Used by `call` and the decorator to sleep between attempts.
    """

    def __init__(
        self,
        attempts: int = 3,
        *,
        backoff: Backoff | None = None,
        retry_on: type[BaseException] | ExceptionTypes = (Exception,),
        give_up_on: type[BaseException] | ExceptionTypes = (),
        clock: Clock | None = None,
    ) -> None:
        if isinstance(attempts, bool) or not isinstance(attempts, int):
            raise TypeError(f"attempts must be an int, got {attempts!r}")
        if attempts < 1:
            raise ValueError(f"attempts must be >= 1, got {attempts!r}")
        self.attempts = attempts
        if backoff is not None and not callable(getattr(backoff, "delay", None)):
            raise TypeError(
                f"backoff must be a Backoff, such as ExponentialBackoff(), "
                f"got {backoff!r}"
            )
        self.backoff: Backoff = backoff if backoff is not None else ExponentialBackoff()
        self.retry_on = _check_exception_types("retry_on", retry_on)
        self.give_up_on = _check_exception_types("give_up_on", give_up_on)
        self._clock = clock if clock is not None else SYSTEM_CLOCK

    def should_retry(self, exc: BaseException, attempt: int) -> bool:
        """Return whether to run again after attempt number `attempt` raised `exc`."""
        return (
            attempt < self.attempts
            and isinstance(exc, Exception)
            and isinstance(exc, self.retry_on)
            and not isinstance(exc, self.give_up_on)
        )

    def next_delay(self, exc: BaseException, attempt: int) -> float:
        """Return the seconds to wait after attempt `attempt` failed with `exc`."""
        delay = self.backoff.delay(attempt)
        hint = getattr(exc, "retry_after", None)
        if isinstance(hint, bool) or not isinstance(hint, (int, float)):
            return delay
        if math.isfinite(hint) and hint > delay:
            return float(hint)
        return delay

    def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run `fn(*args, **kwargs)`, retrying under this policy.

        Blocks the calling thread during backoff.

        Raises:
            BaseException: The last attempt's exception, once the policy gives up.
        """
        attempt = 1
        while True:
            try:
                return fn(*args, **kwargs)
            except BaseException as exc:
                if not self.should_retry(exc, attempt):
                    raise
                delay = self.next_delay(exc, attempt)
                logger.debug(
                    "retrying %s after attempt %d failed with %s; next in %.3f s",
                    getattr(fn, "__qualname__", fn),
                    attempt,
                    type(exc).__name__,
                    delay,
                )
            self._clock.sleep(delay)
            attempt += 1

    def __call__(self, fn: Callable[..., T]) -> Callable[..., T]:
        """Wrap `fn` so every call runs under this policy (see `call`)."""

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> T:
            return self.call(fn, *args, **kwargs)

        return wrapper

    def __repr__(self) -> str:
        return f"Retry(attempts={self.attempts!r}, backoff={self.backoff!r})"
