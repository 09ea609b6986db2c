"""The ``syncq run`` subcommand: it sets up the journal, the pool and the batch."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from typing import IO, Any, Callable, TextIO

from syncq._batch import Batch, Terminated, Unfinished, UserError
from syncq._batch_console import Console
from syncq._batch_reader import Reader
from syncq._shell import CommandFailed, allow_commands
from syncq.clock import Clock
from syncq.journal import Journal, TaskState
from syncq.limiters import TokenBucket
from syncq.pool import WorkerPool
from syncq.retry import ExponentialBackoff, Retry

RETRY_BACKOFF = ExponentialBackoff(0.5, 2.0, 30.0)
"""The wait between attempts of a failed command: 0.5 s, doubling, at most 30 s."""

# Commands read ahead of their reports, per worker. It bounds the futures and
# output held in memory, and keeps workers busy while some commands wait to retry.
_WINDOW_PER_WORKER = 4


def run(args: argparse.Namespace, clock: Clock | None = None) -> int:
    """Run the commands of ``args.file`` as ``syncq run`` and return the exit status."""
    # An earlier interrupted run in this process may have left commands rejected.
    allow_commands()
    stream, owned = _open_input(args.file)
    reader = Reader(stream, owned, window=_WINDOW_PER_WORKER * args.workers)
    journal = None
    restore_sigterm = _handle_sigterm()
    try:
        if args.journal is not None:
            journal = Journal(args.journal)
        return _run_batch(args, reader, journal, clock)
    finally:
        restore_sigterm()
        reader.close_unless_started()
        if journal is not None:
            journal.close()


def _run_batch(
    args: argparse.Namespace,
    reader: Reader,
    journal: Journal | None,
    clock: Clock | None,
) -> int:
    unfinished = Unfinished(set(), 0)
    if journal is not None:
        unfinished = _unfinished_keys(journal)
    limiter = None
    if args.rate is not None:
        burst = 1 if args.burst is None else args.burst
        limiter = TokenBucket(args.rate, capacity=burst)
    retry = None
    if args.retries > 0:
        retry = Retry(args.retries + 1, backoff=RETRY_BACKOFF, retry_on=CommandFailed)
    # The pool starts the tasks an earlier run left unfinished as it opens.
    pool = WorkerPool(
        args.workers,
        rate_limit=limiter,
        retry=retry,
        journal=journal,
        thread_name_prefix="syncq-run",
    )
    console = Console(
        sys.stdout,
        sys.stderr,
        progress=args.verbose == 0 and _is_terminal(sys.stderr),
        clock=clock,
    )
    batch = Batch(
        pool,
        journal,
        unfinished,
        source=args.file,
        timeout=args.timeout,
        console=console,
        clock=clock,
        halt=args.halt,
    )
    return batch.run(reader)


def _open_input(name: str) -> tuple[IO[Any], bool]:
    """Return the stream of commands, and whether the caller must close it."""
    if name == "-":
        return getattr(sys.stdin, "buffer", sys.stdin), False
    try:
        return open(name, "rb"), True
    except OSError as exc:
        raise UserError(f"cannot read {name}: {exc.strerror or exc}") from exc


def _unfinished_keys(journal: Journal) -> Unfinished:
    keys: set[str] = set()
    count = 0
    for state in (TaskState.PENDING, TaskState.RUNNING):
        for task in journal.tasks(state):
            count += 1
            if task.key is not None:
                keys.add(task.key)
    return Unfinished(keys, count)


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def _handle_sigterm() -> Callable[[], None]:
    """Make SIGTERM raise `Terminated`; return a function that undoes it."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    previous = signal.getsignal(signal.SIGTERM)

    def raise_terminated(signum: int, frame: object) -> None:
        raise Terminated(signum)

    signal.signal(signal.SIGTERM, raise_terminated)

    def restore() -> None:
        signal.signal(signal.SIGTERM, signal.SIG_DFL if previous is None else previous)

    return restore
