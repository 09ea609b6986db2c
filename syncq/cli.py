"""The ``syncq`` command: run a file of shell commands on a worker pool.

``syncq run FILE`` runs each line of FILE as a shell command, a few at a time,
with an optional rate limit, retries, a timeout per command, a condition that
halts the batch early, and a journal that lets a rerun skip the commands already
done. ``syncq status JOURNAL`` shows what a journal contains, ``syncq retry``
queues its failed tasks again, and ``syncq purge`` deletes finished ones. Of all
syncq modules, only this one configures logging output. The parsers are in
`syncq._cli_parser`, the subcommands in `syncq._cli_run` and
`syncq._cli_journal`, and the batch runner in `syncq._batch`.
"""

from __future__ import annotations

import logging
import signal
import sys
from typing import Callable

from syncq import _cli_journal, _cli_run
from syncq._batch import Terminated, UserError
from syncq._batch_outcomes import EXIT_FAILED, EXIT_OK, EXIT_SIGNAL_BASE
from syncq._cli_parser import DEFAULT_WORKERS, build_parser
from syncq._cli_run import RETRY_BACKOFF
from syncq._shell import stop_commands
from syncq.errors import JournalError

__all__ = ["DEFAULT_WORKERS", "RETRY_BACKOFF", "build_parser", "main"]

logger = logging.getLogger(__name__)


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
            return _cli_run.run(args)
        if args.command == "retry":
            return _cli_journal.retry(args.journal, args.keys, sys.stdout)
        if args.command == "purge":
            return _cli_journal.purge(args, sys.stdout)
        return _cli_journal.status(args.journal, sys.stdout)
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
