"""The journal's SQLite schema, and opening a file as a journal."""

from __future__ import annotations

import functools
import logging
import os
import sqlite3
import urllib.parse
from typing import Callable

from syncq.errors import JournalError

logger = logging.getLogger(__name__)

SCHEMA_VERSION = 1
# PRAGMA application_id marks the file as a syncq journal ("syq1" in ASCII).
APPLICATION_ID = 0x73797131

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    host TEXT NOT NULL,
    pid INTEGER NOT NULL,
    started_at REAL NOT NULL,
    heartbeat_at REAL NOT NULL,
    lease_duration REAL NOT NULL,
    ended_at REAL
);
CREATE TABLE IF NOT EXISTS tasks (
    id INTEGER PRIMARY KEY,
    key TEXT UNIQUE,
    function TEXT NOT NULL,
    args TEXT NOT NULL,
    kwargs TEXT NOT NULL,
    priority REAL NOT NULL DEFAULT 0,
    state TEXT NOT NULL
        CHECK (state IN ('pending', 'running', 'done', 'failed')),
    owner TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    result TEXT,
    error TEXT,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS tasks_by_state ON tasks (state, owner);
"""


class Transaction:
    """Run the statements inside `with` in one write transaction, or none of them."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def __enter__(self) -> None:
        # IMMEDIATE takes the write lock at once, so two processes cannot both read
        # a row and then both decide to update it.
        self._conn.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is None:
            self._conn.execute("COMMIT")
        else:
            self._conn.execute("ROLLBACK")


def connect_for_writing(
    path: str,
    busy_timeout: float,
    register: Callable[[sqlite3.Connection], None],
) -> sqlite3.Connection:
    """Open `path` in WAL mode, create the schema if missing, then call `register`.

    Raises:
        JournalError: The file cannot be opened or is not a syncq journal, or
            `register` failed with a `sqlite3.Error`.
    """

    def prepare(conn: sqlite3.Connection) -> None:
        _prepare_for_writing(path, conn)
        register(conn)

    return _open(path, path, busy_timeout, prepare, uri=False)


def connect_read_only(path: str, busy_timeout: float) -> sqlite3.Connection:
    """Open the existing journal at `path` for reading only.

    Raises:
        JournalError: The file is missing, cannot be opened, or is not a journal
            this syncq can read.
    """
    if not os.path.isfile(path):
        raise JournalError(f"journal {path} not found")
    uri = "file:" + urllib.parse.quote(os.path.abspath(path)) + "?mode=ro"
    check = functools.partial(_check_schema_readable, path)
    try:
        return _open(path, uri, busy_timeout, check, uri=True)
    except JournalError:
        if os.access(os.path.dirname(os.path.abspath(path)), os.W_OK):
            raise
    # A journal in WAL mode needs its -shm file, which SQLite cannot create in
    # a folder it may not write, such as a read-only mount. No run can write
    # the file there either, so it is opened as immutable: read as it is.
    logger.info("journal %s is in a read-only folder; reading it as immutable", path)
    return _open(path, uri + "&immutable=1", busy_timeout, check, uri=True)


def _open(
    path: str,
    target: str,
    busy_timeout: float,
    prepare: Callable[[sqlite3.Connection], None],
    *,
    uri: bool,
) -> sqlite3.Connection:
    """Connect to `target`, check it is a journal, then run `prepare` on it."""
    try:
        conn = sqlite3.connect(
            target,
            uri=uri,
            timeout=busy_timeout,
            isolation_level=None,
            check_same_thread=False,
        )
    except sqlite3.Error as exc:
        raise JournalError(f"cannot open journal {path}: {exc}") from exc
    try:
        _check_file(path, conn)
        prepare(conn)
    except sqlite3.Error as exc:
        conn.close()
        raise JournalError(_describe_open_error(path, exc)) from exc
    except JournalError:
        conn.close()
        raise
    return conn


def _prepare_for_writing(path: str, conn: sqlite3.Connection) -> None:
    mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
    if mode != "wal":
        raise JournalError(
            f"journal {path} cannot use WAL mode (got {mode!r}); "
            "put it on a local file system"
        )
    conn.execute("PRAGMA synchronous=FULL")
    _create_schema(path, conn)


def _check_schema_readable(path: str, conn: sqlite3.Connection) -> None:
    row = conn.execute(
        "SELECT value FROM meta WHERE name = 'schema_version'"
    ).fetchone()
    if row is None or _schema_version(path, row[0]) > SCHEMA_VERSION:
        raise JournalError(f"journal {path} has no schema this syncq understands")


def _check_file(path: str, conn: sqlite3.Connection) -> None:
    app_id = conn.execute("PRAGMA application_id").fetchone()[0]
    tables = {
        row[0]
        for row in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")
    }
    if app_id not in (0, APPLICATION_ID) or (app_id == 0 and tables):
        raise JournalError(
            f"{path} is an SQLite database but not a syncq journal; choose another path"
        )


def _create_schema(path: str, conn: sqlite3.Connection) -> None:
    with Transaction(conn):
        for statement in _SCHEMA.split(";"):
            if statement.strip():
                conn.execute(statement)
        row = conn.execute(
            "SELECT value FROM meta WHERE name = 'schema_version'"
        ).fetchone()
        if row is None:
            conn.execute(
                "INSERT INTO meta (name, value) VALUES ('schema_version', ?)",
                (str(SCHEMA_VERSION),),
            )
        elif _schema_version(path, row[0]) > SCHEMA_VERSION:
            raise JournalError(
                f"journal {path} has schema version {row[0]}, newer than this "
                f"syncq understands ({SCHEMA_VERSION}); upgrade syncq"
            )
        conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")


def _schema_version(path: str, value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise JournalError(
            f"journal {path} is corrupt: its schema version is {value!r}, not a number"
        ) from None


def _describe_open_error(path: str, exc: sqlite3.Error) -> str:
    text = str(exc)
    if "not a database" in text or "malformed" in text:
        return f"journal {path} is corrupt or not an SQLite file: {text}"
    if "readonly" in text or "read-only" in text:
        return (
            f"journal {path} is read-only: {text}; "
            "syncq needs write access to the file and its folder"
        )
    if "locked" in text or "busy" in text:
        return f"journal {path} is locked by another process: {text}"
    return f"cannot open journal {path}: {text}"
