"""Tests of WorkerPool's pause, resume and join, and of its behaviour at exit."""

from __future__ import annotations

import operator
import signal
import subprocess
import sys
import textwrap
import threading
from pathlib import Path
from typing import Any

import pytest

from syncq.pool import WorkerPool
from syncq.testing import FakeClock

WAIT = 5.0  # real seconds any event in these tests may take before the test fails
ROOT = Path(__file__).resolve().parent.parent


def settle() -> None:
    """Give worker threads a few milliseconds, in real time, to do the wrong thing."""
    threading.Event().wait(0.03)


class Gate:
    """A task that signals its start and blocks until the test opens the gate."""

    def __init__(self) -> None:
        self.started = threading.Event()
        self.opened = threading.Event()

    def __call__(self) -> str:
        self.started.set()
        if not self.opened.wait(WAIT):
            raise RuntimeError("the test never opened the gate")
        return "done"


class TestPause:
    @pytest.mark.timeout(10)
    def test_pause_stops_tasks_from_starting(self) -> None:
        ran: list[int] = []
        with WorkerPool(2) as pool:
            pool.pause()
            futures = [pool.submit(ran.append, i) for i in range(5)]
            settle()

            assert ran == []
            assert not any(future.done() for future in futures)
            pool.resume()
            for future in futures:
                future.result(WAIT)
        assert sorted(ran) == [0, 1, 2, 3, 4]

    @pytest.mark.timeout(10)
    def test_running_task_finishes_while_paused(self) -> None:
        gate = Gate()
        with WorkerPool(1) as pool:
            future = pool.submit(gate)
            assert gate.started.wait(WAIT)
            pool.pause()
            gate.opened.set()

            assert future.result(WAIT) == "done"

    @pytest.mark.timeout(10)
    def test_order_kept_across_pause(self) -> None:
        ran: list[int] = []
        gate = Gate()
        with WorkerPool(1) as pool:
            pool.submit(gate)
            assert gate.started.wait(WAIT)
            pool.pause()
            futures = [pool.submit(ran.append, i) for i in range(10)]
            gate.opened.set()
            settle()
            assert ran == []

            pool.resume()
            for future in futures:
                future.result(WAIT)
        assert ran == list(range(10))

    @pytest.mark.timeout(10)
    def test_priority_kept_across_pause(self) -> None:
        ran: list[int] = []
        with WorkerPool(1) as pool:
            pool.pause()
            futures = [
                pool.options(priority=priority).submit(ran.append, priority)
                for priority in (3, 1, 2, -1, 0)
            ]
            settle()
            pool.resume()
            for future in futures:
                future.result(WAIT)
        assert ran == [-1, 0, 1, 2, 3]

    @pytest.mark.timeout(10)
    def test_delayed_task_waits_for_resume(self, clock: FakeClock) -> None:
        with WorkerPool(1, clock=clock) as pool:
            pool.pause()
            future = pool.options(delay=5).submit(operator.add, 2, 3)
            clock.advance(5)
            settle()

            assert not future.done()
            pool.resume()
            assert future.result(WAIT) == 5

    @pytest.mark.timeout(10)
    def test_shutdown_resumes_and_drains(self) -> None:
        pool = WorkerPool(2)
        pool.pause()
        futures = [pool.submit(operator.mul, i, 2) for i in range(6)]

        pool.shutdown(wait=True)
        assert [future.result(0) for future in futures] == [0, 2, 4, 6, 8, 10]
        assert not pool.paused

    @pytest.mark.timeout(10)
    def test_close_drains_paused_pool(self) -> None:
        pool = WorkerPool(1)
        pool.pause()
        future = pool.submit(operator.add, 1, 1)
        pool.close(timeout=5)

        # close() resumes the pool, so the task drains instead of being cancelled.
        assert future.result(0) == 2

    @pytest.mark.timeout(10)
    def test_paused_property(self) -> None:
        seen = []
        with WorkerPool(1) as pool:
            seen.append(pool.paused)
            pool.pause()
            pool.pause()
            seen.append(pool.paused)
            pool.resume()
            pool.resume()
            seen.append(pool.paused)
        assert seen == [False, True, False]

    def test_pause_after_shutdown_raises(self) -> None:
        pool = WorkerPool(1)
        pool.shutdown()
        with pytest.raises(RuntimeError, match="shut down"):
            pool.pause()

    @pytest.mark.timeout(20)
    def test_many_pauses_lose_no_task(self) -> None:
        count = 2000
        done = threading.Event()
        finished: list[int] = []
        with WorkerPool(4) as pool:
            futures = [pool.submit(finished.append, i) for i in range(count)]

            def toggle() -> None:
                while not done.is_set():
                    pool.pause()
                    pool.resume()

            toggler = threading.Thread(target=toggle)
            toggler.start()
            try:
                for future in futures:
                    future.result(WAIT)
            finally:
                done.set()
                toggler.join(WAIT)
        assert not toggler.is_alive()
        assert sorted(finished) == list(range(count))


class TestJoin:
    @pytest.mark.timeout(10)
    def test_join_waits_for_every_task(self) -> None:
        ran: list[int] = []
        with WorkerPool(3) as pool:
            for i in range(50):
                pool.submit(ran.append, i)

            assert pool.join(WAIT)
            assert len(ran) == 50
            # The pool is still open.
            assert pool.submit(operator.add, 1, 1).result(WAIT) == 2

    @pytest.mark.timeout(10)
    def test_join_times_out_while_a_task_runs(self) -> None:
        gate = Gate()
        with WorkerPool(1) as pool:
            pool.submit(gate)
            assert gate.started.wait(WAIT)

            assert not pool.join(timeout=0.05)
            gate.opened.set()
            assert pool.join(WAIT)

    @pytest.mark.timeout(10)
    def test_join_waits_for_delayed_task(self, clock: FakeClock) -> None:
        with WorkerPool(1, clock=clock) as pool:
            future = pool.options(delay=10).submit(operator.add, 2, 3)
            assert not pool.join(timeout=0.05)
            clock.advance(10)

            assert pool.join(WAIT)
            assert future.result(0) == 5

    @pytest.mark.timeout(10)
    def test_join_on_paused_pool_times_out(self) -> None:
        with WorkerPool(1) as pool:
            pool.pause()
            pool.submit(operator.add, 2, 3)

            assert not pool.join(timeout=0.05)
            pool.resume()
            assert pool.join(WAIT)

    @pytest.mark.timeout(10)
    def test_join_of_idle_pool_returns_at_once(self) -> None:
        with WorkerPool(1) as pool:
            assert pool.join(0)

    @pytest.mark.timeout(10)
    def test_join_from_a_task_raises(self) -> None:
        with WorkerPool(1) as pool:
            future = pool.submit(pool.join)

            with pytest.raises(RuntimeError, match="own tasks"):
                future.result(WAIT)

    @pytest.mark.timeout(10)
    def test_join_after_shutdown(self) -> None:
        pool = WorkerPool(1)
        pool.submit(operator.add, 1, 1)
        pool.shutdown()
        assert pool.join(0)

    @pytest.mark.parametrize(
        ("timeout", "error"), [(-1, ValueError), ("1", TypeError), (True, TypeError)]
    )
    def test_join_rejects_bad_timeout(self, timeout: Any, error: type) -> None:
        with WorkerPool(1) as pool, pytest.raises(error, match="timeout"):
            pool.join(timeout)


def run_script(
    code: str, tmp_path: Path, *, interrupt_after: tuple[str, ...] = ()
) -> tuple[int, str]:
    """Run `code` in a child interpreter; return its exit status and output.

    For each text in `interrupt_after`, wait until a line of the child's output
    (stdout and stderr together) contains it, then send the child SIGINT.
    """
    script = tmp_path / "script.py"
    script.write_text(textwrap.dedent(code))
    lines: list[str] = []
    with subprocess.Popen(
        [sys.executable, str(script), str(tmp_path)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    ) as process:
        try:
            assert process.stdout is not None
            for marker in interrupt_after:
                while not lines or marker not in lines[-1]:
                    line = process.stdout.readline()
                    assert line, f"the child ended before printing {marker!r}"
                    lines.append(line)
                process.send_signal(signal.SIGINT)
            rest, _ = process.communicate(timeout=WAIT)
            lines.append(rest)
        finally:
            if process.poll() is None:
                process.kill()
                process.communicate(timeout=WAIT)
    return process.returncode, "".join(lines)


# The child's tasks: each of the first two records its start, then blocks.
BLOCKING_SCRIPT = """
    import logging, signal, sys, threading
    from pathlib import Path
    from syncq import WorkerPool

    logging.basicConfig(level=logging.WARNING)
    out = Path(sys.argv[1])
    release = threading.Event()
    started = threading.Barrier(3)

    def block(i):
        (out / f"started-{i}").write_text("")
        started.wait()
        release.wait(BLOCK_SECONDS)
        (out / f"finished-{i}").write_text("")

    ON_SIGINT
    pool = WorkerPool(2)
    futures = [pool.submit(block, i) for i in range(10)]
    started.wait()
    print("running", flush=True)
    futures[-1].result()
"""


def blocking_script(block_seconds: float, on_sigint: str) -> str:
    """Return the blocking script with its wait and its SIGINT handler filled in."""
    script = BLOCKING_SCRIPT.replace("BLOCK_SECONDS", repr(block_seconds))
    return script.replace("ON_SIGINT", on_sigint)


class TestInterpreterExit:
    @pytest.mark.timeout(20)
    def test_queued_work_finishes_at_exit(self, tmp_path: Path) -> None:
        status, output = run_script(
            """
            import sys, time
            from pathlib import Path
            from syncq import WorkerPool

            out = Path(sys.argv[1])
            def write(i):
                time.sleep(0.01)
                (out / f"done-{i}").write_text("")

            pool = WorkerPool(2)
            for i in range(10):
                pool.submit(write, i)
            """,
            tmp_path,
        )

        assert status == 0, output
        assert len(list(tmp_path.glob("done-*"))) == 10

    @pytest.mark.timeout(20)
    def test_ctrl_c_cancels_queue_and_waits(self, tmp_path: Path) -> None:
        # The running tasks end 0.3 s after the interrupt, and the exit waits.
        on_sigint = (
            "signal.signal(signal.SIGINT, lambda signum, frame: "
            "(threading.Timer(0.3, release.set).start(), "
            "signal.default_int_handler(signum, frame)))"
        )
        status, output = run_script(
            blocking_script(WAIT, on_sigint),
            tmp_path,
            interrupt_after=("running",),
        )

        assert status == -signal.SIGINT, output
        assert "KeyboardInterrupt" in output
        assert "cancelled 8 waiting tasks" in output
        assert len(list(tmp_path.glob("started-*"))) == 2
        assert len(list(tmp_path.glob("finished-*"))) == 2

    @pytest.mark.timeout(20)
    def test_second_ctrl_c_stops_waiting(self, tmp_path: Path) -> None:
        # The running tasks would block far longer than the test waits.
        status, output = run_script(
            blocking_script(60, ""),
            tmp_path,
            interrupt_after=("running", "press Ctrl-C again"),
        )

        assert status == -signal.SIGINT, output
        assert "not waiting for running tasks" in output
        assert len(list(tmp_path.glob("started-*"))) == 2
        assert list(tmp_path.glob("finished-*")) == []

    @pytest.mark.timeout(20)
    def test_second_ctrl_c_in_with_block_exits(self, tmp_path: Path) -> None:
        # The first Ctrl-C cancels the queue and waits for the running task; the
        # second stops that wait, and the exit must not wait once more.
        status, output = run_script(
            """
            import logging, signal, threading
            from syncq import WorkerPool

            logging.basicConfig(level=logging.WARNING)

            def on_sigint(signum, frame):
                # Tell the test once __exit__ has had time to start waiting.
                timer = threading.Timer(0.2, print, ("interrupted",), {"flush": True})
                timer.start()
                signal.default_int_handler(signum, frame)

            signal.signal(signal.SIGINT, on_sigint)
            forever = threading.Event()
            started = threading.Barrier(2)
            def block():
                started.wait()
                forever.wait(60)

            with WorkerPool(1) as pool:
                pool.submit(block)
                started.wait()
                print("running", flush=True)
                forever.wait(60)
            """,
            tmp_path,
            interrupt_after=("running", "interrupted"),
        )

        assert status == -signal.SIGINT, output
        assert "does not wait for 1 running tasks" in output
