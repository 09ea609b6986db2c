"""Fetch items from a rate-limited HTTP API through one journaled WorkerPool.

The pool combines every part of syncq that such a batch needs:

- a `TokenBucket` a little below the server's limit, so that the server never
  has to respond with 429;
- a `CircuitBreaker` that opens while the server responds with 503 or cannot be
  reached, so that the pool holds its tasks instead of hammering it;
- a `Retry` policy with exponential backoff for 503s, 429s and network errors;
- a `Journal` keyed by item id, so that a rerun after a crash or Ctrl-C fetches
  only the items that are not done yet.

By default the script starts the example server (api_server.py) in this process;
``--url`` points it at a server that is already running. Run it as a script:

    python examples/fetch_items.py --journal /tmp/items.db

The journal defaults to a fixed file in the system's temporary directory (see
``--help``), so a second run with the same settings fetches nothing new. Delete
the file, or pass another ``--journal``, to start over.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import logging
import math
import os
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Sequence
from concurrent.futures import Future
from typing import Any

# NOTE: these two modules sit next to this script, and Python puts the script's
# folder first on sys.path when it runs a file. The journal records the task as
# "items_client:fetch_item", which any later run of this script can import
# again. A fetch_item defined in this file would be recorded as
# "__main__:fetch_item" instead, and that name resolves only inside this very
# script: a resume started from any other program (a test, or a tool that reads
# the journal) finds another __main__ and fails the task.
from api_server import HOST, RunningServer, start_server
from items_client import DEPENDENCY_FAILURES, TRANSIENT_ERRORS, fetch_item

from syncq import (
    CircuitBreaker,
    CircuitState,
    ExponentialBackoff,
    Journal,
    JournalError,
    Retry,
    TaskState,
    TokenBucket,
    WorkerPool,
)

logger = logging.getLogger("fetch_items")

DEFAULT_ITEMS = 300
DEFAULT_WORKERS = 4
DEFAULT_JOURNAL = os.path.join(tempfile.gettempdir(), "syncq-fetch-items.db")

# The example server allows 50 requests per second with bursts of 10. The client
# bucket refills 10% slower and has half the capacity, so requests that reach the
# server late and arrive bunched together still fit within its limit.
DEFAULT_RATE = 45.0
CLIENT_BURST = 5

# The breaker opens after 3 failures in a row and tries again after 0.2 s, so a
# half-second outage opens it at least once and costs little more than its
# length. Retries back off from 0.1 s to at most 2 s, with jitter.
FAILURE_THRESHOLD = 3
RESET_TIMEOUT = 0.2
RETRY = Retry(
    8,
    backoff=ExponentialBackoff(initial=0.1, multiplier=2.0, max_delay=2.0, jitter=True),
    retry_on=TRANSIENT_ERRORS,
)

EXIT_OK = 0
EXIT_INCOMPLETE = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


class OpenCounter:
    """A breaker listener that counts the transitions into OPEN."""

    def __init__(self) -> None:
        # Guards _count, because the breaker may call the listener from any thread.
        self._lock = threading.Lock()
        self._count = 0

    def __call__(
        self, breaker: CircuitBreaker, old: CircuitState, new: CircuitState
    ) -> None:
        """Count the transition if it opens the breaker."""
        if new is CircuitState.OPEN:
            with self._lock:
                self._count += 1

    @property
    def count(self) -> int:
        """Transitions into OPEN so far."""
        with self._lock:
            return self._count


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _positive_rate(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text}")
    return value


def _base_url(text: str) -> str:
    parts = urllib.parse.urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise argparse.ArgumentTypeError(
            f"expected an http(s) URL such as http://127.0.0.1:8000, got {text!r}"
        )
    return text.rstrip("/")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Parse the command line; argparse exits with status 2 on invalid input."""
    parser = argparse.ArgumentParser(
        description="Fetch items from the example API through a rate-limited, "
        "journaled syncq WorkerPool.",
    )
    parser.add_argument(
        "--items",
        type=_positive_int,
        default=DEFAULT_ITEMS,
        help="number of items to fetch, ids 0 to N-1 (default %(default)s)",
    )
    parser.add_argument(
        "--url",
        type=_base_url,
        help="base URL of a running example server; by default the script "
        "starts one in this process",
    )
    parser.add_argument(
        "--journal",
        default=DEFAULT_JOURNAL,
        help="SQLite journal file; a rerun with the same file fetches only the "
        "missing items (default %(default)s)",
    )
    parser.add_argument(
        "--workers",
        type=_positive_int,
        default=DEFAULT_WORKERS,
        help="worker threads (default %(default)s)",
    )
    parser.add_argument(
        "--rate",
        type=_positive_rate,
        default=DEFAULT_RATE,
        help="requests per second the client sends at most; keep it below the "
        "server's limit (default %(default)s)",
    )
    return parser.parse_args(argv)


def unfinished_urls(journal: Journal) -> set[str]:
    """Return the base URLs of the fetch tasks in `journal` that are not done.

    The journal keeps each task's arguments, the base URL among them, and a
    rerun runs those tasks with their stored arguments (re-adding a failed key
    keeps them too). So a rerun can resume them only against the same URL.
    """
    name = f"{fetch_item.__module__}:{fetch_item.__qualname__}"
    urls = set()
    for state in (TaskState.PENDING, TaskState.RUNNING, TaskState.FAILED):
        for task in journal.tasks(state):
            if task.function == name and task.args and isinstance(task.args[0], str):
                urls.add(task.args[0])
    return urls


def _resume_port(urls: set[str]) -> int:
    # The in-process server of an earlier run listened on a port chosen by the
    # system. Listening on that port again lets its unfinished tasks resume.
    if not urls:
        return 0
    if len(urls) > 1:
        raise ValueError(f"its unfinished tasks use several URLs: {sorted(urls)}")
    parts = urllib.parse.urlsplit(next(iter(urls)))
    if parts.hostname != HOST or parts.port is None:
        raise ValueError(
            f"its unfinished tasks use {parts.geturl()}, which is not a server "
            "this script starts; rerun with that --url"
        )
    return parts.port


def fetch_all(
    pool: WorkerPool, base_url: str, count: int
) -> list[Future[dict[str, Any]]]:
    """Submit one task per item id, keyed by the id, and return their futures.

    A key that is already done in the journal gets a finished future with
    the stored item, without a request.
    """
    return [
        pool.options(key=str(item_id)).submit(fetch_item, base_url, item_id)
        for item_id in range(count)
    ]


def read_server_stats(base_url: str) -> dict[str, Any] | None:
    """Return the server's ``/stats`` counters, or None if they cannot be read."""
    try:
        with urllib.request.urlopen(f"{base_url}/stats", timeout=5.0) as response:
            stats = json.loads(response.read())
    except (OSError, ValueError) as exc:
        logger.warning("cannot read %s/stats: %s", base_url, exc)
        return None
    return stats if isinstance(stats, dict) else None


def _failures(futures: Sequence[Future[Any]]) -> list[tuple[int, BaseException]]:
    failed = []
    for item_id, future in enumerate(futures):
        exc = future.exception() if not future.cancelled() else None
        if exc is not None:
            failed.append((item_id, exc))
    return failed


def report(
    futures: Sequence[Future[Any]],
    pool: WorkerPool,
    opened: int,
    stats: dict[str, Any] | None,
    elapsed: float,
) -> int:
    """Print the summary of a finished run and return the number of items not done."""
    failed = _failures(futures)
    done = sum(1 for future in futures if future.done() and not future.cancelled())
    done -= len(failed)
    rate_limited = "unknown" if stats is None else stats.get("rate_limited")
    print(
        f"items done: {done} of {len(futures)} "
        f"(fetched in this run: {pool.stats().succeeded}, in {elapsed:.1f} s)"
    )
    print(f"429 responses sent by the server: {rate_limited}")
    print(f"breaker opened: {opened} times")
    print(f"retries: {pool.stats().retried}")
    for item_id, exc in failed[:5]:
        print(f"item {item_id} failed: {type(exc).__name__}: {exc}")
    if len(failed) > 5:
        print(f"... and {len(failed) - 5} more failed items")
    return len(futures) - done


def run(args: argparse.Namespace, journal: Journal, base_url: str) -> int:
    """Fetch the items with the pool, print the summary, return the exit status.

    Raises:
        KeyboardInterrupt: Ctrl-C, after the tasks that were running have ended.
    """
    opened = OpenCounter()
    breaker = CircuitBreaker(
        FAILURE_THRESHOLD,
        RESET_TIMEOUT,
        failure_exceptions=DEPENDENCY_FAILURES,
        name="items-api",
    )
    # Added before the pool exists, because the pool starts the tasks that it
    # recovers from the journal as soon as it is created.
    breaker.add_listener(opened)

    started = time.monotonic()
    pool = WorkerPool(
        args.workers,
        rate_limit=TokenBucket(args.rate, CLIENT_BURST),
        breaker=breaker,
        retry=RETRY,
        journal=journal,
        thread_name_prefix="fetch-items",
    )
    try:
        futures = fetch_all(pool, base_url, args.items)
        concurrent.futures.wait(futures)
    except BaseException:
        # Tasks that have not started stay pending in the journal.
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown(wait=True)

    missing = report(
        futures,
        pool,
        opened.count,
        read_server_stats(base_url),
        time.monotonic() - started,
    )
    return EXIT_OK if missing == 0 else EXIT_INCOMPLETE


def _choose_server(
    args: argparse.Namespace, journal: Journal
) -> tuple[str, RunningServer | None]:
    # Returns the base URL, and the server if this script started one.
    urls = unfinished_urls(journal)
    if args.url is not None:
        if urls - {args.url}:
            raise ValueError(
                f"it has unfinished tasks for {', '.join(sorted(urls))}, "
                f"not {args.url}; rerun with that --url"
            )
        return args.url, None
    port = _resume_port(urls)
    if port == 0:
        server = start_server()
        return server.url, server
    try:
        server = start_server(port=port)
    except OSError as exc:
        raise ValueError(
            f"its unfinished tasks need a server on port {port}, which cannot be "
            f"bound: {exc}"
        ) from exc
    return server.url, server


def main(argv: Sequence[str] | None = None) -> int:
    """Run the example from the command line and return the exit status."""
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    try:
        journal = Journal(args.journal)
    except JournalError as exc:
        print(f"fetch_items: {exc}", file=sys.stderr)
        return EXIT_USAGE
    server: RunningServer | None = None
    try:
        try:
            base_url, server = _choose_server(args, journal)
        except ValueError as exc:
            print(
                f"fetch_items: cannot resume journal {args.journal}: {exc}. "
                "To start over instead, choose another --journal.",
                file=sys.stderr,
            )
            return EXIT_USAGE
        origin = "external" if server is None else "started by this script"
        print(
            f"fetching {args.items} items from {base_url} ({origin}), "
            f"journal {args.journal}",
            flush=True,
        )
        return run(args, journal, base_url)
    except JournalError as exc:
        # For example, another run that is still alive owns some of the items.
        print(f"fetch_items: {exc}", file=sys.stderr)
        return EXIT_INCOMPLETE
    except KeyboardInterrupt:
        print("interrupted; run again with the same --journal to resume")
        return EXIT_INTERRUPTED
    finally:
        journal.close()
        if server is not None:
            server.stop()


if __name__ == "__main__":
    sys.exit(main())
