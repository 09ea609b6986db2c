"""Conformance tests: WorkerPool keeps the `concurrent.futures` executor contract.

Every test body runs on ``ThreadPoolExecutor``, on a plain ``WorkerPool`` and on
a ``WorkerPool`` with a rate limit, a circuit breaker and a retry policy, through
the `executor_kind` fixture. So a pass shows that each executor behaves as the
`concurrent.futures` documentation describes, and that the pool's limiter,
breaker and retry paths keep the contract too. Where WorkerPool differs on
purpose, as docs/pool.md or its docstrings state, `TestDocumentedDifferences`
asserts what each executor does.

`Future.result`, `wait` and `map` time out on the real monotonic clock in every
executor, so the timeout tests wait for real deadlines of at most 0.2 s. The
interpreter-exit tests start `conformance_child` in a new interpreter, once per
executor that it builds: ``thread`` and ``pool``.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import logging
import operator
import signal
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Generator, Iterator
from concurrent.futures import (
    FIRST_COMPLETED,
    FIRST_EXCEPTION,
    CancelledError,
    Executor,
    Future,
    as_completed,
    wait,
)
from concurrent.futures import TimeoutError as FuturesTimeoutError
from typing import Any, Callable

import conformance_child
import pytest

from syncq.breaker import CircuitBreaker, CircuitState
from syncq.limiters import TokenBucket
from syncq.pool import WorkerPool
from syncq.retry import FixedBackoff, Retry

WAIT = 5.0  # real seconds any expected event may take before the test fails
SHORT_TIMEOUT = 0.05  # real seconds of a timeout that is meant to expire
MAP_TIMEOUT = 0.2  # real seconds of the map timeouts that a test lets pass
CHILD_TIMEOUT = 15.0  # real seconds a child interpreter may take to exit
# Real seconds from SIGINT to exit that count as prompt: well above the child's
# RELEASE_DELAY plus its short tasks, well below its BLOCK_LIMIT.
PROMPT_EXIT = 3.0


class _NeverRaised(Exception):
    """An exception that no task of these tests raises."""


@dataclasses.dataclass(frozen=True)
class Guards:
    """The rate limit, breaker and retry policy of a ``guarded-pool`` executor.

    Every attempt takes a token, goes through the breaker and is judged by the
    policy, so the tests cover those paths of the pool, yet none of them
    changes an outcome. The bucket starts full with 1,000 tokens and no test
    runs more than a few dozen attempts on one executor, so no attempt waits
    for a token. Each executor gets a breaker of its own that opens after 1,000
    consecutive failures, while no contract test makes more than a few tasks
    fail. The policy retries only `_NeverRaised`, so every failure reaches the
    future after one attempt, as the contract expects. `TestGuardedPool`
    checks the breaker and the policy on a workload with failures.
    """

    bucket: TokenBucket
    breaker: CircuitBreaker
    retry: Retry

    @classmethod
    def build(cls) -> Guards:
        """Return new guards, which no other executor shares."""
        return cls(
            bucket=TokenBucket(1000, capacity=1000),
            breaker=CircuitBreaker(failure_threshold=1000),
            retry=Retry(3, backoff=FixedBackoff(0), retry_on=_NeverRaised),
        )


def _guarded_pool(max_workers: int, guards: Guards | None = None) -> WorkerPool:
    """Build a WorkerPool behind `guards`, or behind new `Guards`."""
    if guards is None:
        guards = Guards.build()
    return WorkerPool(
        max_workers,
        rate_limit=guards.bucket,
        breaker=guards.breaker,
        retry=guards.retry,
    )


BUILDERS: dict[str, Callable[[int], Executor]] = {
    **conformance_child.EXECUTORS,
    "guarded-pool": _guarded_pool,
}
DEFAULT_KINDS = sorted(BUILDERS)
# The kinds that conformance_child builds in a child interpreter.
CHILD_KINDS = sorted(conformance_child.EXECUTORS)
# The executor whose behaviour each kind shares, for TestDocumentedDifferences.
FAMILIES = {"thread": "thread", "pool": "pool", "guarded-pool": "pool"}


@pytest.fixture(params=DEFAULT_KINDS)
def executor_kind(request: pytest.FixtureRequest) -> str:
    """Return the name of the executor under test, a key of `BUILDERS`."""
    kind: str = request.param
    return kind


class ExecutorFactory:
    """Build executors of one kind and shut them all down when the test ends."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        # The executor, "thread" or "pool", whose documented behaviour these share.
        self.family = FAMILIES[kind]
        self._created: list[Executor] = []

    def __call__(self, max_workers: int = 2) -> Executor:
        """Return a new executor with `max_workers` threads."""
        executor = BUILDERS[self.kind](max_workers)
        self._created.append(executor)
        return executor

    def shutdown_all(self) -> None:
        """Cancel what has not started and wait for what runs, in every executor."""
        for executor in self._created:
            executor.shutdown(wait=True, cancel_futures=True)


@pytest.fixture
def make_executor(executor_kind: str) -> Iterator[ExecutorFactory]:
    """Return a factory of executors of the kind under test."""
    factory = ExecutorFactory(executor_kind)
    yield factory
    factory.shutdown_all()


class Gate:
    """A task that signals it has started, then blocks until the test opens it."""

    def __init__(self, result: str = "opened") -> None:
        self.result = result
        self.entered = threading.Event()
        self.opened = threading.Event()

    def __call__(self) -> str:
        self.entered.set()
        if not self.opened.wait(WAIT):
            raise TimeoutError("the test never opened the gate")
        return self.result

    def occupy(self, executor: Executor) -> Future[str]:
        """Submit the gate and return its future once it runs on a worker."""
        future = executor.submit(self)
        assert self.entered.wait(WAIT)
        return future


class CallLog:
    """A task that records its argument, safe to call from many threads."""

    def __init__(self) -> None:
        self.calls: list[Any] = []
        self._lock = threading.Lock()

    def __call__(self, value: Any) -> Any:
        with self._lock:
            self.calls.append(value)
        return value


class TaskAbort(BaseException):
    """An exception that is not an `Exception`, as KeyboardInterrupt is not."""


def wait_past(deadline: float) -> None:
    """Block until the real monotonic clock has passed `deadline`."""
    # The executors read time.monotonic() themselves, so no fake clock can
    # replace this real wait; callers keep it under MAP_TIMEOUT.
    pause = threading.Event()
    while time.monotonic() <= deadline:
        pause.wait(deadline - time.monotonic() + 0.001)


def start_shutdown(
    executor: Executor, *, cancel_futures: bool = False
) -> threading.Thread:
    """Start a thread that calls ``shutdown(wait=True)``, and return it.

    The thread starts on a barrier with the caller, so it is running when this
    returns; the caller joins it with a timeout.
    """
    barrier = threading.Barrier(2)

    def shut_down() -> None:
        barrier.wait(WAIT)
        executor.shutdown(wait=True, cancel_futures=cancel_futures)

    closer = threading.Thread(target=shut_down, name="conformance-closer")
    closer.start()
    barrier.wait(WAIT)
    return closer


def assert_blocked(thread: threading.Thread) -> None:
    """Assert that `thread` is still running after a short real-time wait."""
    thread.join(SHORT_TIMEOUT)
    assert thread.is_alive()


def assert_ends(thread: threading.Thread) -> None:
    """Join `thread` with a timeout and assert that it has ended."""
    thread.join(WAIT)
    assert not thread.is_alive()


def raise_value_error(message: str) -> None:
    """Raise ValueError with `message`, as a task or a callback that fails."""
    raise ValueError(message)


class TestSubmit:
    def test_submit_returns_future(self, make_executor: ExecutorFactory) -> None:
        executor = make_executor()

        future = executor.submit(operator.add, 1, 2)

        assert isinstance(future, Future)
        assert future.result(WAIT) == 3

    def test_submit_passes_keywords_named_fn(
        self, make_executor: ExecutorFactory
    ) -> None:
        executor = make_executor()

        future = executor.submit(dict, fn=1, self=2)

        assert future.result(WAIT) == {"fn": 1, "self": 2}

    def test_future_running_while_task_runs(
        self, make_executor: ExecutorFactory
    ) -> None:
        gate = Gate()
        executor = make_executor()

        future = gate.occupy(executor)

        assert future.running()
        assert not future.done()
        gate.opened.set()

    def test_submit_from_task_runs_inner_task(
        self, make_executor: ExecutorFactory
    ) -> None:
        executor = make_executor(2)

        def outer() -> int:
            return executor.submit(abs, -42).result(WAIT)

        assert executor.submit(outer).result(WAIT) == 42

    def test_shutdown_waits_for_task_submitted_by_task(
        self, make_executor: ExecutorFactory
    ) -> None:
        executor = make_executor(1)
        inner: list[Future[str]] = []
        gate = Gate("inner")

        def outer() -> None:
            inner.append(executor.submit(gate))

        executor.submit(outer).result(WAIT)
        closer = start_shutdown(executor)
        assert_blocked(closer)
        gate.opened.set()

        assert_ends(closer)
        assert inner[0].result(0) == "inner"

    def test_submit_from_task_after_shutdown_raises(
        self, make_executor: ExecutorFactory
    ) -> None:
        gate = Gate()
        executor = make_executor(1)

        def submit_after_gate() -> Future[int]:
            gate()
            return executor.submit(abs, -1)

        future = executor.submit(submit_after_gate)
        assert gate.entered.wait(WAIT)
        executor.shutdown(wait=False)
        gate.opened.set()

        assert isinstance(future.exception(WAIT), RuntimeError)


class TestResults:
    def test_result_times_out_while_running(
        self, make_executor: ExecutorFactory
    ) -> None:
        gate = Gate()
        future = gate.occupy(make_executor())

        with pytest.raises(FuturesTimeoutError):
            future.result(timeout=SHORT_TIMEOUT)
        gate.opened.set()

    def test_exception_times_out_while_running(
        self, make_executor: ExecutorFactory
    ) -> None:
        gate = Gate()
        future = gate.occupy(make_executor())

        with pytest.raises(FuturesTimeoutError):
            future.exception(timeout=SHORT_TIMEOUT)
        gate.opened.set()

    def test_result_after_timeout_still_arrives(
        self, make_executor: ExecutorFactory
    ) -> None:
        gate = Gate()
        future = gate.occupy(make_executor())
        with pytest.raises(FuturesTimeoutError):
            future.result(timeout=SHORT_TIMEOUT)

        gate.opened.set()

        assert future.result(WAIT) == "opened"

    def test_exception_is_none_after_success(
        self, make_executor: ExecutorFactory
    ) -> None:
        future = make_executor().submit(abs, -1)

        assert future.exception(WAIT) is None

    def test_result_raises_the_task_exception(
        self, make_executor: ExecutorFactory
    ) -> None:
        future = make_executor().submit(raise_value_error, "bad input")

        with pytest.raises(ValueError, match="bad input") as raised:
            future.result(WAIT)

        assert raised.value is future.exception(0)

    def test_task_exception_keeps_its_traceback(
        self, make_executor: ExecutorFactory
    ) -> None:
        future = make_executor().submit(raise_value_error, "bad input")

        error = future.exception(WAIT)

        assert error is not None
        frames = traceback.extract_tb(error.__traceback__)
        assert "raise_value_error" in [frame.name for frame in frames]

    def test_base_exception_in_task_reaches_future(
        self, make_executor: ExecutorFactory
    ) -> None:
        def abort() -> None:
            raise TaskAbort("stop")

        future = make_executor().submit(abort)

        assert isinstance(future.exception(WAIT), TaskAbort)

    def test_worker_runs_next_task_after_base_exception(
        self, make_executor: ExecutorFactory
    ) -> None:
        def abort() -> None:
            raise TaskAbort("stop")

        executor = make_executor(1)
        executor.submit(abort).exception(WAIT)

        assert executor.submit(abs, -7).result(WAIT) == 7


class TestCallbacks:
    def test_callback_on_done_future_runs_at_once(
        self, make_executor: ExecutorFactory
    ) -> None:
        future = make_executor().submit(abs, -1)
        future.result(WAIT)
        threads: list[threading.Thread] = []

        future.add_done_callback(lambda _: threads.append(threading.current_thread()))

        assert threads == [threading.current_thread()]

    def test_callback_receives_its_future(self, make_executor: ExecutorFactory) -> None:
        gate = Gate()
        future = gate.occupy(make_executor())
        received: list[Future[str]] = []
        called = threading.Event()

        def record(done: Future[str]) -> None:
            received.append(done)
            called.set()

        future.add_done_callback(record)
        gate.opened.set()

        assert called.wait(WAIT)
        assert received == [future]

    def test_callbacks_run_in_order_added(self, make_executor: ExecutorFactory) -> None:
        gate = Gate()
        future = gate.occupy(make_executor())
        order: list[int] = []
        last = threading.Event()

        def record(index: int, _: Future[str]) -> None:
            order.append(index)

        for index in range(3):
            future.add_done_callback(functools.partial(record, index))
        future.add_done_callback(lambda _: last.set())

        gate.opened.set()

        assert last.wait(WAIT)
        assert order == [0, 1, 2]

    def test_callback_error_on_done_future_is_logged(
        self, make_executor: ExecutorFactory, caplog: pytest.LogCaptureFixture
    ) -> None:
        future = make_executor().submit(abs, -1)
        future.result(WAIT)

        with caplog.at_level(logging.ERROR, logger="concurrent.futures"):
            future.add_done_callback(lambda _: raise_value_error("in callback"))

        assert "exception calling callback" in caplog.text
        assert "in callback" in caplog.text

    def test_callback_error_at_completion_is_logged(
        self, make_executor: ExecutorFactory, caplog: pytest.LogCaptureFixture
    ) -> None:
        gate = Gate()
        future = gate.occupy(make_executor())
        later = threading.Event()

        with caplog.at_level(logging.ERROR, logger="concurrent.futures"):
            future.add_done_callback(lambda _: raise_value_error("in callback"))
            future.add_done_callback(lambda _: later.set())
            gate.opened.set()
            assert later.wait(WAIT)

        assert "in callback" in caplog.text

    def test_callback_error_leaves_result_intact(
        self, make_executor: ExecutorFactory
    ) -> None:
        gate = Gate()
        future = gate.occupy(make_executor())
        future.add_done_callback(lambda _: raise_value_error("in callback"))

        gate.opened.set()

        assert future.result(WAIT) == "opened"

    def test_callback_runs_when_queued_future_cancelled(
        self, make_executor: ExecutorFactory
    ) -> None:
        gate = Gate()
        executor = make_executor(1)
        gate.occupy(executor)
        queued = executor.submit(abs, -1)
        seen: list[bool] = []
        queued.add_done_callback(lambda done: seen.append(done.cancelled()))

        queued.cancel()

        assert seen == [True]
        gate.opened.set()


class TestCancel:
    def test_cancel_running_future_returns_false(
        self, make_executor: ExecutorFactory
    ) -> None:
        gate = Gate()
        future = gate.occupy(make_executor())

        assert not future.cancel()
        assert not future.cancelled()
        gate.opened.set()
        assert future.result(WAIT) == "opened"

    def test_cancel_done_future_returns_false(
        self, make_executor: ExecutorFactory
    ) -> None:
        future = make_executor().submit(abs, -1)
        future.result(WAIT)

        assert not future.cancel()
        assert future.result(0) == 1

    def test_cancelled_future_never_runs(self, make_executor: ExecutorFactory) -> None:
        gate = Gate()
        log = CallLog()
        executor = make_executor(1)
        gate.occupy(executor)
        queued = executor.submit(log, "cancelled")
        after = executor.submit(log, "after")

        queued.cancel()
        gate.opened.set()
        after.result(WAIT)

        assert log.calls == ["after"]

    def test_cancelled_future_raises_cancelled_error(
        self, make_executor: ExecutorFactory
    ) -> None:
        gate = Gate()
        executor = make_executor(1)
        gate.occupy(executor)
        queued = executor.submit(abs, -1)

        queued.cancel()

        with pytest.raises(CancelledError):
            queued.result(0)
        with pytest.raises(CancelledError):
            queued.exception(0)
        gate.opened.set()


class TestMap:
    def test_map_starts_calls_before_iteration(
        self, make_executor: ExecutorFactory
    ) -> None:
        log = CallLog()
        executor = make_executor(2)

        results = executor.map(log, [1, 2])
        executor.shutdown(wait=True)

        assert sorted(log.calls) == [1, 2]
        assert list(results) == [1, 2]

    def test_map_stops_at_shortest_iterable(
        self, make_executor: ExecutorFactory
    ) -> None:
        executor = make_executor()

        results = executor.map(pow, [1, 2, 3], [2, 2])

        assert list(results) == [1, 4]

    def test_map_stops_when_later_iterable_ends(
        self, make_executor: ExecutorFactory
    ) -> None:
        executor = make_executor()

        results = executor.map(pow, itertools.count(), [2, 2, 2])

        assert list(results) == [0, 1, 4]

    def test_map_without_iterables_yields_nothing(
        self, make_executor: ExecutorFactory
    ) -> None:
        executor = make_executor()

        assert list(executor.map(abs)) == []

    def test_map_raises_task_error_at_its_item(
        self, make_executor: ExecutorFactory
    ) -> None:
        executor = make_executor()
        results = executor.map(operator.truediv, [1, 1, 1], [1, 0, 1])
        before: list[float] = []

        with pytest.raises(ZeroDivisionError):
            for result in results:
                before.append(result)

        assert before == [1.0]

    def test_map_ends_after_task_error(self, make_executor: ExecutorFactory) -> None:
        executor = make_executor()
        results = executor.map(operator.truediv, [1, 1, 1], [1, 0, 1])
        next(results)
        with pytest.raises(ZeroDivisionError):
            next(results)

        assert list(results) == []

    def test_map_timeout_counts_from_the_call(
        self, make_executor: ExecutorFactory
    ) -> None:
        gate = Gate()
        executor = make_executor(1)
        called = time.monotonic()
        results = executor.map(lambda _: gate(), [1], timeout=MAP_TIMEOUT)
        wait_past(called + MAP_TIMEOUT)

        started = time.monotonic()
        with pytest.raises(FuturesTimeoutError):
            next(results)

        # The deadline has passed already, so next() raises without waiting
        # another MAP_TIMEOUT.
        assert time.monotonic() - started < MAP_TIMEOUT
        gate.opened.set()

    def test_map_returns_ready_result_after_deadline(
        self, make_executor: ExecutorFactory
    ) -> None:
        executor = make_executor(1)
        called = time.monotonic()
        results = executor.map(abs, [-1], timeout=MAP_TIMEOUT)
        executor.shutdown(wait=True)
        wait_past(called + MAP_TIMEOUT)

        assert next(results) == 1

    def test_map_close_cancels_calls_not_started(
        self, make_executor: ExecutorFactory
    ) -> None:
        gate = Gate()
        log = CallLog()

        def call(index: int) -> int:
            log(index)
            if index == 1:
                gate()
            return index

        executor = make_executor(1)
        results = executor.map(call, range(4))
        assert next(results) == 0
        assert gate.entered.wait(WAIT)

        assert isinstance(results, Generator)
        results.close()
        gate.opened.set()
        executor.shutdown(wait=True)

        assert log.calls == [0, 1]


class TestShutdown:
    def test_shutdown_waits_for_running_task(
        self, make_executor: ExecutorFactory
    ) -> None:
        gate = Gate()
        executor = make_executor(1)
        future = gate.occupy(executor)

        closer = start_shutdown(executor)
        assert_blocked(closer)
        gate.opened.set()

        assert_ends(closer)
        assert future.done()

    def test_shutdown_without_wait_returns_while_running(
        self, make_executor: ExecutorFactory
    ) -> None:
        gate = Gate()
        executor = make_executor(1)
        future = gate.occupy(executor)

        executor.shutdown(wait=False)

        assert future.running()
        gate.opened.set()
        assert future.result(WAIT) == "opened"

    def test_shutdown_without_wait_still_runs_queued(
        self, make_executor: ExecutorFactory
    ) -> None:
        gate = Gate()
        executor = make_executor(1)
        gate.occupy(executor)
        queued = [executor.submit(abs, -index) for index in range(3)]

        executor.shutdown(wait=False)
        gate.opened.set()

        assert [future.result(WAIT) for future in queued] == [0, 1, 2]

    def test_shutdown_cancel_futures_waits_for_running(
        self, make_executor: ExecutorFactory
    ) -> None:
        gate = Gate()
        executor = make_executor(1)
        running = gate.occupy(executor)
        queued = [executor.submit(abs, -index) for index in range(3)]

        closer = start_shutdown(executor, cancel_futures=True)
        for future in queued:
            with pytest.raises(CancelledError):
                future.result(WAIT)
        # The gate is still closed, so shutdown must still wait for it.
        assert closer.is_alive()
        gate.opened.set()

        assert_ends(closer)
        assert running.result(0) == "opened"

    def test_shutdown_cancel_futures_keeps_done_results(
        self, make_executor: ExecutorFactory
    ) -> None:
        executor = make_executor(1)
        done = executor.submit(abs, -1)
        done.result(WAIT)

        executor.shutdown(wait=True, cancel_futures=True)

        assert not done.cancelled()
        assert done.result(0) == 1

    def test_submit_after_shutdown_without_wait_raises(
        self, make_executor: ExecutorFactory
    ) -> None:
        gate = Gate()
        executor = make_executor(1)
        gate.occupy(executor)
        executor.shutdown(wait=False)

        with pytest.raises(RuntimeError):
            executor.submit(abs, -1)
        gate.opened.set()

    def test_shutdown_twice_is_harmless(self, make_executor: ExecutorFactory) -> None:
        executor = make_executor()
        future = executor.submit(abs, -1)

        executor.shutdown()
        executor.shutdown()

        assert future.result(0) == 1

    def test_shutdown_wait_after_no_wait_waits(
        self, make_executor: ExecutorFactory
    ) -> None:
        gate = Gate()
        executor = make_executor(1)
        gate.occupy(executor)
        queued = executor.submit(abs, -1)
        executor.shutdown(wait=False)

        closer = start_shutdown(executor)
        assert_blocked(closer)
        gate.opened.set()

        assert_ends(closer)
        assert queued.result(0) == 1

    def test_shutdown_wait_from_own_task_raises(
        self, make_executor: ExecutorFactory
    ) -> None:
        executor = make_executor(1)

        future = executor.submit(lambda: executor.shutdown(wait=True))

        assert isinstance(future.exception(WAIT), RuntimeError)


class TestContextManager:
    def test_context_enter_returns_executor(
        self, make_executor: ExecutorFactory
    ) -> None:
        executor = make_executor()

        with executor as entered:
            assert entered is executor

    def test_context_exit_waits_for_queued_tasks(
        self, make_executor: ExecutorFactory
    ) -> None:
        log = CallLog()

        with make_executor(1) as executor:
            futures = [executor.submit(log, index) for index in range(5)]

        assert all(future.done() for future in futures)
        assert log.calls == [0, 1, 2, 3, 4]

    def test_context_exit_shuts_down(self, make_executor: ExecutorFactory) -> None:
        with make_executor() as executor:
            executor.submit(abs, -1)

        with pytest.raises(RuntimeError):
            executor.submit(abs, -1)

    def test_context_exit_propagates_exception(
        self, make_executor: ExecutorFactory
    ) -> None:
        future: Future[int] | None = None

        with pytest.raises(ValueError, match="in block"), make_executor() as executor:
            future = executor.submit(abs, -1)
            raise_value_error("in block")

        assert future is not None
        assert future.result(0) == 1


class TestWaitAndAsCompleted:
    def test_wait_first_completed_returns_finished(
        self, make_executor: ExecutorFactory
    ) -> None:
        gate = Gate()
        executor = make_executor(2)
        blocked = gate.occupy(executor)
        quick = executor.submit(abs, -1)

        futures: list[Future[Any]] = [blocked, quick]

        done, not_done = wait(futures, WAIT, return_when=FIRST_COMPLETED)

        assert done == {quick}
        assert not_done == {blocked}
        gate.opened.set()

    def test_wait_first_exception_returns_on_failure(
        self, make_executor: ExecutorFactory
    ) -> None:
        gate = Gate()
        executor = make_executor(2)
        blocked = gate.occupy(executor)
        failing = executor.submit(raise_value_error, "fails")

        futures: list[Future[Any]] = [blocked, failing]

        done, not_done = wait(futures, WAIT, return_when=FIRST_EXCEPTION)

        assert done == {failing}
        assert not_done == {blocked}
        gate.opened.set()

    def test_wait_timeout_returns_not_done(
        self, make_executor: ExecutorFactory
    ) -> None:
        gate = Gate()
        blocked = gate.occupy(make_executor())

        done, not_done = wait([blocked], timeout=SHORT_TIMEOUT)

        assert done == set()
        assert not_done == {blocked}
        gate.opened.set()

    def test_wait_counts_future_cancelled_in_queue(
        self, make_executor: ExecutorFactory
    ) -> None:
        gate = Gate()
        executor = make_executor(1)
        running = gate.occupy(executor)
        queued = executor.submit(abs, -1)
        queued.cancel()
        gate.opened.set()

        futures: list[Future[Any]] = [running, queued]

        done, not_done = wait(futures, timeout=WAIT)

        assert done == {running, queued}
        assert not_done == set()

    def test_as_completed_yields_in_completion_order(
        self, make_executor: ExecutorFactory
    ) -> None:
        first_gate = Gate("first")
        second_gate = Gate("second")
        executor = make_executor(2)
        first = first_gate.occupy(executor)
        second = second_gate.occupy(executor)
        completed = as_completed([first, second], timeout=WAIT)

        second_gate.opened.set()
        earliest = next(completed)
        first_gate.opened.set()
        latest = next(completed)

        assert earliest is second
        assert latest is first

    def test_as_completed_timeout_raises(self, make_executor: ExecutorFactory) -> None:
        gate = Gate()
        blocked = gate.occupy(make_executor())

        with pytest.raises(FuturesTimeoutError):
            next(as_completed([blocked], timeout=SHORT_TIMEOUT))
        gate.opened.set()


class TestArguments:
    @pytest.mark.parametrize("max_workers", [0, -1])
    def test_executor_rejects_max_workers_below_one(
        self, make_executor: ExecutorFactory, max_workers: int
    ) -> None:
        with pytest.raises(ValueError, match="max_workers"):
            make_executor(max_workers)


class TestGuardedPool:
    def test_guarded_pool_guards_never_act(self) -> None:
        guards = Guards.build()
        with _guarded_pool(2, guards) as executor:
            failing = [executor.submit(raise_value_error, "fails") for _ in range(20)]
            passing = [executor.submit(abs, -n) for n in range(20)]
            errors = [future.exception(WAIT) for future in failing]
            values = [future.result(WAIT) for future in passing]
            stats = executor.stats()

        assert all(isinstance(error, ValueError) for error in errors)
        assert values == list(range(20))
        assert stats.retried == 0
        assert guards.breaker.state is CircuitState.CLOSED


def _run_child(*arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        conformance_child.command(*arguments),
        env=conformance_child.environment(),
        capture_output=True,
        text=True,
        timeout=CHILD_TIMEOUT,
        check=False,
    )


@dataclasses.dataclass(frozen=True)
class InterruptedChild:
    """How a child interpreter ended after SIGINT."""

    returncode: int
    lines: list[str]
    """What the child printed after ``ready``."""
    seconds: float
    """Real time from SIGINT to the child's exit."""


def _interrupt_child(kind: str, style: str) -> InterruptedChild:
    """Run the child's interrupt command and send SIGINT once it is ready."""
    child = subprocess.Popen(
        conformance_child.command("interrupt", kind, style),
        env=conformance_child.environment(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        # readline returns "" at end of file, so a child that dies cannot hang here.
        first_line = child.stdout.readline()
        assert first_line == "ready\n", child.communicate(timeout=CHILD_TIMEOUT)
        child.send_signal(signal.SIGINT)
        interrupted = time.monotonic()
        rest, _ = child.communicate(timeout=CHILD_TIMEOUT)
        seconds = time.monotonic() - interrupted
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(CHILD_TIMEOUT)
    return InterruptedChild(child.returncode, rest.splitlines(), seconds)


def _queued_runs(lines: list[str]) -> list[str]:
    queued = [f"ran {index}" for index in range(conformance_child.TASK_COUNT)]
    return [line for line in lines if line in queued]


needs_sigint = pytest.mark.skipif(
    sys.platform == "win32", reason="the exit tests send SIGINT to a child process"
)


@needs_sigint
@pytest.mark.parametrize("executor_kind", CHILD_KINDS)
class TestInterpreterExit:
    def test_interpreter_exit_finishes_queued_tasks(self, executor_kind: str) -> None:
        child = _run_child("exit", executor_kind)

        lines = child.stdout.splitlines()
        assert child.returncode == 0, child.stderr
        assert "main exits with 0 done" in lines
        assert _queued_runs(lines) == ["ran 0", "ran 1", "ran 2", "ran 3"]

    def test_interpreter_exit_drains_before_atexit(self, executor_kind: str) -> None:
        child = _run_child("exit", executor_kind)

        lines = child.stdout.splitlines()
        assert child.returncode == 0, child.stderr
        assert lines[-1] == "atexit handler ran"

    @pytest.mark.parametrize("style", ["with", "bare"])
    def test_interrupt_exits_with_sigint_status(
        self, executor_kind: str, style: str
    ) -> None:
        child = _interrupt_child(executor_kind, style)

        assert child.returncode == -signal.SIGINT

    @pytest.mark.parametrize("style", ["with", "bare"])
    def test_interrupt_exits_promptly(self, executor_kind: str, style: str) -> None:
        child = _interrupt_child(executor_kind, style)

        assert child.seconds < PROMPT_EXIT

    def test_interrupt_in_with_finishes_running_task(self, executor_kind: str) -> None:
        child = _interrupt_child(executor_kind, "with")

        assert "ran blocked" in child.lines


class TestDocumentedDifferences:
    """Behaviours where WorkerPool differs from ThreadPoolExecutor on purpose."""

    def test_map_reads_input_eagerly_or_lazily(
        self, make_executor: ExecutorFactory
    ) -> None:
        # WorkerPool reads at most buffersize items (2 * max_workers) ahead of
        # the results read, and ThreadPoolExecutor reads all of them in map().
        expected = {"thread": 100, "pool": 4}
        read = CallLog()
        executor = make_executor(2)

        executor.map(abs, map(read, range(100)))

        assert len(read.calls) == expected[make_executor.family]

    def test_map_results_after_shutdown(self, make_executor: ExecutorFactory) -> None:
        # ThreadPoolExecutor submits every item in map(), so its results outlive
        # shutdown. WorkerPool submits the rest of the input as results are read,
        # and map_ordered's docstring states that a submit after shutdown then
        # raises RuntimeError from next().
        expected = {"thread": "10 results", "pool": "RuntimeError"}
        with make_executor(1) as executor:
            results = executor.map(abs, range(-10, 0))

        try:
            outcome = f"{len(list(results))} results"
        except RuntimeError:
            outcome = "RuntimeError"

        assert outcome == expected[make_executor.family]

    def test_shutdown_from_own_task_keeps_accepting(
        self, make_executor: ExecutorFactory
    ) -> None:
        # Both raise RuntimeError. ThreadPoolExecutor has shut down by then, but
        # WorkerPool raises before it changes anything.
        accepts = {"thread": False, "pool": True}
        executor = make_executor(1)
        executor.submit(lambda: executor.shutdown(wait=True)).exception(WAIT)

        try:
            executor.submit(abs, -1).result(WAIT)
        except RuntimeError:
            accepted = False
        else:
            accepted = True

        assert accepted is accepts[make_executor.family]

    @needs_sigint
    @pytest.mark.parametrize("executor_kind", CHILD_KINDS)
    @pytest.mark.parametrize("style", ["with", "bare"])
    def test_interrupt_cancels_queued_tasks(
        self, executor_kind: str, style: str
    ) -> None:
        # After KeyboardInterrupt, ThreadPoolExecutor runs every queued task
        # before the with block or the interpreter exits. WorkerPool cancels the
        # tasks that have not started, as docs/pool.md states for both cases.
        expected = {
            "thread": ["ran 0", "ran 1", "ran 2", "ran 3"],
            "pool": [],
        }

        child = _interrupt_child(executor_kind, style)

        assert _queued_runs(child.lines) == expected[executor_kind]
