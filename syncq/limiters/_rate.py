"""Parsing of rates such as ``"100/min"`` and checks of the numbers limiters take."""

from __future__ import annotations

import math
import numbers
import re
from typing import NamedTuple, Union

__all__ = ["ParsedRate", "RateSpec", "parse_rate"]

RateSpec = Union[float, int, str]
"""A rate as limiters accept it: tokens per second, or a string such as "5/s"."""

_SECONDS_PER_UNIT = {
    "s": 1.0,
    "sec": 1.0,
    "secs": 1.0,
    "second": 1.0,
    "seconds": 1.0,
    "m": 60.0,
    "min": 60.0,
    "mins": 60.0,
    "minute": 60.0,
    "minutes": 60.0,
    "h": 3600.0,
    "hr": 3600.0,
    "hrs": 3600.0,
    "hour": 3600.0,
    "hours": 3600.0,
    "d": 86400.0,
    "day": 86400.0,
    "days": 86400.0,
}

# "<count>/<multiplier><unit>", where the multiplier is optional: "100/15min".
_RATE_PATTERN = re.compile(
    r"(?P<count>\d+(?:\.\d+)?)\s*/\s*(?P<multiplier>\d+(?:\.\d+)?)?\s*(?P<unit>[a-z]+)",
    re.IGNORECASE,
)

_ACCEPTED_FORMS = (
    "a positive number of tokens per second, or a string such as "
    "'5/s', '100/min', '60/h', '1000/d', '10/second' or '100/15min'"
)


class ParsedRate(NamedTuple):
    """A rate converted to tokens per second."""

    per_second: float
    """Tokens per second."""

    limit: float | None
    """The token count written in a rate string (100 for "100/15min"), or None
    when the rate was given as a number."""

    period: float | None
    """The seconds written in a rate string (900.0 for "100/15min"), or None
    when the rate was given as a number."""


def parse_rate(rate: object) -> ParsedRate:
    """Convert a rate given as a number or a string to tokens per second.

    A number is taken as tokens per second. A string is ``"<count>/<unit>"`` or
    ``"<count>/<multiplier><unit>"``: ``"5/s"``, ``"100/min"``, ``"60/h"``,
    ``"1000/d"``, ``"100/15min"`` (100 per 15 minutes) or ``"3/2s"``. The unit is
    case-insensitive and may be s, sec, second, m, min, minute, h, hr, hour, d or
    day, each also in the plural. Spaces around the parts are allowed.

    Args:
        rate: The rate to convert.

    Returns:
        The rate in tokens per second, with the count and the period in seconds
        from the string, if any.

    Raises:
        TypeError: `rate` is neither a real number nor a string, or is a bool.
        ValueError: `rate` is zero, negative, NaN or infinite, or the string does
            not have one of the forms above.
    """
    if isinstance(rate, str):
        return _parse_rate_string(rate)
    if isinstance(rate, bool) or not isinstance(rate, numbers.Real):
        raise TypeError(
            f"rate must be {_ACCEPTED_FORMS}, got {type(rate).__name__} {rate!r}"
        )
    try:
        number = float(rate)
    except OverflowError:
        # An int too large for a float is not a finite rate either.
        number = math.inf
    if not (number > 0 and math.isfinite(number)):
        raise ValueError(f"rate must be {_ACCEPTED_FORMS}, got {rate!r}")
    return ParsedRate(number, None, None)


def _parse_rate_string(rate: str) -> ParsedRate:
    match = _RATE_PATTERN.fullmatch(rate.strip())
    if match is None:
        raise ValueError(f"invalid rate {rate!r}: expected {_ACCEPTED_FORMS}")

    unit = match.group("unit").lower()
    seconds_per_unit = _SECONDS_PER_UNIT.get(unit)
    if seconds_per_unit is None:
        raise ValueError(
            f"invalid rate {rate!r}: unknown unit {unit!r}, expected {_ACCEPTED_FORMS}"
        )

    count = float(match.group("count"))
    multiplier_text = match.group("multiplier")
    multiplier = 1.0 if multiplier_text is None else float(multiplier_text)
    period = multiplier * seconds_per_unit
    # A string of many digits converts to inf, and a huge period makes the rate
    # underflow to zero, so the finished numbers are checked, not only the text.
    per_second = count / period if period > 0 else math.nan
    if not (
        count > 0
        and math.isfinite(count)
        and math.isfinite(period)
        and per_second > 0
        and math.isfinite(per_second)
    ):
        raise ValueError(
            f"invalid rate {rate!r}: the count and the period must be positive "
            f"and finite, expected {_ACCEPTED_FORMS}"
        )
    return ParsedRate(per_second, count, period)
