"""Tests of close_on_signals: a signal closes a pool gracefully.

The subprocess tests start ``signal_worker`` in a child process, wait until its
tasks run, send signals to the child's pid with `os.kill`, and then create the
file that lets the child's tasks end. They use real processes and real time:
each child lives for about half a second. The in-process tests raise SIGUSR1 in
the test process itself, with tasks that wait on events.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import pickle
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import IO, Any, Callable

import pytest
import signal_worker

from syncq.journal import Journal, TaskState
from syncq.pool import WorkerPool
from syncq.pool._signals import (
    DEFAULT_SIGNALS,
    SignalCloser,
    SignalExit,
    close_on_signals,
)

pytestmark = pytest.mark.skipif(
    sys.platform == "win32", reason="os.kill cannot send SIGTERM or SIGUSR1 there"
)

# Real-time bounds for one child or one wait, far above what each step takes.
CHILD_TIMEOUT = 15.0
EVENT_TIMEOUT = 5.0
TEST_SIGNAL = signal.SIGUSR1 if sys.platform != "win32" else signal.SIGTERM


# -- subprocess tests ----------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class ChildOutcome:
    """What a child left behind once a signal had closed its pool."""

    status: int
    """The child's exit status."""
    report: dict[str, Any]
    """The child's final report: received, futures, handlers, frames."""
    lines: list[str]
    """Every line the child wrote to stdout."""
    directory: Path

    def logs(self, fragment: str) -> list[str]:
        """Return the log lines that contain `fragment`."""
        return [
            line for line in self.lines if line.startswith("log: ") and fragment in line
        ]


class Child:
    """A running signal_worker process and the lines it writes to stdout."""

    def __init__(self, directory: Path, *arguments: str) -> None:
        self.directory = directory
        self._stderr: IO[str] = (directory / "stderr.txt").open("w")
        self.process = subprocess.Popen(
            signal_worker.command(str(directory), *arguments),
            cwd=directory,
            env=signal_worker.environment(),
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
        )
        self.lines: list[str] = []
        # None marks the end of stdout.
        self._unread: queue.Queue[str | None] = queue.Queue()
        self._reader = threading.Thread(
            target=self._read, name="signal-test-reader", daemon=True
        )
        self._reader.start()

    def _read(self) -> None:
        stdout = self.process.stdout
        if stdout is not None:
            for line in stdout:
                self._unread.put(line.rstrip("\n"))
        self._unread.put(None)

    def errors(self) -> str:
        """Return what the child wrote to stderr so far."""
        self._stderr.flush()
        return (self.directory / "stderr.txt").read_text()

    def wait_for(self, fragment: str) -> str:
        """Return the next line that contains `fragment`, reading up to it."""
        deadline = time.monotonic() + CHILD_TIMEOUT
        while True:
            try:
                line = self._unread.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                pytest.fail(f"no line with {fragment!r} in {CHILD_TIMEOUT} s")
            if line is None:
                pytest.fail(
                    f"the child exited before writing {fragment!r}: {self.errors()}"
                )
            self.lines.append(line)
            if fragment in line:
                return line

    def send(self, signum: signal.Signals) -> None:
        """Send `signum` to the child's pid."""
        os.kill(self.process.pid, signum)

    def release(self) -> None:
        """Let every task of the child end."""
        (self.directory / "release").touch()

    def finish(self) -> ChildOutcome:
        """Wait for the child to exit and return what it left behind."""
        try:
            status = self.process.wait(timeout=CHILD_TIMEOUT)
        except subprocess.TimeoutExpired:
            pytest.fail(f"the child was still running after {CHILD_TIMEOUT} s")
        self._reader.join(timeout=EVENT_TIMEOUT)
        assert not self._reader.is_alive()
        while True:
            line = self._unread.get_nowait()
            if line is None:
                break
            self.lines.append(line)
        reports = [line for line in self.lines if line.startswith("report: ")]
        assert len(reports) == 1, self.errors()
        report = json.loads(reports[0].removeprefix("report: "))
        return ChildOutcome(status, report, self.lines, self.directory)

    def stop(self) -> None:
        """Kill the child if it still runs, and close its stderr file."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=CHILD_TIMEOUT)
        if self.process.stdout is not None:
            self.process.stdout.close()
        self._stderr.close()


@pytest.fixture(scope="class")
def start_child(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Callable[..., Child]]:
    """Return a function that starts a child in a directory of its own."""
    children: list[Child] = []

    def start(*arguments: str) -> Child:
        child = Child(tmp_path_factory.mktemp("signals"), *arguments)
        children.append(child)
        return child

    yield start
    for child in children:
        child.stop()


@pytest.mark.timeout(30)
class TestSignalDrain:
    """SIGTERM with a long timeout: the queued tasks drain and all succeed."""

    @pytest.fixture(scope="class")
    @staticmethod
    def outcome(start_child: Callable[..., Child]) -> ChildOutcome:
        child = start_child("--workers", "2", "--tasks", "4", "--timeout", "10")
        child.wait_for("ready")

        child.send(signal.SIGTERM)
        child.wait_for("drains for up to 10 s")
        child.release()

        return child.finish()

    def test_drain_exits_with_status_143(self, outcome: ChildOutcome) -> None:
        assert outcome.status == 128 + signal.SIGTERM

    def test_drain_reports_received_signal(self, outcome: ChildOutcome) -> None:
        assert outcome.report["received"] == "SIGTERM"

    def test_drain_finishes_running_and_queued_tasks(
        self, outcome: ChildOutcome
    ) -> None:
        assert outcome.report["futures"] == ["done"] * 4

    def test_drain_interrupts_future_result(self, outcome: ChildOutcome) -> None:
        assert "result" in outcome.report["frames"]

    def test_drain_restores_previous_sigterm_handler(
        self, outcome: ChildOutcome
    ) -> None:
        handlers = outcome.report["handlers"]

        assert handlers["SIGTERM"] == "previous_sigterm_handler"

    def test_drain_restores_default_sigint_handler(self, outcome: ChildOutcome) -> None:
        handlers = outcome.report["handlers"]

        assert handlers["SIGINT"] == "default_int_handler"

    def test_drain_does_not_call_previous_handler(self, outcome: ChildOutcome) -> None:
        assert not any("previous handler got" in line for line in outcome.lines)

    def test_drain_logs_signal_and_close(self, outcome: ChildOutcome) -> None:
        closed = outcome.logs("closed after SIGTERM; 0 tasks were cancelled")

        assert len(outcome.logs("received SIGTERM")) == 1
        assert len(closed) == 1


@pytest.mark.timeout(30)
class TestSignalInterrupt:
    """SIGINT, with the same drain."""

    @pytest.fixture(scope="class")
    @staticmethod
    def outcome(start_child: Callable[..., Child]) -> ChildOutcome:
        child = start_child("--tasks", "2")
        child.wait_for("ready")

        child.send(signal.SIGINT)
        child.wait_for("drains for up to 10 s")
        child.release()

        return child.finish()

    def test_interrupt_exits_with_status_130(self, outcome: ChildOutcome) -> None:
        assert outcome.status == 128 + signal.SIGINT

    def test_interrupt_finishes_every_task(self, outcome: ChildOutcome) -> None:
        assert outcome.report["futures"] == ["done", "done"]

    def test_interrupt_restores_default_sigint_handler(
        self, outcome: ChildOutcome
    ) -> None:
        assert outcome.report["handlers"]["SIGINT"] == "default_int_handler"


@pytest.mark.timeout(30)
class TestSignalTimeout:
    """SIGTERM with a short timeout: queued tasks are cancelled, running ones end."""

    @pytest.fixture(scope="class")
    @staticmethod
    def outcome(start_child: Callable[..., Child]) -> ChildOutcome:
        child = start_child("--tasks", "3", "--timeout", "0.2")
        child.wait_for("ready")

        child.send(signal.SIGTERM)
        child.wait_for("cancelled 2")
        child.release()

        return child.finish()

    def test_timeout_exits_with_status_143(self, outcome: ChildOutcome) -> None:
        assert outcome.status == 128 + signal.SIGTERM

    def test_timeout_finishes_running_task(self, outcome: ChildOutcome) -> None:
        assert outcome.report["futures"][0] == "done"

    def test_timeout_cancels_queued_tasks(self, outcome: ChildOutcome) -> None:
        assert outcome.report["futures"][1:] == ["cancelled", "cancelled"]

    def test_timeout_logs_cancelled_count(self, outcome: ChildOutcome) -> None:
        closed = outcome.logs("closed after SIGTERM; 2 tasks were cancelled")

        assert len(closed) == 1


@pytest.mark.timeout(30)
class TestSecondSignal:
    """A second signal cancels at once despite a long timeout; a third is ignored."""

    @pytest.fixture(scope="class")
    @staticmethod
    def outcome(start_child: Callable[..., Child]) -> ChildOutcome:
        child = start_child("--tasks", "3", "--timeout", "60")
        child.wait_for("ready")

        child.send(signal.SIGTERM)
        child.wait_for("drains for up to 60 s")
        child.send(signal.SIGTERM)
        child.wait_for("cancelled 2")
        child.send(signal.SIGINT)
        child.wait_for("received SIGINT; ignored")
        child.release()

        return child.finish()

    def test_second_signal_keeps_first_exit_status(self, outcome: ChildOutcome) -> None:
        assert outcome.status == 128 + signal.SIGTERM

    def test_second_signal_finishes_running_task(self, outcome: ChildOutcome) -> None:
        assert outcome.report["futures"][0] == "done"

    def test_second_signal_cancels_queued_tasks(self, outcome: ChildOutcome) -> None:
        assert outcome.report["futures"][1:] == ["cancelled", "cancelled"]

    def test_second_signal_is_logged(self, outcome: ChildOutcome) -> None:
        assert len(outcome.logs("received SIGTERM during the drain")) == 1

    def test_second_signal_restores_handlers(self, outcome: ChildOutcome) -> None:
        handlers = outcome.report["handlers"]

        assert handlers["SIGTERM"] == "previous_sigterm_handler"
        assert handlers["SIGINT"] == "default_int_handler"


@pytest.mark.timeout(30)
class TestSignalBlockedSubmit:
    """A signal interrupts a submit that waits for a pending slot."""

    @pytest.fixture(scope="class")
    @staticmethod
    def outcome(start_child: Callable[..., Child]) -> ChildOutcome:
        child = start_child("--block", "submit", "--timeout", "0")
        child.wait_for("ready")

        child.send(signal.SIGTERM)
        child.wait_for("cancelled 1")
        child.release()

        return child.finish()

    def test_blocked_submit_exits_with_status_143(self, outcome: ChildOutcome) -> None:
        assert outcome.status == 128 + signal.SIGTERM

    def test_blocked_submit_is_interrupted(self, outcome: ChildOutcome) -> None:
        assert "submit" in outcome.report["frames"]

    def test_blocked_submit_adds_no_task(self, outcome: ChildOutcome) -> None:
        assert outcome.report["futures"] == ["done", "cancelled"]


@pytest.mark.timeout(30)
class TestSignalJournal:
    """With a journal, the tasks cancelled by a signal stay pending."""

    @pytest.fixture(scope="class")
    @staticmethod
    def outcome(start_child: Callable[..., Child]) -> ChildOutcome:
        child = start_child("--journal", "--tasks", "3", "--timeout", "0")
        child.wait_for("ready")

        child.send(signal.SIGTERM)
        child.wait_for("cancelled 2")
        child.release()

        return child.finish()

    @pytest.fixture(scope="class")
    @staticmethod
    def states(outcome: ChildOutcome) -> dict[str, str]:
        with Journal(outcome.directory / "journal.db") as journal:
            return {task.key: task.state for task in journal.tasks() if task.key}

    def test_journal_exits_with_status_143(self, outcome: ChildOutcome) -> None:
        assert outcome.status == 128 + signal.SIGTERM

    def test_journal_records_running_task_done(self, states: dict[str, str]) -> None:
        assert states[signal_worker.task_key(0)] == TaskState.DONE

    def test_journal_keeps_cancelled_tasks_pending(
        self, states: dict[str, str]
    ) -> None:
        cancelled = [states[signal_worker.task_key(index)] for index in (1, 2)]

        assert cancelled == [TaskState.PENDING, TaskState.PENDING]


@pytest.mark.timeout(30)
class TestSignalCaught:
    """A caller that catches SignalExit decides the exit status itself."""

    @pytest.fixture(scope="class")
    @staticmethod
    def outcome(start_child: Callable[..., Child]) -> ChildOutcome:
        child = start_child("--catch", "--tasks", "2", "--timeout", "0")
        child.wait_for("ready")

        child.send(signal.SIGTERM)
        child.wait_for("cancelled 1")
        child.release()

        return child.finish()

    def test_caught_exit_status_is_zero(self, outcome: ChildOutcome) -> None:
        assert outcome.status == 0

    def test_caught_exit_still_closes_pool(self, outcome: ChildOutcome) -> None:
        assert outcome.report["futures"] == ["done", "cancelled"]


# -- in-process tests ----------------------------------------------------------


def _hold(started: threading.Event, release: threading.Event) -> str:
    started.set()
    if not release.wait(EVENT_TIMEOUT):
        raise TimeoutError(f"release not set within {EVENT_TIMEOUT} s")
    return "done"


def _no_handler(signum: int, frame: object) -> None:
    pytest.fail(f"the previous handler was called for signal {signum}")


@dataclasses.dataclass
class Batch:
    """One running task that waits for `release`, and tasks queued behind it."""

    pool: WorkerPool
    release: threading.Event
    running: Future[str]
    queued: list[Future[str]]

    def release_when_cancelled(self) -> None:
        """Let the running task end once the last queued task is cancelled."""

        def release(future: Future[str]) -> None:
            if future.cancelled():
                self.release.set()

        self.queued[-1].add_done_callback(release)


@pytest.fixture
def pool() -> Iterator[WorkerPool]:
    """Return a pool with one worker, shut down after the test."""
    pool = WorkerPool(1, thread_name_prefix="signal-test")
    yield pool
    pool.shutdown(wait=True, cancel_futures=True)


@pytest.fixture
def batch(pool: WorkerPool) -> Iterator[Batch]:
    """Return a running task and two tasks queued behind it."""
    started = threading.Event()
    release = threading.Event()
    running = pool.submit(_hold, started, release)
    assert started.wait(EVENT_TIMEOUT)
    queued = [pool.submit(_hold, threading.Event(), release) for _ in range(2)]
    yield Batch(pool, release, running, queued)
    release.set()


@pytest.fixture
def previous_handler() -> Iterator[Any]:
    """Install a handler for TEST_SIGNAL that fails the test if it is called."""
    before = signal.signal(TEST_SIGNAL, _no_handler)
    yield _no_handler
    signal.signal(TEST_SIGNAL, signal.SIG_DFL if before is None else before)


def _close_on_signal(batch: Batch, *, timeout: float | None = 0) -> SignalExit:
    """Raise TEST_SIGNAL inside a block for the batch's pool; return the exit."""
    batch.release_when_cancelled()
    closer = close_on_signals(batch.pool, timeout=timeout, signals=[TEST_SIGNAL])
    with pytest.raises(SignalExit) as raised, closer:
        signal.raise_signal(TEST_SIGNAL)
    return raised.value


class TestCloseOnSignalsArguments:
    def test_close_on_signals_rejects_non_pool(self) -> None:
        with pytest.raises(TypeError, match="pool must be a WorkerPool"):
            close_on_signals(object())  # type: ignore[arg-type]

    @pytest.mark.parametrize("timeout", [-1, -0.5, float("nan")])
    def test_close_on_signals_rejects_bad_timeout(
        self, pool: WorkerPool, timeout: float
    ) -> None:
        with pytest.raises(ValueError, match="timeout"):
            close_on_signals(pool, timeout=timeout)

    @pytest.mark.parametrize("timeout", [True, "5", [5]])
    def test_close_on_signals_rejects_timeout_type(
        self, pool: WorkerPool, timeout: object
    ) -> None:
        with pytest.raises(TypeError, match="timeout"):
            close_on_signals(pool, timeout=timeout)  # type: ignore[arg-type]

    @pytest.mark.parametrize("timeout", [0, 0.5, None, float("inf")])
    def test_close_on_signals_accepts_timeout(
        self, pool: WorkerPool, timeout: float | None
    ) -> None:
        closer = close_on_signals(pool, timeout=timeout)

        assert isinstance(closer, SignalCloser)

    @pytest.mark.parametrize(
        "signals", [signal.SIGTERM, "SIGTERM", None, [True], ["SIGTERM"], [15.0]]
    )
    def test_close_on_signals_rejects_signals_type(
        self, pool: WorkerPool, signals: object
    ) -> None:
        with pytest.raises(TypeError, match="signal"):
            close_on_signals(pool, signals=signals)  # type: ignore[arg-type]

    @pytest.mark.parametrize(
        "signals", [[], [0], [-1], [100_000], [signal.SIGKILL], [signal.SIGSTOP]]
    )
    def test_close_on_signals_rejects_bad_signals(
        self, pool: WorkerPool, signals: list[int]
    ) -> None:
        with pytest.raises(ValueError, match="signal"):
            close_on_signals(pool, signals=signals)

    def test_close_on_signals_default_signals(self) -> None:
        assert DEFAULT_SIGNALS == (signal.SIGTERM, signal.SIGINT)


class TestSignalExit:
    def test_signal_exit_code_is_128_plus_signal(self) -> None:
        assert SignalExit(signal.SIGTERM).code == 143

    def test_signal_exit_keeps_signal(self) -> None:
        assert SignalExit(2).signum is signal.SIGINT

    def test_signal_exit_is_not_an_exception(self) -> None:
        assert not isinstance(SignalExit(signal.SIGTERM), Exception)

    def test_signal_exit_is_a_system_exit(self) -> None:
        assert isinstance(SignalExit(signal.SIGTERM), SystemExit)

    def test_signal_exit_message_names_signal(self) -> None:
        message = str(SignalExit(signal.SIGTERM))

        assert message == "received SIGTERM, exit status 143"

    def test_signal_exit_survives_pickling(self) -> None:
        copy = pickle.loads(pickle.dumps(SignalExit(signal.SIGTERM)))

        assert copy.signum is signal.SIGTERM
        assert copy.code == 143


@pytest.mark.timeout(10)
class TestCloseOnSignals:
    def test_close_on_signals_rejects_other_threads(self, pool: WorkerPool) -> None:
        closer = close_on_signals(pool, signals=[TEST_SIGNAL])
        errors: list[BaseException] = []
        barrier = threading.Barrier(2)

        def enter() -> None:
            barrier.wait(EVENT_TIMEOUT)
            try:
                with closer:
                    pass
            except RuntimeError as exc:
                errors.append(exc)

        thread = threading.Thread(target=enter, name="signal-test-enter")
        thread.start()
        barrier.wait(EVENT_TIMEOUT)
        thread.join(EVENT_TIMEOUT)

        assert not thread.is_alive()
        assert len(errors) == 1
        assert "main thread" in str(errors[0])

    def test_close_on_signals_rejects_second_enter(self, pool: WorkerPool) -> None:
        closer = close_on_signals(pool, signals=[TEST_SIGNAL])
        with closer:
            pass

        with pytest.raises(RuntimeError, match="entered already"), closer:
            pass

    def test_close_on_signals_installs_handler(
        self, pool: WorkerPool, previous_handler: Any
    ) -> None:
        with close_on_signals(pool, signals=[TEST_SIGNAL]):
            handler = signal.getsignal(TEST_SIGNAL)

        assert handler is not previous_handler

    def test_close_on_signals_restores_after_normal_exit(
        self, pool: WorkerPool, previous_handler: Any
    ) -> None:
        with close_on_signals(pool, signals=[TEST_SIGNAL]):
            pass

        assert signal.getsignal(TEST_SIGNAL) is previous_handler

    def test_close_on_signals_restores_after_error(
        self, pool: WorkerPool, previous_handler: Any
    ) -> None:
        with pytest.raises(KeyError), close_on_signals(pool, signals=[TEST_SIGNAL]):
            raise KeyError("boom")

        assert signal.getsignal(TEST_SIGNAL) is previous_handler

    def test_close_on_signals_restores_after_signal(
        self, batch: Batch, previous_handler: Any
    ) -> None:
        _close_on_signal(batch)

        assert signal.getsignal(TEST_SIGNAL) is previous_handler

    def test_close_on_signals_leaves_pool_open_without_signal(
        self, pool: WorkerPool
    ) -> None:
        with close_on_signals(pool, signals=[TEST_SIGNAL]):
            pass

        assert pool.submit(str, 1).result(EVENT_TIMEOUT) == "1"

    def test_close_on_signals_raises_signal_exit(self, batch: Batch) -> None:
        exit_ = _close_on_signal(batch)

        assert exit_.signum is TEST_SIGNAL
        assert exit_.code == 128 + TEST_SIGNAL

    def test_close_on_signals_records_received_signal(self, batch: Batch) -> None:
        batch.release_when_cancelled()
        closer = close_on_signals(batch.pool, timeout=0, signals=[TEST_SIGNAL])

        with pytest.raises(SignalExit), closer:
            signal.raise_signal(TEST_SIGNAL)

        assert closer.received is TEST_SIGNAL

    def test_close_on_signals_stops_pool_taking_tasks(self, batch: Batch) -> None:
        _close_on_signal(batch)

        with pytest.raises(RuntimeError, match="shutdown"):
            batch.pool.submit(str, 1)

    def test_close_on_signals_finishes_running_task(self, batch: Batch) -> None:
        _close_on_signal(batch)

        assert batch.running.done()
        assert batch.running.result() == "done"

    def test_close_on_signals_cancels_queued_after_timeout(self, batch: Batch) -> None:
        _close_on_signal(batch, timeout=0)

        assert [future.cancelled() for future in batch.queued] == [True, True]

    def test_close_on_signals_drains_queue_before_timeout(self, batch: Batch) -> None:
        batch.release.set()

        _close_on_signal(batch, timeout=EVENT_TIMEOUT)

        assert [future.result() for future in batch.queued] == ["done", "done"]

    def test_close_on_signals_caught_exit_closes_pool(self, batch: Batch) -> None:
        batch.release_when_cancelled()
        closer = close_on_signals(batch.pool, timeout=0, signals=[TEST_SIGNAL])

        with closer, contextlib.suppress(SignalExit):
            signal.raise_signal(TEST_SIGNAL)

        assert [future.cancelled() for future in batch.queued] == [True, True]

    def test_close_on_signals_nested_exit_closes_outer_pool(self, batch: Batch) -> None:
        outer_pool = WorkerPool(1, thread_name_prefix="signal-test-outer")
        batch.release_when_cancelled()
        outer = close_on_signals(outer_pool, timeout=0, signals=[TEST_SIGNAL])
        inner = close_on_signals(batch.pool, timeout=0, signals=[TEST_SIGNAL])

        with pytest.raises(SignalExit), outer, inner:
            signal.raise_signal(TEST_SIGNAL)

        with pytest.raises(RuntimeError, match="shutdown"):
            outer_pool.submit(str, 1)

    def test_close_on_signals_logs_signal(
        self, batch: Batch, caplog: pytest.LogCaptureFixture
    ) -> None:
        caplog.set_level(logging.INFO, logger="syncq.pool._signals")

        _close_on_signal(batch, timeout=0)

        messages = [record.getMessage() for record in caplog.records]
        assert any("received SIGUSR1" in message for message in messages)
        assert any("2 tasks were cancelled" in message for message in messages)

    def test_close_on_signals_second_signal_cancels_at_once(
        self, batch: Batch, caplog: pytest.LogCaptureFixture
    ) -> None:
        caplog.set_level(logging.INFO, logger="syncq.pool._signals")
        draining = threading.Event()
        watcher = _EventOnMessage("stops taking tasks", draining)
        logging.getLogger("syncq.pool._signals").addHandler(watcher)
        barrier = threading.Barrier(2)

        def send_second_signal() -> None:
            barrier.wait(EVENT_TIMEOUT)
            if draining.wait(EVENT_TIMEOUT):
                os.kill(os.getpid(), TEST_SIGNAL)

        sender = threading.Thread(target=send_second_signal, name="signal-test-send")
        sender.start()
        barrier.wait(EVENT_TIMEOUT)
        try:
            _close_on_signal(batch, timeout=None)
        finally:
            logging.getLogger("syncq.pool._signals").removeHandler(watcher)
            sender.join(EVENT_TIMEOUT)

        assert not sender.is_alive()
        assert [future.cancelled() for future in batch.queued] == [True, True]
        messages = [record.getMessage() for record in caplog.records]
        assert any("during the drain" in message for message in messages)


class _EventOnMessage(logging.Handler):
    """Set an event when a record whose message contains `fragment` is logged."""

    def __init__(self, fragment: str, event: threading.Event) -> None:
        super().__init__()
        self._fragment = fragment
        self._event = event

    def emit(self, record: logging.LogRecord) -> None:
        if self._fragment in record.getMessage():
            self._event.set()
