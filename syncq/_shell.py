"""Run one shell command in a process group of its own, for the ``syncq`` command.

`run_command` is the function that the ``syncq run`` command hands to its worker
pool. It is an importable module-level function whose arguments and return value
are JSON-serializable, so a journal can record it and a later run can call it
again. Each command runs in a new session, so a timeout or an interrupt stops the
command's whole process group and not only the shell that started it.

Output is decoded as UTF-8 with the ``surrogateescape`` error handler, so bytes
that are not UTF-8 survive the round trip through JSON: encoding the text the
same way gives back the exact bytes the command wrote.

NOTE: process groups and ``os.killpg`` exist on POSIX systems only.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
from typing import TypedDict

from syncq._checks import check_positive
from syncq.errors import SyncqError

__all__ = [
    "KILL_GRACE",
    "CommandFailed",
    "CommandResult",
    "allow_commands",
    "run_command",
    "stop_commands",
]

KILL_GRACE = 1.0
"""Seconds a command has to exit after SIGTERM before its group gets SIGKILL."""


class CommandResult(TypedDict):
    """The value `run_command` returns for a command that exited with status 0."""

    command: str
    returncode: int
    stdout: str
    stderr: str


class CommandFailed(SyncqError):
    """A shell command exited with a non-zero status, timed out or was stopped.

    The message states the cause alone ("exit status 2", "timed out after 5 s"),
    because a journal stores it beside the command's key.

    Attributes:
        command: The command line as given to the shell.
        returncode: The exit status, or minus the signal number that ended it.
        stdout: What the command wrote to standard output, decoded as the module
            docstring describes.
        stderr: What the command wrote to standard error, decoded the same way.
        timed_out: True if the command ran past its timeout and was killed.
        interrupted: True if `stop_commands` stopped it.
        timeout: The timeout in seconds that applied, or None.
    """

    def __init__(
        self,
        command: str,
        returncode: int,
        stdout: str,
        stderr: str,
        *,
        timed_out: bool = False,
        interrupted: bool = False,
        timeout: float | None = None,
    ) -> None:
        self.command = command
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr
        self.timed_out = timed_out
        self.interrupted = interrupted
        self.timeout = timeout
        super().__init__(self._describe())

    def _describe(self) -> str:
        if self.interrupted:
            return "stopped by syncq before it finished"
        if self.timed_out and self.timeout is not None:
            return f"timed out after {self.timeout:g} s"
        if self.returncode < 0:
            return f"killed by signal {_signal_name(-self.returncode)}"
        return f"exit status {self.returncode}"


def _signal_name(number: int) -> str:
    try:
        return f"{number} ({signal.Signals(number).name})"
    except ValueError:
        return str(number)


class _RunningCommands:
    """The processes that `run_command` has started and not yet reaped."""

    def __init__(self) -> None:
        # Guards _processes and _stopping. Notified (as _removed) when a process
        # leaves the set.
        self._lock = threading.Lock()
        self._removed = threading.Condition(self._lock)
        self._processes: set[subprocess.Popen[bytes]] = set()
        self._stopping = False

    @property
    def stopping(self) -> bool:
        """Whether `stop` was called and `allow` has not been called since."""
        with self._lock:
            return self._stopping

    def add(self, process: subprocess.Popen[bytes]) -> bool:
        """Track `process`; return False, tracking nothing, once `stop` was called."""
        with self._lock:
            if self._stopping:
                return False
            self._processes.add(process)
            return True

    def remove(self, process: subprocess.Popen[bytes]) -> None:
        """Stop tracking `process`."""
        with self._lock:
            self._processes.discard(process)
            self._removed.notify_all()

    def stop(self, grace: float) -> int:
        """Send SIGTERM to every group, then SIGKILL to those left after `grace`."""
        with self._lock:
            self._stopping = True
            processes = list(self._processes)
        for process in processes:
            _signal_group(process, signal.SIGTERM)
        with self._lock:
            # NOTE: a real-time wait, because the processes run in real time.
            self._removed.wait_for(lambda: not self._processes, grace)
            remaining = list(self._processes)
        for process in remaining:
            _signal_group(process, signal.SIGKILL)
        return len(processes)

    def allow(self) -> None:
        """Let `run_command` start processes again after `stop`."""
        with self._lock:
            self._stopping = False


_RUNNING = _RunningCommands()


def stop_commands(grace: float = KILL_GRACE) -> int:
    """Stop every command that `run_command` is running, and reject new ones.

    Each command's process group gets SIGTERM, and SIGKILL if it still runs
    `grace` seconds later. Until `allow_commands` is called, `run_command` raises
    `CommandFailed` with ``interrupted=True`` instead of starting a process.
    Blocks for at most about `grace` seconds. Thread-safe.

    Returns:
        The number of commands that were running.
    """
    return _RUNNING.stop(check_positive("grace", grace, unit=" of seconds"))


def allow_commands() -> None:
    """Let `run_command` start commands again after `stop_commands`."""
    _RUNNING.allow()


def run_command(command: str, timeout: float | None = None) -> CommandResult:
    """Run `command` with ``/bin/sh`` and return its exit status and output.

    The command runs in a new session, with standard input from ``/dev/null``
    and its output captured in memory. Blocks until the command and every
    process that keeps its output open have exited. With `timeout`, the
    command's process group gets SIGTERM once `timeout` seconds have passed, and
    SIGKILL `KILL_GRACE` seconds later. Thread-safe.

    NOTE: a descendant that leaves the process group (with ``setsid``, for
    instance) and keeps the output open delays the return until it closes the
    output, and a timeout cannot stop it. The timeout runs on the real clock,
    not on a `syncq.clock.Clock`, because the command runs in real time.

    Args:
        command: A shell command line.
        timeout: The maximum run time in seconds, or None for no limit.

    Returns:
        The command, its exit status (always 0) and its output.

    Raises:
        CommandFailed: The command exited with another status, timed out, or was
            stopped by `stop_commands`.
        TypeError: `command` is not a str, or `timeout` is not a number.
        ValueError: `timeout` is zero, negative, NaN or infinite.
        OSError: The shell could not be started.
    """
    if not isinstance(command, str):
        raise TypeError(f"command must be a str, got {command!r}")
    if timeout is not None:
        timeout = check_positive("timeout", timeout, unit=" of seconds")
    if _RUNNING.stopping:
        raise CommandFailed(command, -signal.SIGTERM, "", "", interrupted=True)

    process = subprocess.Popen(
        command,
        shell=True,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    if not _RUNNING.add(process):
        # stop_commands ran between the check above and the start.
        _signal_group(process, signal.SIGKILL)
    try:
        stdout, stderr, timed_out = _communicate(process, timeout)
    finally:
        _RUNNING.remove(process)

    returncode = process.returncode
    out_text = stdout.decode("utf-8", "surrogateescape")
    err_text = stderr.decode("utf-8", "surrogateescape")
    if returncode != 0 or timed_out:
        raise CommandFailed(
            command,
            returncode,
            out_text,
            err_text,
            timed_out=timed_out,
            interrupted=not timed_out and _RUNNING.stopping,
            timeout=timeout,
        )
    return {
        "command": command,
        "returncode": returncode,
        "stdout": out_text,
        "stderr": err_text,
    }


def _communicate(
    process: subprocess.Popen[bytes], timeout: float | None
) -> tuple[bytes, bytes, bool]:
    """Wait for `process` and read its output; kill its group past `timeout`."""
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        pass
    except BaseException:
        _signal_group(process, signal.SIGKILL)
        process.wait()
        raise
    else:
        return stdout, stderr, False

    _signal_group(process, signal.SIGTERM)
    try:
        stdout, stderr = process.communicate(timeout=KILL_GRACE)
    except subprocess.TimeoutExpired:
        _signal_group(process, signal.SIGKILL)
        stdout, stderr = _communicate_after_kill(process)
    return stdout, stderr, True


def _communicate_after_kill(process: subprocess.Popen[bytes]) -> tuple[bytes, bytes]:
    try:
        return process.communicate(timeout=KILL_GRACE)
    except subprocess.TimeoutExpired as exc:
        # The group is dead, so any process that still has the pipes open left
        # the group. Keep the output read so far and stop reading.
        process.kill()
        process.wait()
        for pipe in (process.stdout, process.stderr):
            if pipe is not None:
                pipe.close()
        return _as_bytes(exc.output), _as_bytes(exc.stderr)


def _as_bytes(data: bytes | str | None) -> bytes:
    if data is None:
        return b""
    if isinstance(data, str):
        return data.encode("utf-8", "surrogateescape")
    return data


def _signal_group(process: subprocess.Popen[bytes], signum: int) -> None:
    # start_new_session makes the shell the leader of a new group whose id is
    # its pid. The id stays reserved while the shell or any group member lives.
    # NOTE: between the shell being reaped and remove(), a stop() could signal a
    # new group that reused the id. That needs the pid counter to wrap around
    # within this short window.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signum)
