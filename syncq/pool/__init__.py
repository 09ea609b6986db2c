"""A bounded worker pool that is a `concurrent.futures.Executor`.

Beyond `ThreadPoolExecutor`, the pool bounds the number of tasks waiting to run,
orders them by priority, retries failures with backoff without holding a thread,
waits for a rate limiter's token before each run, delays tasks while a circuit
breaker is open, and can record every task in a `Journal` so that a killed batch
resumes where it stopped.
"""

from __future__ import annotations

from syncq.pool._executor import WorkerPool
from syncq.pool._hooks import PoolHooks, TaskEvent
from syncq.pool._map import map_ordered, map_unordered
from syncq.pool._signals import SignalCloser, SignalExit, close_on_signals
from syncq.pool._stats import RunTimes
from syncq.pool._task import PoolStats, TaskOptions

__all__ = [
    "PoolHooks",
    "PoolStats",
    "RunTimes",
    "SignalCloser",
    "SignalExit",
    "TaskEvent",
    "TaskOptions",
    "WorkerPool",
    "close_on_signals",
    "map_ordered",
    "map_unordered",
]
