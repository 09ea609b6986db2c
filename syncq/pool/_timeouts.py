"""Task timeouts: attempts run under the watchdog, which gives up late ones."""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Any, Callable, NoReturn

from syncq.clock import Clock
from syncq.errors import TaskTimeout
from syncq.pool._future import describe
from syncq.pool._task import Task
from syncq.pool._watchdog import Attempt, Watchdog

if TYPE_CHECKING:
    from syncq.breaker import Permit

__all__ = ["Retired", "TimeoutMixin"]

logger = logging.getLogger(__name__)


class Retired(Exception):
    """Ends a worker thread whose timed-out attempt returned; a replacement runs."""


class TimeoutMixin:
    """The part of `WorkerPool` that runs attempts with a timeout."""

    _lock: threading.Lock
    _idle: threading.Condition
    _clock: Clock
    _monotonic: Callable[[], float]
    _watchdog: Watchdog
    _threads: list[threading.Thread]
    _max_workers: int
    _stopped: bool
    _timed_out: int
    _abandoned: int

    # Defined by the other parts of WorkerPool and declared here for mypy.
    if TYPE_CHECKING:

        def _after_success(
            self, task: Task, result: Any, run_seconds: float, ended: float
        ) -> None: ...

        def _after_failure(
            self, task: Task, exc: BaseException, run_seconds: float, ended: float
        ) -> None: ...

        def _release_held(self) -> None: ...

        def _start_worker(self) -> None: ...

    def _run_timed(self, task: Task, timeout: float, permit: Permit | None) -> None:
        """Run one attempt that the watchdog gives up after `timeout` seconds."""
        started = self._monotonic()
        attempt = Attempt(
            task,
            permit,
            threading.current_thread(),
            started_at=started,
            timeout=timeout,
        )
        self._watchdog.start(attempt)
        try:
            result = task.fn(*task.args, **task.kwargs)
        except BaseException as exc:
            if not self._watchdog.finish(attempt):
                self._retire(attempt, exc)
            ended = self._monotonic()
            if permit is not None:
                permit.record_failure(exc)
            self._after_failure(task, exc, ended - started, ended)
        else:
            if not self._watchdog.finish(attempt):
                self._retire(attempt, None)
            ended = self._monotonic()
            if permit is not None:
                permit.record_success()
            self._after_success(task, result, ended - started, ended)
        if permit is not None:
            self._release_held()

    def _expire(self, attempt: Attempt) -> None:
        """Fail an attempt that ran past its timeout; called on the watchdog."""
        task = attempt.task
        name = describe(task.fn, task.key)
        exc = TaskTimeout(
            f"task {name} did not finish within {attempt.timeout:g} seconds",
            attempt.timeout,
        )

        logger.warning(
            "task %s attempt %d timed out after %g s; thread %s runs on until "
            "the function returns, and what it returns is discarded",
            name,
            task.attempts + 1,
            attempt.timeout,
            attempt.thread.name,
        )

        with self._lock:
            self._timed_out += 1
            self._abandoned += 1
            # The thread no longer counts as a worker.
            if attempt.thread in self._threads:
                self._threads.remove(attempt.thread)

        if attempt.permit is not None:
            attempt.permit.record_failure(exc)
        now = self._monotonic()
        self._after_failure(task, exc, now - attempt.started_at, now)
        if attempt.permit is not None:
            self._release_held()

        # Another worker takes the thread's place, so max_workers tasks may
        # still run. It starts after the outcome is set, so that the tasks
        # queued behind this one see it decided.
        with self._lock:
            if not self._stopped and len(self._threads) < self._max_workers:
                self._start_worker()

    def _retire(self, attempt: Attempt, exc: BaseException | None) -> NoReturn:
        """Discard the late outcome of a timed-out attempt and end its thread."""
        elapsed = self._clock.monotonic() - attempt.started_at
        logger.warning(
            "task %s returned %s after %.3f s, past its timeout of %g s; "
            "the outcome is discarded",
            describe(attempt.task.fn, attempt.task.key),
            "a result" if exc is None else type(exc).__name__,
            elapsed,
            attempt.timeout,
        )
        with self._lock:
            self._abandoned -= 1
            self._idle.notify_all()
        raise Retired
