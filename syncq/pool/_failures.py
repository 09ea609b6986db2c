"""Failed attempts, which the pool retries later or fails for good."""

from __future__ import annotations

import logging
import threading
from collections import deque
from concurrent.futures import CancelledError
from typing import TYPE_CHECKING, Any, Callable

from syncq.journal import Journal
from syncq.pool._future import describe
from syncq.pool._hooks import PoolHooks
from syncq.pool._stats import AttemptRecorder
from syncq.pool._task import Task
from syncq.pool._timer import Timer

if TYPE_CHECKING:
    from syncq.breaker import Permit

__all__ = ["FailureMixin"]

logger = logging.getLogger(__name__)


class FailureMixin:
    """The part of `WorkerPool` that retries failed tasks or gives them up."""

    _lock: threading.Lock
    _idle: threading.Condition
    _pending: int
    _running: int
    _retried: int
    _joiners: int
    _attempts: AttemptRecorder
    _completing: deque[None]
    _hooks: tuple[PoolHooks, ...]
    _journal: Journal | None
    _abort: threading.Event
    _timer: Timer

    # Defined by the other parts of WorkerPool and declared here for mypy.
    if TYPE_CHECKING:

        def _emit(self, event: str, task: Task, attempt: int, *args: Any) -> None: ...

        def _finish(
            self, task: Task, *, failed: bool = False, cancelled: bool = False
        ) -> None: ...

        def _count_finished(
            self, task: Task, *, failed: bool = False, cancelled: bool = False
        ) -> bool: ...

        def _stop(self) -> None: ...

        @staticmethod
        def _journal_write(
            write: Callable[[int, str], None], journal_id: int, exc: BaseException
        ) -> None: ...

    def _after_failure(
        self, task: Task, exc: BaseException, run_seconds: float, ended: float
    ) -> None:
        task.attempts += 1
        task.last_exception = exc
        if task.attempts == 1:
            task.first_started = ended - run_seconds
        if self._hooks:
            self._emit("failed", task, task.attempts, exc)
        policy = task.retry
        delay = None
        if policy is not None and not self._abort.is_set():
            delay = policy.next_attempt(
                exc,
                task.attempts,
                ended - task.first_started,
                name=describe(task.fn, task.key),
            )
        if delay is None:
            if self._hooks:
                self._emit("gave_up", task, task.attempts, exc)
            if self._journal is not None and task.journal_id is not None:
                self._journal_write(self._journal.fail, task.journal_id, exc)
            self._set_outcome(task, run_seconds, ended, exception=exc, raised=True)
            return
        if self._journal is not None and task.journal_id is not None:
            self._journal_write(self._journal.retry_later, task.journal_id, exc)
        if self._hooks:
            self._emit("retried", task, task.attempts, exc, delay)
        with self._lock:
            self._running -= 1
            self._retried += 1
            self._attempts.record(run_seconds, True, ended)
        self._timer.schedule(task, delay)

    def _set_outcome(
        self,
        task: Task,
        run_seconds: float,
        ended: float,
        *,
        result: Any = None,
        exception: BaseException | None = None,
        raised: bool = False,
    ) -> None:
        """Complete a task after its last attempt, which ran for `run_seconds`.

        `raised` is True if the function raised. An `exception` without it is a
        failure to record a success in the journal.
        """
        # Count first, so that stats() read after a future completes include it.
        # Until the future is set, a token in _completing keeps join() waiting;
        # deque.append and pop are atomic, so this takes no second lock.
        with self._lock:
            self._running -= 1
            self._attempts.record(run_seconds, raised, ended)
            stop = self._count_finished(task, failed=exception is not None)
            self._completing.append(None)
        try:
            if exception is None:
                task.future.set_result(result)
            else:
                task.fail(exception)
        finally:
            # Also when a done-callback raises SystemExit, say, which Future
            # lets through: the pool must still wake join() and stop.
            self._completing.pop()
            if self._joiners:
                with self._lock:
                    self._idle.notify_all()
            if stop:
                self._stop()

    def _give_up_over_budget(
        self, task: Task, permit: Permit | None, elapsed: float
    ) -> None:
        """Fail a retry that would start after its policy's budget ran out."""
        if permit is not None:
            permit.release()
        exc = task.last_exception or CancelledError()
        logger.debug(
            "task %s gives up before attempt %d: %.3f s since the first, "
            "past the retry budget",
            describe(task.fn, task.key),
            task.attempts + 1,
            elapsed,
        )
        if self._hooks:
            self._emit("gave_up", task, task.attempts, exc)
        if self._journal is not None and task.journal_id is not None:
            self._journal_write(self._journal.fail, task.journal_id, exc)
        task.fail(exc)
        self._finish(task, failed=True)

    def _fail_before_run(self, task: Task, exc: Exception) -> None:
        if not task.started:
            if not task.future.set_running_or_notify_cancel():
                self._finish(task, cancelled=True)
                return
            with self._lock:
                self._pending -= 1
            task.started = True
        if self._hooks:
            self._emit("gave_up", task, task.attempts, exc)
        task.fail(exc)
        self._finish(task, failed=True)
