"""syncq: a threaded, synchronous toolkit for code that calls slow or limited things."""

from __future__ import annotations

import logging

from syncq.clock import Clock, SystemClock
from syncq.errors import CircuitOpenError, JournalError, RateLimitExceeded, SyncqError

__all__ = [
    "CircuitOpenError",
    "Clock",
    "JournalError",
    "RateLimitExceeded",
    "SyncqError",
    "SystemClock",
]

__version__ = "0.1.0"

logging.getLogger(__name__).addHandler(logging.NullHandler())
