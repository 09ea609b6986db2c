"""Pausing the pool, so that no task starts until it resumes."""

from __future__ import annotations

import logging
import threading

__all__ = ["PausingMixin"]

logger = logging.getLogger(__name__)


class PausingMixin:
    """The part of `WorkerPool` that pauses and resumes it."""

    _lock: threading.Lock
    _idle: threading.Condition
    _shutdown: bool
    _paused: bool
    _thread_name_prefix: str

    def pause(self) -> None:
        """Stop starting tasks until `resume`; running tasks go on to the end.

        Tasks may still be submitted, up to `max_pending`, and delayed tasks and
        retries still fall due while paused; they start after `resume`. A task
        that a worker had taken before the pause, and that waits for a token or
        for the breaker, starts when its wait ends. Shutting down resumes the
        pool, so that it can drain.

        Raises:
            RuntimeError: The pool has been shut down.
        """
        with self._lock:
            if self._shutdown:
                raise RuntimeError("cannot pause a pool that has been shut down")
            if self._paused:
                return
            self._paused = True
        logger.info("pool %s paused", self._thread_name_prefix)

    def resume(self) -> None:
        """Start tasks again after `pause`; harmless when not paused."""
        with self._lock:
            if not self._paused:
                return
            self._paused = False
            self._idle.notify_all()
        logger.info("pool %s resumed", self._thread_name_prefix)

    @property
    def paused(self) -> bool:
        """Whether the pool is paused."""
        return self._paused

    def _wait_while_paused(self) -> None:
        with self._lock:
            while self._paused:
                self._idle.wait()
