"""Rate limiters that share one protocol: `Limiter`."""

from __future__ import annotations

from syncq.limiters._rate import ParsedRate, parse_rate
from syncq.limiters.all_of import AllOf
from syncq.limiters.base import Limiter, LimiterBase, Reservation
from syncq.limiters.keyed import KeyedLimiter
from syncq.limiters.leaky_bucket import LeakyBucket
from syncq.limiters.token_bucket import TokenBucket
from syncq.limiters.window import FixedWindow, SlidingWindow

__all__ = [
    "AllOf",
    "FixedWindow",
    "KeyedLimiter",
    "LeakyBucket",
    "Limiter",
    "LimiterBase",
    "ParsedRate",
    "Reservation",
    "SlidingWindow",
    "TokenBucket",
    "parse_rate",
]
