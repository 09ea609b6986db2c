"""Stopping the pool: waiting for it, shutting it down, cancelling what waits."""

from __future__ import annotations

import logging
import queue
import threading
from collections import deque
from concurrent.futures import CancelledError
from typing import TYPE_CHECKING, Any

from syncq._checks import check_timeout
from syncq.errors import QueueClosed
from syncq.journal import Journal
from syncq.pool._future import describe
from syncq.pool._hooks import PoolHooks
from syncq.pool._ready import ReadyQueue
from syncq.pool._task import Task
from syncq.pool._timer import Timer
from syncq.pool._watchdog import Watchdog

if TYPE_CHECKING:
    from syncq.breaker import CircuitBreaker, CircuitState

__all__ = ["StoppingMixin"]

logger = logging.getLogger(__name__)


class StoppingMixin:
    """The part of `WorkerPool` that joins it, shuts it down and cancels tasks."""

    _lock: threading.Lock
    _idle: threading.Condition
    _shutdown: bool
    _stopped: bool
    _paused: bool
    _forsaken: bool
    _outstanding: int
    _running: int
    _succeeded: int
    _failed: int
    _cancelled: int
    _joiners: int
    _completing: deque[None]
    _breaker_held: list[Task]
    _threads: list[threading.Thread]
    _thread_name_prefix: str
    _hooks: tuple[PoolHooks, ...]
    _ready: ReadyQueue
    _abort: threading.Event
    _timer: Timer
    _watchdog: Watchdog
    _breaker: CircuitBreaker | None
    _journal: Journal | None
    _owns_journal: bool

    # Defined by the other parts of WorkerPool and declared here for mypy.
    if TYPE_CHECKING:

        def _emit(self, event: str, task: Task, attempt: int, *args: Any) -> None: ...

        def _finish(
            self, task: Task, *, failed: bool = False, cancelled: bool = False
        ) -> None: ...

        def _on_breaker_change(
            self, breaker: CircuitBreaker, old: CircuitState, new: CircuitState
        ) -> None: ...

        def _unregister_live_pool(self) -> None: ...

    def join(self, timeout: float | None = None) -> bool:
        """Wait until every task submitted so far has finished, and keep the pool.

        Finished means that its future is done, so queued, delayed, held and
        running tasks, and those waiting for a retry, are all waited for. The
        thread of an attempt that timed out may still run (see
        `PoolStats.abandoned`). Tasks submitted while this waits are waited for
        too. On a paused pool this returns only when the tasks left have been
        cancelled or `timeout` passes.

        Returns:
            True once the pool is idle; False if `timeout` seconds passed first.

        Raises:
            RuntimeError: Called from one of the pool's tasks, which would wait
                for itself.
        """
        timeout = check_timeout("timeout", timeout)
        if threading.current_thread() in self._threads:
            raise RuntimeError("cannot join the pool from one of its own tasks")
        with self._lock:
            self._joiners += 1
            try:
                return self._idle.wait_for(
                    lambda: self._outstanding == 0 and not self._completing, timeout
                )
            finally:
                self._joiners -= 1

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Stop accepting tasks; see `Executor.shutdown`.

        Tasks already submitted still run, including their retries, unless
        `cancel_futures` is true: then tasks that have not started are cancelled
        and tasks waiting for a retry fail with their last exception. With a
        journal, such tasks stay pending in it for the next run. A paused pool
        is resumed. Threads of timed-out attempts are not waited for.
        """
        if wait and threading.current_thread() in self._threads:
            raise RuntimeError("cannot shut down and wait from one of the pool's tasks")
        with self._lock:
            first = not self._shutdown
            self._shutdown = True
            # A paused pool would never drain.
            self._paused = False
            self._idle.notify_all()
            stop = self._outstanding == 0
        if first:
            logger.info("pool %s shutting down", self._thread_name_prefix)
        if cancel_futures:
            self._cancel_waiting()
        if stop:
            self._stop()
        if wait:
            self._join()

    def close(self, timeout: float | None = None) -> None:
        """Stop accepting tasks, drain for `timeout` seconds, then cancel the rest.

        Blocks until the tasks that are running end, since a thread cannot be
        killed. None waits for everything to drain.
        """
        timeout = check_timeout("timeout", timeout)
        self.shutdown(wait=False)
        with self._lock:
            drained = self._idle.wait_for(lambda: self._outstanding == 0, timeout)
        if not drained:
            cancelled = self._cancel_waiting()
            logger.info(
                "pool %s cancelled %d waiting tasks",
                self._thread_name_prefix,
                cancelled,
            )
        self._join()

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        # On Ctrl-C, cancel what has not started instead of running it all.
        cancel = isinstance(exc, KeyboardInterrupt)
        try:
            self.shutdown(wait=True, cancel_futures=cancel)
        except KeyboardInterrupt:
            self._forsaken = True
            raise

    def _join(self) -> None:
        aborted = self._abort.is_set()
        with self._lock:
            if aborted:
                # What has not started is cancelled; wait only for what runs. A
                # submit interrupted half way (by KeyboardInterrupt, say) may
                # leave a count that never drops, so do not wait on the count.
                self._idle.wait_for(lambda: self._running == 0)
            else:
                self._idle.wait_for(lambda: self._outstanding == 0)
            threads = list(self._threads)
        if aborted:
            self._stop()
        current = threading.current_thread()
        for thread in threads:
            if thread is not current:
                thread.join()
        self._timer.join()

    def _stop(self) -> None:
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
        self._ready.close()
        self._timer.stop()
        self._watchdog.stop()
        if self._breaker is not None:
            self._breaker.remove_listener(self._on_breaker_change)
        if self._journal is not None and self._owns_journal:
            self._journal.close()
        self._unregister_live_pool()
        logger.info(
            "pool %s stopped: %d succeeded, %d failed, %d cancelled",
            self._thread_name_prefix,
            self._succeeded,
            self._failed,
            self._cancelled,
        )

    def _cancel_waiting(self) -> int:
        self._abort.set()
        waiting: list[Task] = []
        while True:
            try:
                waiting.append(self._ready.get_nowait())
            except (queue.Empty, QueueClosed):
                break
        waiting.extend(self._timer.clear())
        with self._lock:
            waiting.extend(self._breaker_held)
            self._breaker_held = []
        for task in waiting:
            self._abandon(task)
        return len(waiting)

    def _abandon(self, task: Task) -> None:
        """Cancel a task that has not started, or fail one waiting for a retry."""
        if not task.started:
            if task.future.cancel():
                task.future.set_running_or_notify_cancel()
            self._finish(task, cancelled=True)
            return
        exc = task.last_exception or CancelledError()
        logger.warning(
            "pool shut down; task %s gives up its pending retry after %d attempts",
            describe(task.fn, task.key),
            task.attempts,
        )
        if self._hooks:
            self._emit("gave_up", task, task.attempts, exc)
        # The warning above reports the failure, so set_exception, not
        # task.fail: the collected future must not log it again as unread.
        task.future.set_exception(exc)
        self._finish(task, failed=True)
