"""The batch runner behind ``syncq run``: it runs each command read and reports it.

The reader, the console, ``--halt`` and the tally of outcomes have modules of
their own: `syncq._batch_reader`, `syncq._batch_console`, `syncq._batch_halt`
and `syncq._batch_outcomes`.

In a journal, a command's key is its line as written. A line that repeats an
earlier one gets a newline, ``#`` and its occurrence number appended, as in
``"echo hi\\n#2"``. No line contains a newline, so two keys never collide.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import queue
import re
import signal
import threading
from collections.abc import Iterator
from concurrent.futures import Future
from typing import Any

from syncq._batch_console import PROGRESS_INTERVAL, Console
from syncq._batch_halt import HALT_MAX_FAILED_STATUS, HaltCondition, HaltWatch
from syncq._batch_outcomes import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_SIGNAL_BASE,
    Tally,
    pluralize,
)
from syncq._batch_reader import EndOfInput, Event, Line, Reader
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
        # Whether the reader reached the end of the input, which a halt or a
        # signal may keep it from doing.
        self._input_ended = False
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
                self._input_ended = True
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
        # The input is read lazily, so this counts the lines read so far.
        not_run = pluralize(tally.total - tally.finished, "command")
        if not self._input_ended:
            not_run += ", and the rest of the input was not read"
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
