"""Counting the pool's tasks as they finish, and the snapshot `stats` returns."""

from __future__ import annotations

import threading
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any, Callable

from syncq.pool._stats import AttemptRecorder
from syncq.pool._task import PoolStats, Task

__all__ = ["CountingMixin"]


class CountingMixin:
    """The part of `WorkerPool` that counts finished tasks and reports the counts."""

    _lock: threading.Lock
    _idle: threading.Condition
    _shutdown: bool
    _max_pending: int
    _joiners: int
    _pending: int
    _outstanding: int
    _running: int
    _submitted: int
    _succeeded: int
    _failed: int
    _cancelled: int
    _retried: int
    _timed_out: int
    _abandoned: int
    _attempts: AttemptRecorder
    _by_key: dict[str, Future[Any]]
    _monotonic: Callable[[], float]

    # Defined by the other parts of WorkerPool and declared here for mypy.
    if TYPE_CHECKING:

        def _stop(self) -> None: ...

    def stats(self) -> PoolStats:
        """Return a snapshot of the pool's counters and recent figures.

        Throughput and error rate cover the attempts that finished in the last
        minute on the pool's clock; run-time percentiles cover the latest 1,024
        attempts. Both count every attempt, retried ones included.
        """
        now = self._monotonic()
        with self._lock:
            recent = self._attempts.sample(now)
            counters = (
                self._submitted,
                self._outstanding - self._running,
                self._running,
                self._succeeded,
                self._failed,
                self._cancelled,
                self._retried,
                self._timed_out,
                self._abandoned,
            )
        # Sorting the run times is the slow part, so it runs without the lock.
        return PoolStats(
            *counters,
            throughput=recent.throughput,
            error_rate=recent.error_rate,
            run_times=recent.run_times(),
        )

    def _finish(
        self, task: Task, *, failed: bool = False, cancelled: bool = False
    ) -> None:
        with self._lock:
            stop = self._count_finished(task, failed=failed, cancelled=cancelled)
        if stop:
            self._stop()

    def _count_finished(
        self, task: Task, *, failed: bool = False, cancelled: bool = False
    ) -> bool:
        """Count a finished task, and return whether the pool should now stop."""
        # Called with the lock held.
        if not task.started:
            self._pending -= 1
        self._outstanding -= 1
        if cancelled:
            self._cancelled += 1
        elif failed:
            self._failed += 1
        else:
            self._succeeded += 1
        # From now on the journal returns the result of a done key. A failed key
        # stays mapped until the pool stops, so submitting it again in this run
        # returns the failed future instead of running the task a second time.
        if task.key is not None and not failed:
            self._by_key.pop(task.key, None)
        # Waiters are submitters blocked on max_pending, join(), or close() and
        # shutdown(), which set _shutdown before they wait.
        if self._shutdown or self._max_pending or self._joiners:
            self._idle.notify_all()
        return self._shutdown and self._outstanding == 0
