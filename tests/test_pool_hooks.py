"""Tests of the event hooks that WorkerPool calls as tasks run."""

from __future__ import annotations

import logging
import operator
import threading
import time
from typing import Any

import pytest

from syncq.pool import WorkerPool
from syncq.pool._hooks import PoolHooks, TaskEvent
from syncq.retry import FixedBackoff, Retry

WAIT = 5.0  # real seconds any event in these tests may take before the test fails


class Recorder(PoolHooks):
    """Hooks that record (event, task name, attempt) for every call."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str, int]] = []
        self.results: list[Any] = []
        self.delays: list[float] = []
        self._lock = threading.Lock()

    def _record(self, event: str, task: TaskEvent) -> None:
        with self._lock:
            self.events.append((event, task.name, task.attempt))

    def started(self, task: TaskEvent) -> None:
        self._record("started", task)

    def succeeded(self, task: TaskEvent, result: Any) -> None:
        self._record("succeeded", task)
        self.results.append(result)

    def failed(self, task: TaskEvent, exception: BaseException) -> None:
        self._record("failed", task)

    def retried(self, task: TaskEvent, exception: BaseException, delay: float) -> None:
        self._record("retried", task)
        self.delays.append(delay)

    def gave_up(self, task: TaskEvent, exception: BaseException) -> None:
        self._record("gave_up", task)


class Broken(PoolHooks):
    """Hooks whose started and succeeded methods raise."""

    def started(self, task: TaskEvent) -> None:
        raise RuntimeError("hook broken")

    def succeeded(self, task: TaskEvent, result: Any) -> None:
        raise RuntimeError("hook broken")


def flaky_factory(failures: int) -> Any:
    calls: list[int] = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) <= failures:
            raise OSError("flaky")
        return "ok"

    return flaky


def quick_retry(attempts: int) -> Retry:
    return Retry(attempts, backoff=FixedBackoff(0.0))


class TestPoolHooks:
    def test_hooks_see_start_and_success(self) -> None:
        recorder = Recorder()

        with WorkerPool(1, hooks=recorder) as pool:
            assert pool.submit(operator.add, 2, 3).result(WAIT) == 5

        assert recorder.events == [("started", "add", 1), ("succeeded", "add", 1)]
        assert recorder.results == [5]

    def test_hooks_see_retry_then_success(self) -> None:
        recorder = Recorder()
        flaky = flaky_factory(1)

        with WorkerPool(1, hooks=recorder, retry=quick_retry(3)) as pool:
            assert pool.submit(flaky).result(WAIT) == "ok"

        names = [event for event, _, _ in recorder.events]
        attempts = [attempt for _, _, attempt in recorder.events]
        assert names == ["started", "failed", "retried", "started", "succeeded"]
        assert attempts == [1, 1, 1, 2, 2]
        assert recorder.delays == [0.0]

    def test_hooks_see_give_up(self) -> None:
        recorder = Recorder()
        flaky = flaky_factory(10)

        with WorkerPool(1, hooks=recorder, retry=quick_retry(2)) as pool:
            assert isinstance(pool.submit(flaky).exception(WAIT), OSError)

        names = [event for event, _, _ in recorder.events]
        assert names == [
            "started",
            "failed",
            "retried",
            "started",
            "failed",
            "gave_up",
        ]

    def test_hooks_called_before_future_completes(self) -> None:
        done_at_hook: list[bool] = []

        class Check(PoolHooks):
            def succeeded(self, task: TaskEvent, result: Any) -> None:
                done_at_hook.append(task.future.done())

        with WorkerPool(1, hooks=Check()) as pool:
            pool.submit(operator.add, 1, 1).result(WAIT)

        assert done_at_hook == [False]

    def test_hooks_raising_is_logged_not_raised(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        caplog.set_level(logging.ERROR, logger="syncq.pool._hooks")

        with WorkerPool(1, hooks=[Broken(), Recorder()]) as pool:
            assert pool.submit(operator.add, 1, 1).result(WAIT) == 2

        messages = [record.getMessage() for record in caplog.records]
        assert len(messages) == 2
        assert all("started" in m or "succeeded" in m for m in messages)

    def test_hooks_raising_still_calls_later_hooks(self) -> None:
        recorder = Recorder()

        with WorkerPool(1, hooks=[Broken(), recorder]) as pool:
            pool.submit(operator.add, 1, 1).result(WAIT)

        assert len(recorder.events) == 2

    def test_add_hook_applies_to_later_tasks(self) -> None:
        recorder = Recorder()
        with WorkerPool(1) as pool:
            pool.submit(operator.add, 1, 1).result(WAIT)

            pool.add_hook(recorder)
            pool.submit(operator.add, 1, 1).result(WAIT)

        assert len(recorder.events) == 2

    def test_remove_hook_stops_calls(self) -> None:
        recorder = Recorder()
        with WorkerPool(1, hooks=recorder) as pool:
            pool.remove_hook(recorder)

            pool.submit(operator.add, 1, 1).result(WAIT)

        assert recorder.events == []

    def test_remove_unknown_hook_raises(self) -> None:
        with WorkerPool(1) as pool, pytest.raises(ValueError, match="hook"):
            pool.remove_hook(Recorder())

    def test_hooks_gave_up_on_cancelled_retry(self) -> None:
        recorder = Recorder()
        slow = Retry(2, backoff=FixedBackoff(60.0))
        pool = WorkerPool(1, hooks=recorder, retry=slow)
        future = pool.submit(flaky_factory(5))
        deadline = time.monotonic() + WAIT
        while pool.stats().retried == 0 and time.monotonic() < deadline:
            threading.Event().wait(0.001)

        pool.close(timeout=0)

        assert isinstance(future.exception(WAIT), OSError)
        assert recorder.events[-1][0] == "gave_up"

    @pytest.mark.parametrize("hooks", [object(), 5, [Recorder(), "no"]])
    def test_pool_rejects_bad_hooks(self, hooks: Any) -> None:
        with pytest.raises(TypeError, match="hook"):
            WorkerPool(1, hooks=hooks)

    def test_add_hook_rejects_bad_hook(self) -> None:
        with WorkerPool(1) as pool, pytest.raises(TypeError, match="hook"):
            pool.add_hook(object())  # type: ignore[arg-type]


class Exiting(PoolHooks):
    """A hook that calls sys.exit() when a task succeeds."""

    def succeeded(self, task: TaskEvent, result: Any) -> None:
        raise SystemExit(3)


class TestHooksThatExit:
    @pytest.mark.timeout(10)
    def test_hook_system_exit_keeps_worker(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        caplog.set_level(logging.ERROR, logger="syncq.pool")
        with WorkerPool(1, hooks=Exiting()) as pool:
            first = pool.submit(operator.add, 1, 1)
            second = pool.submit(operator.add, 2, 2)

            assert first.result(5) == 2
            assert second.result(5) == 4
        assert any("raised in succeeded" in r.getMessage() for r in caplog.records)

    @pytest.mark.timeout(10)
    def test_callback_system_exit_keeps_worker(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        gate = threading.Event()

        def exit_now(future: Any) -> None:
            raise SystemExit(3)

        caplog.set_level(logging.ERROR, logger="syncq.pool")
        with WorkerPool(1) as pool:
            first = pool.submit(gate.wait, 5)
            first.add_done_callback(exit_now)
            second = pool.submit(operator.add, 2, 2)
            gate.set()

            assert first.result(5) is True
            assert second.result(5) == 4
            assert pool.join(5)
        assert any("the worker goes on" in r.getMessage() for r in caplog.records)
