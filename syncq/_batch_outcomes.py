"""Outcomes of ``syncq run``: exit statuses, and the tally of what its commands did."""

from __future__ import annotations

import dataclasses

from syncq._shell import CommandFailed

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_SIGNAL_BASE = 128


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
    # TODO: the journal records stopped commands as failed, while the summary
    # counts them apart from the failed ones.
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


def pluralize(count: int, singular: str, plural: str | None = None) -> str:
    if count == 1:
        return f"1 {singular}"
    return f"{count} {plural or singular + 's'}"
