"""The ``--halt`` option of ``syncq run``: its conditions, and the watch on them."""

from __future__ import annotations

import contextlib
import dataclasses
import re
import threading
from concurrent.futures import Future
from typing import Any

from syncq._batch_outcomes import command_status
from syncq._shell import CommandFailed
from syncq.pool import WorkerPool

HALT_MIN_FINISHED = 3
"""Commands that must have finished before a ``--halt`` percentage is judged."""

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
