"""A thread-safe priority queue with `queue.Queue`'s interface and a `close()`."""

from __future__ import annotations

import itertools
import threading
import time
from heapq import heappop, heappush
from queue import Empty, Full
from typing import Generic, TypeVar

from syncq._checks import check_priority, check_timeout
from syncq.errors import QueueClosed

__all__ = ["TaskQueue"]

_T = TypeVar("_T")

# Condition.wait raises OverflowError for a timeout above threading.TIMEOUT_MAX,
# which is platform-dependent, so a longer wait is made of several shorter ones.
_WAIT_MAX = threading.TIMEOUT_MAX

_PUT_CLOSED = "put failed: the TaskQueue is closed"
_GET_CLOSED = "get failed: the TaskQueue is closed and empty"


class TaskQueue(Generic[_T]):
    """A priority queue, bounded or not, for handing tasks between threads.

    It behaves as `queue.Queue` does (`put`, `get`, `task_done`, `join`, `Full`,
    `Empty`), with two additions. Each item has a priority: lower priorities are
    returned first, and items of equal priority come out in the order they were put.
    Items are never compared with each other. `close()` ends the queue: later puts
    raise `QueueClosed`, gets return the remaining items and then raise
    `QueueClosed`, and every thread blocked in `put` or `get` wakes at once.

    Unlike `queue.Queue`, a blocking `put` or `get` checks `timeout` even when it
    would not wait: a negative, NaN or non-number timeout raises, and an infinite
    one waits without a limit instead of raising `OverflowError`.

    Every method is thread-safe.

    Args:
        maxsize: The maximum number of items the queue contains. `put` blocks while
            it is reached. Zero or a negative number means no limit.

    Raises:
        TypeError: `maxsize` is not an int, or is a bool.
    """

    def __init__(self, maxsize: int = 0) -> None:
        if isinstance(maxsize, bool) or not isinstance(maxsize, int):
            raise TypeError(
                f"maxsize must be an int (0 or less for no limit), got {maxsize!r}"
            )

        self._maxsize = maxsize
        # Entries are (priority, sequence number, item). The sequence number is
        # unique, so ties on priority are broken by it and items are never compared.
        self._heap: list[tuple[float, int, _T]] = []
        self._sequence = itertools.count()
        self._unfinished_tasks = 0
        self._closed = False

        # Guards every field above. The three conditions share it.
        self._lock = threading.Lock()
        # Notified once for each put, and for all waiters on close.
        self._not_empty = threading.Condition(self._lock)
        # Notified once for each get from a bounded queue, and for all waiters on
        # close. Putters to an unbounded queue never wait on it.
        self._not_full = threading.Condition(self._lock)
        # Notified for all waiters when the count of unfinished tasks reaches zero.
        self._all_tasks_done = threading.Condition(self._lock)

    @property
    def maxsize(self) -> int:
        """The bound given to the constructor; zero or less means no limit."""
        return self._maxsize

    @property
    def closed(self) -> bool:
        """Whether `close()` has been called."""
        return self._closed

    def qsize(self) -> int:
        """Return the number of items in the queue.

        The value is a snapshot: other threads may change it before the caller
        acts on it, so `qsize() > 0` does not guarantee that `get` will not block.
        """
        with self._lock:
            return len(self._heap)

    def empty(self) -> bool:
        """Return whether the queue contains no items; a snapshot, as `qsize()`."""
        with self._lock:
            return not self._heap

    def full(self) -> bool:
        """Return whether the queue is bounded and at `maxsize`; a snapshot."""
        with self._lock:
            return 0 < self._maxsize <= len(self._heap)

    def put(
        self,
        item: _T,
        block: bool = True,
        timeout: float | None = None,
        *,
        priority: float = 0,
    ) -> None:
        """Add `item` to the queue with `priority`, waiting for space if needed.

        If the queue is full and `block` is true, wait until a `get` frees a slot,
        with no limit when `timeout` is None (or infinite), else for at most
        `timeout` seconds of real time. If `block` is false, `timeout` is ignored
        and a full queue raises `queue.Full` at once. On an unbounded queue, `put`
        never waits for space.

        Args:
            item: The object to add. It is never compared with other items.
            block: Whether to wait for space when the queue is full.
            timeout: Seconds to wait for space, or None for no limit.
            priority: An int or float; lower values are returned first, and equal
                values in the order they were put. Infinities are allowed.

        Raises:
            queue.Full: The queue is full and `block` is false, or no slot freed
                within `timeout`.
            QueueClosed: The queue is closed, or it was closed while waiting.
            TypeError: `priority` or `timeout` is not an int or float, or a bool.
            ValueError: `priority` is NaN, or `timeout` is negative or NaN.
        """
        if type(priority) is not int:
            check_priority(priority)
        if block and timeout is not None:
            timeout = check_timeout("timeout", timeout)

        with self._lock:
            if self._closed:
                raise QueueClosed(_PUT_CLOSED)
            if 0 < self._maxsize <= len(self._heap):
                self._wait_not_full(block, timeout)
            heappush(self._heap, (priority, next(self._sequence), item))
            self._unfinished_tasks += 1
            self._not_empty.notify()

    def put_nowait(self, item: _T, *, priority: float = 0) -> None:
        """Add `item` without blocking; the same as `put(item, False, priority=...)`.

        Raises:
            queue.Full: The queue is full.
            QueueClosed: The queue is closed.
        """
        self.put(item, False, priority=priority)

    def get(self, block: bool = True, timeout: float | None = None) -> _T:
        """Remove and return the item with the lowest priority.

        Among items of equal priority, the one put first is returned. If the queue
        is empty and `block` is true, wait until another thread puts an item, with
        no limit when `timeout` is None (or infinite), else for at most `timeout`
        seconds of real time. If `block` is false, `timeout` is ignored and an
        empty queue raises `queue.Empty` at once.

        A closed queue still returns the items it contains. Once it is empty, `get`
        raises `QueueClosed`, and a thread that is waiting when `close()` is called
        wakes and raises it.

        Raises:
            queue.Empty: The queue is empty and `block` is false, or no item arrived
                within `timeout`.
            QueueClosed: The queue is closed and empty.
            TypeError: `timeout` is not an int or float, or is a bool.
            ValueError: `timeout` is negative or NaN.
        """
        if block and timeout is not None:
            timeout = check_timeout("timeout", timeout)

        with self._lock:
            if not self._heap:
                if self._closed:
                    raise QueueClosed(_GET_CLOSED)
                self._wait_not_empty(block, timeout)
            item = heappop(self._heap)[2]
            if self._maxsize > 0:
                self._not_full.notify()
            return item

    def get_nowait(self) -> _T:
        """Remove and return an item without blocking; the same as `get(False)`.

        Raises:
            queue.Empty: The queue is empty.
            QueueClosed: The queue is closed and empty.
        """
        return self.get(False)

    def task_done(self) -> None:
        """Mark one item returned by `get` as processed, for `join()`.

        Call it once for each item after the work on it is finished. When every
        item put so far has been marked, threads blocked in `join()` wake.

        Raises:
            ValueError: It was called more times than items were put.
        """
        with self._lock:
            unfinished = self._unfinished_tasks - 1
            if unfinished < 0:
                raise ValueError(
                    "task_done() called more times than items were put in the queue"
                )
            if unfinished == 0:
                self._all_tasks_done.notify_all()
            self._unfinished_tasks = unfinished

    def join(self) -> None:
        """Block until every item put so far has been marked with `task_done()`.

        It waits without a time limit and returns at once if no task is unfinished.
        Closing the queue does not wake it: items still in the queue, or returned by
        `get` but not yet marked, keep it waiting.
        """
        with self._lock:
            while self._unfinished_tasks:
                self._all_tasks_done.wait()

    def close(self) -> None:
        """Close the queue and wake every thread blocked in `put` or `get`.

        After it, `put` raises `QueueClosed`. `get` returns the items that remain and
        raises `QueueClosed` once the queue is empty. Waiting putters raise
        `QueueClosed`, and so do waiting getters, because a getter waits only while
        the queue is empty. Calling it again does nothing.
        """
        with self._lock:
            self._closed = True
            self._not_empty.notify_all()
            self._not_full.notify_all()

    def _wait_not_full(self, block: bool, timeout: float | None) -> None:
        # Called with the lock held while the queue is full. Returns once a slot
        # is free, or raises Full or QueueClosed.
        if not block:
            raise Full
        if timeout is None:
            while 0 < self._maxsize <= len(self._heap):
                self._not_full.wait()
                if self._closed:
                    raise QueueClosed(_PUT_CLOSED)
            return

        # Queue timeouts are real time, as in queue.Queue: Condition.wait waits on
        # the system clock, so a syncq Clock could not drive it and none is taken.
        deadline = time.monotonic() + timeout
        while 0 < self._maxsize <= len(self._heap):
            remaining = deadline - time.monotonic()
            if remaining <= 0.0:
                raise Full
            self._not_full.wait(min(remaining, _WAIT_MAX))
            if self._closed:
                raise QueueClosed(_PUT_CLOSED)

    def _wait_not_empty(self, block: bool, timeout: float | None) -> None:
        # Called with the lock held while the queue is empty and open. Returns once
        # an item is there, or raises Empty or QueueClosed.
        if not block:
            raise Empty
        if timeout is None:
            while not self._heap:
                self._not_empty.wait()
                if self._closed and not self._heap:
                    raise QueueClosed(_GET_CLOSED)
            return

        deadline = time.monotonic() + timeout
        while not self._heap:
            remaining = deadline - time.monotonic()
            if remaining <= 0.0:
                raise Empty
            self._not_empty.wait(min(remaining, _WAIT_MAX))
            if self._closed and not self._heap:
                raise QueueClosed(_GET_CLOSED)

    def __repr__(self) -> str:
        # Read without the lock: a repr is a snapshot for people.
        return (
            f"TaskQueue(maxsize={self._maxsize}, size={len(self._heap)}, "
            f"closed={self._closed})"
        )
