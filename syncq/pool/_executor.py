"""WorkerPool: its state, the submit path and the worker loop.

The pool's parts share one lock and one set of counters, so they are mixins
rather than objects of their own. Each mixin in a sibling module declares the
attributes it uses and, for mypy only, the methods it calls in other parts.
This module keeps what every task goes through: submitting, the worker loop
and the success path.
"""

from __future__ import annotations

import functools
import itertools
import logging
import math
import os
import queue
import threading
import time
from collections import deque
from collections.abc import Iterable
from concurrent.futures import Executor, Future
from typing import TYPE_CHECKING, Any, Callable, TypeVar

from syncq._checks import check_int
from syncq.clock import Clock, SystemClock
from syncq.errors import CircuitOpenError, JournalError, QueueClosed
from syncq.journal import Journal
from syncq.limiters import Limiter
from syncq.pool._counting import CountingMixin
from syncq.pool._exit import ExitMixin
from syncq.pool._failures import FailureMixin
from syncq.pool._future import describe
from syncq.pool._holding import HoldingMixin
from syncq.pool._hooks import HooksMixin, PoolHooks, check_hooks
from syncq.pool._journaling import JournalMixin
from syncq.pool._map import MapMixin
from syncq.pool._pausing import PausingMixin
from syncq.pool._ready import ReadyQueue
from syncq.pool._stats import AttemptRecorder
from syncq.pool._stopping import StoppingMixin
from syncq.pool._task import (
    DEFAULT_OPTIONS,
    Options,
    Task,
    TaskOptions,
    check_clock,
    check_task_timeout,
    make_limiter,
    make_options,
    make_retry,
)
from syncq.pool._timeouts import Retired, TimeoutMixin
from syncq.pool._timer import Timer
from syncq.pool._watchdog import Watchdog
from syncq.retry import Retry

if TYPE_CHECKING:
    from syncq.breaker import CircuitBreaker, Permit

__all__ = ["WorkerPool"]

logger = logging.getLogger(__name__)

T = TypeVar("T")


class WorkerPool(
    CountingMixin,
    ExitMixin,
    FailureMixin,
    HoldingMixin,
    HooksMixin,
    JournalMixin,
    MapMixin,
    PausingMixin,
    StoppingMixin,
    TimeoutMixin,
    Executor,
):
    """Run calls on at most `max_workers` threads, with limits, retries and a journal.

    Args:
        max_workers: Threads that run tasks; defaults to ``min(32, cpu count + 4)``,
            as `ThreadPoolExecutor` does.
        max_pending: Tasks that may wait to start, counting those held by the
            breaker; `submit` blocks while this many wait. Zero means no bound.
        rate_limit: A limiter (anything with `reserve`) or a rate for a
            `TokenBucket`, such as ``"10/s"``. Each run of a task takes one token.
            Waiting for a token is not an attempt and never uses up a retry.
        breaker: A circuit breaker every run goes through. While it is open, tasks
            are held and run again when it lets trial calls through; they do not
            fail because it was open.
        retry: A `Retry` policy, or a number of attempts for ``Retry(attempts)``.
            A task waiting for its next attempt does not hold a worker thread.
        journal: A `Journal` or the path of one. Each task is then recorded before
            `submit` returns and must be an importable function with
            JSON-serializable arguments. Opening the pool runs the tasks that an
            earlier run left pending or interrupted; their futures are in
            `recovered`.
        thread_name_prefix: Worker threads are named ``{prefix}-{n}``.
        hooks: A `PoolHooks` object, or several, whose methods the pool calls as
            tasks start, succeed, fail, retry and give up; see `add_hook`.
        task_timeout: Seconds each attempt of a task may run before it fails
            with `TaskTimeout` (and is retried if the policy says so); None for
            no limit. ``options(timeout=...)`` sets it for one task. The thread
            of an attempt that times out is not stopped, since Python cannot
            stop a thread: see the pool guide.
        clock: The clock that delayed starts (``options(delay=...)`` and
            ``options(start_at=...)``), retry delays and task timeouts are
            measured on; defaults to the system's monotonic clock.

    All methods are thread-safe.
    """

    def __init__(
        self,
        max_workers: int | None = None,
        *,
        max_pending: int = 0,
        rate_limit: Limiter | str | float | None = None,
        breaker: CircuitBreaker | None = None,
        retry: Retry | int | None = None,
        journal: Journal | str | os.PathLike[str] | None = None,
        thread_name_prefix: str = "syncq-pool",
        hooks: PoolHooks | Iterable[PoolHooks] | None = None,
        task_timeout: float | None = None,
        clock: Clock | None = None,
    ) -> None:
        if max_workers is None:
            max_workers = min(32, (os.cpu_count() or 1) + 4)
        self._max_workers = check_int("max_workers", max_workers, minimum=1)
        self._max_pending = check_int("max_pending", max_pending, minimum=0)
        self._limiter = make_limiter(rate_limit)
        if breaker is not None and not callable(
            getattr(breaker, "acquire_permission", None)
        ):
            raise TypeError(
                f"breaker must be a CircuitBreaker or None, got {breaker!r}"
            )
        self._breaker = breaker
        self._retry = make_retry(retry)
        self._task_timeout = check_task_timeout("task_timeout", task_timeout)
        if self._task_timeout == math.inf:
            self._task_timeout = None
        self._thread_name_prefix = thread_name_prefix
        self._clock = check_clock(clock)
        # Looked up once, because every attempt reads it twice; the system
        # clock's own method only wraps time.monotonic.
        self._monotonic: Callable[[], float] = (
            time.monotonic
            if isinstance(self._clock, SystemClock)
            else self._clock.monotonic
        )
        # Replaced, never changed in place, so workers read it without the lock.
        self._hooks = check_hooks(hooks)

        self._init_state()

        self._ready = ReadyQueue()
        # Set when tasks that have not started are cancelled, to wake workers
        # waiting for a token.
        self._abort = threading.Event()
        self._timer = Timer(
            self._ready,
            self._release_held,
            f"{thread_name_prefix}-timer",
            self._clock,
        )
        self._watchdog = Watchdog(
            self._expire, f"{thread_name_prefix}-watchdog", self._clock
        )
        # Serialises keyed submits, so two threads submitting one key get one task.
        self._keys_lock = threading.Lock()

        self._journal: Journal | None = None
        self._owns_journal = False
        self.recovered: list[Future[Any]] = []
        if journal is not None:
            self._open_journal(journal)
        if breaker is not None:
            breaker.add_listener(self._on_breaker_change)
        self._register_live_pool()

    def _init_state(self) -> None:
        """Set up the lock, the flags and the counters that it guards."""
        # Guards every field below up to the threads, and the counters. Notified
        # (as _idle) when the last outstanding task finishes and when a pending
        # slot frees up.
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._shutdown = False
        self._stopped = False
        self._outstanding = 0
        self._pending = 0
        self._running = 0
        self._submitted = 0
        self._succeeded = 0
        self._failed = 0
        self._cancelled = 0
        self._retried = 0
        self._timed_out = 0

        # Timed-out attempts whose functions still run, each on a thread of its
        # own that no longer counts as a worker.
        self._abandoned = 0
        # Threads waiting in join().
        self._joiners = 0
        # One entry per task counted finished whose future is not yet set.
        self._completing: deque[None] = deque()
        # Read by workers without the lock; written under it.
        self._paused = False
        # Set when a second Ctrl-C stopped the wait in __exit__, so that the
        # exit handler does not wait again.
        self._forsaken = False

        # Run times and outcomes of recent attempts, for stats().
        self._attempts = AttemptRecorder()
        self._breaker_held: list[Task] = []
        self._by_key: dict[str, Future[Any]] = {}
        self._threads: list[threading.Thread] = []
        self._worker_numbers = itertools.count()

    # -- submitting ------------------------------------------------------------

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        """Schedule `fn(*args, **kwargs)` and return its future.

        Blocks while `max_pending` tasks wait to start; use `options` to raise
        `queue.Full` instead or to wait at most a given time. For priority, a key
        or a retry policy of its own, submit through `options`.

        Raises:
            RuntimeError: The pool has been shut down.
            TypeError: With a journal, `fn` cannot be imported again or an argument
                is not JSON-serializable.
            JournalError: With a journal, recording the task failed.
        """
        if self._journal is not None or not callable(fn):
            return self._submit(fn, args, kwargs, DEFAULT_OPTIONS)
        # The common case, without _submit's and _admit's option handling: the
        # default options have priority 0 and no delay.
        task = Task(fn, args, kwargs, 0, self._retry, timeout=self._task_timeout)
        self._reserve_slot(True, None)
        try:
            self._ready.put(task, 0)
        except BaseException:
            self._release_slot()
            raise
        return task.future

    def options(
        self,
        *,
        priority: float = 0,
        key: str | None = None,
        retry: Retry | int | None = None,
        block: bool = True,
        block_timeout: float | None = None,
        delay: float | None = None,
        start_at: float | None = None,
        timeout: float | None = None,
    ) -> TaskOptions:
        """Return a view of this pool whose `submit` applies these options.

        Keeping the options out of `submit`'s own arguments means they never clash
        with the keyword arguments of the function being submitted::

            pool.options(priority=-1, key="user-42").submit(fetch, url, timeout=5)

        Args:
            priority: Lower runs first; tasks of equal priority run in the order
                submitted.
            key: With a journal, the task's identity across runs: a key that is
                done already is not run again, and its future contains the stored
                result. Requires a journal.
            retry: A policy for these tasks in place of the pool's.
            block: When False, `submit` raises `queue.Full` at once if
                `max_pending` tasks wait.
            block_timeout: The longest `submit` blocks before raising `queue.Full`;
                None waits as long as it takes.
            delay: Seconds, measured on the pool's clock from each `submit`,
                before the task may start.
            start_at: A reading of the pool's clock (its ``monotonic()``) before
                which the task does not start; a time already past starts it at
                once.
            timeout: Seconds each attempt may run before it fails with
                `TaskTimeout`, in place of the pool's `task_timeout`;
                ``math.inf`` for no limit. The time waiting to start, for a
                token or for the breaker, does not count.

        A delayed task waits on the pool's timer thread, not on a worker. Until it
        starts it counts against `max_pending` and is cancelled by `close` and
        by ``shutdown(cancel_futures=True)`` like a queued task, while a plain
        `shutdown` waits for it. With a journal the start time is not recorded,
        so a task recovered by a later run starts at once.

        Raises:
            TypeError: An option has the wrong type.
            ValueError: An option is out of range, `key` is given to a pool
                without a journal, or both `delay` and `start_at` are given.
        """
        options = make_options(
            priority=priority,
            key=key,
            retry=retry,
            block=block,
            block_timeout=block_timeout,
            delay=delay,
            start_at=start_at,
            timeout=timeout,
            journaled=self._journal is not None,
        )
        return TaskOptions(self, options)

    def _submit(
        self,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        options: Options,
    ) -> Future[Any]:
        if not callable(fn):
            raise TypeError(f"fn must be callable, got {fn!r}")
        timeout = self._task_timeout if options.timeout is None else options.timeout
        task = Task(
            fn,
            args,
            kwargs,
            options.priority,
            options.retry or self._retry,
            timeout=None if timeout == math.inf else timeout,
        )
        if self._journal is None:
            self._admit(task, options)
            return task.future
        return self._submit_journaled(self._journal, task, options)

    def _admit(self, task: Task, options: Options) -> None:
        self._reserve_slot(options.block, options.block_timeout)
        try:
            if options.delay is None and options.start_at is None:
                self._ready.put(task, priority=task.priority)
            else:
                self._enqueue(task, options)
        except BaseException:
            self._release_slot()
            raise

    def _enqueue(self, task: Task, options: Options) -> None:
        """Queue an admitted task, or hand it to the timer if it starts later."""
        if options.delay is not None:
            self._timer.schedule(task, options.delay)
        elif options.start_at is not None:
            self._timer.schedule_at(task, options.start_at)
        else:
            self._ready.put(task, priority=task.priority)
            return
        self._watch_cancel(task)

    def _wait_for_breaker(self, task: Task, retry_after: float) -> None:
        """Hold a task that the open breaker rejected, or give up on its budget."""
        policy = task.retry
        if task.started and policy is not None and policy.budget is not None:
            # A retry that could start only after its budget gives up now.
            elapsed = self._monotonic() - task.first_started
            if not policy.within_budget(elapsed + retry_after):
                self._give_up_over_budget(task, None, elapsed)
                return
        self._hold(task, retry_after)
        if not task.started:
            self._watch_cancel(task)

    def _watch_cancel(self, task: Task) -> None:
        """Drop `task` as soon as it is cancelled while it waits off the queue."""
        if task.watched:
            return
        task.watched = True
        # Through Future's own method, so that this callback does not count as
        # someone reading the task's outcome (see PoolFuture).
        Future.add_done_callback(
            task.future, functools.partial(self._drop_if_cancelled, task)
        )

    def _drop_if_cancelled(self, task: Task, future: Future[Any]) -> None:
        """Free the pending slot of a waiting task cancelled before its start."""
        if not future.cancelled():
            return
        if self._timer.discard(task) or self._discard_held(task):
            future.set_running_or_notify_cancel()
            self._finish(task, cancelled=True)

    def _reserve_slot(
        self, block: bool, block_timeout: float | None, *, bounded: bool = True
    ) -> None:
        """Count one more outstanding task, blocking while `max_pending` wait."""
        with self._lock:
            if self._shutdown:
                raise RuntimeError("cannot schedule new futures after shutdown")
            if bounded and self._max_pending and self._pending >= self._max_pending:
                self._wait_for_slot(block, block_timeout)
            self._pending += 1
            self._outstanding += 1
            self._submitted += 1
            if len(self._threads) < self._max_workers:
                self._start_worker()

    def _release_slot(self) -> None:
        """Undo `_reserve_slot` for a task that will not be queued after all."""
        with self._lock:
            self._pending -= 1
            self._outstanding -= 1
            self._submitted -= 1
            self._idle.notify_all()
            stop = self._shutdown and self._outstanding == 0
        if stop:
            self._stop()

    def _wait_for_slot(self, block: bool, block_timeout: float | None) -> None:
        # Called with the lock held.
        if not block:
            raise queue.Full
        deadline = None if block_timeout is None else time.monotonic() + block_timeout
        while self._pending >= self._max_pending:
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                raise queue.Full
            self._idle.wait(remaining)
            if self._shutdown:
                raise RuntimeError("cannot schedule new futures after shutdown")

    def _start_worker(self) -> None:
        # Called with the lock held.
        thread = threading.Thread(
            target=self._work,
            name=f"{self._thread_name_prefix}-{next(self._worker_numbers)}",
            daemon=True,
        )
        thread.start()
        self._threads.append(thread)

    # -- running ---------------------------------------------------------------

    def _work(self) -> None:
        ready = self._ready
        run = self._run
        while True:
            try:
                task = ready.get()
            except QueueClosed:
                return
            if self._paused:
                ready.put_front(task)
                self._wait_while_paused()
                continue
            try:
                run(task)
            except Retired:
                return
            except BaseException:
                # Only a done-callback or a hook that raises something other
                # than an Exception gets here, after the task's outcome is set.
                logger.exception(
                    "pool %s: a callback of task %s raised; the worker goes on",
                    self._thread_name_prefix,
                    describe(task.fn, task.key),
                )

    def _run(self, task: Task) -> None:
        # Before waiting for a breaker or a token, drop a task cancelled in the
        # queue. Without either, _start finds out as cheaply.
        waits = self._breaker is not None or self._limiter is not None
        if waits and not task.started and task.future.cancelled():
            # Moves the future to its final state, which wakes wait() and
            # as_completed() callers.
            task.future.set_running_or_notify_cancel()
            self._finish(task, cancelled=True)
            return
        permit = None
        try:
            if self._breaker is not None:
                permit = self._breaker.acquire_permission()
            if self._limiter is not None and not self._wait_for_token(
                self._limiter, task, permit
            ):
                return
        except CircuitOpenError as exc:
            self._wait_for_breaker(task, exc.retry_after)
            return
        except Exception as exc:
            # A broken limiter or breaker fails the task, never the worker thread.
            logger.exception("pool %s could not admit a task", self._thread_name_prefix)
            if permit is not None:
                permit.release()
            self._fail_before_run(task, exc)
            return
        if not task.started:
            if not self._start(task, permit):
                return
        else:
            policy = task.retry
            if policy is not None and policy.budget is not None:
                # The wait for a token or the breaker may have used the rest.
                elapsed = self._monotonic() - task.first_started
                if not policy.within_budget(elapsed):
                    self._give_up_over_budget(task, permit, elapsed)
                    return
            with self._lock:
                self._running += 1
        if self._hooks:
            self._emit("started", task, task.attempts + 1)
        if task.timeout is not None:
            self._run_timed(task, task.timeout, permit)
            return
        monotonic = self._monotonic
        started = monotonic()
        try:
            result = task.fn(*task.args, **task.kwargs)
        except BaseException as exc:
            ended = monotonic()
            if permit is not None:
                permit.record_failure(exc)
            self._after_failure(task, exc, ended - started, ended)
        else:
            ended = monotonic()
            if permit is not None:
                permit.record_success()
            self._after_success(task, result, ended - started, ended)
        if permit is not None:
            self._release_held()

    def _start(self, task: Task, permit: Permit | None) -> bool:
        """Mark a task's first run as started, and count it as running."""
        if not task.future.set_running_or_notify_cancel():
            if permit is not None:
                permit.release()
            self._finish(task, cancelled=True)
            return False
        if self._journal is not None and task.journal_id is not None:
            error = self._start_in_journal(self._journal, task.journal_id)
            if error is not None:
                task.fail(error)
                if permit is not None:
                    permit.release()
                self._finish(task, failed=True)
                return False
        with self._lock:
            task.started = True
            self._pending -= 1
            self._running += 1
            if self._max_pending:
                self._idle.notify_all()
        return True

    def _after_success(
        self, task: Task, result: Any, run_seconds: float, ended: float
    ) -> None:
        if self._hooks:
            self._emit("succeeded", task, task.attempts + 1, result)
        if self._journal is not None and task.journal_id is not None:
            try:
                self._journal.finish(task.journal_id, result)
            except JournalError as exc:
                logger.exception(
                    "journal could not record task %d as done", task.journal_id
                )
                self._set_outcome(task, run_seconds, ended, exception=exc)
                return
        # The common outcome, so it skips _set_outcome's keyword arguments.
        with self._lock:
            self._running -= 1
            self._attempts.record(run_seconds, False, ended)
            stop = self._count_finished(task)
            self._completing.append(None)
        try:
            task.future.set_result(result)
        finally:
            # Also when a done-callback raises SystemExit, say, which Future
            # lets through: the pool must still wake join() and stop.
            self._completing.pop()
            if self._joiners:
                with self._lock:
                    self._idle.notify_all()
            if stop:
                self._stop()

    # -- inspecting ------------------------------------------------------------

    @property
    def max_workers(self) -> int:
        """The number of worker threads."""
        return self._max_workers

    @property
    def journal(self) -> Journal | None:
        """The pool's journal, if it has one."""
        return self._journal

    def __repr__(self) -> str:
        return f"WorkerPool(max_workers={self._max_workers})"
