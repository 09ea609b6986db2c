"""Subprocess entry point for the signal tests in test_pool_signals.py.

The tests run `main` in a fresh interpreter through `command`, which imports this
module as ``signal_worker`` rather than ``__main__``, so that journaled tasks are
named ``signal_worker:hold``, a name the test process can resolve too.

The child starts a `WorkerPool`, submits tasks of `hold`, which wait until the
file ``release`` exists in the child's directory, and blocks its main thread
inside `close_on_signals` until a signal ends the block. It writes these lines to
stdout:

- ``log: LEVEL LOGGER MESSAGE`` for each log record of syncq at INFO and above;
- ``ready`` once as many tasks run as the pool has workers and the main thread
  waits in ``future.result()`` or, with ``--block submit``, in a submit that
  waits for a pending slot;
- ``cancelled INDEX`` when the future of task INDEX is cancelled;
- ``report: JSON`` last, also when a `SignalExit` leaves the child.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
import time
import traceback
from collections.abc import Sequence
from concurrent.futures import Future
from pathlib import Path
from types import FrameType
from typing import Any

from syncq.pool import WorkerPool
from syncq.pool._signals import SignalCloser, SignalExit, close_on_signals

# Real-time bounds, so that a child whose test went wrong ends by itself.
HOLD_LIMIT = 20.0
START_LIMIT = 10.0
POLL_INTERVAL = 0.002

_TESTS_DIR = Path(__file__).resolve().parent
_REPO_ROOT = _TESTS_DIR.parent


def command(*arguments: str) -> list[str]:
    """Return the argv that runs `main` with `arguments` in a new interpreter."""
    code = "import sys, signal_worker; sys.exit(signal_worker.main(sys.argv[1:]))"
    return [sys.executable, "-c", code, *arguments]


def environment() -> dict[str, str]:
    """Return the environment in which `command` can import this module and syncq."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(_TESTS_DIR), str(_REPO_ROOT)])
    return env


def task_key(index: int) -> str:
    """Return the journal key of task `index`."""
    return f"task-{index}"


def emit(line: str) -> None:
    """Write one whole line to stdout and flush it."""
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def hold(index: int, directory: str) -> int:
    """Wait until the file ``release`` exists in `directory`, then return `index`."""
    release = Path(directory) / "release"
    deadline = time.monotonic() + HOLD_LIMIT
    while not release.exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"task {index}: {release} missing after {HOLD_LIMIT} s")
        time.sleep(POLL_INTERVAL)
    return index


def previous_sigterm_handler(signum: int, frame: FrameType | None) -> None:
    """Stand in for a handler that the program had before the block."""
    emit(f"previous handler got {signal.Signals(signum).name}")


def _configure_logging() -> None:
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("log: %(levelname)s %(name)s %(message)s"))
    syncq_logger = logging.getLogger("syncq")
    syncq_logger.addHandler(handler)
    syncq_logger.setLevel(logging.INFO)


def _report_cancel(index: int, future: Future[Any]) -> None:
    if future.cancelled():
        emit(f"cancelled {index}")


def _submit(
    pool: WorkerPool, index: int, directory: str, journaled: bool
) -> Future[Any]:
    if journaled:
        future = pool.options(key=task_key(index)).submit(hold, index, directory)
    else:
        future = pool.submit(hold, index, directory)
    future.add_done_callback(lambda done: _report_cancel(index, done))
    return future


def _wait_until_running(pool: WorkerPool, count: int) -> None:
    deadline = time.monotonic() + START_LIMIT
    while pool.stats().running < count:
        if time.monotonic() > deadline:
            raise TimeoutError(f"fewer than {count} tasks started in {START_LIMIT} s")
        time.sleep(POLL_INTERVAL)


def _blocked_in(frame: FrameType | None, call: str) -> bool:
    """Return whether `frame` waits on a condition inside a call named `call`."""
    if frame is None or frame.f_code.co_name != "wait":
        return False
    while frame is not None:
        if frame.f_code.co_name == call:
            return True
        frame = frame.f_back
    return False


def _announce_when_blocked(call: str) -> None:
    """Write ``ready`` once the main thread waits inside `call`."""
    main = threading.get_ident()

    def watch() -> None:
        deadline = time.monotonic() + START_LIMIT
        while not _blocked_in(sys._current_frames().get(main), call):
            if time.monotonic() > deadline:
                emit(f"main thread not blocked in {call} after {START_LIMIT} s")
                return
            time.sleep(POLL_INTERVAL)
        emit("ready")

    threading.Thread(target=watch, name="signal-worker-watch", daemon=True).start()


def _state(future: Future[Any]) -> str:
    if future.cancelled():
        return "cancelled"
    if not future.done():
        return "pending"
    if future.exception() is not None:
        return "failed"
    return "done"


def _handler_names() -> dict[str, str]:
    names = {}
    for signum in (signal.SIGTERM, signal.SIGINT):
        handler = signal.getsignal(signum)
        names[signum.name] = getattr(handler, "__name__", repr(handler))
    return names


def _install_previous_handlers() -> None:
    signal.signal(signal.SIGTERM, previous_sigterm_handler)
    # Set even though it is Python's default, because a child started in the
    # background by a shell inherits SIGINT ignored.
    signal.signal(signal.SIGINT, signal.default_int_handler)


def _write_report(
    closer: SignalCloser, futures: list[Future[Any]], frames: list[str]
) -> None:
    received = closer.received
    report = {
        "received": None if received is None else received.name,
        "futures": [_state(future) for future in futures],
        "handlers": _handler_names(),
        "frames": frames,
    }
    emit("report: " + json.dumps(report))


def run(options: argparse.Namespace) -> int:
    """Run one pool until a signal closes it, then write the report."""
    _configure_logging()
    _install_previous_handlers()
    directory = options.directory
    journal = os.path.join(directory, "journal.db") if options.journal else None
    max_pending = 1 if options.block == "submit" else 0
    pool = WorkerPool(options.workers, max_pending=max_pending, journal=journal)
    closer = close_on_signals(pool, timeout=options.timeout)
    futures: list[Future[Any]] = []
    frames: list[str] = []

    try:
        with pool, closer:
            running = min(options.workers, options.tasks)
            for index in range(options.tasks):
                if index == running:
                    _wait_until_running(pool, running)
                futures.append(_submit(pool, index, directory, options.journal))

            _announce_when_blocked(options.block)
            if options.block == "submit":
                futures.append(_submit(pool, options.tasks, directory, options.journal))
            for future in futures:
                future.result()
    except SignalExit as exc:
        frames = [frame.name for frame in traceback.extract_tb(exc.__traceback__)]
        if not options.catch:
            raise
    finally:
        _write_report(closer, futures, frames)
    return 0


def main(argv: Sequence[str]) -> int:
    """Parse `argv`, run the pool and return the exit status."""
    parser = argparse.ArgumentParser(prog="signal_worker")
    parser.add_argument("directory")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--tasks", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=10.0)
    parser.add_argument("--journal", action="store_true")
    parser.add_argument("--block", choices=["result", "submit"], default="result")
    parser.add_argument("--catch", action="store_true")
    return run(parser.parse_args(argv))
