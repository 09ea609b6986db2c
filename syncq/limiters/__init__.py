"""Rate limiters that share one protocol: `Limiter`."""

from __future__ import annotations

from syncq.limiters._rate import ParsedRate, parse_rate
from syncq.limiters.base import Limiter, LimiterBase, Reservation
from syncq.limiters.token_bucket import TokenBucket

__all__ = [
    "Limiter",
    "LimiterBase",
    "ParsedRate",
    "Reservation",
    "TokenBucket",
    "parse_rate",
]
