"""Tests for the ``syncq`` command and the shell runner behind it.

Most tests call `main` in this process. Those that kill or interrupt a run start
``python -m syncq`` as a child process. They run on the real clock and poll for
marker files with tiny sleeps.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Callable

import pytest

import syncq
from syncq import _cli_run, cli
from syncq._batch_halt import HALT_MIN_FINISHED, HaltCondition, parse_halt
from syncq._shell import CommandFailed, allow_commands, run_command, stop_commands
from syncq.journal import Journal, TaskState
from syncq.testing import FakeClock

# Starts the command with Python's SIGINT handler installed even when this test
# run inherited SIGINT as ignored (as background jobs of a shell do).
_CHILD_MAIN = (
    "import signal, sys\n"
    "signal.signal(signal.SIGINT, signal.default_int_handler)\n"
    "from syncq.cli import main\n"
    "sys.exit(main(sys.argv[1:]))\n"
)


@pytest.fixture(autouse=True)
def _commands_allowed() -> Iterator[None]:
    """Undo a `stop_commands` call of a test, so later tests can run commands."""
    yield
    allow_commands()


def _command_file(tmp_path: Path, *lines: str, name: str = "commands.txt") -> Path:
    path = tmp_path / name
    path.write_text("".join(line + "\n" for line in lines))
    return path


def _words(path: Path) -> list[str]:
    if not path.exists():
        return []
    return path.read_text().split()


def _journal_rows(path: Path) -> int:
    """Return how many tasks a journal file holds, reading it without a run."""
    if not path.exists():
        return 0
    connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return int(connection.execute("SELECT COUNT(*) FROM tasks").fetchone()[0])
    except sqlite3.Error:
        return 0
    finally:
        connection.close()


def _wait_for(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    """Poll `condition` on the real clock; fail the test if it stays false."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"condition not met within {timeout} s")
        time.sleep(0.02)


def _alive(pid: int) -> bool:
    """Return whether process `pid` exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            state = stat.read().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    except OSError:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True
    return state not in ("Z", "X")


def _syncq(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "syncq", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


class _TerminalStream(io.StringIO):
    """A text stream that claims to be a terminal."""

    def isatty(self) -> bool:
        return True


class TestRunCommand:
    def test_run_command_returns_output_and_status(self) -> None:
        result = run_command("echo out; echo err >&2")

        assert result == {
            "command": "echo out; echo err >&2",
            "returncode": 0,
            "stdout": "out\n",
            "stderr": "err\n",
        }

    def test_run_command_result_is_json_serializable(self) -> None:
        result = run_command("printf '\\377\\n'")

        assert json.loads(json.dumps(result)) == result

    def test_run_command_keeps_bytes_that_are_not_utf8(self) -> None:
        result = run_command("printf 'caf\\351\\n'")

        assert result["stdout"].encode("utf-8", "surrogateescape") == b"caf\xe9\n"

    def test_run_command_gives_commands_empty_stdin(self) -> None:
        result = run_command("cat; echo done")

        assert result["stdout"] == "done\n"

    def test_run_command_raises_on_nonzero_exit(self) -> None:
        with pytest.raises(CommandFailed) as caught:
            run_command("echo partial; echo oops >&2; exit 3")

        failure = caught.value
        assert failure.returncode == 3
        assert failure.stdout == "partial\n"
        assert failure.stderr == "oops\n"
        assert not failure.timed_out
        assert str(failure) == "exit status 3"

    def test_run_command_timeout_kills_process_group(self, tmp_path: Path) -> None:
        pid_file = tmp_path / "background.pid"
        started = time.monotonic()

        with pytest.raises(CommandFailed) as caught:
            run_command(f"sleep 30 & echo $! > {pid_file}; wait", timeout=0.3)

        assert time.monotonic() - started < 5
        assert caught.value.timed_out
        assert str(caught.value) == "timed out after 0.3 s"
        assert not _alive(int(pid_file.read_text()))

    def test_run_command_kills_group_that_ignores_sigterm(self) -> None:
        started = time.monotonic()

        with pytest.raises(CommandFailed) as caught:
            run_command("trap '' TERM; sleep 30", timeout=0.2)

        assert time.monotonic() - started < 5
        assert caught.value.timed_out
        assert caught.value.returncode == -signal.SIGKILL

    @pytest.mark.parametrize("timeout", [0, -1, float("nan"), float("inf")])
    def test_run_command_rejects_bad_timeout_value(self, timeout: float) -> None:
        with pytest.raises(ValueError, match="timeout"):
            run_command("true", timeout=timeout)

    @pytest.mark.parametrize("timeout", [True, "1"])
    def test_run_command_rejects_bad_timeout_type(self, timeout: object) -> None:
        with pytest.raises(TypeError, match="timeout"):
            run_command("true", timeout=timeout)  # type: ignore[arg-type]

    def test_run_command_rejects_command_not_str(self) -> None:
        with pytest.raises(TypeError, match="command"):
            run_command(["echo", "hi"])  # type: ignore[arg-type]


class TestStopCommands:
    @pytest.mark.timeout(15)
    def test_stop_commands_stops_running_command(self, tmp_path: Path) -> None:
        marker = tmp_path / "started"
        barrier = threading.Barrier(2)
        failures: list[CommandFailed] = []

        def run() -> None:
            barrier.wait(timeout=5)
            try:
                run_command(f"touch {marker}; exec sleep 30")
            except CommandFailed as exc:
                failures.append(exc)

        thread = threading.Thread(target=run)
        thread.start()
        barrier.wait(timeout=5)
        _wait_for(marker.exists)
        stopped = stop_commands()
        thread.join(timeout=10)

        assert not thread.is_alive()
        assert stopped == 1
        assert len(failures) == 1
        assert failures[0].interrupted

    def test_stop_commands_rejects_new_commands(self) -> None:
        stop_commands()

        with pytest.raises(CommandFailed) as caught:
            run_command("echo never")

        assert caught.value.interrupted

    def test_allow_commands_lets_commands_run_again(self) -> None:
        stop_commands()

        allow_commands()

        assert run_command("echo again")["stdout"] == "again\n"


class TestRun:
    def test_run_all_succeed_exits_zero(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        commands = _command_file(tmp_path, "echo one", "echo two")

        status = cli.main(["run", str(commands)])

        out = capsys.readouterr().out
        assert status == 0
        assert sorted(out.split()) == ["one", "two"]

    def test_run_summary_counts_commands(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        commands = _command_file(tmp_path, "true", "true", "true")

        cli.main(["run", str(commands)])

        err = capsys.readouterr().err
        assert "syncq: 3 commands: 3 succeeded, 0 failed, 0 skipped" in err
        assert "0 retries" in err

    def test_run_summary_reports_elapsed_on_clock(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        commands = _command_file(tmp_path, "true")
        args = cli.build_parser().parse_args(["run", str(commands)])

        _cli_run.run(args, clock=FakeClock(100.0))

        assert "0 retries, 0.00 s" in capsys.readouterr().err

    def test_run_skips_blank_lines_and_comments(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        commands = _command_file(tmp_path, "# a comment", "", "   ", "  # x", "echo a")

        cli.main(["run", str(commands)])

        captured = capsys.readouterr()
        assert captured.out == "a\n"
        assert "syncq: 1 command: 1 succeeded" in captured.err

    def test_run_groups_output_per_command(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        commands = _command_file(
            tmp_path,
            "echo a1; sleep 0.3; echo a2",
            "echo b1; sleep 0.1; echo b2",
        )

        cli.main(["run", "--workers", "2", str(commands)])

        out = capsys.readouterr().out
        assert "a1\na2\n" in out
        assert "b1\nb2\n" in out

    def test_run_writes_command_stderr_to_stderr(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        commands = _command_file(tmp_path, "echo problem >&2")

        cli.main(["run", str(commands)])

        captured = capsys.readouterr()
        assert captured.out == ""
        assert captured.err.startswith("problem\n")

    def test_run_failing_command_exits_one(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        commands = _command_file(tmp_path, "true", "exit 3")

        status = cli.main(["run", str(commands)])

        assert status == 1

    def test_run_failing_command_is_listed(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        commands = _command_file(tmp_path, "true", "exit 3")

        cli.main(["run", str(commands)])

        err = capsys.readouterr().err
        assert "1 succeeded, 1 failed" in err
        assert "syncq: failed (exit status 3): exit 3" in err

    def test_run_retries_command_until_it_succeeds(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        marker = tmp_path / "tried"
        commands = _command_file(
            tmp_path,
            f"if [ -e {marker} ]; then echo second; "
            f"else touch {marker}; echo first; exit 1; fi",
        )

        status = cli.main(["run", "--retries", "2", str(commands)])

        captured = capsys.readouterr()
        assert status == 0
        assert captured.out == "second\n"
        assert "1 succeeded, 0 failed, 0 skipped (done in an earlier run), 1 retry" in (
            captured.err
        )

    def test_run_gives_up_after_retries(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        log = tmp_path / "attempts"
        commands = _command_file(tmp_path, f"echo x >> {log}; exit 1")

        status = cli.main(["run", "--retries", "1", str(commands)])

        assert status == 1
        assert _words(log) == ["x", "x"]

    @pytest.mark.timeout(10)
    def test_run_timeout_stops_command_quickly(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        commands = _command_file(tmp_path, "sleep 30")
        started = time.monotonic()

        status = cli.main(["run", "--timeout", "0.3", str(commands)])

        assert time.monotonic() - started < 5
        assert status == 1
        assert "syncq: failed (timed out after 0.3 s): sleep 30" in (
            capsys.readouterr().err
        )

    def test_run_rate_limits_command_starts(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        starts = tmp_path / "starts"
        commands = _command_file(tmp_path, *[f"date +%s%N >> {starts}"] * 10)
        rate, burst = 20.0, 2

        status = cli.main(
            ["run", "-j", "10", "--rate", "20/s", "--burst", "2", str(commands)]
        )

        times = sorted(int(word) / 1e9 for word in _words(starts))
        assert status == 0
        assert len(times) == 10
        # A token bucket starts at most burst + rate * T commands in any T
        # seconds. One more is allowed because each start is stamped after a
        # process launch of varying length.
        for first in range(len(times)):
            for last in range(first, len(times)):
                span = times[last] - times[first]
                assert last - first + 1 <= burst + rate * span + 1

    def test_run_reads_standard_input(
        self,
        tmp_path: Path,
        capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        stdin = io.TextIOWrapper(io.BytesIO(b"echo from-stdin\n"))
        monkeypatch.setattr(sys, "stdin", stdin)

        status = cli.main(["run", "-"])

        assert status == 0
        assert capsys.readouterr().out == "from-stdin\n"

    def test_run_missing_file_exits_one(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        missing = tmp_path / "missing.txt"

        status = cli.main(["run", str(missing)])

        err = capsys.readouterr().err
        assert status == 1
        expected = f"syncq: error: cannot read {missing}: No such file or directory\n"
        assert err == expected

    def test_run_directory_as_file_exits_one(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        status = cli.main(["run", str(tmp_path)])

        assert status == 1
        assert capsys.readouterr().err.startswith("syncq: error: cannot read")

    def test_run_empty_file_exits_zero(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        commands = _command_file(tmp_path)

        status = cli.main(["run", str(commands)])

        assert status == 0
        assert "syncq: 0 commands" in capsys.readouterr().err

    def test_run_progress_line_on_terminal(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        terminal = _TerminalStream()
        monkeypatch.setattr(sys, "stderr", terminal)
        monkeypatch.setattr(sys, "stdout", io.StringIO())
        commands = _command_file(tmp_path, "sleep 0.3", "true")

        cli.main(["run", str(commands)])

        written = terminal.getvalue()
        progress, _, summary = written.rpartition("\r\x1b[K")
        assert "\r\x1b[Ksyncq: " in progress
        assert " done, 0 failed, " in progress
        assert summary.startswith("syncq: 2 commands:")

    def test_run_no_progress_line_without_terminal(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        commands = _command_file(tmp_path, "sleep 0.3")

        cli.main(["run", str(commands)])

        assert "\r" not in capsys.readouterr().err

    @pytest.mark.parametrize(
        "argv",
        [["-v", "run"], ["run", "-v"]],
        ids=["before-command", "after-command"],
    )
    def test_run_verbose_logs_to_stderr(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str]
    ) -> None:
        commands = _command_file(tmp_path, "true")

        cli.main([*argv, str(commands)])

        assert "syncq: INFO: pool syncq-run" in capsys.readouterr().err

    def test_run_verbose_removes_its_handler(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        syncq_logger = logging.getLogger("syncq")
        handlers = list(syncq_logger.handlers)
        level = syncq_logger.level
        commands = _command_file(tmp_path, "true")

        cli.main(["-vv", "run", str(commands)])

        assert syncq_logger.handlers == handlers
        assert syncq_logger.level == level


class TestOptions:
    @pytest.mark.parametrize(
        ("options", "value"),
        [
            (["--workers", "0"], "'0'"),
            (["--workers=-1"], "'-1'"),
            (["--workers", "1.5"], "'1.5'"),
            (["--workers", "nan"], "'nan'"),
            (["--workers", "inf"], "'inf'"),
            (["-j", "many"], "'many'"),
            (["--rate", "fast"], "'fast'"),
            (["--rate", "0/s"], "'0/s'"),
            (["--rate", "10/fortnight"], "'10/fortnight'"),
            (["--rate=-5"], "'-5'"),
            (["--rate", "nan"], "'nan'"),
            (["--rate", "inf"], "'inf'"),
            (["--burst", "0", "--rate", "1/s"], "'0'"),
            (["--retries=-1"], "'-1'"),
            (["--retries", "two"], "'two'"),
            (["--timeout", "0"], "'0'"),
            (["--timeout=-1"], "'-1'"),
            (["--timeout", "nan"], "'nan'"),
            (["--timeout", "inf"], "'inf'"),
            (["--timeout", "soon"], "'soon'"),
            (["--halt", "later"], "'later'"),
            (["--halt", "soon"], "'soon'"),
            (["--halt", "soon,fail"], "'soon,fail'"),
            (["--halt", "soon,fail="], "'soon,fail='"),
            (["--halt", "soon,fail=0"], "'soon,fail=0'"),
            (["--halt", "soon,fail=1.5"], "'soon,fail=1.5'"),
            (["--halt", "soon,fail=-1"], "'soon,fail=-1'"),
            (["--halt", "soon,fail=0%"], "'soon,fail=0%'"),
            (["--halt", "soon,fail=101%"], "'soon,fail=101%'"),
            (["--halt", "soon,fail=nan%"], "'soon,fail=nan%'"),
            (["--halt", "now,crash=1"], "'now,crash=1'"),
            (["--halt", "never,fail=1"], "'never,fail=1'"),
            (["--halt", "soon,fail=1,now"], "'soon,fail=1,now'"),
            (["--halt", "Now,fail=1"], "'Now,fail=1'"),
        ],
    )
    def test_options_reject_bad_value(
        self, capsys: pytest.CaptureFixture[str], options: list[str], value: str
    ) -> None:
        status = cli.main(["run", *options, "commands.txt"])

        err = capsys.readouterr().err
        assert status == 2
        assert f"{value}: expected" in err

    def test_options_halt_error_lists_accepted_forms(
        self, capsys: pytest.CaptureFixture[str]
    ) -> None:
        cli.main(["run", "--halt", "soon,fail=0", "commands.txt"])

        err = capsys.readouterr().err
        assert "WHEN,fail=N, WHEN,fail=P%, WHEN,success=N or WHEN,success=P%" in err
        assert "WHEN is soon or now" in err

    def test_options_halt_never_means_no_condition(self) -> None:
        args = cli.build_parser().parse_args(["run", "--halt", "never", "f"])

        assert args.halt is None

    def test_options_burst_needs_rate(self, capsys: pytest.CaptureFixture[str]) -> None:
        status = cli.main(["run", "--burst", "5", "commands.txt"])

        assert status == 2
        assert "--burst needs --rate" in capsys.readouterr().err

    def test_options_command_is_required(
        self, capsys: pytest.CaptureFixture[str]
    ) -> None:
        status = cli.main([])

        assert status == 2
        assert "usage: syncq" in capsys.readouterr().err

    def test_options_version_prints_version(
        self, capsys: pytest.CaptureFixture[str]
    ) -> None:
        status = cli.main(["--version"])

        assert status == 0
        assert capsys.readouterr().out == f"syncq {syncq.__version__}\n"

    def test_options_help_mentions_rate_unit(
        self, capsys: pytest.CaptureFixture[str]
    ) -> None:
        cli.main(["run", "--help"])

        assert "per time unit" in capsys.readouterr().out


class TestJournal:
    def test_journal_rerun_skips_done_commands(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str], journal_path: Path
    ) -> None:
        log = tmp_path / "log"
        commands = _command_file(tmp_path, f"echo a >> {log}", f"echo b >> {log}")
        cli.main(["run", "--journal", str(journal_path), str(commands)])
        capsys.readouterr()

        status = cli.main(["run", "--journal", str(journal_path), str(commands)])

        assert status == 0
        assert sorted(_words(log)) == ["a", "b"]
        assert "0 succeeded, 0 failed, 2 skipped" in capsys.readouterr().err

    def test_journal_rerun_runs_failed_and_new_commands(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str], journal_path: Path
    ) -> None:
        log = tmp_path / "log"
        marker = tmp_path / "tried"
        first = [
            f"echo a >> {log}",
            f"test -e {marker} || {{ touch {marker}; exit 1; }}; echo b >> {log}",
        ]
        commands = _command_file(tmp_path, *first)
        cli.main(["run", "--journal", str(journal_path), str(commands)])
        commands = _command_file(tmp_path, *first, f"echo c >> {log}")

        status = cli.main(["run", "--journal", str(journal_path), str(commands)])

        assert status == 0
        assert sorted(_words(log)) == ["a", "b", "c"]
        assert "2 succeeded, 0 failed, 1 skipped" in capsys.readouterr().err

    def test_journal_repeated_lines_each_run_once(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str], journal_path: Path
    ) -> None:
        log = tmp_path / "log"
        commands = _command_file(tmp_path, *[f"echo x >> {log}"] * 3)
        cli.main(["run", "--journal", str(journal_path), str(commands)])

        cli.main(["run", "--journal", str(journal_path), str(commands)])

        assert _words(log) == ["x", "x", "x"]
        assert "3 skipped" in capsys.readouterr().err

    def test_journal_corrupt_file_exits_one(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str], journal_path: Path
    ) -> None:
        journal_path.write_bytes(b"this is not an SQLite database" * 100)
        commands = _command_file(tmp_path, "true")

        status = cli.main(["run", "--journal", str(journal_path), str(commands)])

        err = capsys.readouterr().err
        assert status == 1
        assert err.startswith(f"syncq: error: journal {journal_path} is corrupt")
        assert "Traceback" not in err

    def test_journal_line_not_utf8_exits_one(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str], journal_path: Path
    ) -> None:
        commands = tmp_path / "commands.txt"
        commands.write_bytes(b"echo caf\xe9\n")

        status = cli.main(["run", "--journal", str(journal_path), str(commands)])

        assert status == 1
        assert "line 1 of" in capsys.readouterr().err

    def test_journal_owned_by_live_run_rejected(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str], journal_path: Path
    ) -> None:
        commands = _command_file(tmp_path, "true")
        with Journal(journal_path) as other_run:
            other_run.add("syncq._shell:run_command", '["true", null]', "{}", key="x")

            status = cli.main(["run", "--journal", str(journal_path), str(commands)])

        assert status == 1
        assert "another running syncq owns" in capsys.readouterr().err

    def test_journal_records_done_commands(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str], journal_path: Path
    ) -> None:
        commands = _command_file(tmp_path, "echo a", "echo a")

        cli.main(["run", "--journal", str(journal_path), str(commands)])

        with Journal(journal_path) as journal:
            keys = [task.key for task in journal.tasks(TaskState.DONE)]
        assert sorted(keys, key=str) == ["echo a", "echo a\n#2"]


class TestStatus:
    def test_status_prints_counts_and_failures(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str], journal_path: Path
    ) -> None:
        commands = _command_file(tmp_path, "true", "exit 4")
        cli.main(["run", "--journal", str(journal_path), str(commands)])
        capsys.readouterr()

        status = cli.main(["status", str(journal_path)])

        assert status == 0
        assert capsys.readouterr().out == (
            "pending: 0\n"
            "running: 0\n"
            "done:    1\n"
            "failed:  1\n"
            "failed tasks:\n"
            "  exit 4: CommandFailed: exit status 4\n"
        )

    def test_status_shows_repeated_line_number(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str], journal_path: Path
    ) -> None:
        commands = _command_file(tmp_path, "exit 4", "exit 4")
        cli.main(["run", "--journal", str(journal_path), str(commands)])
        capsys.readouterr()

        cli.main(["status", str(journal_path)])

        out = capsys.readouterr().out
        assert "  exit 4 (#2): CommandFailed: exit status 4\n" in out

    def test_status_missing_journal_exits_one(
        self, capsys: pytest.CaptureFixture[str], journal_path: Path
    ) -> None:
        status = cli.main(["status", str(journal_path)])

        assert status == 1
        assert capsys.readouterr().err == (
            f"syncq: error: journal {journal_path} not found\n"
        )
        assert not journal_path.exists()


@pytest.mark.slow
class TestProcess:
    def test_process_module_runs_batch(self, tmp_path: Path) -> None:
        commands = _command_file(tmp_path, "echo hello")

        result = _syncq("run", str(commands), cwd=tmp_path)

        assert result.returncode == 0
        assert result.stdout == "hello\n"
        assert "syncq: 1 command: 1 succeeded" in result.stderr

    @pytest.mark.timeout(30)
    def test_process_killed_run_resumes_from_journal(
        self, tmp_path: Path, journal_path: Path
    ) -> None:
        log = tmp_path / "log"
        commands = _command_file(
            tmp_path, *[f"sleep 0.2; echo {n} >> {log}" for n in range(1, 21)]
        )
        argv = ["-m", "syncq", "run", "-j", "2", "--journal", str(journal_path)]
        first = subprocess.Popen([sys.executable, *argv, str(commands)], cwd=tmp_path)
        try:
            _wait_for(lambda: len(_words(log)) >= 4)
        finally:
            first.kill()
            first.wait(timeout=10)
        done_before = len(_words(log))

        result = _syncq(*argv[2:], str(commands), cwd=tmp_path)

        words = _words(log)
        counts = {n: words.count(str(n)) for n in range(1, 21)}
        assert result.returncode == 0
        assert all(count >= 1 for count in counts.values())
        # Only the commands in flight at the kill (at most one per worker) run
        # twice.
        assert sum(count - 1 for count in counts.values()) <= 2
        assert len(words) <= 20 + 2
        assert done_before >= 4

    @pytest.mark.timeout(30)
    @pytest.mark.parametrize(
        ("signum", "expected"),
        [(signal.SIGINT, 130), (signal.SIGTERM, 143)],
        ids=["SIGINT", "SIGTERM"],
    )
    def test_process_interrupt_stops_commands_promptly(
        self, tmp_path: Path, journal_path: Path, signum: int, expected: int
    ) -> None:
        pids = tmp_path / "pids"
        commands = _command_file(tmp_path, *[f"echo $$ >> {pids}; exec sleep 30"] * 6)
        argv = ["run", "-j", "2", "--journal", str(journal_path), str(commands)]
        child = subprocess.Popen(
            [sys.executable, "-c", _CHILD_MAIN, *argv],
            cwd=tmp_path,
            stderr=subprocess.PIPE,
            text=True,
        )
        _wait_for(lambda: len(_words(pids)) == 2)
        # The input is read lazily: wait until every line is in the journal.
        _wait_for(lambda: _journal_rows(journal_path) == 6)
        started = time.monotonic()

        child.send_signal(signum)
        _, err = child.communicate(timeout=10)

        assert child.returncode == expected
        assert time.monotonic() - started < 5
        assert "stopped 2 running commands; 4 commands did not start" in err
        assert not any(_alive(int(pid)) for pid in _words(pids))
        with Journal(journal_path) as journal:
            assert journal.counts()[TaskState.PENDING] == 4


class TestHaltCondition:
    def test_halt_condition_never_parses_to_none(self) -> None:
        assert parse_halt("never") is None

    def test_halt_condition_parses_count(self) -> None:
        assert parse_halt("now,fail=3") == HaltCondition("now", "fail", count=3)

    def test_halt_condition_parses_percentage(self) -> None:
        condition = parse_halt("soon,success=2.5%")

        assert condition == HaltCondition("soon", "success", percent=2.5)

    @pytest.mark.parametrize(
        "text", ["now,fail=1", "soon,fail=3", "soon,fail=10%", "now,success=2.5%"]
    )
    def test_halt_condition_prints_as_given(self, text: str) -> None:
        assert str(parse_halt(text)) == text

    def test_halt_condition_count_counts_failures(self) -> None:
        condition = HaltCondition("soon", "fail", count=2)

        assert not condition.reached(succeeded=5, failed=1)
        assert condition.reached(succeeded=0, failed=2)

    def test_halt_condition_count_counts_successes(self) -> None:
        condition = HaltCondition("soon", "success", count=2)

        assert not condition.reached(succeeded=1, failed=5)
        assert condition.reached(succeeded=2, failed=0)

    def test_halt_condition_percentage_of_finished_commands(self) -> None:
        condition = HaltCondition("soon", "fail", percent=50)

        assert condition.reached(succeeded=2, failed=2)
        assert not condition.reached(succeeded=3, failed=2)

    def test_halt_condition_percentage_waits_for_minimum(self) -> None:
        condition = HaltCondition("soon", "fail", percent=50)

        assert not condition.reached(succeeded=0, failed=HALT_MIN_FINISHED - 1)
        assert condition.reached(succeeded=0, failed=HALT_MIN_FINISHED)


def _halt_run(
    tmp_path: Path, halt: str, *lines: str, options: tuple[str, ...] = ("-j", "1")
) -> subprocess.CompletedProcess[str]:
    """Run `lines` with ``syncq run --halt`` in a child process."""
    commands = _command_file(tmp_path, *lines)
    return _syncq("run", *options, "--halt", halt, str(commands), cwd=tmp_path)


@pytest.mark.timeout(30)
class TestHalt:
    def test_halt_soon_starts_no_more_commands(self, tmp_path: Path) -> None:
        log = tmp_path / "log"

        _halt_run(tmp_path, "soon,fail=1", "exit 3", *[f"echo x >> {log}"] * 3)

        assert _words(log) == []

    def test_halt_fail_one_exits_with_command_status(self, tmp_path: Path) -> None:
        result = _halt_run(tmp_path, "soon,fail=1", "exit 3", "true")

        assert result.returncode == 3

    def test_halt_fail_one_signal_exit_status(self, tmp_path: Path) -> None:
        result = _halt_run(tmp_path, "soon,fail=1", "kill -USR1 $$", "true")

        assert result.returncode == 128 + signal.SIGUSR1

    def test_halt_soon_reports_reason_in_summary(self, tmp_path: Path) -> None:
        result = _halt_run(tmp_path, "soon,fail=1", "exit 3", "true", "true")

        assert (
            "syncq: halted by --halt soon,fail=1 after 1 command failed: waited for "
            "0 running commands; 2 commands did not start"
        ) in result.stderr

    def test_halt_summary_says_input_was_not_all_read(self, tmp_path: Path) -> None:
        # Far more lines than the reader reads ahead of one worker.
        result = _halt_run(tmp_path, "now,fail=1", "exit 3", *["true"] * 2000)

        assert "the rest of the input was not read" in result.stderr

    def test_halt_summary_omits_unread_note_at_end(self, tmp_path: Path) -> None:
        result = _halt_run(tmp_path, "soon,fail=1", "true", "exit 3")

        assert "not read" not in result.stderr

    def test_halt_soon_waits_for_running_commands(self, tmp_path: Path) -> None:
        log = tmp_path / "log"
        started = tmp_path / "started"

        result = _halt_run(
            tmp_path,
            "soon,fail=1",
            f"touch {started}; sleep 0.3; echo a >> {log}",
            f"until [ -e {started} ]; do sleep 0.02; done; exit 1",
            *[f"echo c >> {log}"] * 3,
            options=("-j", "2"),
        )

        assert _words(log) == ["a"]
        assert "waited for 1 running command;" in result.stderr

    def test_halt_now_stops_running_commands(self, tmp_path: Path) -> None:
        pids = tmp_path / "pids"
        log = tmp_path / "log"
        started = time.monotonic()

        result = _halt_run(
            tmp_path,
            "now,fail=1",
            f"until [ -s {pids} ] && [ $(wc -l < {pids}) -ge 2 ]; do sleep 0.02; "
            "done; exit 2",
            *[f"echo $$ >> {pids}; exec sleep 30"] * 2,
            f"echo x >> {log}",
            options=("-j", "3"),
        )

        assert time.monotonic() - started < 10
        assert result.returncode == 2
        assert (
            "halted by --halt now,fail=1 after 1 command failed: stopped 2 running "
            "commands; 1 command did not start"
        ) in result.stderr
        assert not any(_alive(int(pid)) for pid in _words(pids))
        assert _words(log) == []

    def test_halt_fail_count_exits_with_failure_count(self, tmp_path: Path) -> None:
        log = tmp_path / "log"

        result = _halt_run(
            tmp_path, "soon,fail=2", "exit 5", "exit 6", f"echo x >> {log}"
        )

        assert result.returncode == 2
        assert _words(log) == []

    def test_halt_fail_percentage_waits_for_minimum(self, tmp_path: Path) -> None:
        log = tmp_path / "log"
        lines = [f"echo {n} >> {log}" for n in range(1, 7)]
        lines[0] += "; exit 1"
        lines[3] += "; exit 1"

        result = _halt_run(tmp_path, "soon,fail=50%", *lines)

        # 1 of 1 finished failed, but a percentage waits for 3 finished; the
        # fourth makes 2 of 4.
        assert _words(log) == ["1", "2", "3", "4"]
        assert result.returncode == 50
        assert "after 2 of 4 finished commands failed" in result.stderr

    def test_halt_success_count_exits_zero(self, tmp_path: Path) -> None:
        log = tmp_path / "log"

        result = _halt_run(
            tmp_path, "soon,success=2", "exit 1", "true", "true", f"echo x >> {log}"
        )

        assert result.returncode == 0
        assert _words(log) == []

    def test_halt_success_percentage_exits_zero(self, tmp_path: Path) -> None:
        log = tmp_path / "log"

        result = _halt_run(
            tmp_path, "now,success=60%", "true", "exit 1", "true", f"echo x >> {log}"
        )

        assert result.returncode == 0
        assert _words(log) == []

    def test_halt_counts_command_after_its_retries(self, tmp_path: Path) -> None:
        log = tmp_path / "log"

        result = _halt_run(
            tmp_path,
            "soon,fail=1",
            f"echo x >> {log}; exit 1",
            options=("-j", "1", "--retries", "1"),
        )

        # Counting the first attempt would have halted before the retry.
        assert _words(log) == ["x", "x"]
        assert "halted by --halt soon,fail=1 after 1 command failed" in result.stderr

    def test_halt_leaves_unstarted_commands_pending(
        self, tmp_path: Path, journal_path: Path
    ) -> None:
        gate = tmp_path / "gate"
        log = tmp_path / "log"
        commands = _command_file(
            tmp_path,
            f"until [ -e {gate} ]; do sleep 0.02; done; exit 1",
            *[f"echo {n} >> {log}" for n in range(2, 5)],
        )
        argv = ["run", "-j", "1", "--halt", "soon,fail=1", "--journal"]
        child = subprocess.Popen(
            [sys.executable, "-m", "syncq", *argv, str(journal_path), str(commands)],
            cwd=tmp_path,
            stderr=subprocess.DEVNULL,
        )
        try:
            # The input is read lazily: wait until every line is in the journal.
            _wait_for(lambda: _journal_rows(journal_path) == 4)
        finally:
            gate.touch()
            child.wait(timeout=10)

        with Journal(journal_path, read_only=True) as journal:
            counts = journal.counts()
        assert counts[TaskState.PENDING] == 3
        assert counts[TaskState.FAILED] == 1
        assert _words(log) == []

    def test_halt_rerun_runs_remaining_commands(
        self, tmp_path: Path, journal_path: Path
    ) -> None:
        log = tmp_path / "log"
        marker = tmp_path / "tried"
        commands = _command_file(
            tmp_path,
            f"test -e {marker} || {{ touch {marker}; exit 1; }}; echo 1 >> {log}",
            *[f"echo {n} >> {log}" for n in range(2, 7)],
        )
        argv = ["run", "-j", "1", "--journal", str(journal_path), str(commands)]
        halted = _syncq(*argv[:1], "--halt", "soon,fail=1", *argv[1:], cwd=tmp_path)

        rerun = _syncq(*argv, cwd=tmp_path)

        assert halted.returncode == 1
        assert rerun.returncode == 0
        assert sorted(_words(log)) == [str(n) for n in range(1, 7)]


def _age(path: Path, key: str, seconds: float) -> None:
    """Make the task with `key` look as if its state changed `seconds` ago."""
    with contextlib.closing(sqlite3.connect(path)) as connection, connection:
        connection.execute(
            "UPDATE tasks SET updated_at = ? WHERE key = ?",
            (time.time() - seconds, key),
        )


def _states(path: Path) -> dict[str, str]:
    """Return the state of each keyed task in a journal file."""
    with Journal(path, read_only=True) as journal:
        return {task.key: task.state for task in journal.tasks() if task.key}


class TestRetry:
    def test_retry_moves_failed_tasks_to_pending(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str], journal_path: Path
    ) -> None:
        commands = _command_file(tmp_path, "true", "exit 4", "exit 5")
        cli.main(["run", "--journal", str(journal_path), str(commands)])
        capsys.readouterr()

        status = cli.main(["retry", str(journal_path)])

        assert status == 0
        assert _states(journal_path) == {
            "true": TaskState.DONE,
            "exit 4": TaskState.PENDING,
            "exit 5": TaskState.PENDING,
        }
        assert capsys.readouterr().out == (
            "moved 2 failed tasks back to pending; the next syncq run with "
            f"--journal {journal_path} runs them\n"
        )

    def test_retry_next_run_runs_requeued_tasks(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str], journal_path: Path
    ) -> None:
        log = tmp_path / "log"
        marker = tmp_path / "tried"
        commands = _command_file(
            tmp_path,
            f"test -e {marker} || {{ touch {marker}; exit 1; }}; echo ok >> {log}",
        )
        cli.main(["run", "--journal", str(journal_path), str(commands)])
        cli.main(["retry", str(journal_path)])
        empty = _command_file(tmp_path, name="empty.txt")
        capsys.readouterr()

        status = cli.main(["run", "--journal", str(journal_path), str(empty)])

        assert status == 0
        assert _words(log) == ["ok"]
        assert "1 command left unfinished by an earlier run ran again" in (
            capsys.readouterr().err
        )

    def test_retry_key_moves_only_that_task(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str], journal_path: Path
    ) -> None:
        commands = _command_file(tmp_path, "exit 4", "exit 5")
        cli.main(["run", "--journal", str(journal_path), str(commands)])

        status = cli.main(["retry", str(journal_path), "--key", "exit 5"])

        assert status == 0
        assert _states(journal_path) == {
            "exit 4": TaskState.FAILED,
            "exit 5": TaskState.PENDING,
        }

    def test_retry_key_as_status_shows_repeat(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str], journal_path: Path
    ) -> None:
        commands = _command_file(tmp_path, "exit 4", "exit 4")
        cli.main(["run", "--journal", str(journal_path), str(commands)])

        cli.main(["retry", str(journal_path), "--key", "exit 4 (#2)"])

        assert _states(journal_path) == {
            "exit 4": TaskState.FAILED,
            "exit 4\n#2": TaskState.PENDING,
        }

    def test_retry_unknown_key_exits_one(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str], journal_path: Path
    ) -> None:
        commands = _command_file(tmp_path, "exit 4")
        cli.main(["run", "--journal", str(journal_path), str(commands)])
        capsys.readouterr()

        status = cli.main(
            ["retry", str(journal_path), "--key", "exit 4", "--key", "exit 9"]
        )

        assert status == 1
        assert "no task has key 'exit 9'" in capsys.readouterr().err
        assert _states(journal_path) == {"exit 4": TaskState.FAILED}

    def test_retry_key_not_failed_exits_one(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str], journal_path: Path
    ) -> None:
        commands = _command_file(tmp_path, "true")
        cli.main(["run", "--journal", str(journal_path), str(commands)])
        capsys.readouterr()

        status = cli.main(["retry", str(journal_path), "--key", "true"])

        assert status == 1
        assert "task key 'true' is done, not failed" in capsys.readouterr().err

    def test_retry_nothing_failed_says_so(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str], journal_path: Path
    ) -> None:
        commands = _command_file(tmp_path, "true")
        cli.main(["run", "--journal", str(journal_path), str(commands)])
        capsys.readouterr()

        status = cli.main(["retry", str(journal_path)])

        assert status == 0
        assert capsys.readouterr().out == f"no failed tasks in {journal_path}\n"

    def test_retry_rejected_while_journal_in_use(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str], journal_path: Path
    ) -> None:
        commands = _command_file(tmp_path, "exit 4")
        cli.main(["run", "--journal", str(journal_path), str(commands)])
        capsys.readouterr()

        with Journal(journal_path):
            status = cli.main(["retry", str(journal_path)])

        assert status == 1
        assert f"journal {journal_path} is in use by a running process" in (
            capsys.readouterr().err
        )
        assert _states(journal_path) == {"exit 4": TaskState.FAILED}

    def test_retry_missing_journal_exits_one(
        self, capsys: pytest.CaptureFixture[str], journal_path: Path
    ) -> None:
        status = cli.main(["retry", str(journal_path)])

        assert status == 1
        assert "not found" in capsys.readouterr().err
        assert not journal_path.exists()


def _fill_journal(path: Path, count: int, size: int) -> None:
    """Add `count` done tasks whose results take about `size` bytes each."""
    with Journal(path) as journal:
        for number in range(count):
            task, _ = journal.add(
                "syncq._shell:run_command", '["true", null]', "{}", key=f"task {number}"
            )
            journal.start(task.id)
            journal.finish(task.id, {"stdout": "x" * size})


def _file_size(path: Path) -> int:
    """Return the bytes of a journal file and its write-ahead log."""
    wal = path.with_name(path.name + "-wal")
    return path.stat().st_size + (wal.stat().st_size if wal.exists() else 0)


class TestPurge:
    def test_purge_done_deletes_only_done_tasks(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str], journal_path: Path
    ) -> None:
        commands = _command_file(tmp_path, "true", "exit 4")
        cli.main(["run", "--journal", str(journal_path), str(commands)])
        capsys.readouterr()

        status = cli.main(["purge", str(journal_path), "--done"])

        assert status == 0
        assert _states(journal_path) == {"exit 4": TaskState.FAILED}
        assert capsys.readouterr().out == f"deleted 1 done task from {journal_path}\n"

    def test_purge_failed_deletes_only_failed_tasks(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str], journal_path: Path
    ) -> None:
        commands = _command_file(tmp_path, "true", "exit 4")
        cli.main(["run", "--journal", str(journal_path), str(commands)])

        cli.main(["purge", str(journal_path), "--failed"])

        assert _states(journal_path) == {"true": TaskState.DONE}

    def test_purge_all_deletes_pending_tasks(
        self, capsys: pytest.CaptureFixture[str], journal_path: Path
    ) -> None:
        with Journal(journal_path) as journal:
            journal.add("syncq._shell:run_command", '["true", null]', "{}", key="k")

        status = cli.main(["purge", str(journal_path), "--all"])

        assert status == 0
        assert _states(journal_path) == {}
        assert capsys.readouterr().out == f"deleted 1 task from {journal_path}\n"

    def test_purge_all_rejected_while_journal_in_use(
        self, capsys: pytest.CaptureFixture[str], journal_path: Path
    ) -> None:
        with Journal(journal_path) as journal:
            journal.add("syncq._shell:run_command", '["true", null]', "{}", key="k")
            status = cli.main(["purge", str(journal_path), "--all"])

        assert status == 1
        assert "is in use by a running process" in capsys.readouterr().err
        assert _states(journal_path) == {"k": TaskState.PENDING}

    def test_purge_done_allowed_while_journal_in_use(
        self, capsys: pytest.CaptureFixture[str], journal_path: Path
    ) -> None:
        _fill_journal(journal_path, 1, 10)

        with Journal(journal_path):
            status = cli.main(["purge", str(journal_path), "--done"])

        assert status == 0
        assert _states(journal_path) == {}

    def test_purge_older_than_keeps_recent_tasks(
        self, capsys: pytest.CaptureFixture[str], journal_path: Path
    ) -> None:
        _fill_journal(journal_path, 2, 10)
        _age(journal_path, "task 0", 8 * 86400)
        _age(journal_path, "task 1", 6 * 86400)

        cli.main(["purge", str(journal_path), "--done", "--older-than", "7d"])

        assert _states(journal_path) == {"task 1": TaskState.DONE}

    def test_purge_vacuum_shrinks_file(
        self, capsys: pytest.CaptureFixture[str], journal_path: Path
    ) -> None:
        _fill_journal(journal_path, 200, 2000)
        before = _file_size(journal_path)

        status = cli.main(["purge", str(journal_path), "--done", "--vacuum"])

        assert status == 0
        assert _file_size(journal_path) < before / 10
        assert f"vacuumed {journal_path}: " in capsys.readouterr().out

    def test_purge_without_vacuum_keeps_file_size(
        self, capsys: pytest.CaptureFixture[str], journal_path: Path
    ) -> None:
        _fill_journal(journal_path, 200, 2000)
        before = _file_size(journal_path)

        cli.main(["purge", str(journal_path), "--done"])

        assert _file_size(journal_path) >= before

    def test_purge_needs_a_state_option(
        self, capsys: pytest.CaptureFixture[str], journal_path: Path
    ) -> None:
        status = cli.main(["purge", str(journal_path)])

        assert status == 2
        assert "one of the arguments --done --failed --all is required" in (
            capsys.readouterr().err
        )

    @pytest.mark.parametrize(
        "duration", ["7", "0d", "-1d", "7y", "7m", "1.5.2h", "nand", "inf d", ""]
    )
    def test_purge_rejects_bad_duration(
        self, capsys: pytest.CaptureFixture[str], journal_path: Path, duration: str
    ) -> None:
        status = cli.main(
            ["purge", str(journal_path), "--done", f"--older-than={duration}"]
        )

        assert status == 2
        assert f"{duration!r}: expected" in capsys.readouterr().err

    def test_purge_missing_journal_exits_one(
        self, capsys: pytest.CaptureFixture[str], journal_path: Path
    ) -> None:
        status = cli.main(["purge", str(journal_path), "--done"])

        assert status == 1
        assert not journal_path.exists()


@pytest.mark.timeout(30)
class TestJournalCommandsInProcesses:
    def test_process_retry_rejected_while_run_holds_lease(
        self, tmp_path: Path, journal_path: Path
    ) -> None:
        Journal(journal_path).close()

        with Journal(journal_path):
            result = _syncq("retry", str(journal_path), cwd=tmp_path)

        assert result.returncode == 1
        assert f"pid {os.getpid()}" in result.stderr

    def test_process_retry_then_run_reruns_failed(
        self, tmp_path: Path, journal_path: Path
    ) -> None:
        log = tmp_path / "log"
        marker = tmp_path / "tried"
        commands = _command_file(
            tmp_path,
            f"test -e {marker} || {{ touch {marker}; exit 1; }}; echo ok >> {log}",
        )
        argv = ["run", "--journal", str(journal_path), str(commands)]
        _syncq(*argv, cwd=tmp_path)

        retried = _syncq("retry", str(journal_path), cwd=tmp_path)
        rerun = _syncq(*argv, cwd=tmp_path)

        assert retried.returncode == 0
        assert rerun.returncode == 0
        assert _words(log) == ["ok"]

    def test_process_purge_prints_count(
        self, tmp_path: Path, journal_path: Path
    ) -> None:
        _fill_journal(journal_path, 3, 10)

        result = _syncq("purge", str(journal_path), "--done", "--vacuum", cwd=tmp_path)

        assert result.returncode == 0
        assert result.stdout.startswith(f"deleted 3 done tasks from {journal_path}\n")
