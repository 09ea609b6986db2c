"""The thread that gives up attempts which run past their task's timeout."""

from __future__ import annotations

import math
import threading
from typing import TYPE_CHECKING, Callable

from syncq.clock import Clock, SystemClock

if TYPE_CHECKING:
    from syncq.breaker import Permit
    from syncq.pool._task import Task

# A clock other than the system clock (a test's fake clock) cannot wake a thread
# that waits on a condition, so the watchdog re-reads such a clock this often, in
# real seconds.
FOREIGN_CLOCK_POLL = 0.005


class Attempt:
    """One run of a task that has a timeout, from its start to its outcome."""

    __slots__ = (
        "deadline",
        "expired",
        "permit",
        "started_at",
        "task",
        "thread",
        "timeout",
    )

    def __init__(
        self,
        task: Task,
        permit: Permit | None,
        thread: threading.Thread,
        *,
        started_at: float,
        timeout: float,
    ) -> None:
        self.task = task
        self.permit = permit
        self.thread = thread
        self.started_at = started_at
        self.deadline = started_at + timeout
        self.timeout = timeout
        # Set by the watchdog when it gives the attempt up; from then on the
        # outcome of the running function is discarded.
        self.expired = False


class Watchdog:
    """Watches the running attempts that have deadlines, and expires late ones.

    Exactly one side owns an attempt's outcome: the worker, if `finish` is
    called before the deadline passes, or `expire`, called on the watchdog's
    thread, if not. At most one attempt per worker runs at a time, so the set
    it scans stays small.
    """

    def __init__(
        self, expire: Callable[[Attempt], None], name: str, clock: Clock
    ) -> None:
        self._expire = expire
        self._name = name
        self._clock = clock
        self._poll = None if isinstance(clock, SystemClock) else FOREIGN_CLOCK_POLL
        self._live: set[Attempt] = set()
        # The deadline the thread sleeps until; a start with an earlier one wakes it.
        self._target = math.inf
        self._stopped = False
        self._thread: threading.Thread | None = None
        # Guards every field above; notified on an earlier deadline and on stop.
        self._changed = threading.Condition()

    def start(self, attempt: Attempt) -> None:
        """Watch `attempt` until `finish` or its deadline, whichever comes first."""
        with self._changed:
            self._live.add(attempt)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._loop, name=self._name, daemon=True
                )
                self._thread.start()
            if attempt.deadline < self._target:
                self._changed.notify()

    def finish(self, attempt: Attempt) -> bool:
        """Stop watching `attempt`; return False if it has expired already."""
        with self._changed:
            if attempt.expired:
                return False
            self._live.discard(attempt)
            return True

    def stop(self) -> None:
        """End the thread; attempts still watched are not expired."""
        with self._changed:
            self._stopped = True
            self._changed.notify()

    def _loop(self) -> None:
        while True:
            with self._changed:
                due = self._take_due()
                if due is None:
                    return
            for attempt in due:
                self._expire(attempt)

    def _take_due(self) -> list[Attempt] | None:
        # Called with the condition held; None means stop.
        while not self._stopped:
            now = self._clock.monotonic()
            due = [attempt for attempt in self._live if attempt.deadline <= now]
            if due:
                for attempt in due:
                    attempt.expired = True
                    self._live.discard(attempt)
                # Expiring runs outside the lock; a start meanwhile need not wake
                # a thread that is not waiting.
                self._target = -math.inf
                return due
            self._target = min(
                (attempt.deadline for attempt in self._live), default=math.inf
            )
            if self._target == math.inf:
                self._changed.wait()
                continue
            remaining = self._target - now
            if self._poll is not None and remaining > self._poll:
                remaining = self._poll
            self._changed.wait(remaining)
        return None
