"""Subprocess entry points for the journal and crash tests.

The tests run this module in a fresh interpreter through `command`, which imports
it as ``crash_worker`` rather than ``__main__``. Journaled functions are then
named ``crash_worker:...``, a name the next process can import again.

Commands:
    batch JOURNAL LOG: submit the keyed batch to a journaled pool and wait for the
        results. Print ``submitted KEY`` as each submit returns, then ``finished``.
    stall JOURNAL LEASE: open a journal with a short lease, leave one task pending
        and one running, print their ids as JSON, then wait for a line on stdin.
        After it, try to start the pending task, add the task ``late``, close the
        journal and print the outcome as JSON.
    open JOURNAL: open and close a journal, then print ``opened`` or the
        JournalError raised.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from syncq.errors import JournalError
from syncq.journal import Journal, encode_arguments, function_name
from syncq.pool import WorkerPool

WORKERS = 4
TASK_COUNT = 40
# Long enough that a kill lands while tasks are in flight, short enough that a
# whole batch of 40 on 4 workers takes about 0.2 s.
TASK_SECONDS = 0.02

_TESTS_DIR = Path(__file__).resolve().parent
_REPO_ROOT = _TESTS_DIR.parent


def command(*arguments: str) -> list[str]:
    """Return the argv that runs `main` with `arguments` in a new interpreter."""
    code = "import sys, crash_worker; sys.exit(crash_worker.main(sys.argv[1:]))"
    return [sys.executable, "-c", code, *arguments]


def environment() -> dict[str, str]:
    """Return the environment in which `command` can import this module and syncq."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(_TESTS_DIR), str(_REPO_ROOT)])
    return env


def batch_keys() -> list[str]:
    """Return the keys of the batch, in submission order."""
    return [f"task-{index:02d}" for index in range(TASK_COUNT)]


def record_run(key: str, log_path: str) -> str:
    """Append `key` to the log at `log_path`, then keep the worker busy a moment.

    Each line goes out in one `os.write` on a file opened with ``O_APPEND``, so
    concurrent workers append whole lines, and no buffered line is lost to a kill.
    """
    fd = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, f"{key}\n".encode())
    finally:
        os.close(fd)
    time.sleep(TASK_SECONDS)
    return key


def run_batch(journal_path: str, log_path: str) -> None:
    """Submit every key of the batch to a journaled pool and wait for the results."""
    with WorkerPool(WORKERS, journal=journal_path) as pool:
        futures = []
        for key in batch_keys():
            futures.append(pool.options(key=key).submit(record_run, key, log_path))
            print(f"submitted {key}", flush=True)
        for future in futures:
            future.result()
    print("finished", flush=True)


def stall(journal_path: str, lease_duration: float) -> None:
    """Hold a run with a pending and a running task until stdin sends a line."""
    name = function_name(record_run)
    args_json, kwargs_json = encode_arguments(name, ["unused", os.devnull], {})
    journal = Journal(journal_path, lease_duration=lease_duration)
    pending, _ = journal.add(name, args_json, kwargs_json, key="pending")
    running, _ = journal.add(name, args_json, kwargs_json, key="running")
    journal.start(running.id)
    ready = {"run_id": journal.run_id, "pending": pending.id, "running": running.id}
    print(json.dumps(ready), flush=True)

    sys.stdin.readline()

    started = journal.start(pending.id)
    late, _ = journal.add(name, args_json, kwargs_json, key="late")
    journal.close()
    print(json.dumps({"started": started, "late": late.id}), flush=True)


def try_open(journal_path: str) -> None:
    """Open and close the journal, printing ``opened`` or the error raised."""
    try:
        Journal(journal_path).close()
    except JournalError as exc:
        print(f"JournalError: {exc}", flush=True)
    else:
        print("opened", flush=True)


def try_read(journal_path: str) -> None:
    """Open the journal read-only, printing its counts or the error raised."""
    try:
        with Journal(journal_path, read_only=True) as journal:
            print(f"counts: {journal.counts()}", flush=True)
    except JournalError as exc:
        print(f"JournalError: {exc}", flush=True)


def main(argv: Sequence[str]) -> int:
    """Run the command named in `argv` and return the exit status."""
    parser = argparse.ArgumentParser(prog="crash_worker")
    commands = parser.add_subparsers(dest="command", required=True)
    batch = commands.add_parser("batch")
    batch.add_argument("journal")
    batch.add_argument("log")
    stalled = commands.add_parser("stall")
    stalled.add_argument("journal")
    stalled.add_argument("lease", type=float)
    opener = commands.add_parser("open")
    opener.add_argument("journal")
    reader = commands.add_parser("read")
    reader.add_argument("journal")
    options = parser.parse_args(argv)

    if options.command == "batch":
        run_batch(options.journal, options.log)
    elif options.command == "stall":
        stall(options.journal, options.lease)
    elif options.command == "read":
        try_read(options.journal)
    else:
        try_open(options.journal)
    return 0
