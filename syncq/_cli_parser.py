"""The parsers of the ``syncq`` command line and of its option values."""

from __future__ import annotations

import argparse
import contextlib
import math
import re

from syncq import __version__
from syncq._batch_halt import HALT_MIN_FINISHED, HaltCondition, parse_halt
from syncq._shell import KILL_GRACE
from syncq.journal import TaskState
from syncq.limiters import parse_rate

DEFAULT_WORKERS = 4
"""Commands that ``syncq run`` runs at once by default."""


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
