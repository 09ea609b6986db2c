"""The ``syncq`` command: run a file of shell commands on a worker pool.

``syncq run FILE`` runs each line of FILE as a shell command, a few at a time,
with an optional rate limit, retries, a timeout per command, a condition that
halts the batch early, and a journal that lets a rerun skip the commands already
done. ``syncq status JOURNAL`` shows what a journal contains, ``syncq retry``
queues its failed tasks again, and ``syncq purge`` deletes finished ones. Of all
syncq modules, only this one configures logging output. The batch runner itself
is in `syncq._batch` and the modules beside it.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import math
import os
import re
import signal
import sys
import threading
from typing import IO, Any, Callable, TextIO

from syncq import __version__
from syncq._batch import (
    Batch,
    Terminated,
    Unfinished,
    UserError,
    display_key,
    key_from_display,
)
from syncq._batch_console import Console
from syncq._batch_halt import HALT_MIN_FINISHED, HaltCondition, parse_halt
from syncq._batch_outcomes import EXIT_FAILED, EXIT_OK, EXIT_SIGNAL_BASE, pluralize
from syncq._batch_reader import Reader
from syncq._shell import (
    KILL_GRACE,
    CommandFailed,
    allow_commands,
    stop_commands,
)
from syncq.clock import Clock
from syncq.errors import JournalError
from syncq.journal import Journal, TaskState
from syncq.limiters import TokenBucket, parse_rate
from syncq.pool import WorkerPool
from syncq.retry import ExponentialBackoff, Retry

__all__ = ["DEFAULT_WORKERS", "RETRY_BACKOFF", "build_parser", "main"]

logger = logging.getLogger(__name__)

DEFAULT_WORKERS = 4
"""Commands that ``syncq run`` runs at once by default."""

RETRY_BACKOFF = ExponentialBackoff(0.5, 2.0, 30.0)
"""The wait between attempts of a failed command: 0.5 s, doubling, at most 30 s."""

# Commands read ahead of their reports, per worker. It bounds the futures and
# output held in memory, and keeps workers busy while some commands wait to retry.
_WINDOW_PER_WORKER = 4
# -- parsing the command line ---------------------------------------------------


def _whole_number(text: str, what: str, minimum: int) -> int:
    try:
        value = int(text)
    except ValueError:
        value = minimum - 1
    if value < minimum:
        raise argparse.ArgumentTypeError(
            f"invalid {what} {text!r}: expected a whole number >= {minimum}"
        )
    return value


def _worker_count(text: str) -> int:
    return _whole_number(text, "worker count", 1)


def _retry_count(text: str) -> int:
    return _whole_number(text, "retry count", 0)


def _burst_size(text: str) -> int:
    return _whole_number(text, "burst size", 1)


def _timeout_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (value > 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(
            f"invalid timeout {text!r}: expected a number of seconds > 0, "
            "such as 30 or 0.5"
        )
    return value


def _rate(text: str) -> str | float:
    spec: str | float = text
    with contextlib.suppress(ValueError):
        spec = float(text)
    try:
        parse_rate(spec)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"invalid rate {text!r}: expected a count per time unit, such as 10/s, "
            "100/min, 3600/h or 5/2s, or a positive number per second"
        ) from None
    return spec


def _halt_condition(text: str) -> HaltCondition | None:
    try:
        return parse_halt(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


_SECONDS_PER_UNIT = {"s": 1.0, "min": 60.0, "h": 3600.0, "d": 86400.0}
_DURATION_PATTERN = re.compile(r"(?P<number>[0-9]+(?:\.[0-9]+)?)(?P<unit>[a-z]+)")


def _duration(text: str) -> float:
    match = _DURATION_PATTERN.fullmatch(text)
    seconds = math.nan
    if match is not None and match["unit"] in _SECONDS_PER_UNIT:
        seconds = float(match["number"]) * _SECONDS_PER_UNIT[match["unit"]]
    if not (seconds > 0 and math.isfinite(seconds)):
        raise argparse.ArgumentTypeError(
            f"invalid duration {text!r}: expected a number above 0 and a unit "
            "(s, min, h or d), such as 90s, 30min, 12h or 7d"
        )
    return seconds


def _verbosity_parser(default: object) -> argparse.ArgumentParser:
    # Parents share their action objects with every parser built from them, so
    # each parser gets its own: -v may be given before or after the command, and
    # only the top-level parser sets the default.
    verbosity = argparse.ArgumentParser(add_help=False)
    verbosity.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=default,
        help="log what syncq does to stderr: -v for INFO, -vv for DEBUG "
        "(turns off the progress line)",
    )
    return verbosity


def build_parser() -> argparse.ArgumentParser:
    """Return the parser of the ``syncq`` command line."""
    parser = argparse.ArgumentParser(
        prog="syncq",
        description="Run batches of shell commands with limits, retries and a "
        "journal, and inspect journals.",
        parents=[_verbosity_parser(0)],
    )
    verbosity = _verbosity_parser(argparse.SUPPRESS)
    parser.add_argument("--version", action="version", version=f"syncq {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    _add_run_parser(commands, verbosity)
    status = commands.add_parser(
        "status",
        parents=[verbosity],
        help="show the tasks in a journal",
        description="Print how many tasks of a journal are pending, running, done "
        "and failed, and the error of each failed task.",
    )
    status.add_argument("journal", metavar="PATH", help="the journal file")
    _add_retry_parser(commands, verbosity)
    _add_purge_parser(commands, verbosity)
    return parser


def _add_run_parser(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
    verbosity: argparse.ArgumentParser,
) -> None:
    run = commands.add_parser(
        "run",
        parents=[verbosity],
        help="run each line of a file as a shell command",
        description="Run each line of FILE as a /bin/sh command. The output of "
        "each command is printed in one piece when it ends, and a summary goes "
        "to stderr. Exit status: 0 if every command succeeded, 1 if any failed, "
        "130 if interrupted by SIGINT, 143 by SIGTERM. After a halt, as in GNU "
        "parallel: for fail=1 the failing command's exit status (128 + N if "
        "signal N ended it), for fail=N the number of failed commands (at most "
        "101), for fail=P% the percentage of finished commands that failed, "
        "rounded up, and 0 for success=N or success=P%.",
    )
    run.set_defaults(command_parser=run)
    run.add_argument(
        "file",
        metavar="FILE",
        help="the commands, one per line, or - for standard input; blank lines "
        "and lines starting with # are skipped",
    )
    run.add_argument(
        "-j",
        "--workers",
        type=_worker_count,
        default=DEFAULT_WORKERS,
        metavar="N",
        help="run at most N commands at once (default: %(default)s)",
    )
    run.add_argument(
        "--rate",
        type=_rate,
        metavar="RATE",
        help="start at most RATE commands per time unit, such as 10/s, 100/min "
        "or 3600/h (units: s, min, h, d); a plain number is per second",
    )
    run.add_argument(
        "--burst",
        type=_burst_size,
        metavar="N",
        help="with --rate, let up to N commands start at once after a quiet "
        "period (default: 1, which spaces the starts evenly)",
    )
    run.add_argument(
        "--retries",
        type=_retry_count,
        default=0,
        metavar="N",
        help="run a failed command up to N more times, waiting 0.5 s, 1 s, 2 s "
        "and so on, at most 30 s, between attempts (default: 0)",
    )
    run.add_argument(
        "--timeout",
        type=_timeout_seconds,
        metavar="SECONDS",
        help="stop a command after SECONDS: its process group gets SIGTERM, "
        f"then SIGKILL {KILL_GRACE:g} s later, and the command counts as failed",
    )
    run.add_argument(
        "--journal",
        metavar="PATH",
        help="record every command, and the output of those done, in the "
        "SQLite file PATH; a rerun with the same journal skips the commands "
        "already done and runs again those that an interrupted run left "
        "unfinished",
    )
    run.add_argument(
        "--halt",
        type=_halt_condition,
        default=None,
        metavar="WHEN,WHY",
        help="stop the batch early: WHY is fail=N (once N commands failed), "
        "fail=P%% (once P percent of the commands finished so far failed, "
        f"judged from {HALT_MIN_FINISHED} finished commands on), success=N or "
        "success=P%%; WHEN is soon (start no more commands, wait for those "
        "running) or now (also stop those running: SIGTERM to each process "
        f"group, then SIGKILL {KILL_GRACE:g} s later); a command counts once "
        "its retries are over, and commands skipped as done do not count. "
        "never (the default) runs every command. With --journal, the commands "
        "that did not start stay pending, so a rerun runs them",
    )


def _add_retry_parser(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
    verbosity: argparse.ArgumentParser,
) -> None:
    retry = commands.add_parser(
        "retry",
        parents=[verbosity],
        help="queue the failed tasks of a journal to run again",
        description="Move the failed tasks of a journal, or those named with "
        "--key, back to pending, so that the next run with this journal runs "
        "them first. Rejected while another process uses the journal.",
    )
    retry.add_argument("journal", metavar="PATH", help="the journal file")
    retry.add_argument(
        "--key",
        dest="keys",
        action="append",
        metavar="KEY",
        help="move only the failed task with key KEY: a command line as given "
        "to syncq run, or as syncq status prints it, such as 'exit 4 (#2)' for "
        "the second line 'exit 4'; repeat for more keys",
    )


def _add_purge_parser(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
    verbosity: argparse.ArgumentParser,
) -> None:
    purge = commands.add_parser(
        "purge",
        parents=[verbosity],
        help="delete finished tasks from a journal",
        description="Delete tasks from a journal. A done task that is deleted "
        "runs again when a later run reads its command. The file keeps its "
        "size unless --vacuum is given.",
    )
    purge.add_argument("journal", metavar="PATH", help="the journal file")
    states = purge.add_mutually_exclusive_group(required=True)
    states.add_argument(
        "--done",
        dest="states",
        action="store_const",
        const=(TaskState.DONE,),
        help="delete the done tasks",
    )
    states.add_argument(
        "--failed",
        dest="states",
        action="store_const",
        const=(TaskState.FAILED,),
        help="delete the failed tasks",
    )
    states.add_argument(
        "--all",
        dest="states",
        action="store_const",
        const=(TaskState.PENDING, TaskState.RUNNING, TaskState.DONE, TaskState.FAILED),
        help="delete every task, pending and running ones too; rejected while "
        "another process uses the journal",
    )
    purge.add_argument(
        "--older-than",
        type=_duration,
        metavar="DURATION",
        help="delete only the tasks whose state last changed more than DURATION "
        "ago, such as 90s, 30min, 12h or 7d",
    )
    purge.add_argument(
        "--vacuum",
        action="store_true",
        help="then rewrite the file to give the space back (SQLite VACUUM: it "
        "copies the whole file, so it takes time and free disk space)",
    )


# -- the entry point ------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    """Run the ``syncq`` command and return its exit status.

    Args:
        argv: The arguments after the program name; ``sys.argv[1:]`` if None.

    Returns:
        0 on success; 1 if a command failed or an error was reported; 2 for a
        usage error; 130 when interrupted by SIGINT and 143 by SIGTERM.
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return _exit_status(exc.code)
    if args.command == "run" and args.burst is not None and args.rate is None:
        try:
            args.command_parser.error("--burst needs --rate")
        except SystemExit as exc:
            return _exit_status(exc.code)

    restore_logging = _configure_logging(args.verbose)
    try:
        if args.command == "run":
            return _run(args)
        if args.command == "retry":
            return _retry(args.journal, args.keys, sys.stdout)
        if args.command == "purge":
            return _purge(args, sys.stdout)
        return _status(args.journal, sys.stdout)
    except (UserError, JournalError) as exc:
        print(f"syncq: error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except (KeyboardInterrupt, Terminated) as exc:
        # Interrupted before the batch could handle it, while the pool was
        # opening, for instance. Commands stay rejected, so that a pool left
        # behind cannot start more of them while the interpreter exits.
        stop_commands()
        signum = signal.SIGTERM if isinstance(exc, Terminated) else signal.SIGINT
        return EXIT_SIGNAL_BASE + signum
    finally:
        restore_logging()


def _exit_status(code: object) -> int:
    if code is None:
        return EXIT_OK
    if isinstance(code, int):
        return code
    return EXIT_FAILED


def _configure_logging(verbosity: int) -> Callable[[], None]:
    """Send syncq's log records to stderr; return a function that undoes it."""
    if verbosity <= 0:
        return lambda: None
    syncq_logger = logging.getLogger("syncq")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("syncq: %(levelname)s: %(message)s"))
    previous_level = syncq_logger.level
    syncq_logger.addHandler(handler)
    syncq_logger.setLevel(logging.INFO if verbosity == 1 else logging.DEBUG)

    def restore() -> None:
        syncq_logger.removeHandler(handler)
        syncq_logger.setLevel(previous_level)

    return restore


# -- syncq status, retry and purge ----------------------------------------------


def _check_exists(path: str) -> None:
    # Journal() would create a missing file, and an empty journal would hide a
    # mistyped path.
    if not os.path.exists(path):
        raise UserError(f"journal {path} not found")


def _status(path: str, out: TextIO) -> int:
    _check_exists(path)
    with Journal(path, read_only=True) as journal:
        counts = journal.counts()
        failed = list(journal.tasks(TaskState.FAILED))
    for state, count in counts.items():
        out.write(f"{state + ':':<9}{count}\n")
    if failed:
        out.write("failed tasks:\n")
    for task in failed:
        name = f"task {task.id}" if task.key is None else display_key(task.key)
        out.write(f"  {name}: {task.error}\n")
    return EXIT_OK


def _retry(path: str, keys: list[str] | None, out: TextIO) -> int:
    _check_exists(path)
    with Journal(path) as journal:
        if keys is not None:
            keys = [_stored_key(journal, key) for key in keys]
        moved = journal.requeue_failed(keys)
    if not moved:
        out.write(f"no failed tasks in {path}\n")
        return EXIT_OK
    out.write(
        f"moved {pluralize(moved, 'failed task')} back to pending; the next "
        f"syncq run with --journal {path} runs them\n"
    )
    return EXIT_OK


def _stored_key(journal: Journal, key: str) -> str:
    """Return the key that `key`, as given or as ``syncq status`` shows it, names."""
    if journal.get(key) is not None:
        return key
    stored = key_from_display(key)
    if stored is not None and journal.get(stored) is not None:
        return stored
    # Not in the journal: requeue_failed reports it by the name given.
    return key


def _purge(args: argparse.Namespace, out: TextIO) -> int:
    path = args.journal
    _check_exists(path)
    with Journal(path) as journal:
        deleted = journal.purge(args.states, older_than=args.older_than)
        size_before = _file_size(path)
        if args.vacuum:
            journal.vacuum()
        size_after = _file_size(path)
    noun = "task" if len(args.states) > 1 else f"{args.states[0]} task"
    out.write(f"deleted {pluralize(deleted, noun)} from {path}\n")
    if args.vacuum:
        out.write(f"vacuumed {path}: {size_before} bytes before, {size_after} after\n")
    return EXIT_OK


def _file_size(path: str) -> int:
    """Return the size in bytes of a journal and its write-ahead log."""
    size = 0
    for name in (path, path + "-wal"):
        with contextlib.suppress(FileNotFoundError):
            size += os.path.getsize(name)
    return size


# -- syncq run ------------------------------------------------------------------


def _run(args: argparse.Namespace, clock: Clock | None = None) -> int:
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
