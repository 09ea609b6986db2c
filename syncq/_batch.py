"""The batch runner behind ``syncq run``: reading, running, reporting, halting.

In a journal, a command's key is its line as written. A line that repeats an
earlier one gets a newline, ``#`` and its occurrence number appended, as in
``"echo hi\\n#2"``. No line contains a newline, so two keys never collide.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import os
import queue
import re
import signal
import sys
import threading
from collections.abc import Iterator
from concurrent.futures import Future
from typing import IO, Any, TextIO, Union

from syncq._shell import (
    KILL_GRACE,
    CommandFailed,
    run_command,
    stop_commands,
)
from syncq.clock import SYSTEM_CLOCK, Clock
from syncq.errors import JournalError
from syncq.journal import Journal, TaskState
from syncq.pool import WorkerPool

logger = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_SIGNAL_BASE = 128

HALT_MIN_FINISHED = 3
"""Commands that must have finished before a ``--halt`` percentage is judged."""

# Seconds between redraws of the progress line while nothing finishes.
PROGRESS_INTERVAL = 0.2
# The shortest interval between two redraws.
PROGRESS_MIN_INTERVAL = 0.1
ERASE_LINE = "\r\x1b[K"


class UserError(Exception):
    """An error to report as a one-line message, without a traceback."""


class Terminated(BaseException):
    """Raised in the main thread when the process receives SIGTERM."""


def journal_key(command: str, occurrence: int) -> str:
    """Return the key of the `occurrence`-th line (from 1) that reads `command`."""
    if occurrence == 1:
        return command
    return f"{command}\n#{occurrence}"


def display_key(key: str) -> str:
    command, newline, suffix = key.partition("\n")
    if not newline:
        return command
    return f"{command} ({suffix})"


_DISPLAYED_REPEAT = re.compile(r"(?P<command>.*) \(#(?P<occurrence>[1-9][0-9]*)\)")


def key_from_display(text: str) -> str | None:
    """Return the key that `display_key` shows as `text`, if `text` names a repeat.

    ``"echo hi (#2)"`` gives ``"echo hi\\n#2"``; text without such a suffix
    gives None.
    """
    match = _DISPLAYED_REPEAT.fullmatch(text)
    if match is None:
        return None
    occurrence = int(match.group("occurrence"))
    if occurrence < 2:
        return None
    return journal_key(match.group("command"), occurrence)


@dataclasses.dataclass(frozen=True)
class Unfinished:
    """The tasks that a journal held as pending or running before the pool opened."""

    keys: set[str]
    count: int

    def __contains__(self, key: object) -> bool:
        return key in self.keys


@contextlib.contextmanager
def ignoring_interrupts() -> Iterator[None]:
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
class Line:
    """A command read from the input."""

    number: int
    command: str


@dataclasses.dataclass(frozen=True)
class EndOfInput:
    """The input is exhausted, or reading it failed with `error`."""

    error: OSError | None = None


Event = Union[Line, EndOfInput, Future[Any]]


class Reader:
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
        self._events: queue.Queue[Event] | None = None
        self._started = False
        # A daemon, because it may block reading a terminal or a pipe forever.
        self._thread = threading.Thread(
            target=self._read, name="syncq-run-reader", daemon=True
        )

    def start(self, events: queue.Queue[Event]) -> None:
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
            events.put(EndOfInput(exc))
        else:
            events.put(EndOfInput())
        finally:
            if self._owned:
                self._stream.close()

    def _read_lines(self, events: queue.Queue[Event]) -> None:
        for number, raw in enumerate(self._stream, 1):
            command = decode_line(raw)
            if not command.strip() or command.lstrip().startswith("#"):
                continue
            self._credits.acquire()
            if self._stopped.is_set():
                return
            events.put(Line(number, command))


def decode_line(raw: bytes | str) -> str:
    # os.fsdecode is what subprocess reverses with os.fsencode, so the shell
    # receives the bytes of the file unchanged, even if they are not UTF-8.
    line = os.fsdecode(raw) if isinstance(raw, bytes) else raw
    if line.endswith("\n"):
        line = line[:-1]
    if line.endswith("\r"):
        line = line[:-1]
    return line


class Console:
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
                write_exact(self._stdout, stdout)
            except BrokenPipeError:
                self._stdout_closed = True
                discard_stdout()
                raise
        if stderr:
            write_exact(self._stderr, stderr)

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
        if now - self._last_draw < PROGRESS_MIN_INTERVAL:
            return
        self._last_draw = now
        self._stderr.write(ERASE_LINE + text)
        self._stderr.flush()
        self._progress_shown = True

    def clear_progress(self) -> None:
        """Erase the progress line, if it is shown."""
        if self._progress_shown:
            self._stderr.write(ERASE_LINE)
            self._stderr.flush()
            self._progress_shown = False
            self._last_draw = -math.inf


def write_exact(stream: TextIO, text: str) -> None:
    """Write `text` as the bytes the command produced, through the binary buffer."""
    stream.flush()
    buffer = getattr(stream, "buffer", None)
    if buffer is None:
        stream.write(text)
        stream.flush()
        return
    buffer.write(text.encode("utf-8", "surrogateescape"))
    buffer.flush()


def discard_stdout() -> None:
    # Point file descriptor 1 at /dev/null, so the interpreter's final flush
    # does not fail again on the closed pipe.
    with contextlib.suppress(OSError, ValueError, AttributeError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)


@dataclasses.dataclass
class Tally:
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


_HALT_FORMS = (
    "never, or WHEN,fail=N, WHEN,fail=P%, WHEN,success=N or WHEN,success=P%, "
    "where WHEN is soon or now, N is a whole number >= 1 and P a percentage "
    "above 0 and at most 100, such as now,fail=1 or soon,fail=10%"
)
# TODO: GNU parallel's done=N and done=P% forms, and its older values 0, 1, 2,
# -1, -2 and 1-99%, are rejected; fail and success cover the common uses.
_HALT_PATTERN = re.compile(
    r"(?P<when>soon|now),(?P<outcome>fail|success)="
    r"(?P<amount>[0-9]+(?:\.[0-9]+)?)(?P<percent>%?)"
)
# A run halted by fail=N exits with its number of failed commands, capped at
# this value, as GNU parallel does.
HALT_MAX_FAILED_STATUS = 101


@dataclasses.dataclass(frozen=True)
class HaltCondition:
    """When ``syncq run --halt`` stops a batch before every command has run.

    Attributes:
        when: ``"soon"`` starts no more commands and waits for those running;
            ``"now"`` also stops those running.
        outcome: ``"fail"`` or ``"success"``, the outcome that is counted.
        count: Halt once this many commands had the outcome, or None.
        percent: Halt once this percentage of the commands finished so far had
            the outcome, judged from `HALT_MIN_FINISHED` finished commands on;
            or None.
    """

    when: str
    outcome: str
    count: int | None = None
    percent: float | None = None

    def reached(self, succeeded: int, failed: int) -> bool:
        """Return whether these counts of finished commands meet the condition."""
        hits = failed if self.outcome == "fail" else succeeded
        if self.count is not None:
            return hits >= self.count
        finished = succeeded + failed
        if self.percent is None or finished < HALT_MIN_FINISHED:
            return False
        return hits * 100 >= self.percent * finished

    def __str__(self) -> str:
        amount = str(self.count) if self.percent is None else f"{self.percent:g}%"
        return f"{self.when},{self.outcome}={amount}"


def parse_halt(text: str) -> HaltCondition | None:
    """Parse the value of ``--halt``; return None for ``never``.

    Raises:
        ValueError: `text` has none of the accepted forms; the message names it
            and lists the forms.
    """
    if text == "never":
        return None
    match = _HALT_PATTERN.fullmatch(text)
    if match is None:
        raise ValueError(f"invalid halt condition {text!r}: expected {_HALT_FORMS}")
    when, outcome, amount = match["when"], match["outcome"], match["amount"]
    if match["percent"]:
        percent = float(amount)
        if 0 < percent <= 100:
            return HaltCondition(when, outcome, percent=percent)
    elif "." not in amount and int(amount) >= 1:
        return HaltCondition(when, outcome, count=int(amount))
    raise ValueError(f"invalid halt condition {text!r}: expected {_HALT_FORMS}")


def command_status(exc: BaseException | None) -> int:
    """Return the exit status a shell would give for a command that raised `exc`."""
    if exc is None:
        return EXIT_OK
    if isinstance(exc, CommandFailed):
        if exc.returncode < 0:
            return EXIT_SIGNAL_BASE - exc.returncode
        if exc.returncode > 0:
            return exc.returncode
    return EXIT_FAILED


@dataclasses.dataclass(frozen=True)
class HaltDecision:
    """The counts when a ``--halt`` condition was met, and the deciding command."""

    succeeded: int
    failed: int
    exit_status: int
    """The exit status of the command whose outcome met the condition."""


class HaltWatch:
    """The counter of command outcomes that pauses the pool once the batch halts.

    `observe` is a done callback, so it runs in the worker thread that finished
    the command, before that worker takes another task. Pausing the pool there
    keeps that worker from starting another command. Only a worker that finishes
    a command at the same moment may still start one.
    """

    def __init__(self, condition: HaltCondition, pool: WorkerPool) -> None:
        self.condition = condition
        self._pool = pool
        # Guards the counts and the decision, which worker threads update.
        self._lock = threading.Lock()
        self._succeeded = 0
        self._failed = 0
        self._decision: HaltDecision | None = None

    @property
    def decision(self) -> HaltDecision | None:
        """The decision to halt, or None while the condition is not met."""
        with self._lock:
            return self._decision

    def observe(self, future: Future[Any]) -> None:
        """Count the outcome of a command's future, and decide whether to halt."""
        if future.cancelled():
            return
        exc = future.exception()
        if isinstance(exc, CommandFailed) and exc.interrupted:
            return
        with self._lock:
            if exc is None:
                self._succeeded += 1
            else:
                self._failed += 1
            if self._decision is not None or not self.condition.reached(
                self._succeeded, self._failed
            ):
                return
            self._decision = HaltDecision(
                self._succeeded, self._failed, command_status(exc)
            )
        # A pool that is already shut down raises RuntimeError; the batch is
        # then ending, and starts nothing more anyway.
        with contextlib.suppress(RuntimeError):
            self._pool.pause()


class Batch:
    """One ``syncq run``: feeds commands to the pool and reports each outcome.

    Only the thread that calls `run` writes output. Futures report back through
    one event queue, which the reader thread feeds with commands as well.
    """

    def __init__(
        self,
        pool: WorkerPool,
        journal: Journal | None,
        unfinished: Unfinished,
        *,
        source: str,
        timeout: float | None,
        console: Console,
        clock: Clock | None,
        halt: HaltCondition | None = None,
    ) -> None:
        self._pool = pool
        self._journal = journal
        self._unfinished = unfinished
        self._source = "standard input" if source == "-" else source
        self._timeout = timeout
        self._console = console
        self._clock = clock if clock is not None else SYSTEM_CLOCK
        self._started_at = self._clock.monotonic()
        self._events: queue.Queue[Event] = queue.Queue()
        self._in_flight: dict[Future[Any], str] = {}
        self._resumed = set(pool.recovered)
        self._occurrences: dict[str, int] = {}
        self._tally = Tally(resumed=len(self._resumed))
        self._reading = True
        self._watch = None if halt is None else HaltWatch(halt, pool)
        # Set once the batch acts on the watch's decision to halt.
        self._halting = False
        # The commands still running when a ``soon`` halt stopped the starts.
        self._waited_for = 0

    def run(self, reader: Reader) -> int:
        """Run every command, print the summary, and return the exit status."""
        interrupted_by: str | None = None
        error: str | None = None
        halt_now = False
        try:
            halt_now = self._loop(reader)
        except (KeyboardInterrupt, Terminated) as exc:
            interrupted_by = "SIGTERM" if isinstance(exc, Terminated) else "SIGINT"
            self._abort(reader)
        except BrokenPipeError:
            error = "standard output was closed; stopped the remaining commands"
            self._abort(reader)
        except (UserError, JournalError) as exc:
            error = str(exc)
            self._abort(reader)
        except BaseException:
            # A bug: stop the commands anyway, so none is left running.
            self._abort(reader)
            raise
        else:
            if halt_now:
                self._abort(reader)
            else:
                self._pool.shutdown(wait=True)

        self._console.clear_progress()
        aborted = interrupted_by is not None or error is not None or halt_now
        for line in self._summary(interrupted_by, aborted=aborted):
            self._console.message(line)
        if error is not None:
            self._console.message(f"syncq: error: {error}")
        if interrupted_by == "SIGTERM":
            return EXIT_SIGNAL_BASE + signal.SIGTERM
        if interrupted_by is not None:
            return EXIT_SIGNAL_BASE + signal.SIGINT
        if error is not None:
            return EXIT_FAILED
        if self._halting:
            return self._halt_status()
        if self._tally.failed:
            return EXIT_FAILED
        return EXIT_OK

    def _loop(self, reader: Reader) -> bool:
        """Run the commands; return True if ``--halt now`` must stop those running."""
        self._check_resumed()
        for future in self._resumed:
            self._watch_future(future)
        reader.start(self._events)
        while self._reading or self._in_flight or self._resumed:
            event = self._next_event()
            if isinstance(event, Line):
                self._start(event, reader)
            elif isinstance(event, EndOfInput):
                self._reading = False
                if event.error is not None and not self._halting:
                    raise UserError(f"cannot read {self._source}: {event.error}")
            elif event is not None:
                self._report(event, reader)
            if self._halt_if_decided(reader):
                return True
            self._draw_progress()
        return False

    def _watch_future(self, future: Future[Any]) -> None:
        # The watch comes first, so that it can pause the pool before the
        # worker that ran the command takes another.
        if self._watch is not None:
            future.add_done_callback(self._watch.observe)
        future.add_done_callback(self._events.put)

    def _halt_if_decided(self, reader: Reader) -> bool:
        """Act on a decision to halt; return True if running commands must stop."""
        if self._watch is None or self._halting or self._watch.decision is None:
            return False
        self._halting = True
        if self._watch.condition.when == "now":
            return True
        reader.stop()
        self._reading = False
        self._cancel_not_started()
        # Fails the commands that wait for a retry, and lets the paused pool
        # drain. The journal keeps both kinds pending for the next run.
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._waited_for = sum(not future.done() for future in self._futures())
        return False

    def _futures(self) -> list[Future[Any]]:
        return [*self._in_flight, *self._resumed]

    def _cancel_not_started(self) -> None:
        for future in self._futures():
            future.cancel()

    def _halt_status(self) -> int:
        """Return the exit status of a halted run, by GNU parallel's rules."""
        watch = self._watch
        decision = None if watch is None else watch.decision
        if watch is None or decision is None or watch.condition.outcome == "success":
            return EXIT_OK
        if watch.condition.count == 1:
            return decision.exit_status
        failed = self._tally.failed
        if watch.condition.count is not None:
            return min(failed, HALT_MAX_FAILED_STATUS)
        finished = self._tally.succeeded + failed
        return math.ceil(100 * failed / max(finished, 1))

    def _check_resumed(self) -> None:
        # Tasks left pending or running by a run that is still alive stay with
        # that run. The pool does not report which keys it took over, so with
        # such tasks present the batch cannot know which commands are covered.
        missing = self._unfinished.count - len(self._resumed)
        if missing > 0 and self._journal is not None:
            raise UserError(
                f"journal {self._journal.path} has {missing} unfinished tasks that "
                "another running syncq owns, or whose function cannot be imported; "
                "wait for that run to end, or use another journal"
            )

    def _next_event(self) -> Event | None:
        try:
            if self._console.progress:
                return self._events.get(timeout=PROGRESS_INTERVAL)
            return self._events.get()
        except queue.Empty:
            return None

    def _start(self, line: Line, reader: Reader) -> None:
        if self._halting:
            # Read before the halt: the command is neither run nor recorded,
            # so the next run reads and runs it.
            reader.release()
            return
        self._tally.read += 1
        future = self._submit(line)
        if future is None:
            reader.release()
            return
        self._in_flight[future] = line.command
        self._watch_future(future)

    def _submit(self, line: Line) -> Future[Any] | None:
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

    def _key(self, line: Line) -> str:
        try:
            line.command.encode("utf-8")
        except UnicodeEncodeError:
            raise UserError(
                f"line {line.number} of {self._source} is not valid UTF-8, which "
                "a command needs to be recorded in a journal"
            ) from None
        occurrence = self._occurrences.get(line.command, 0) + 1
        self._occurrences[line.command] = occurrence
        return journal_key(line.command, occurrence)

    def _report(self, future: Future[Any], reader: Reader | None) -> None:
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

    def _abort(self, reader: Reader) -> None:
        """Cancel the commands not started, stop those running, and report them."""
        with ignoring_interrupts():
            reader.stop()
            # Cancelling first means no stopped command is retried. The journal
            # keeps the cancelled tasks pending for the next run.
            self._cancel_not_started()
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
            f"syncq: {pluralize(tally.total, 'command')}: {tally.succeeded} succeeded, "
            f"{tally.failed} failed, {tally.skipped} skipped (done in an earlier "
            f"run), {pluralize(retries, 'retry', 'retries')}, {elapsed:.2f} s"
        ]
        if tally.resumed:
            lines.append(
                f"syncq: {pluralize(tally.resumed, 'command')} left unfinished by an "
                "earlier run ran again"
            )
        not_run = pluralize(tally.total - tally.finished, "command")
        if aborted:
            cause = ""
            if interrupted_by is not None:
                cause = f"interrupted by {interrupted_by}: "
            elif self._halting:
                cause = f"{self._halt_reason()}: "
            lines.append(
                f"syncq: {cause}stopped {pluralize(tally.stopped, 'running command')}; "
                f"{not_run} did not start"
            )
        elif self._halting:
            lines.append(
                f"syncq: {self._halt_reason()}: waited for "
                f"{pluralize(self._waited_for, 'running command')}; "
                f"{not_run} did not start"
            )
        for reason, command in tally.failures:
            lines.append(f"syncq: failed ({reason}): {command}")
        return lines

    def _halt_reason(self) -> str:
        watch = self._watch
        decision = None if watch is None else watch.decision
        if watch is None or decision is None:
            return "halted"
        condition = watch.condition
        if condition.outcome == "fail":
            counted, verb = decision.failed, "failed"
        else:
            counted, verb = decision.succeeded, "succeeded"
        if condition.count is not None:
            outcomes = f"{pluralize(counted, 'command')} {verb}"
        else:
            finished = decision.succeeded + decision.failed
            outcomes = f"{counted} of {finished} finished commands {verb}"
        return f"halted by --halt {condition} after {outcomes}"


def pluralize(count: int, singular: str, plural: str | None = None) -> str:
    if count == 1:
        return f"1 {singular}"
    return f"{count} {plural or singular + 's'}"
