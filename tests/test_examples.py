"""End-to-end tests of the examples: the items API and the client that fetches from it.

Both scripts run as subprocesses, the way a user runs them, so these tests use
real time and real sockets on 127.0.0.1. They poll for progress in short steps
and never sleep for long.
"""

from __future__ import annotations

import dataclasses
import json
import re
import selectors
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any, Callable

import pytest

from syncq import Journal

EXAMPLES_DIR = Path(__file__).resolve().parent.parent / "examples"
SERVER_SCRIPT = EXAMPLES_DIR / "api_server.py"
CLIENT_SCRIPT = EXAMPLES_DIR / "fetch_items.py"

# fetch_items.py's default --workers: the maximum number of requests in flight.
CLIENT_WORKERS = 4
# Seconds that a script may take to start, or to exit after a signal.
PROCESS_TIMEOUT = 10.0
# Seconds that a full client run may take, while a default run takes about 8.
CLIENT_TIMEOUT = 45.0
POLL_INTERVAL = 0.02


def _read_line(stream: IO[str], timeout: float) -> str:
    """Return the next line of a subprocess's pipe, waiting at most `timeout`."""
    with selectors.DefaultSelector() as selector:
        selector.register(stream, selectors.EVENT_READ)
        if not selector.select(timeout):
            raise TimeoutError(f"no output within {timeout} s")
    return stream.readline()


def _wait_until(condition: Callable[[], bool], timeout: float) -> None:
    """Poll `condition` in short real-time steps until it is true or time runs out."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"condition still false after {timeout} s")
        time.sleep(POLL_INTERVAL)


@dataclasses.dataclass
class HttpResult:
    """A response from the example API, as the tests inspect it."""

    status: int
    headers: dict[str, str]
    body: Any


def _get(url: str) -> HttpResult:
    try:
        with urllib.request.urlopen(url, timeout=PROCESS_TIMEOUT) as response:
            return HttpResult(
                response.status, dict(response.headers), json.loads(response.read())
            )
    except urllib.error.HTTPError as exc:
        with exc:
            return HttpResult(exc.code, dict(exc.headers), json.loads(exc.read()))


class ServerProcess:
    """An api_server.py subprocess started by a test."""

    def __init__(self, *options: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, str(SERVER_SCRIPT), "--port", "0", *options],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        try:
            self.url = _read_line(self.process.stdout, PROCESS_TIMEOUT).strip()
        except TimeoutError:
            self.stop()
            raise
        if not self.url.startswith("http://127.0.0.1:"):
            self.stop()
            raise RuntimeError(f"api_server.py printed {self.url!r}, not its URL")

    def get(self, path: str) -> HttpResult:
        """Send ``GET path`` and return the response, whatever its status."""
        return _get(self.url + path)

    def stats(self) -> dict[str, Any]:
        """Return the server's ``/stats`` counters."""
        body = self.get("/stats").body
        assert isinstance(body, dict)
        return body

    def stop(self) -> int:
        """Interrupt the server as Ctrl-C does, and return its exit status."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
        try:
            self.process.communicate(timeout=PROCESS_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.communicate()
        return self.process.returncode


@pytest.fixture
def api_server() -> Iterator[Callable[..., ServerProcess]]:
    """Return a function that starts api_server.py, and stop each server after."""
    servers: list[ServerProcess] = []

    def start(*options: str) -> ServerProcess:
        server = ServerProcess(*options)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


def _client_command(*options: str) -> list[str]:
    return [sys.executable, str(CLIENT_SCRIPT), *options]


def _run_client(*options: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        _client_command(*options),
        capture_output=True,
        text=True,
        timeout=CLIENT_TIMEOUT,
        check=False,
    )


@dataclasses.dataclass(frozen=True)
class Summary:
    """The numbers in the summary that fetch_items.py prints at the end."""

    done: int
    requested: int
    fetched: int
    rate_limited: int
    breaker_opened: int
    retries: int


_SUMMARY = re.compile(
    r"items done: (?P<done>\d+) of (?P<requested>\d+) "
    r"\(fetched in this run: (?P<fetched>\d+), in [0-9.]+ s\)\n"
    r"429 responses sent by the server: (?P<rate_limited>\d+)\n"
    r"breaker opened: (?P<breaker_opened>\d+) times\n"
    r"retries: (?P<retries>\d+)\n"
)


def _summary(result: subprocess.CompletedProcess[str]) -> Summary:
    match = _SUMMARY.search(result.stdout)
    if match is None:
        raise AssertionError(
            f"no summary in the output:\n{result.stdout}\nstderr:\n{result.stderr}"
        )
    return Summary(**{name: int(value) for name, value in match.groupdict().items()})


def _add_unfinished_task(journal_path: Path, base_url: str) -> None:
    """Leave a pending fetch of item 0 from `base_url` in the journal."""
    with Journal(journal_path) as journal:
        journal.add("items_client:fetch_item", json.dumps([base_url, 0]), "{}", key="0")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


class TestApiServer:
    def test_api_server_serves_item_as_json(
        self, api_server: Callable[..., ServerProcess]
    ) -> None:
        server = api_server()

        result = server.get("/items/7")

        assert result.status == 200
        assert result.body == {"id": 7, "name": "item 7"}

    @pytest.mark.parametrize(
        "path", ["/items/5", "/items/-1", "/items/abc", "/items/", "/other"]
    )
    def test_api_server_returns_404_for_unknown_path(
        self, api_server: Callable[..., ServerProcess], path: str
    ) -> None:
        server = api_server("--item-count", "5")

        result = server.get(path)

        assert result.status == 404

    def test_api_server_returns_429_beyond_burst(
        self, api_server: Callable[..., ServerProcess]
    ) -> None:
        # At 0.01 requests per second, no token comes back during the test.
        server = api_server("--rate", "0.01", "--burst", "2")

        statuses = [server.get("/items/0").status for _ in range(3)]

        assert statuses == [200, 200, 429]

    def test_api_server_sends_retry_after_with_429(
        self, api_server: Callable[..., ServerProcess]
    ) -> None:
        server = api_server("--rate", "0.01", "--burst", "1")
        server.get("/items/0")

        result = server.get("/items/0")

        assert result.status == 429
        assert 90 <= int(result.headers["Retry-After"]) <= 100

    def test_api_server_returns_503_during_outage(
        self, api_server: Callable[..., ServerProcess]
    ) -> None:
        server = api_server("--outage-start", "2", "--outage-duration", "60")

        statuses = [server.get(f"/items/{n}").status for n in range(3)]

        assert statuses == [200, 503, 503]

    def test_api_server_outage_ends_after_duration(
        self, api_server: Callable[..., ServerProcess]
    ) -> None:
        server = api_server(
            "--outage-start", "1", "--outage-duration", "0.2", "--rate", "1000"
        )
        first = server.get("/items/0")

        _wait_until(lambda: server.get("/items/0").status == 200, PROCESS_TIMEOUT)

        assert first.status == 503

    def test_api_server_delays_response_by_latency(
        self, api_server: Callable[..., ServerProcess]
    ) -> None:
        server = api_server("--latency", "0.2")
        started = time.monotonic()

        result = server.get("/items/0")

        assert result.status == 200
        assert time.monotonic() - started >= 0.2

    def test_api_server_stats_count_each_status(
        self, api_server: Callable[..., ServerProcess]
    ) -> None:
        server = api_server(
            "--item-count",
            "5",
            "--rate",
            "0.01",
            "--burst",
            "3",
            "--outage-start",
            "3",
            "--outage-duration",
            "60",
        )
        for path in ("/items/4", "/items/9", "/items/1", "/items/1"):
            server.get(path)

        stats = server.stats()

        assert stats == {
            "requests": 4,
            "served": 1,
            "rate_limited": 1,
            "unavailable": 1,
            "not_found": 1,
            "served_by_id": {"4": 1},
        }

    def test_api_server_stats_are_not_rate_limited(
        self, api_server: Callable[..., ServerProcess]
    ) -> None:
        server = api_server("--rate", "0.01", "--burst", "1")

        statuses = [server.get("/stats").status for _ in range(3)]

        assert statuses == [200, 200, 200]

    def test_api_server_exits_cleanly_on_sigint(
        self, api_server: Callable[..., ServerProcess]
    ) -> None:
        server = api_server()

        returncode = server.stop()

        assert returncode == 0

    @pytest.mark.parametrize(
        ("option", "value", "message"),
        [
            ("--rate", "0", "rate"),
            ("--rate", "nan", "rate"),
            ("--burst", "0", "burst"),
            ("--item-count", "-3", "item_count"),
            ("--outage-duration", "inf", "outage_duration"),
            ("--outage-start", "-1", "outage_start"),
            ("--latency", "-1", "latency"),
            ("--port", "70000", "--port"),
        ],
    )
    def test_api_server_rejects_invalid_option(
        self, option: str, value: str, message: str
    ) -> None:
        result = subprocess.run(
            [sys.executable, str(SERVER_SCRIPT), option, value],
            capture_output=True,
            text=True,
            timeout=PROCESS_TIMEOUT,
            check=False,
        )

        assert result.returncode == 2
        assert message in result.stderr


@pytest.fixture(scope="module")
def default_run(
    tmp_path_factory: pytest.TempPathFactory,
) -> subprocess.CompletedProcess[str]:
    """Run the quick-start command once for every test that reads its output."""
    journal_path = tmp_path_factory.mktemp("default-run") / "items.db"
    return _run_client("--journal", str(journal_path))


@pytest.mark.slow
@pytest.mark.timeout(60)
class TestFetchItemsDefaultRun:
    """One run of the quick-start command, checked from several sides."""

    def test_fetch_items_exits_zero(
        self, default_run: subprocess.CompletedProcess[str]
    ) -> None:
        assert default_run.returncode == 0, default_run.stderr

    def test_fetch_items_fetches_every_item(
        self, default_run: subprocess.CompletedProcess[str]
    ) -> None:
        summary = _summary(default_run)

        assert summary.requested == 300
        assert summary.done == 300
        assert summary.fetched == 300

    def test_fetch_items_gets_no_429(
        self, default_run: subprocess.CompletedProcess[str]
    ) -> None:
        assert _summary(default_run).rate_limited == 0

    def test_fetch_items_breaker_opens_during_outage(
        self, default_run: subprocess.CompletedProcess[str]
    ) -> None:
        assert _summary(default_run).breaker_opened >= 1

    def test_fetch_items_pool_retries_failed_requests(
        self, default_run: subprocess.CompletedProcess[str]
    ) -> None:
        assert _summary(default_run).retries > 0


@pytest.mark.slow
class TestFetchItemsResume:
    @pytest.mark.timeout(60)
    def test_fetch_items_resumes_after_kill(
        self, api_server: Callable[..., ServerProcess], journal_path: Path
    ) -> None:
        # With 50 ms per response, a few requests are in flight at the kill.
        server = api_server("--latency", "0.05")
        options = ("--url", server.url, "--journal", str(journal_path))
        first = subprocess.Popen(
            _client_command(*options, "--items", "150"),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            _wait_until(lambda: server.stats()["served"] >= 50, CLIENT_TIMEOUT)
        finally:
            first.kill()
            # Reap the process: until then its pid exists, and the journal
            # would treat the killed run as alive and keep its tasks.
            first.wait(PROCESS_TIMEOUT)

        second = _run_client(*options, "--items", "150")
        served_by_id = server.stats()["served_by_id"]

        assert first.returncode == -signal.SIGKILL
        assert second.returncode == 0, second.stderr
        assert _summary(second).done == 150
        assert set(served_by_id) == {str(n) for n in range(150)}
        # Only the requests in flight at the kill may have been served twice.
        assert sum(served_by_id.values()) <= 150 + CLIENT_WORKERS

    @pytest.mark.timeout(60)
    def test_fetch_items_resumes_after_ctrl_c(
        self, api_server: Callable[..., ServerProcess], journal_path: Path
    ) -> None:
        server = api_server("--latency", "0.05")
        options = ("--url", server.url, "--journal", str(journal_path))
        first = subprocess.Popen(
            _client_command(*options, "--items", "100"),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            _wait_until(lambda: server.stats()["served"] >= 30, CLIENT_TIMEOUT)
            first.send_signal(signal.SIGINT)
            first_output, _ = first.communicate(timeout=PROCESS_TIMEOUT)
        except BaseException:
            first.kill()
            first.communicate()
            raise

        second = _run_client(*options, "--items", "100")
        served_by_id = server.stats()["served_by_id"]

        assert first.returncode == 130
        assert "interrupted" in first_output
        assert second.returncode == 0, second.stderr
        # The pool lets running requests finish, so none is served twice.
        assert served_by_id == {str(n): 1 for n in range(100)}

    @pytest.mark.timeout(30)
    def test_fetch_items_rerun_fetches_only_missing(
        self, api_server: Callable[..., ServerProcess], journal_path: Path
    ) -> None:
        server = api_server("--outage-start", "0")
        options = ("--url", server.url, "--journal", str(journal_path))
        _run_client(*options, "--items", "20")

        second = _run_client(*options, "--items", "30")

        assert second.returncode == 0, second.stderr
        assert _summary(second).fetched == 10
        assert server.stats()["served_by_id"] == {str(n): 1 for n in range(30)}

    @pytest.mark.timeout(30)
    def test_fetch_items_rejects_journal_of_other_url(
        self, api_server: Callable[..., ServerProcess], journal_path: Path
    ) -> None:
        _add_unfinished_task(journal_path, "http://127.0.0.1:9")
        server = api_server()

        result = _run_client("--url", server.url, "--journal", str(journal_path))

        assert result.returncode == 2
        assert "unfinished tasks for http://127.0.0.1:9" in result.stderr
        assert server.stats()["requests"] == 0

    @pytest.mark.timeout(30)
    def test_fetch_items_resumes_on_port_in_journal(self, journal_path: Path) -> None:
        url = f"http://127.0.0.1:{_free_port()}"
        _add_unfinished_task(journal_path, url)

        result = _run_client("--journal", str(journal_path), "--items", "3")

        assert result.returncode == 0, result.stderr
        assert f"fetching 3 items from {url} (started by this script)" in (
            result.stdout
        )
        assert _summary(result).done == 3


@pytest.mark.timeout(30)
class TestFetchItemsErrors:
    def test_fetch_items_gives_up_on_missing_items(
        self, api_server: Callable[..., ServerProcess], journal_path: Path
    ) -> None:
        server = api_server("--item-count", "10", "--outage-start", "0")

        result = _run_client(
            "--url", server.url, "--journal", str(journal_path), "--items", "12"
        )
        summary = _summary(result)

        assert result.returncode == 1
        assert summary.done == 10
        assert "item 10 failed: ItemNotFound" in result.stdout
        assert summary.retries == 0
        assert summary.breaker_opened == 0
        assert server.stats()["not_found"] == 2

    def test_fetch_items_retries_429_without_opening_breaker(
        self, api_server: Callable[..., ServerProcess], journal_path: Path
    ) -> None:
        server = api_server("--outage-start", "0")

        # Four times the server's rate, so the server responds with 429s.
        result = _run_client(
            "--url",
            server.url,
            "--journal",
            str(journal_path),
            "--items",
            "30",
            "--rate",
            "200",
        )
        summary = _summary(result)

        assert result.returncode == 0, result.stderr
        assert summary.done == 30
        assert summary.rate_limited > 0
        assert summary.retries >= summary.rate_limited
        assert summary.breaker_opened == 0

    @pytest.mark.parametrize(
        ("option", "value"),
        [
            ("--items", "0"),
            ("--items", "many"),
            ("--workers", "-1"),
            ("--rate", "nan"),
            ("--rate", "inf"),
            ("--rate", "0"),
            ("--url", "ftp://127.0.0.1:21"),
        ],
    )
    def test_fetch_items_rejects_invalid_option(
        self, journal_path: Path, option: str, value: str
    ) -> None:
        result = _run_client("--journal", str(journal_path), option, value)

        assert result.returncode == 2
        assert f"argument {option}" in result.stderr
