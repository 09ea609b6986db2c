"""Retry policies: how many attempts, which errors retry, and the backoff between."""

from __future__ import annotations

import functools
import logging
import math
import numbers
import random
from typing import Any, Callable, Protocol, TypeVar

from syncq._checks import check_int, check_non_negative
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


def _check_budget(value: object) -> float | None:
    """Return a budget in seconds, or None for no budget.

    Infinity and ints too large for a float also mean no budget, as they mean no
    limit for a timeout elsewhere in syncq.
    """
    if value is None:
        return None
    allowed = "None or a positive number of seconds"
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(
            f"budget must be {allowed}, got {type(value).__name__} {value!r}"
        )
    try:
        seconds = float(value)
    except OverflowError:
        # An int too large for a float; typeshed's Real lacks the comparison.
        seconds = math.inf if value > 0 else -math.inf  # type: ignore[operator]
    if not seconds > 0:
        raise ValueError(f"budget must be {allowed}, got {value!r}")
    if math.isinf(seconds):
        return None
    return seconds


def _name_of(fn: Callable[..., Any]) -> str:
    return str(getattr(fn, "__qualname__", fn))


def _check_multiplier(value: object) -> float:
    """Return a backoff multiplier if it is a finite number of at least 1."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(
            f"multiplier must be a finite number >= 1, "
            f"got {type(value).__name__} {value!r}"
        )
    try:
        number = float(value)
    except OverflowError:
        number = math.inf
    if not (number >= 1 and math.isfinite(number)):
        raise ValueError(f"multiplier must be a finite number >= 1, got {value!r}")
    return number


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
        self.multiplier = _check_multiplier(multiplier)
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

    With a `budget`, attempts may start only within that many seconds of the
    start of the first attempt, and the time the attempts themselves take counts.
    When the next attempt would start at or after that deadline, the policy gives
    up at once with the last exception and does not sleep first. It never
    shortens a delay to fit the budget, because the shorter delay would retry
    sooner than the backoff or the `retry_after` hint allows.

    The policy is immutable and may be shared by threads and pools. Used as a
    decorator or through `call`, it runs the function in the calling thread and
    sleeps on `clock` between attempts. Each call gets a budget of its own. A
    worker pool instead schedules the next attempt without holding a thread, and
    asks `next_attempt` for the delay.

    Args:
        attempts: Total number of runs, the first included; 1 disables retries.
        backoff: The delay strategy; defaults to `ExponentialBackoff()`.
        retry_on: Exception classes that are retried.
        give_up_on: Exception classes that fail at once, even if in `retry_on`.
        budget: The maximum seconds from the start of the first attempt within
            which attempts may start. None or infinity means no limit.
        clock: Used by `call` and the decorator to sleep between attempts and to
            measure the budget.
    """

    def __init__(
        self,
        attempts: int = 3,
        *,
        backoff: Backoff | None = None,
        retry_on: type[BaseException] | ExceptionTypes = (Exception,),
        give_up_on: type[BaseException] | ExceptionTypes = (),
        budget: float | None = None,
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
        self.budget = _check_budget(budget)
        self._clock = clock if clock is not None else SYSTEM_CLOCK

    def should_retry(self, exc: BaseException, attempt: int) -> bool:
        """Return whether `exc` and the attempt count allow another attempt.

        It ignores the budget, which `next_attempt` checks as well.
        """
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

    def within_budget(self, elapsed: float) -> bool:
        """Return whether an attempt may start `elapsed` seconds after the first.

        Always true without a budget. A caller whose attempt may start later than
        its delay planned, after a late wake-up or a wait in a queue, should
        check this before starting it.

        Raises:
            TypeError, ValueError: `elapsed` is not a finite number >= 0.
        """
        elapsed = check_non_negative("elapsed", elapsed, unit=" of seconds")
        return self.budget is None or elapsed < self.budget

    def next_attempt(
        self,
        exc: BaseException,
        attempt: int,
        elapsed: float,
        *,
        name: str | None = None,
    ) -> float | None:
        """Decide whether to retry after attempt `attempt` failed, and log it.

        This is the whole decision: `should_retry`, then `next_delay`, then the
        budget. It reads no clock, so a caller measures `elapsed` on its own.
        Retries and give-ups are logged at DEBUG level.

        Args:
            exc: The exception that the attempt raised.
            attempt: The number of the attempt that failed, from 1.
            elapsed: Seconds from the start of the first attempt until now,
                the time the attempts took included. Without a budget it is
                checked but not used.
            name: How log messages name the call, such as the function's name.

        Returns:
            The seconds to wait before the next attempt, or None to give up at
            once. It is None when `should_retry` is false, or when a budget is
            set and `elapsed + next_delay(exc, attempt) >= budget`.

        Raises:
            TypeError, ValueError: `attempt` is not an int >= 1, or `elapsed` is
                not a finite number >= 0.
        """
        check_int("attempt", attempt, minimum=1)
        elapsed = check_non_negative("elapsed", elapsed, unit=" of seconds")
        target = "a call" if name is None else name
        if not self.should_retry(exc, attempt):
            reason = (
                "no attempts left"
                if attempt >= self.attempts
                else "the exception is not retried"
            )
            logger.debug(
                "giving up on %s after attempt %d of %d failed with %s: %s",
                target,
                attempt,
                self.attempts,
                type(exc).__name__,
                reason,
            )
            return None

        delay = self.next_delay(exc, attempt)
        if self.budget is not None and elapsed + delay >= self.budget:
            logger.debug(
                "giving up on %s after attempt %d of %d failed with %s: the next "
                "attempt would start %.3f s after the first, at or past the "
                "budget of %.3f s",
                target,
                attempt,
                self.attempts,
                type(exc).__name__,
                elapsed + delay,
                self.budget,
            )
            return None

        logger.debug(
            "retrying %s after attempt %d failed with %s; next in %.3f s",
            target,
            attempt,
            type(exc).__name__,
            delay,
        )
        return delay

    def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run `fn(*args, **kwargs)`, retrying under this policy.

        Blocks the calling thread during backoff. The budget, if any, starts
        when this call does. Should the sleep end past the deadline (a real clock
        may wake late), the call gives up then instead of starting a late attempt.

        Raises:
            BaseException: The last attempt's exception, once the policy gives up.
        """
        start = self._clock.monotonic() if self.budget is not None else 0.0
        attempt = 1
        while True:
            try:
                return fn(*args, **kwargs)
            except BaseException as exc:
                elapsed = self._elapsed_since(start)
                delay = self.next_attempt(exc, attempt, elapsed, name=_name_of(fn))
                if delay is None:
                    raise
                failure = exc
            # Sleep outside the except block, so that the next attempt's
            # exception does not carry this one as its __context__.
            self._clock.sleep(delay)
            elapsed = self._elapsed_since(start)
            if not self.within_budget(elapsed):
                logger.debug(
                    "giving up on %s after attempt %d of %d failed with %s: the "
                    "wait ended %.3f s after the first attempt started, past the "
                    "budget of %.3f s",
                    _name_of(fn),
                    attempt,
                    self.attempts,
                    type(failure).__name__,
                    elapsed,
                    self.budget,
                )
                raise failure
            attempt += 1

    def _elapsed_since(self, start: float) -> float:
        if self.budget is None:
            return 0.0
        # Clamped at zero, because a clock that steps back would otherwise make
        # next_attempt raise ValueError in place of the caller's exception.
        return max(self._clock.monotonic() - start, 0.0)

    def __call__(self, fn: Callable[..., T]) -> Callable[..., T]:
        """Wrap `fn` so every call runs under this policy (see `call`)."""

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> T:
            return self.call(fn, *args, **kwargs)

        return wrapper

    def __repr__(self) -> str:
        return (
            f"Retry(attempts={self.attempts!r}, backoff={self.backoff!r}, "
            f"budget={self.budget!r})"
        )
