"""Checks for the breaker's arguments, and the options and window built from them."""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Callable

from syncq._checks import check_int, check_positive
from syncq.breaker._states import RateRule
from syncq.breaker._windows import CountWindow, TimeWindow, Window
from syncq.clock import SYSTEM_CLOCK, Clock

WINDOW_TYPES = ("count", "time")

# Window sizes when `window_size` is not given: calls, or seconds.
DEFAULT_COUNT_WINDOW = 100
DEFAULT_TIME_WINDOW = 60.0

# Calls a time window needs before its rates count, when `minimum_calls` is not
# given. A count window needs to be full.
DEFAULT_TIME_MINIMUM_CALLS = 10


def check_rate(name: str, value: object) -> float | None:
    """Return a rate threshold in (0, 1] as a float, or None for no threshold."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(
            f"{name} must be None or a number in (0, 1], "
            f"got {type(value).__name__} {value!r}"
        )
    if not 0 < value <= 1:
        raise ValueError(f"{name} must be None or a number in (0, 1], got {value!r}")
    return float(value)


def check_fallback_on_failure(value: object, fallback: object) -> None:
    """Check that `fallback_on_failure` is a bool, and True only with a fallback."""
    if not isinstance(value, bool):
        raise TypeError(
            f"fallback_on_failure must be a bool, got {type(value).__name__}: {value!r}"
        )
    if value and fallback is None:
        raise ValueError("fallback_on_failure=True needs a fallback to call")


def check_growth(
    multiplier: object, maximum: object, reset_timeout: float
) -> tuple[float, float | None]:
    """Check `reset_timeout_multiplier` and `max_reset_timeout` and return them."""
    if isinstance(multiplier, bool) or not isinstance(multiplier, (int, float)):
        raise TypeError(
            "reset_timeout_multiplier must be a finite number >= 1, "
            f"got {type(multiplier).__name__} {multiplier!r}"
        )
    if not (multiplier >= 1 and math.isfinite(multiplier)):
        raise ValueError(
            f"reset_timeout_multiplier must be a finite number >= 1, got {multiplier!r}"
        )
    if maximum is None:
        return float(multiplier), None
    seconds = check_positive("max_reset_timeout", maximum, unit=" of seconds")
    if seconds < reset_timeout:
        raise ValueError(
            f"max_reset_timeout must be at least reset_timeout={reset_timeout:g}, "
            f"got {maximum!r}"
        )
    return float(multiplier), seconds


def build_rate_rule(
    *,
    failure_rate_threshold: object,
    slow_call_rate_threshold: float | None,
    window_type: object,
    window_size: object,
    minimum_calls: object,
) -> RateRule | None:
    """Check the window options and return the rule, or None if no rate is set.

    The window options are checked even when no rate threshold uses them, so a
    mistyped option fails at once.
    """
    failure_rate = check_rate("failure_rate_threshold", failure_rate_threshold)
    if not isinstance(window_type, str) or window_type not in WINDOW_TYPES:
        raise ValueError(f"window_type must be 'count' or 'time', got {window_type!r}")
    window: Window
    if window_type == "count":
        size = DEFAULT_COUNT_WINDOW
        if window_size is not None:
            size = check_int("window_size", window_size, minimum=1)
        minimum = size
        if minimum_calls is not None:
            minimum = check_int("minimum_calls", minimum_calls, minimum=1)
        if minimum > size:
            raise ValueError(
                f"minimum_calls must be at most window_size={size} for a count "
                f"window, which never holds more calls, got {minimum!r}"
            )
        window = CountWindow(size)
    else:
        seconds = DEFAULT_TIME_WINDOW
        if window_size is not None:
            seconds = check_positive("window_size", window_size, unit=" of seconds")
        minimum = DEFAULT_TIME_MINIMUM_CALLS
        if minimum_calls is not None:
            minimum = check_int("minimum_calls", minimum_calls, minimum=1)
        window = TimeWindow(seconds)

    if failure_rate is None and slow_call_rate_threshold is None:
        return None
    return RateRule(window, minimum, failure_rate, slow_call_rate_threshold)


def check_exceptions(
    name: str, value: object, *, base: type[BaseException], allow_empty: bool
) -> tuple[type[BaseException], ...]:
    """Return `value` if it is a tuple of exception classes derived from `base`."""
    if not isinstance(value, tuple):
        raise TypeError(
            f"{name} must be a tuple of exception classes, "
            f"got {type(value).__name__}: {value!r}"
        )
    if not value and not allow_empty:
        raise ValueError(f"{name} must contain at least one exception class, got ()")
    for item in value:
        if not isinstance(item, type) or not issubclass(item, BaseException):
            raise TypeError(f"{name} must contain exception classes, got {item!r}")
        if not issubclass(item, base):
            raise ValueError(
                f"{name} must contain subclasses of {base.__name__}, got "
                f"{item.__name__}, which the breaker never counts as a failure"
            )
    return value


@dataclasses.dataclass(frozen=True)
class BreakerOptions:
    """The checked arguments of one `CircuitBreaker`, with their defaults filled in."""

    failure_threshold: int | None
    reset_timeout: float
    trial_timeout: float
    reset_timeout_multiplier: float
    max_reset_timeout: float | None
    half_open_max_calls: int
    success_threshold: int
    failure_exceptions: tuple[type[BaseException], ...]
    ignore_exceptions: tuple[type[BaseException], ...]
    failure_predicate: Callable[[Exception], bool] | None
    result_predicate: Callable[[Any], bool] | None
    fallback: Callable[[Exception], Any] | None
    fallback_on_failure: bool
    slow_call_duration: float | None
    rule: RateRule | None
    name: str | None
    clock: Clock


def check_options(
    *,
    failure_threshold: int | None,
    reset_timeout: float,
    half_open_max_calls: int,
    success_threshold: int,
    trial_timeout: float | None,
    reset_timeout_multiplier: float,
    max_reset_timeout: float | None,
    failure_exceptions: tuple[type[BaseException], ...],
    ignore_exceptions: tuple[type[BaseException], ...],
    failure_predicate: Callable[[Exception], bool] | None,
    result_predicate: Callable[[Any], bool] | None,
    failure_rate_threshold: float | None,
    window_type: str,
    window_size: float | None,
    minimum_calls: int | None,
    slow_call_duration: float | None,
    slow_call_rate_threshold: float | None,
    fallback: Callable[[Exception], Any] | None,
    fallback_on_failure: bool,
    name: str | None,
    clock: Clock | None,
) -> BreakerOptions:
    """Check the arguments of `CircuitBreaker` and return them as options.

    The checks run in a fixed order, so when several arguments are invalid, the
    same one is always reported.

    Raises:
        TypeError: As `CircuitBreaker` documents.
        ValueError: As `CircuitBreaker` documents.
    """
    threshold: int | None = None
    if failure_threshold is not None:
        threshold = check_int("failure_threshold", failure_threshold, minimum=1)
    reset_seconds = check_positive("reset_timeout", reset_timeout, unit=" of seconds")
    trial_seconds = reset_seconds
    if trial_timeout is not None:
        trial_seconds = check_positive(
            "trial_timeout", trial_timeout, unit=" of seconds"
        )
    multiplier, maximum = check_growth(
        reset_timeout_multiplier, max_reset_timeout, reset_seconds
    )
    max_calls = check_int("half_open_max_calls", half_open_max_calls, minimum=1)
    successes = check_int("success_threshold", success_threshold, minimum=1)
    failures = check_exceptions(
        "failure_exceptions", failure_exceptions, base=Exception, allow_empty=False
    )
    ignored = check_exceptions(
        "ignore_exceptions", ignore_exceptions, base=BaseException, allow_empty=True
    )
    _check_callables(failure_predicate, result_predicate, fallback)
    check_fallback_on_failure(fallback_on_failure, fallback)
    slow_seconds, slow_rate = _check_slow_calls(
        slow_call_duration, slow_call_rate_threshold
    )
    rule = build_rate_rule(
        failure_rate_threshold=failure_rate_threshold,
        slow_call_rate_threshold=slow_rate,
        window_type=window_type,
        window_size=window_size,
        minimum_calls=minimum_calls,
    )
    if threshold is None and rule is None:
        raise ValueError(
            "failure_threshold=None needs failure_rate_threshold or "
            "slow_call_rate_threshold, or the breaker could never open"
        )
    checked_name = _check_name(name)
    checked_clock = _check_clock(clock)

    return BreakerOptions(
        failure_threshold=threshold,
        reset_timeout=reset_seconds,
        trial_timeout=trial_seconds,
        reset_timeout_multiplier=multiplier,
        max_reset_timeout=maximum,
        half_open_max_calls=max_calls,
        success_threshold=successes,
        failure_exceptions=failures,
        ignore_exceptions=ignored,
        failure_predicate=failure_predicate,
        result_predicate=result_predicate,
        fallback=fallback,
        fallback_on_failure=fallback_on_failure,
        slow_call_duration=slow_seconds,
        rule=rule,
        name=checked_name,
        clock=checked_clock,
    )


def _check_callables(
    failure_predicate: object, result_predicate: object, fallback: object
) -> None:
    for option, predicate in (
        ("failure_predicate", failure_predicate),
        ("result_predicate", result_predicate),
        ("fallback", fallback),
    ):
        if predicate is not None and not callable(predicate):
            raise TypeError(
                f"{option} must be callable or None, got "
                f"{type(predicate).__name__}: {predicate!r}"
            )


def _check_slow_calls(
    duration: object, rate_threshold: object
) -> tuple[float | None, float | None]:
    # Returns slow_call_duration and slow_call_rate_threshold.
    seconds: float | None = None
    if duration is not None:
        seconds = check_positive("slow_call_duration", duration, unit=" of seconds")
    slow_rate = check_rate("slow_call_rate_threshold", rate_threshold)
    if slow_rate is not None and seconds is None:
        raise ValueError(
            f"slow_call_rate_threshold={slow_rate!r} needs slow_call_duration, "
            "the seconds after which a call is slow"
        )
    return seconds, slow_rate


def _check_name(name: str | None) -> str | None:
    if name is not None and not isinstance(name, str):
        raise TypeError(
            f"name must be a str or None, got {type(name).__name__}: {name!r}"
        )
    return name


def _check_clock(clock: Clock | None) -> Clock:
    if clock is not None and not isinstance(clock, Clock):
        raise TypeError(f"clock must provide monotonic() and sleep(), got {clock!r}")
    return SYSTEM_CLOCK if clock is None else clock
