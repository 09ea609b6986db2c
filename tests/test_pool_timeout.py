"""Tests of task timeouts in WorkerPool, timed on a fake clock."""

from __future__ import annotations

import concurrent.futures
import logging
import math
import operator
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from syncq.breaker import CircuitBreaker, CircuitState
from syncq.errors import SyncqError, TaskTimeout
from syncq.journal import Journal, TaskState
from syncq.limiters import TokenBucket
from syncq.pool import PoolHooks, TaskEvent, WorkerPool
from syncq.retry import FixedBackoff, Retry
from syncq.testing import FakeClock

WAIT = 5.0  # real seconds any event in these tests may take before the test fails


class Hang:
    """A task that signals its start and then blocks until released."""

    def __init__(self, result: object = "late") -> None:
        self.started = threading.Event()
        self.release = threading.Event()
        self.calls = 0
        self.result = result

    def __call__(self) -> object:
        self.calls += 1
        self.started.set()
        if not self.release.wait(WAIT):
            raise RuntimeError("the test never released the task")
        return self.result


class Recorder(PoolHooks):
    """Hooks that record the exceptions of failed attempts."""

    def __init__(self) -> None:
        self.failed_with: list[BaseException] = []
        self.gave_up_with: list[BaseException] = []

    def failed(self, task: TaskEvent, exception: BaseException) -> None:
        self.failed_with.append(exception)

    def gave_up(self, task: TaskEvent, exception: BaseException) -> None:
        self.gave_up_with.append(exception)


def wait_until(predicate: Any) -> None:
    done = threading.Event()
    for _ in range(int(WAIT / 0.005)):
        if predicate():
            return
        done.wait(0.005)
    raise AssertionError("condition not met in time")


class TestTimeoutFailsTheFuture:
    @pytest.mark.timeout(10)
    def test_timeout_raises_task_timeout(self, clock: FakeClock) -> None:
        hang = Hang()
        with WorkerPool(1, clock=clock) as pool:
            future = pool.options(timeout=5).submit(hang)
            assert hang.started.wait(WAIT)
            clock.advance(5)

            with pytest.raises(TaskTimeout, match="within 5 seconds") as caught:
                future.result(WAIT)
            hang.release.set()
        assert caught.value.timeout == 5

    @pytest.mark.timeout(10)
    def test_timeout_is_a_timeout_error(self, clock: FakeClock) -> None:
        hang = Hang()
        with WorkerPool(1, clock=clock) as pool:
            future = pool.options(timeout=1).submit(hang)
            assert hang.started.wait(WAIT)
            clock.advance(1)

            exc = future.exception(WAIT)
            hang.release.set()
        assert isinstance(exc, TimeoutError)
        assert isinstance(exc, concurrent.futures.TimeoutError)
        assert isinstance(exc, SyncqError)

    @pytest.mark.timeout(10)
    def test_timeout_not_due_before_its_time(self, clock: FakeClock) -> None:
        hang = Hang()
        with WorkerPool(1, clock=clock) as pool:
            future = pool.options(timeout=5).submit(hang)
            assert hang.started.wait(WAIT)
            clock.advance(4.9)
            # A few polls of the watchdog, in real time, to let a wrong expiry show.
            threading.Event().wait(0.03)

            assert not future.done()
            hang.release.set()
            assert future.result(WAIT) == "late"

    @pytest.mark.timeout(10)
    def test_task_that_finishes_in_time_keeps_its_result(
        self, clock: FakeClock
    ) -> None:
        with WorkerPool(2, clock=clock) as pool:
            futures = [
                pool.options(timeout=1).submit(operator.add, i, 1) for i in range(50)
            ]
            assert [f.result(WAIT) for f in futures] == list(range(1, 51))
            assert pool.stats().timed_out == 0

    @pytest.mark.timeout(10)
    def test_pool_task_timeout_applies_to_every_task(self, clock: FakeClock) -> None:
        hang = Hang()
        with WorkerPool(1, task_timeout=2, clock=clock) as pool:
            future = pool.submit(hang)
            assert hang.started.wait(WAIT)
            clock.advance(2)

            assert isinstance(future.exception(WAIT), TaskTimeout)
            hang.release.set()

    @pytest.mark.timeout(10)
    def test_option_overrides_pool_timeout(self, clock: FakeClock) -> None:
        hang = Hang()
        with WorkerPool(1, task_timeout=2, clock=clock) as pool:
            future = pool.options(timeout=10).submit(hang)
            assert hang.started.wait(WAIT)
            clock.advance(5)
            threading.Event().wait(0.03)

            assert not future.done()
            clock.advance(5)
            assert isinstance(future.exception(WAIT), TaskTimeout)
            hang.release.set()

    @pytest.mark.timeout(10)
    def test_infinite_option_disables_pool_timeout(self, clock: FakeClock) -> None:
        hang = Hang()
        with WorkerPool(1, task_timeout=2, clock=clock) as pool:
            future = pool.options(timeout=math.inf).submit(hang)
            assert hang.started.wait(WAIT)
            clock.advance(1000)
            threading.Event().wait(0.03)

            assert not future.done()
            hang.release.set()
            assert future.result(WAIT) == "late"

    @pytest.mark.timeout(10)
    def test_delay_before_start_does_not_count(self, clock: FakeClock) -> None:
        hang = Hang()
        with WorkerPool(1, clock=clock) as pool:
            future = pool.options(delay=10, timeout=5).submit(hang)
            clock.advance(10)
            assert hang.started.wait(WAIT)
            threading.Event().wait(0.03)

            assert not future.done()
            clock.advance(5)
            assert isinstance(future.exception(WAIT), TaskTimeout)
            hang.release.set()


class TestThreadOfATimedOutAttempt:
    @pytest.mark.timeout(10)
    def test_late_result_is_discarded(self, clock: FakeClock) -> None:
        hang = Hang(result="late")
        with WorkerPool(1, clock=clock) as pool:
            future = pool.options(timeout=1).submit(hang)
            assert hang.started.wait(WAIT)
            clock.advance(1)
            assert isinstance(future.exception(WAIT), TaskTimeout)

            hang.release.set()
            wait_until(lambda: pool.stats().abandoned == 0)
            assert isinstance(future.exception(0), TaskTimeout)

    @pytest.mark.timeout(10)
    def test_replacement_worker_runs_other_tasks(self, clock: FakeClock) -> None:
        hang = Hang()
        with WorkerPool(1, clock=clock) as pool:
            stuck = pool.options(timeout=1).submit(hang)
            after = pool.submit(operator.add, 2, 3)
            assert hang.started.wait(WAIT)
            clock.advance(1)

            # The only worker is still inside hang(), yet the next task runs.
            assert after.result(WAIT) == 5
            assert isinstance(stuck.exception(0), TaskTimeout)
            hang.release.set()

    @pytest.mark.timeout(10)
    def test_abandoned_attempt_is_not_counted_running(self, clock: FakeClock) -> None:
        hang = Hang()
        with WorkerPool(1, clock=clock) as pool:
            future = pool.options(timeout=1).submit(hang)
            assert hang.started.wait(WAIT)
            assert pool.stats().running == 1
            clock.advance(1)
            future.exception(WAIT)

            stats = pool.stats()
            assert (stats.running, stats.timed_out, stats.abandoned) == (0, 1, 1)
            hang.release.set()
            wait_until(lambda: pool.stats().abandoned == 0)
            assert pool.stats().timed_out == 1

    @pytest.mark.timeout(10)
    def test_thread_of_late_attempt_ends(self, clock: FakeClock) -> None:
        hang = Hang()
        with WorkerPool(1, thread_name_prefix="late", clock=clock) as pool:
            future = pool.options(timeout=1).submit(hang)
            assert hang.started.wait(WAIT)
            clock.advance(1)
            future.exception(WAIT)
            hang.release.set()
            wait_until(lambda: pool.stats().abandoned == 0)

            def workers() -> int:
                names = (thread.name for thread in threading.enumerate())
                return sum(name.startswith("late-") for name in names)

            # The replacement worker stays, the watchdog too; the old one ends.
            wait_until(lambda: workers() == 2)

    @pytest.mark.timeout(10)
    def test_late_outcome_is_logged(
        self, clock: FakeClock, caplog: pytest.LogCaptureFixture
    ) -> None:
        hang = Hang()
        with WorkerPool(1, clock=clock) as pool:
            future = pool.options(timeout=1).submit(hang)
            assert hang.started.wait(WAIT)
            with caplog.at_level(logging.WARNING, logger="syncq.pool"):
                clock.advance(1)
                future.exception(WAIT)
                hang.release.set()
                wait_until(lambda: pool.stats().abandoned == 0)

        messages = [record.getMessage() for record in caplog.records]
        assert any("timed out after 1 s" in message for message in messages)
        assert any("outcome is discarded" in message for message in messages)

    @pytest.mark.timeout(10)
    def test_shutdown_does_not_wait_for_abandoned_thread(
        self, clock: FakeClock
    ) -> None:
        hang = Hang()
        pool = WorkerPool(1, clock=clock)
        future = pool.options(timeout=1).submit(hang)
        assert hang.started.wait(WAIT)
        clock.advance(1)
        future.exception(WAIT)

        pool.shutdown(wait=True)
        assert not hang.release.is_set()
        hang.release.set()


class TestTimeoutAndRetry:
    @pytest.mark.timeout(10)
    def test_timed_out_attempt_is_retried(self, clock: FakeClock) -> None:
        first = Hang()
        calls: list[int] = []

        def task() -> str:
            calls.append(1)
            if len(calls) == 1:
                first()
                return "first"
            return "second"

        retry = Retry(2, backoff=FixedBackoff(0))
        with WorkerPool(1, retry=retry, clock=clock) as pool:
            future = pool.options(timeout=1).submit(task)
            assert first.started.wait(WAIT)
            clock.advance(1)

            assert future.result(WAIT) == "second"
            first.release.set()
            wait_until(lambda: pool.stats().abandoned == 0)
            assert future.result(0) == "second"
            assert pool.stats().retried == 1

    @pytest.mark.timeout(10)
    def test_policy_can_give_up_on_timeouts(self, clock: FakeClock) -> None:
        hang = Hang()
        retry = Retry(3, backoff=FixedBackoff(0), give_up_on=TaskTimeout)
        with WorkerPool(1, retry=retry, clock=clock) as pool:
            future = pool.options(timeout=1).submit(hang)
            assert hang.started.wait(WAIT)
            clock.advance(1)

            assert isinstance(future.exception(WAIT), TaskTimeout)
            assert hang.calls == 1
            hang.release.set()

    @pytest.mark.timeout(10)
    def test_hooks_see_the_timeout(self, clock: FakeClock) -> None:
        hang = Hang()
        recorder = Recorder()
        with WorkerPool(1, hooks=recorder, clock=clock) as pool:
            future = pool.options(timeout=1).submit(hang)
            assert hang.started.wait(WAIT)
            clock.advance(1)
            future.exception(WAIT)
            hang.release.set()

        assert [type(exc) for exc in recorder.failed_with] == [TaskTimeout]
        assert [type(exc) for exc in recorder.gave_up_with] == [TaskTimeout]


class TestTimeoutAndBreaker:
    @pytest.mark.timeout(10)
    def test_timeout_counts_as_breaker_failure(self, clock: FakeClock) -> None:
        hang = Hang()
        breaker = CircuitBreaker(failure_threshold=1, clock=clock)
        with WorkerPool(1, breaker=breaker, clock=clock) as pool:
            future = pool.options(timeout=1).submit(hang)
            assert hang.started.wait(WAIT)
            clock.advance(1)
            future.exception(WAIT)

            assert breaker.state is CircuitState.OPEN
            hang.release.set()
            wait_until(lambda: pool.stats().abandoned == 0)
            # The late success changes nothing.
            assert breaker.state is CircuitState.OPEN


class TestTimeoutAndJournal:
    @pytest.mark.timeout(10)
    def test_timed_out_task_is_recorded_failed(
        self, clock: FakeClock, journal_path: Path
    ) -> None:
        with WorkerPool(1, journal=journal_path, clock=clock) as pool:
            # Sleeps in real time, while the timeout is on the fake clock.
            future = pool.options(timeout=1, key="slow").submit(time.sleep, 0.2)
            wait_until(lambda: pool.stats().running == 1)
            clock.advance(1)
            assert isinstance(future.exception(WAIT), TaskTimeout)

        with Journal(journal_path) as journal:
            entry = journal.get("slow")
        assert entry is not None
        assert entry.state == TaskState.FAILED
        assert "TaskTimeout" in (entry.error or "")


class TestTimeoutValidation:
    @pytest.mark.parametrize("value", [0, -1, math.nan, -math.inf])
    def test_option_rejects_out_of_range(self, value: float) -> None:
        with WorkerPool(1) as pool, pytest.raises(ValueError, match="timeout"):
            pool.options(timeout=value)

    @pytest.mark.parametrize("value", [True, "5", [5]])
    def test_option_rejects_wrong_type(self, value: object) -> None:
        with WorkerPool(1) as pool, pytest.raises(TypeError, match="timeout"):
            pool.options(timeout=value)  # type: ignore[arg-type]

    @pytest.mark.parametrize("value", [0, -1, math.nan])
    def test_pool_rejects_out_of_range(self, value: float) -> None:
        with pytest.raises(ValueError, match="task_timeout"):
            WorkerPool(1, task_timeout=value)

    def test_pool_rejects_wrong_type(self) -> None:
        with pytest.raises(TypeError, match="task_timeout"):
            WorkerPool(1, task_timeout="5")  # type: ignore[arg-type]


class TestRetryBudget:
    @pytest.mark.timeout(10)
    def test_budget_gives_up_instead_of_overrunning(self, clock: FakeClock) -> None:
        calls: list[float] = []

        def fail_after_a_second() -> None:
            calls.append(clock.monotonic())
            clock.advance(1)
            raise ValueError(f"attempt {len(calls)}")

        retry = Retry(10, backoff=FixedBackoff(4), budget=10)
        with WorkerPool(1, retry=retry, clock=clock) as pool:
            future = pool.submit(fail_after_a_second)
            wait_until(lambda: len(calls) == 1)
            clock.advance(4)

            # The second attempt ends at 6 s, and a third would start at 10 s,
            # the deadline: the pool gives up without waiting for it.
            with pytest.raises(ValueError, match="attempt 2"):
                future.result(WAIT)
        assert calls == [0.0, 5.0]

    @pytest.mark.timeout(10)
    def test_wait_for_token_counts_against_budget(self, clock: FakeClock) -> None:
        calls: list[float] = []

        def fail_after_half_a_second() -> None:
            calls.append(clock.monotonic())
            clock.advance(0.5)
            raise ValueError("failed")

        bucket = TokenBucket(1, capacity=1, clock=clock)
        retry = Retry(5, backoff=FixedBackoff(0), budget=0.8)
        with WorkerPool(1, rate_limit=bucket, retry=retry, clock=clock) as pool:
            future = pool.submit(fail_after_half_a_second)
            wait_until(lambda: len(calls) == 1)
            # The retry is due at once but its token only at 1 s, past 0.8 s.
            clock.advance(0.5)

            with pytest.raises(ValueError, match="failed"):
                future.result(WAIT)
        assert calls == [0.0]
        assert pool.stats().failed == 1


def fail_always() -> None:
    raise ValueError("down")


class TestHeldByBreaker:
    @pytest.mark.timeout(10)
    def test_cancelled_held_task_frees_its_slot(self, clock: FakeClock) -> None:
        breaker = CircuitBreaker(failure_threshold=1, reset_timeout=30, clock=clock)
        with WorkerPool(1, max_pending=1, breaker=breaker, clock=clock) as pool:
            pool.submit(fail_always).exception(WAIT)
            assert breaker.state is CircuitState.OPEN
            held = pool.submit(operator.add, 1, 1)
            wait_until(lambda: pool.stats().queued == 1 and clock.monotonic() == 0)
            # A worker takes it, and the open breaker sends it back to wait.
            threading.Event().wait(0.03)

            assert held.cancel()

            wait_until(lambda: pool.stats().cancelled == 1)
            assert pool.stats().queued == 0
            assert pool.join(WAIT)

    @pytest.mark.timeout(10)
    def test_budget_gives_up_before_breaker_wait(self, clock: FakeClock) -> None:
        breaker = CircuitBreaker(failure_threshold=1, reset_timeout=30, clock=clock)
        retry = Retry(50, backoff=FixedBackoff(0), budget=5)
        with WorkerPool(1, breaker=breaker, retry=retry, clock=clock) as pool:
            future = pool.submit(fail_always)

            # The retry would wait 30 s for the breaker, past the 5 s budget.
            with pytest.raises(ValueError, match="down"):
                future.result(WAIT)
        assert clock.monotonic() == 0
        assert pool.stats().retried == 1
