"""Runs of a journal: the lease each process holds, and the heartbeat renewing it."""

from __future__ import annotations

import logging
import os
import socket
import sqlite3
import threading
import time
import uuid
from typing import Callable

from syncq.errors import JournalError
from syncq.journal._schema import Transaction

logger = logging.getLogger(__name__)


class Run:
    """One process's run of a journal: its id, its host and its lease duration.

    The methods take the journal's connection. Their callers hold the journal's
    lock, and for writes a transaction.
    """

    def __init__(self, path: str, lease_duration: float) -> None:
        self.path = path
        self.lease_duration = lease_duration
        self.run_id = uuid.uuid4().hex
        self.host = socket.gethostname()

    def register(self, conn: sqlite3.Connection) -> None:
        """Insert the row of this run, in a transaction of its own."""
        now = time.time()
        with Transaction(conn):
            conn.execute(
                "INSERT INTO runs (run_id, host, pid, started_at, heartbeat_at,"
                " lease_duration) VALUES (?, ?, ?, ?, ?, ?)",
                (self.run_id, self.host, os.getpid(), now, now, self.lease_duration),
            )

    def end(self, conn: sqlite3.Connection) -> None:
        """Record that this run has ended, so the next run takes its tasks at once."""
        conn.execute(
            "UPDATE runs SET ended_at = ? WHERE run_id = ?",
            (time.time(), self.run_id),
        )

    def dead_runs(self, conn: sqlite3.Connection) -> list[str]:
        """Return the ids of other runs that ended, expired or lost their process."""
        now = time.time()
        dead = []
        rows = conn.execute(
            "SELECT run_id, host, pid, heartbeat_at, lease_duration, ended_at FROM runs"
            " WHERE run_id != ?",
            (self.run_id,),
        )
        for run_id, host, pid, heartbeat_at, lease, ended_at in rows:
            if (
                ended_at is not None
                or heartbeat_at + lease < now
                or (host == self.host and not _process_exists(pid))
            ):
                dead.append(run_id)
        return dead

    def delete_dead_runs(self, conn: sqlite3.Connection) -> list[str]:
        """Delete the rows of the dead runs and return their ids."""
        dead = self.dead_runs(conn)
        conn.executemany(
            "DELETE FROM runs WHERE run_id = ?",
            [(run_id,) for run_id in dead],
        )
        return dead

    def live_runs(self, conn: sqlite3.Connection) -> list[tuple[str, int]]:
        """Return the host and process id of every other run that is still live."""
        dead = set(self.dead_runs(conn))
        rows = conn.execute(
            "SELECT run_id, host, pid FROM runs WHERE run_id != ? ORDER BY started_at",
            (self.run_id,),
        )
        return [(host, pid) for run_id, host, pid in rows if run_id not in dead]

    def reject_if_in_use(self, conn: sqlite3.Connection, action: str) -> None:
        """Raise `JournalError` if another live run holds a lease on the journal."""
        live = self.live_runs(conn)
        if not live:
            return
        host, pid = live[0]
        others = f" and {len(live) - 1} more" if len(live) > 1 else ""
        raise JournalError(
            f"journal {self.path} is in use by a running process (pid {pid} on "
            f"{host}){others}; wait for it to end before you {action}"
        )

    def is_gone(self, conn: sqlite3.Connection, run_id: str | None) -> bool:
        """Return whether the run `run_id` is dead or has no row left."""
        if run_id is None or run_id in self.dead_runs(conn):
            return True
        row = conn.execute("SELECT 1 FROM runs WHERE run_id = ?", (run_id,))
        return row.fetchone() is None


class Heartbeat:
    """A daemon thread that renews a run's lease every third of its duration.

    Args:
        run: The run whose lease is renewed.
        renew: Records one heartbeat, returning how many rows it updated: 0 once
            another run has deleted this run's row.
        closed: Returns whether the journal is closed, so that a failed renewal
            after closing ends the thread quietly.
    """

    def __init__(
        self,
        run: Run,
        renew: Callable[[], int],
        closed: Callable[[], bool],
    ) -> None:
        self._run = run
        self._renew = renew
        self._closed = closed
        self._stopped = threading.Event()
        self._thread = threading.Thread(
            target=self._beat, name="syncq-journal-heartbeat", daemon=True
        )

    def start(self) -> None:
        """Start the thread."""
        self._thread.start()

    def stop(self) -> None:
        """Ask the thread to end before its next renewal; `join` waits for it."""
        self._stopped.set()

    def join(self) -> None:
        """Block until the thread has ended; call `stop` first."""
        self._thread.join()

    def _beat(self) -> None:
        run = self._run
        interval = run.lease_duration / 3
        lease_lost = False
        while not self._stopped.wait(interval):
            try:
                renewed = self._renew()
            except JournalError:
                if self._closed():
                    return
                logger.exception(
                    "journal %s: renewing the lease of run %s failed",
                    run.path,
                    run.run_id,
                )
                continue
            if not renewed and not lease_lost:
                lease_lost = True
                logger.warning(
                    "journal %s: run %s lost its lease; another run took its tasks",
                    run.path,
                    run.run_id,
                )


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        # PermissionError and the like: the process exists but is not ours.
        return True
    return not _is_zombie(pid)


def _is_zombie(pid: int) -> bool:
    # kill(pid, 0) still succeeds for a killed process its parent has not reaped.
    # NOTE: only Linux exposes /proc/PID/stat; elsewhere a zombie counts as alive
    # until its lease runs out.
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            fields = stat.read().rpartition(b")")[2].split()
    except OSError:
        return False
    return bool(fields) and fields[0] == b"Z"
