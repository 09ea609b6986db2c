"""The ``syncq`` command: run a file of shell commands on a worker pool.

``syncq run FILE`` runs each line of FILE as a shell command, a few at a time,
with an optional rate limit, retries, a timeout per command, and a journal that
lets a rerun skip the commands already done. ``syncq status JOURNAL`` shows what
a journal contains. Of all syncq modules, only this one configures logging output.

In a journal, a command's key is its line as written. A line that repeats an
earlier one gets a newline, ``#`` and its occurrence number appended, as in
``"echo hi\\n#2"``. No line contains a newline, so two keys never collide.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import logging
import math
import os
import queue
import signal
import sys
import threading
from collections.abc import Iterator
from concurrent.futures import Future
from typing import IO, Any, Callable, TextIO, Union

from syncq import __version__
from syncq._shell import (
    KILL_GRACE,
    CommandFailed,
    allow_commands,
    run_command,
    stop_commands,
)
from syncq.clock import SYSTEM_CLOCK, Clock
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

_EXIT_OK = 0
_EXIT_FAILED = 1
_EXIT_SIGNAL_BASE = 128

# Commands read ahead of their reports, per worker. It bounds the futures and
# output held in memory, and keeps workers busy while some commands wait to retry.
_WINDOW_PER_WORKER = 4
# Seconds between redraws of the progress line while nothing finishes.
_PROGRESS_INTERVAL = 0.2
# The shortest interval between two redraws.
_PROGRESS_MIN_INTERVAL = 0.1
_ERASE_LINE = "\r\x1b[K"


class _UserError(Exception):
    """An error to report as a one-line message, without a traceback."""


class _Terminated(BaseException):
    """Raised in the main thread when the process receives SIGTERM."""


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
        "130 if interrupted by SIGINT, 143 by SIGTERM.",
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
    # TODO: no --halt option yet to stop a batch after some failures, as GNU
    # parallel has. Every command runs, which is also parallel's default.


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
        return _status(args.journal, sys.stdout)
    except (_UserError, JournalError) as exc:
        print(f"syncq: error: {exc}", file=sys.stderr)
        return _EXIT_FAILED
    except (KeyboardInterrupt, _Terminated) as exc:
        # Interrupted before the batch could handle it, while the pool was
        # opening, for instance. Commands stay rejected, so that a pool left
        # behind cannot start more of them while the interpreter exits.
        stop_commands()
        signum = signal.SIGTERM if isinstance(exc, _Terminated) else signal.SIGINT
        return _EXIT_SIGNAL_BASE + signum
    finally:
        restore_logging()


def _exit_status(code: object) -> int:
    if code is None:
        return _EXIT_OK
    if isinstance(code, int):
        return code
    return _EXIT_FAILED


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


# -- syncq status ---------------------------------------------------------------


def _status(path: str, out: TextIO) -> int:
    # Journal() would create a missing file, and an empty journal would hide a
    # mistyped path.
    if not os.path.exists(path):
        raise _UserError(f"journal {path} not found")
    with Journal(path, read_only=True) as journal:
        counts = journal.counts()
        failed = list(journal.tasks(TaskState.FAILED))
    for state, count in counts.items():
        out.write(f"{state + ':':<9}{count}\n")
    if failed:
        out.write("failed tasks:\n")
    for task in failed:
        name = f"task {task.id}" if task.key is None else _display_key(task.key)
        out.write(f"  {name}: {task.error}\n")
    return _EXIT_OK


def _journal_key(command: str, occurrence: int) -> str:
    """Return the key of the `occurrence`-th line (from 1) that reads `command`."""
    if occurrence == 1:
        return command
    return f"{command}\n#{occurrence}"


def _display_key(key: str) -> str:
    command, newline, suffix = key.partition("\n")
    if not newline:
        return command
    return f"{command} ({suffix})"


# -- syncq run ------------------------------------------------------------------


def _run(args: argparse.Namespace, clock: Clock | None = None) -> int:
    # An earlier interrupted run in this process may have left commands rejected.
    allow_commands()
    stream, owned = _open_input(args.file)
    reader = _Reader(stream, owned, window=_WINDOW_PER_WORKER * args.workers)
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
    reader: _Reader,
    journal: Journal | None,
    clock: Clock | None,
) -> int:
    unfinished = _Unfinished(set(), 0)
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
    console = _Console(
        sys.stdout,
        sys.stderr,
        progress=args.verbose == 0 and _is_terminal(sys.stderr),
        clock=clock,
    )
    batch = _Batch(
        pool,
        journal,
        unfinished,
        source=args.file,
        timeout=args.timeout,
        console=console,
        clock=clock,
    )
    return batch.run(reader)


def _open_input(name: str) -> tuple[IO[Any], bool]:
    """Return the stream of commands, and whether the caller must close it."""
    if name == "-":
        return getattr(sys.stdin, "buffer", sys.stdin), False
    try:
        return open(name, "rb"), True
    except OSError as exc:
        raise _UserError(f"cannot read {name}: {exc.strerror or exc}") from exc


def _unfinished_keys(journal: Journal) -> _Unfinished:
    keys: set[str] = set()
    count = 0
    for state in (TaskState.PENDING, TaskState.RUNNING):
        for task in journal.tasks(state):
            count += 1
            if task.key is not None:
                keys.add(task.key)
    return _Unfinished(keys, count)


@dataclasses.dataclass(frozen=True)
class _Unfinished:
    """The tasks that a journal held as pending or running before the pool opened."""

    keys: set[str]
    count: int

    def __contains__(self, key: object) -> bool:
        return key in self.keys


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def _handle_sigterm() -> Callable[[], None]:
    """Make SIGTERM raise `_Terminated`; return a function that undoes it."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    previous = signal.getsignal(signal.SIGTERM)

    def raise_terminated(signum: int, frame: object) -> None:
        raise _Terminated(signum)

    signal.signal(signal.SIGTERM, raise_terminated)

    def restore() -> None:
        signal.signal(signal.SIGTERM, signal.SIG_DFL if previous is None else previous)

    return restore


@contextlib.contextmanager
def _ignoring_interrupts() -> Iterator[None]:
    """Ignore SIGINT and SIGTERM inside the block, so they cannot break a cleanup."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {
        signum: signal.signal(signum, signal.SIG_IGN)
        for signum in (signal.SIGINT, signal.SIGTERM)
    }
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, signal.SIG_DFL if handler is None else handler)


@dataclasses.dataclass(frozen=True)
class _Line:
    """A command read from the input."""

    number: int
    command: str


@dataclasses.dataclass(frozen=True)
class _EndOfInput:
    """The input is exhausted, or reading it failed with `error`."""

    error: OSError | None = None


_Event = Union[_Line, _EndOfInput, Future[Any]]


class _Reader:
    """A thread that reads commands into the event queue, a bounded window ahead.

    Each command takes one credit from the window; `release` gives it back once
    the command has been reported.
    """

    def __init__(self, stream: IO[Any], owned: bool, *, window: int) -> None:
        self._stream = stream
        self._owned = owned
        self._credits = threading.Semaphore(window)
        self._window = window
        self._stopped = threading.Event()
        self._events: queue.Queue[_Event] | None = None
        self._started = False
        # A daemon, because it may block reading a terminal or a pipe forever.
        self._thread = threading.Thread(
            target=self._read, name="syncq-run-reader", daemon=True
        )

    def start(self, events: queue.Queue[_Event]) -> None:
        """Start reading; lines and the end of input go to `events`."""
        self._events = events
        self._started = True
        self._thread.start()

    def close_unless_started(self) -> None:
        """Close a stream of ours that the thread never took over."""
        if not self._started and self._owned:
            self._stream.close()

    def release(self) -> None:
        """Return one credit to the window."""
        self._credits.release()

    def stop(self) -> None:
        """Ask the thread to stop before its next command."""
        self._stopped.set()
        self._credits.release(self._window)

    def _read(self) -> None:
        events = self._events
        if events is None:
            return
        try:
            self._read_lines(events)
        except OSError as exc:
            events.put(_EndOfInput(exc))
        else:
            events.put(_EndOfInput())
        finally:
            if self._owned:
                self._stream.close()

    def _read_lines(self, events: queue.Queue[_Event]) -> None:
        for number, raw in enumerate(self._stream, 1):
            command = _decode_line(raw)
            if not command.strip() or command.lstrip().startswith("#"):
                continue
            self._credits.acquire()
            if self._stopped.is_set():
                return
            events.put(_Line(number, command))


def _decode_line(raw: bytes | str) -> str:
    # os.fsdecode is what subprocess reverses with os.fsencode, so the shell
    # receives the bytes of the file unchanged, even if they are not UTF-8.
    line = os.fsdecode(raw) if isinstance(raw, bytes) else raw
    if line.endswith("\n"):
        line = line[:-1]
    if line.endswith("\r"):
        line = line[:-1]
    return line


class _Console:
    """The output side of a run: command output, the progress line, messages."""

    def __init__(
        self, stdout: TextIO, stderr: TextIO, *, progress: bool, clock: Clock | None
    ) -> None:
        self._stdout = stdout
        self._stderr = stderr
        self._progress = progress
        self._clock = clock if clock is not None else SYSTEM_CLOCK
        self._progress_shown = False
        self._last_draw = -math.inf
        self._stdout_closed = False

    @property
    def progress(self) -> bool:
        """Whether the progress line is drawn."""
        return self._progress

    def output(self, stdout: str, stderr: str) -> None:
        """Write one command's output, standard output first, each in one piece.

        Raises:
            BrokenPipeError: Our standard output was closed by its reader.
        """
        if not stdout and not stderr:
            return
        self.clear_progress()
        if stdout and not self._stdout_closed:
            try:
                _write_exact(self._stdout, stdout)
            except BrokenPipeError:
                self._stdout_closed = True
                _discard_stdout()
                raise
        if stderr:
            _write_exact(self._stderr, stderr)

    def message(self, text: str) -> None:
        """Write one line to stderr."""
        self.clear_progress()
        self._stderr.write(text + "\n")
        self._stderr.flush()

    def draw_progress(self, text: str) -> None:
        """Replace the progress line with `text`, at most every 0.1 s."""
        if not self._progress:
            return
        now = self._clock.monotonic()
        if now - self._last_draw < _PROGRESS_MIN_INTERVAL:
            return
        self._last_draw = now
        self._stderr.write(_ERASE_LINE + text)
        self._stderr.flush()
        self._progress_shown = True

    def clear_progress(self) -> None:
        """Erase the progress line, if it is shown."""
        if self._progress_shown:
            self._stderr.write(_ERASE_LINE)
            self._stderr.flush()
            self._progress_shown = False
            self._last_draw = -math.inf


def _write_exact(stream: TextIO, text: str) -> None:
    """Write `text` as the bytes the command produced, through the binary buffer."""
    stream.flush()
    buffer = getattr(stream, "buffer", None)
    if buffer is None:
        stream.write(text)
        stream.flush()
        return
    buffer.write(text.encode("utf-8", "surrogateescape"))
    buffer.flush()


def _discard_stdout() -> None:
    # Point file descriptor 1 at /dev/null, so the interpreter's final flush
    # does not fail again on the closed pipe.
    with contextlib.suppress(OSError, ValueError, AttributeError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)


@dataclasses.dataclass
class _Tally:
    """Counts of the outcomes of a run's commands so far."""

    read: int = 0
    """Commands read from the input."""
    covered: int = 0
    """Commands read that a task resumed from the journal runs."""
    resumed: int = 0
    """Tasks an earlier run left unfinished, which this run runs again."""
    succeeded: int = 0
    failed: int = 0
    stopped: int = 0
    """Commands that were running when the run was interrupted."""
    skipped: int = 0
    """Commands read that an earlier run had done."""
    failures: list[tuple[str, str]] = dataclasses.field(default_factory=list)
    """The reason and the command line of each failure, in order."""

    @property
    def total(self) -> int:
        """The commands of the run: those read, and resumed tasks not read."""
        return self.read - self.covered + self.resumed

    @property
    def finished(self) -> int:
        """The commands that succeeded, failed, were stopped or were skipped."""
        return self.succeeded + self.failed + self.stopped + self.skipped


class _Batch:
    """One ``syncq run``: feeds commands to the pool and reports each outcome.

    Only the thread that calls `run` writes output. Futures report back through
    one event queue, which the reader thread feeds with commands as well.
    """

    def __init__(
        self,
        pool: WorkerPool,
        journal: Journal | None,
        unfinished: _Unfinished,
        *,
        source: str,
        timeout: float | None,
        console: _Console,
        clock: Clock | None,
    ) -> None:
        self._pool = pool
        self._journal = journal
        self._unfinished = unfinished
        self._source = "standard input" if source == "-" else source
        self._timeout = timeout
        self._console = console
        self._clock = clock if clock is not None else SYSTEM_CLOCK
        self._started_at = self._clock.monotonic()
        self._events: queue.Queue[_Event] = queue.Queue()
        self._in_flight: dict[Future[Any], str] = {}
        self._resumed = set(pool.recovered)
        self._occurrences: dict[str, int] = {}
        self._tally = _Tally(resumed=len(self._resumed))
        self._reading = True

    def run(self, reader: _Reader) -> int:
        """Run every command, print the summary, and return the exit status."""
        interrupted_by: str | None = None
        error: str | None = None
        try:
            self._loop(reader)
        except (KeyboardInterrupt, _Terminated) as exc:
            interrupted_by = "SIGTERM" if isinstance(exc, _Terminated) else "SIGINT"
            self._abort(reader)
        except BrokenPipeError:
            error = "standard output was closed; stopped the remaining commands"
            self._abort(reader)
        except (_UserError, JournalError) as exc:
            error = str(exc)
            self._abort(reader)
        except BaseException:
            # A bug: stop the commands anyway, so none is left running.
            self._abort(reader)
            raise
        else:
            self._pool.shutdown(wait=True)

        self._console.clear_progress()
        aborted = interrupted_by is not None or error is not None
        for line in self._summary(interrupted_by, aborted=aborted):
            self._console.message(line)
        if error is not None:
            self._console.message(f"syncq: error: {error}")
        if interrupted_by == "SIGTERM":
            return _EXIT_SIGNAL_BASE + signal.SIGTERM
        if interrupted_by is not None:
            return _EXIT_SIGNAL_BASE + signal.SIGINT
        if error is not None or self._tally.failed:
            return _EXIT_FAILED
        return _EXIT_OK

    def _loop(self, reader: _Reader) -> None:
        self._check_resumed()
        for future in self._resumed:
            future.add_done_callback(self._events.put)
        reader.start(self._events)
        while self._reading or self._in_flight or self._resumed:
            event = self._next_event()
            if isinstance(event, _Line):
                self._start(event, reader)
            elif isinstance(event, _EndOfInput):
                self._reading = False
                if event.error is not None:
                    raise _UserError(f"cannot read {self._source}: {event.error}")
            elif event is not None:
                self._report(event, reader)
            self._draw_progress()

    def _check_resumed(self) -> None:
        # Tasks left pending or running by a run that is still alive stay with
        # that run. The pool does not report which keys it took over, so with
        # such tasks present the batch cannot know which commands are covered.
        missing = self._unfinished.count - len(self._resumed)
        if missing > 0 and self._journal is not None:
            raise _UserError(
                f"journal {self._journal.path} has {missing} unfinished tasks that "
                "another running syncq owns, or whose function cannot be imported; "
                "wait for that run to end, or use another journal"
            )

    def _next_event(self) -> _Event | None:
        try:
            if self._console.progress:
                return self._events.get(timeout=_PROGRESS_INTERVAL)
            return self._events.get()
        except queue.Empty:
            return None

    def _start(self, line: _Line, reader: _Reader) -> None:
        self._tally.read += 1
        future = self._submit(line)
        if future is None:
            reader.release()
            return
        self._in_flight[future] = line.command
        future.add_done_callback(self._events.put)

    def _submit(self, line: _Line) -> Future[Any] | None:
        """Submit the command, or return None if the journal shows it needs no run."""
        if self._journal is None:
            return self._pool.submit(run_command, line.command, self._timeout)
        key = self._key(line)
        if key in self._unfinished:
            # A task resumed from the journal runs it, and reports through its
            # own future.
            self._tally.covered += 1
            return None
        entry = self._journal.get(key)
        if entry is not None and entry.state == TaskState.DONE:
            self._tally.skipped += 1
            return None
        return self._pool.options(key=key).submit(
            run_command, line.command, self._timeout
        )

    def _key(self, line: _Line) -> str:
        try:
            line.command.encode("utf-8")
        except UnicodeEncodeError:
            raise _UserError(
                f"line {line.number} of {self._source} is not valid UTF-8, which "
                "a command needs to be recorded in a journal"
            ) from None
        occurrence = self._occurrences.get(line.command, 0) + 1
        self._occurrences[line.command] = occurrence
        return _journal_key(line.command, occurrence)

    def _report(self, future: Future[Any], reader: _Reader | None) -> None:
        if future in self._resumed:
            self._resumed.discard(future)
            command = None
        elif future in self._in_flight:
            command = self._in_flight.pop(future)
            if reader is not None:
                reader.release()
        else:
            # Already reported while the run was being stopped.
            return
        if future.cancelled():
            return
        exc = future.exception()
        if exc is None:
            self._report_success(future.result())
            return
        if isinstance(exc, CommandFailed):
            self._console.output(exc.stdout, exc.stderr)
            if exc.interrupted:
                self._tally.stopped += 1
                return
            reason = str(exc)
            command = exc.command
        else:
            reason = f"{type(exc).__name__}: {exc}"
        self._tally.failed += 1
        self._tally.failures.append((reason, command or "(a task from the journal)"))

    def _report_success(self, result: Any) -> None:
        self._tally.succeeded += 1
        # A journal may also hold tasks of Python programs, whose results are
        # not command output.
        if isinstance(result, dict):
            stdout = result.get("stdout", "")
            stderr = result.get("stderr", "")
            if isinstance(stdout, str) and isinstance(stderr, str):
                self._console.output(stdout, stderr)

    def _abort(self, reader: _Reader) -> None:
        """Cancel the commands not started, stop those running, and report them."""
        with _ignoring_interrupts():
            reader.stop()
            # Cancelling first means no stopped command is retried. The journal
            # keeps the cancelled tasks pending for the next run.
            self._pool.shutdown(wait=False, cancel_futures=True)
            stopped = stop_commands(KILL_GRACE)
            self._pool.close(timeout=0)
            if stopped:
                logger.info("stopped %d running commands", stopped)
            # close() has joined the workers, so every future is done.
            for future in list(self._in_flight) + list(self._resumed):
                if future.done():
                    with contextlib.suppress(BrokenPipeError):
                        self._report(future, None)

    def _draw_progress(self) -> None:
        if not self._console.progress:
            return
        tally = self._tally
        more = "+" if self._reading else ""
        running = self._pool.stats().running
        self._console.draw_progress(
            f"syncq: {tally.finished}/{tally.total}{more} done, "
            f"{tally.failed} failed, {running} running"
        )

    def _summary(self, interrupted_by: str | None, *, aborted: bool) -> list[str]:
        tally = self._tally
        elapsed = self._clock.monotonic() - self._started_at
        retries = self._pool.stats().retried
        lines = [
            f"syncq: {_plural(tally.total, 'command')}: {tally.succeeded} succeeded, "
            f"{tally.failed} failed, {tally.skipped} skipped (done in an earlier "
            f"run), {_plural(retries, 'retry', 'retries')}, {elapsed:.2f} s"
        ]
        if tally.resumed:
            lines.append(
                f"syncq: {_plural(tally.resumed, 'command')} left unfinished by an "
                "earlier run ran again"
            )
        if aborted:
            cause = (
                "" if interrupted_by is None else f"interrupted by {interrupted_by}: "
            )
            not_run = tally.total - tally.finished
            lines.append(
                f"syncq: {cause}stopped {_plural(tally.stopped, 'running command')}; "
                f"{_plural(not_run, 'command')} did not start"
            )
        for reason, command in tally.failures:
            lines.append(f"syncq: failed ({reason}): {command}")
        return lines


def _plural(count: int, singular: str, plural: str | None = None) -> str:
    if count == 1:
        return f"1 {singular}"
    return f"{count} {plural or singular + 's'}"
