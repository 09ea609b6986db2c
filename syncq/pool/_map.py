"""Lazy map over any executor's `submit`, in input order or as tasks complete.

Both functions read their input a bounded distance ahead, so an endless iterable
runs in constant memory, and can batch items into chunks so that one task makes
many quick calls. They take a `submit` callable rather than an executor, so they
work with `WorkerPool.submit`, `ThreadPoolExecutor.submit` or a `TaskOptions`
view alike. `MapMixin` gives `WorkerPool` its two map methods on top of them.
"""

from __future__ import annotations

import queue
from collections import deque
from collections.abc import Generator, Iterable, Iterator
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FuturesTimeoutError
from typing import TYPE_CHECKING, Any, Callable, TypeVar

from syncq._checks import check_int, check_timeout
from syncq.clock import SYSTEM_CLOCK, Clock

if TYPE_CHECKING:
    from syncq.journal import Journal

__all__ = ["MapMixin", "map_ordered", "map_unordered"]

T = TypeVar("T")


def map_ordered(
    submit: Callable[..., Future[Any]],
    fn: Callable[..., T],
    *iterables: Iterable[Any],
    buffersize: int,
    timeout: float | None = None,
    chunksize: int = 1,
    clock: Clock | None = None,
) -> Generator[T, None, None]:
    """Submit `fn` over the items and return an iterator of results in input order.

    The items are ``zip(*iterables)``, so the shortest iterable ends the map. The
    input is read lazily. At most `buffersize` tasks are submitted and not yet
    collected by the iterator, and taking a task's results out submits the next
    one. The first `buffersize` tasks are submitted before this call returns,
    as `Executor.map` submits its tasks at the call. The input is never read
    more than ``(buffersize + 1) * chunksize`` items ahead of the result last
    yielded.

    With `chunksize` 1, each item is a call ``submit(fn, *item)``, so a pool's
    retries, breaker, hooks and journal see `fn` itself. With a larger
    `chunksize`, up to that many items go into one task that calls `fn` on each
    in turn and stops at the first exception. A pool that retries such a task
    runs the whole chunk again, and the task is not `fn`, so it cannot be
    recorded in a journal.

    Errors are raised where their result would have been, and end the
    iteration:

    - An exception from `fn` is raised when its item's result is reached, after
      the results of the items before it, including those of its own chunk.
    - An exception from reading the input is raised after the results of every
      item read before it. KeyboardInterrupt and other exceptions that are not
      an `Exception` are raised at once.
    - An exception from `submit`, such as RuntimeError from an executor that
      was shut down, is raised at once, from this call during the first
      submissions and from ``next()`` after them.

    Closing the iterator, or dropping the last reference to it, cancels the
    tasks that have not started. Tasks already running finish, and their
    results are dropped. An error or a timeout that ends the iteration cancels
    them too. A `WorkerPool` task that failed but whose result the iteration
    never reached is logged by the pool as an unread failure once its future is
    collected. The iterator is meant for one consumer thread at a time.

    Args:
        submit: Schedules a call and returns its future, as `Executor.submit`.
        fn: Called with one item of each iterable as its positional arguments.
        iterables: The inputs, read in step.
        buffersize: The tasks, which are chunks when `chunksize` is above 1,
            that may be submitted ahead of the iterator.
        timeout: Seconds from this call by which every result must be ready;
            None waits as long as it takes. A result that is ready is returned
            even after the deadline.
        chunksize: The items that one task processes.
        clock: The clock that the deadline is measured on; defaults to the
            system's monotonic clock. Each wait for a result is a real-time
            wait of at most the time left on this clock.

    Returns:
        A generator of `fn`'s results; its ``close()`` cancels what has not
        started. Its ``next()`` blocks until the next result is ready.

    Raises:
        TypeError: `submit` or `fn` is not callable, an iterable is not
            iterable, or an option has the wrong type.
        ValueError: `buffersize`, `timeout` or `chunksize` is out of range.
        concurrent.futures.TimeoutError: From ``next()``, when the next result
            is not ready by the deadline.
        concurrent.futures.CancelledError: From ``next()``, when the task of
            the next result was cancelled by someone else.
    """
    feeder, deadline, clock = _prepare(
        submit,
        fn,
        iterables,
        buffersize=buffersize,
        timeout=timeout,
        chunksize=chunksize,
        clock=clock,
    )
    results = _ordered_results(feeder, buffersize, deadline, clock)
    # Run up to the first yield now, so the first tasks are submitted at the call
    # and closing an iterator that was never advanced still cancels them.
    next(results)
    return results


def map_unordered(
    submit: Callable[..., Future[Any]],
    fn: Callable[..., T],
    *iterables: Iterable[Any],
    buffersize: int,
    timeout: float | None = None,
    chunksize: int = 1,
    clock: Clock | None = None,
) -> Generator[T, None, None]:
    """Submit `fn` over the items and return an iterator of results as they finish.

    The arguments, the read-ahead bound, the deadline, closing and the errors
    from the input and from `submit` are as for `map_ordered`. What differs:

    - Results come in the order their tasks complete. A chunk's results come
      together when its task completes, in the chunk's input order.
    - An exception from `fn` is raised when its task completes, in completion
      order, after the results of the items before it in its chunk. Results of
      tasks that have not completed by then are never yielded.
    - The timeout raises when no task completes by the deadline.
    - Each future gets a done-callback, so a `WorkerPool` future counts as
      retrieved and the pool does not log its unread exception.

    Raises:
        TypeError: `submit` or `fn` is not callable, an iterable is not
            iterable, or an option has the wrong type.
        ValueError: `buffersize`, `timeout` or `chunksize` is out of range.
        concurrent.futures.TimeoutError: From ``next()``, when no task
            completes by the deadline.
        concurrent.futures.CancelledError: From ``next()``, when a task was
            cancelled by someone else.
    """
    feeder, deadline, clock = _prepare(
        submit,
        fn,
        iterables,
        buffersize=buffersize,
        timeout=timeout,
        chunksize=chunksize,
        clock=clock,
    )
    results = _unordered_results(feeder, buffersize, deadline, clock)
    next(results)
    return results


class MapMixin:
    """The part of `WorkerPool` that maps a function over iterables."""

    _journal: Journal | None
    _max_workers: int
    _clock: Clock

    # Defined by the other parts of WorkerPool and declared here for mypy.
    if TYPE_CHECKING:

        def submit(
            self, fn: Callable[..., T], /, *args: Any, **kwargs: Any
        ) -> Future[T]: ...

    def map(
        self,
        fn: Callable[..., T],
        *iterables: Iterable[Any],
        timeout: float | None = None,
        chunksize: int = 1,
        buffersize: int | None = None,
    ) -> Iterator[T]:
        """Return an iterator of `fn` applied to the items, in input order.

        Unlike `Executor.map`, the input is read lazily: at most `buffersize`
        tasks (default twice `max_workers`) are submitted ahead of the result
        being read, so an endless or huge iterable runs in constant memory.
        With `chunksize` above 1, each task calls `fn` on that many items in
        turn. Closing the iterator, or dropping it, cancels the tasks that have
        not started. See `map_ordered` for where errors are raised.

        Raises:
            TimeoutError: A result is not ready `timeout` seconds, on the pool's
                clock, after this call.
            ValueError: `chunksize` is above 1 on a pool with a journal, which
                can record only importable functions.
        """
        return map_ordered(
            self.submit,
            fn,
            *iterables,
            timeout=timeout,
            chunksize=self._check_chunksize(chunksize),
            buffersize=self._default_buffersize(buffersize),
            clock=self._clock,
        )

    def map_unordered(
        self,
        fn: Callable[..., T],
        *iterables: Iterable[Any],
        timeout: float | None = None,
        chunksize: int = 1,
        buffersize: int | None = None,
    ) -> Iterator[T]:
        """Return an iterator of `fn` applied to the items, as tasks complete.

        Reads the input as lazily as `map` does. A slow item does not hold back
        the results of faster ones, and an exception is raised when its task
        completes. See `map_unordered` in `syncq.pool` for the details.

        Raises:
            TimeoutError: No task completed before `timeout` seconds, on the
                pool's clock, after this call.
            ValueError: `chunksize` is above 1 on a pool with a journal.
        """
        return map_unordered(
            self.submit,
            fn,
            *iterables,
            timeout=timeout,
            chunksize=self._check_chunksize(chunksize),
            buffersize=self._default_buffersize(buffersize),
            clock=self._clock,
        )

    def _check_chunksize(self, chunksize: int) -> int:
        chunksize = check_int("chunksize", chunksize, minimum=1)
        if chunksize > 1 and self._journal is not None:
            raise ValueError(
                f"chunksize={chunksize!r} needs a pool without a journal: a "
                "chunk of calls is not an importable function the journal can "
                "record; use chunksize=1"
            )
        return chunksize

    def _default_buffersize(self, buffersize: int | None) -> int:
        if buffersize is None:
            return 2 * self._max_workers
        return check_int("buffersize", buffersize, minimum=1)


def _prepare(
    submit: object,
    fn: object,
    iterables: tuple[Iterable[Any], ...],
    *,
    buffersize: object,
    timeout: object,
    chunksize: object,
    clock: object,
) -> tuple[_Feeder, float | None, Clock]:
    """Check the arguments, and return the feeder, the deadline and the clock."""
    if not callable(submit):
        raise TypeError(f"submit must be callable, got {submit!r}")
    if not callable(fn):
        raise TypeError(f"fn must be callable, got {fn!r}")
    check_int("buffersize", buffersize, minimum=1)
    checked_chunksize = check_int("chunksize", chunksize, minimum=1)
    seconds = check_timeout("timeout", timeout)
    if clock is None:
        clock = SYSTEM_CLOCK
    if not isinstance(clock, Clock):
        raise TypeError(
            "clock must provide monotonic() and sleep(), "
            f"got {type(clock).__name__} {clock!r}"
        )

    deadline = None if seconds is None else clock.monotonic() + seconds
    feeder = _Feeder(submit, fn, zip(*iterables), checked_chunksize)
    return feeder, deadline, clock


def _call_each(
    fn: Callable[..., Any], chunk: list[tuple[Any, ...]], results: list[Any]
) -> list[Any]:
    """Call `fn` on each item of `chunk`, appending to `results`, and return it.

    On an exception, `results` keeps what the items before the failing one
    returned, so the iterator can yield them before it raises. `results` is
    emptied first because a pool that retries the chunk calls this again.
    """
    # NOTE: `results` is shared only within one process, so with a process
    # executor the results before a failing item are lost and not yielded.
    results.clear()
    for args in chunk:
        results.append(fn(*args))
    return results


class _Feeder:
    """The input of one map, read a chunk at a time and submitted as tasks."""

    __slots__ = ("_chunksize", "_fn", "_items", "_submit", "error")

    def __init__(
        self,
        submit: Callable[..., Future[Any]],
        fn: Callable[..., Any],
        items: Iterator[tuple[Any, ...]],
        chunksize: int,
    ) -> None:
        self._submit = submit
        self._fn = fn
        # None once the input is exhausted or has raised.
        self._items: Iterator[tuple[Any, ...]] | None = items
        self._chunksize = chunksize
        # The exception the input raised, held until the results of the items
        # read before it have been yielded.
        self.error: Exception | None = None

    def submit_next(self) -> tuple[Future[Any], list[Any] | None] | None:
        """Submit the next item or chunk, or return None at the end of the input.

        Returns the future and, for a chunk, the list its task fills with
        results as it goes.
        """
        if self._chunksize == 1:
            args = self._read()
            if args is None:
                return None
            return self._submit(self._fn, *args), None

        chunk: list[tuple[Any, ...]] = []
        while len(chunk) < self._chunksize:
            args = self._read()
            if args is None:
                break
            chunk.append(args)
        if not chunk:
            return None
        results: list[Any] = []
        return self._submit(_call_each, self._fn, chunk, results), results

    def _read(self) -> tuple[Any, ...] | None:
        items = self._items
        if items is None:
            return None
        try:
            return next(items)
        except StopIteration:
            pass
        except Exception as exc:
            self.error = exc
        self._items = None
        return None


def _time_left(deadline: float | None, clock: Clock) -> float | None:
    if deadline is None:
        return None
    # Zero, not a negative number, so a result that is ready is still returned.
    # NOTE: callers wait on a future or a queue in real seconds, so with a fake
    # clock the wait is as long as the time left that the clock shows.
    return max(0.0, deadline - clock.monotonic())


def _ordered_results(
    feeder: _Feeder, buffersize: int, deadline: float | None, clock: Clock
) -> Generator[Any, None, None]:
    """Yield once the first tasks are submitted, then every result in order."""
    pending: deque[tuple[Future[Any], list[Any] | None]] = deque()
    try:
        for _ in range(buffersize):
            entry = feeder.submit_next()
            if entry is None:
                break
            pending.append(entry)
        yield None

        while pending:
            # The task stays in `pending` while it is waited on, so a timeout
            # cancels it along with the rest.
            future, partial = pending[0]
            if partial is None:
                result = future.result(_time_left(deadline, clock))
                pending.popleft()
                entry = feeder.submit_next()
                if entry is not None:
                    pending.append(entry)
                yield result
                continue

            error = future.exception(_time_left(deadline, clock))
            pending.popleft()
            if error is not None:
                yield from partial
                raise error
            entry = feeder.submit_next()
            if entry is not None:
                pending.append(entry)
            yield from future.result()

        if feeder.error is not None:
            raise feeder.error
    finally:
        for future, _ in pending:
            future.cancel()


def _unordered_results(
    feeder: _Feeder, buffersize: int, deadline: float | None, clock: Clock
) -> Generator[Any, None, None]:
    """Yield once the first tasks are submitted, then results as tasks complete."""
    # Each pending task's future, mapped to the list its chunk fills, or None.
    pending: dict[Future[Any], list[Any] | None] = {}
    # Done-callbacks put futures here in the order their tasks complete. Over
    # 100,000 quick tasks on 2 CPUs this was 20 to 40% faster than a loop on
    # concurrent.futures.wait(return_when=FIRST_COMPLETED), which adds and
    # removes a waiter on every pending future at each call.
    completed: queue.SimpleQueue[Future[Any]] = queue.SimpleQueue()
    try:
        for _ in range(buffersize):
            if not _submit_tracked(feeder, pending, completed):
                break
        yield None

        while pending:
            try:
                future = completed.get(timeout=_time_left(deadline, clock))
            except queue.Empty:
                raise FuturesTimeoutError from None
            partial = pending.pop(future)
            if partial is None:
                # Raises fn's exception before another task is submitted.
                result = future.result()
                _submit_tracked(feeder, pending, completed)
                yield result
                continue

            error = future.exception()
            if error is not None:
                yield from partial
                raise error
            _submit_tracked(feeder, pending, completed)
            yield from future.result()

        if feeder.error is not None:
            raise feeder.error
    finally:
        for future in pending:
            future.cancel()


def _submit_tracked(
    feeder: _Feeder,
    pending: dict[Future[Any], list[Any] | None],
    completed: queue.SimpleQueue[Future[Any]],
) -> bool:
    """Submit the next task, and return False at the end of the input."""
    entry = feeder.submit_next()
    if entry is None:
        return False
    future, partial = entry
    # Added before the callback, which runs at once if the task is done.
    pending[future] = partial
    future.add_done_callback(completed.put)
    return True
