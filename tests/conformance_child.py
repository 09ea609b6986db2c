"""Subprocess entry points for the interpreter-exit tests of the pool conformance.

The tests run this module in a fresh interpreter through `command`, once with
``ThreadPoolExecutor`` and once with ``WorkerPool``, and compare what each run
prints. Every task prints one line with ``flush=True``, so the output shows which
tasks ran, and in what order with the main thread's own lines.

Commands:
    exit KIND: submit `TASK_COUNT` tasks to a one-thread executor, print
        ``main exits with N done``, then fall off the end of the script without
        calling shutdown. An atexit handler, registered after syncq is imported,
        prints ``atexit handler ran``.
    interrupt KIND STYLE: start a task that blocks, queue `TASK_COUNT` tasks
        behind it, print ``ready`` and wait for the last result, until SIGINT
        arrives. STYLE ``with`` waits inside a ``with`` block of the executor;
        ``bare`` waits without one and never shuts the executor down.
"""

from __future__ import annotations

import argparse
import atexit
import os
import signal
import sys
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from pathlib import Path
from types import FrameType
from typing import Any, Callable

from syncq.pool import WorkerPool

EXECUTORS: dict[str, Callable[[int], Executor]] = {
    "thread": ThreadPoolExecutor,
    "pool": WorkerPool,
}
TASK_COUNT = 4
# Each task of the exit command takes this long, so that the main thread reaches
# the end of the script while the tasks still wait in the queue.
TASK_SECONDS = 0.05
# After SIGINT, the blocked task ends this many seconds later, unless the
# executor cancels the queued tasks first, which releases it at once. The delay
# lets an executor that does not cancel them finish the blocked task and exit.
RELEASE_DELAY = 0.5
# Maximum seconds a blocked task waits, so that a broken run ends, not hangs.
BLOCK_LIMIT = 10.0

_TESTS_DIR = Path(__file__).resolve().parent
_REPO_ROOT = _TESTS_DIR.parent


def command(*arguments: str) -> list[str]:
    """Return the argv that runs `main` with `arguments` in a new interpreter."""
    code = (
        "import sys, conformance_child; sys.exit(conformance_child.main(sys.argv[1:]))"
    )
    return [sys.executable, "-c", code, *arguments]


def environment() -> dict[str, str]:
    """Return the environment in which `command` imports this module and syncq."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(_TESTS_DIR), str(_REPO_ROOT)])
    return env


def print_run(index: int) -> None:
    """Sleep for `TASK_SECONDS`, then print that task `index` ran."""
    time.sleep(TASK_SECONDS)
    print(f"ran {index}", flush=True)


def exit_without_shutdown(kind: str) -> None:
    """Leave queued tasks in an executor that is never shut down."""
    executor = EXECUTORS[kind](1)
    atexit.register(print, "atexit handler ran", flush=True)
    futures = [executor.submit(print_run, index) for index in range(TASK_COUNT)]
    done = sum(future.done() for future in futures)
    print(f"main exits with {done} done", flush=True)


def interrupt(kind: str, style: str) -> None:
    """Wait for queued tasks until SIGINT raises KeyboardInterrupt in this thread."""
    release = threading.Event()

    def on_sigint(signum: int, frame: FrameType | None) -> None:
        timer = threading.Timer(RELEASE_DELAY, release.set)
        timer.daemon = True
        timer.start()
        signal.default_int_handler(signum, frame)

    signal.signal(signal.SIGINT, on_sigint)
    executor = EXECUTORS[kind](1)
    if style == "with":
        with executor:
            _wait_for_queued(executor, release)
    else:
        _wait_for_queued(executor, release)


def _wait_for_queued(executor: Executor, release: threading.Event) -> None:
    started = threading.Event()

    def blocked() -> None:
        started.set()
        release.wait(BLOCK_LIMIT)
        print("ran blocked", flush=True)

    executor.submit(blocked)
    futures = [
        executor.submit(print, f"ran {index}", flush=True)
        for index in range(TASK_COUNT)
    ]
    # Cancelling the queued tasks releases the blocked one at once.
    futures[-1].add_done_callback(_release_on_cancel(release))
    started.wait(BLOCK_LIMIT)
    print("ready", flush=True)
    futures[-1].result()


def _release_on_cancel(release: threading.Event) -> Callable[[Future[Any]], None]:
    def callback(future: Future[Any]) -> None:
        if future.cancelled():
            release.set()

    return callback


def main(argv: Sequence[str]) -> int:
    """Run the command named in `argv` and return the exit status."""
    parser = argparse.ArgumentParser(prog="conformance_child")
    commands = parser.add_subparsers(dest="command", required=True)
    exiting = commands.add_parser("exit")
    exiting.add_argument("kind", choices=sorted(EXECUTORS))
    interrupted = commands.add_parser("interrupt")
    interrupted.add_argument("kind", choices=sorted(EXECUTORS))
    interrupted.add_argument("style", choices=["with", "bare"])
    options = parser.parse_args(argv)

    if options.command == "exit":
        exit_without_shutdown(options.kind)
    else:
        interrupt(options.kind, options.style)
    return 0
