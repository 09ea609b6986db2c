"""Argument checks shared by the parts, so every part rejects bad values alike.

Each check raises TypeError for a value of the wrong type (a bool is never taken
for a number) and ValueError for a value out of range, naming the parameter, the
value and what is allowed.
"""

from __future__ import annotations

import math
import numbers


def _type_name(value: object) -> str:
    return type(value).__name__


def _real(value: object) -> float | None:
    """Return `value` as a float if it is a real number other than a bool."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return None
    try:
        return float(value)
    except OverflowError:
        # An int too large for a float; typeshed's Real lacks the comparison.
        return math.inf if value > 0 else -math.inf  # type: ignore[operator]


def check_int(name: str, value: object, *, minimum: int) -> int:
    """Return `value` if it is an int of at least `minimum`."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(
            f"{name} must be an int >= {minimum}, got {_type_name(value)} {value!r}"
        )
    if value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")
    return value


def check_positive(name: str, value: object, *, unit: str = "") -> float:
    """Return `value` as a float if it is a finite number above zero.

    `unit`, such as ``" of seconds"``, is added to the messages after "number".
    """
    number = _real(value)
    if number is None:
        raise TypeError(
            f"{name} must be a positive finite number{unit}, "
            f"got {_type_name(value)} {value!r}"
        )
    if not (number > 0 and math.isfinite(number)):
        raise ValueError(
            f"{name} must be a positive finite number{unit}, got {value!r}"
        )
    return number


def check_non_negative(name: str, value: object, *, unit: str = "") -> float:
    """Return `value` as a float if it is a finite number of at least zero."""
    number = _real(value)
    if number is None:
        raise TypeError(
            f"{name} must be a finite number{unit} >= 0, "
            f"got {_type_name(value)} {value!r}"
        )
    if not (number >= 0 and math.isfinite(number)):
        raise ValueError(f"{name} must be a finite number{unit} >= 0, got {value!r}")
    return number


def check_timeout(name: str, value: object) -> float | None:
    """Return a timeout in seconds, or None for no limit.

    None, infinity and ints too large for a float mean no limit; zero is allowed.
    """
    if value is None:
        return None
    seconds = _real(value)
    if seconds is None:
        raise TypeError(
            f"{name} must be None or a number of seconds >= 0, "
            f"got {_type_name(value)} {value!r}"
        )
    if not seconds >= 0:
        raise ValueError(
            f"{name} must be None or a number of seconds >= 0, got {value!r}"
        )
    if math.isinf(seconds):
        return None
    return seconds


def check_priority(value: object) -> float:
    """Return a task priority as a float if it is a number and not NaN."""
    priority = _real(value)
    if priority is None:
        raise TypeError(
            f"priority must be an int or float, got {_type_name(value)} {value!r}"
        )
    if math.isnan(priority):
        raise ValueError(f"priority must not be NaN, got {value!r}")
    return priority
