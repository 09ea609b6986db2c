"""syncq: a threaded, synchronous toolkit for code that calls slow or limited things."""

from __future__ import annotations

import logging

from syncq.breaker import BreakerMetrics, CircuitBreaker, CircuitState, Permit
from syncq.clock import Clock, SystemClock
from syncq.errors import (
    CircuitOpenError,
    JournalError,
    QueueClosed,
    RateLimitExceeded,
    SyncqError,
    TaskTimeout,
)
from syncq.journal import Journal, JournalTask, TaskState
from syncq.limiters import (
    AllOf,
    FixedWindow,
    KeyedLimiter,
    LeakyBucket,
    Limiter,
    LimiterBase,
    Reservation,
    SlidingWindow,
    TokenBucket,
    parse_rate,
)
from syncq.pool import (
    PoolHooks,
    PoolStats,
    RunTimes,
    SignalExit,
    TaskEvent,
    TaskOptions,
    WorkerPool,
    close_on_signals,
)
from syncq.queue import TaskQueue
from syncq.retry import Backoff, ExponentialBackoff, FixedBackoff, Retry

__all__ = [
    "AllOf",
    "Backoff",
    "BreakerMetrics",
    "CircuitBreaker",
    "CircuitOpenError",
    "CircuitState",
    "Clock",
    "ExponentialBackoff",
    "FixedBackoff",
    "FixedWindow",
    "Journal",
    "JournalError",
    "JournalTask",
    "KeyedLimiter",
    "LeakyBucket",
    "Limiter",
    "LimiterBase",
    "Permit",
    "PoolHooks",
    "PoolStats",
    "QueueClosed",
    "RateLimitExceeded",
    "Reservation",
    "Retry",
    "RunTimes",
    "SignalExit",
    "SlidingWindow",
    "SyncqError",
    "SystemClock",
    "TaskEvent",
    "TaskOptions",
    "TaskQueue",
    "TaskState",
    "TaskTimeout",
    "TokenBucket",
    "WorkerPool",
    "close_on_signals",
    "parse_rate",
]

__version__ = "0.1.0"

logging.getLogger(__name__).addHandler(logging.NullHandler())
