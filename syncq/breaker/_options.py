"""Checks for the breaker's options, and the rate window they build."""

from __future__ import annotations

import math

from syncq._checks import check_int, check_positive
from syncq.breaker._states import RateRule
from syncq.breaker._windows import CountWindow, TimeWindow, Window

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
