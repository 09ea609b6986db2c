"""A small rate-limited HTTP API that serves numbered items, for the examples.

Endpoints, all GET, all responding with JSON:

- ``/items/<n>``: ``{"id": n, "name": "item <n>"}`` for ``0 <= n < item_count``,
  404 for any other id.
- ``/stats``: the counters described in `ItemApi.stats`.

Item requests pass through the server's own token bucket (50 per second with
bursts of 10 by default), and a request over the limit gets 429 with a
Retry-After header. The server also has one built-in outage: the item request
numbered `outage_start` that passes the rate limit, and every item request after
it for `outage_duration` seconds, get 503. ``/stats`` is neither rate-limited nor
affected by the outage. A `latency` setting delays each item response, like a
slow API.

From Python, `start_server` serves in a background thread and returns the URL
and a `stop` method. As a script, ``python examples/api_server.py --port 0``
prints the URL on the first line of its output and serves until Ctrl-C.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import dataclasses
import http.server
import json
import logging
import math
import sys
import threading
import urllib.parse
from collections.abc import Sequence
from http import HTTPStatus
from types import TracebackType
from typing import Any, NamedTuple

from syncq.clock import SYSTEM_CLOCK, Clock

__all__ = ["ItemApi", "Response", "RunningServer", "ServerSettings", "start_server"]

logger = logging.getLogger(__name__)

HOST = "127.0.0.1"

# How often the serving loop checks whether `stop` was called, in seconds.
_POLL_INTERVAL = 0.05

# Longer ids are out of range anyway, and the cap keeps int() away from huge inputs.
_MAX_ID_DIGITS = 18


def _check_int(name: str, value: object, *, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value!r}")


def _check_seconds_or_rate(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number, got {value!r}")
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")


@dataclasses.dataclass(frozen=True)
class ServerSettings:
    """Settings of the example API: items, rate limit, outage and latency.

    Raises:
        TypeError: A field has the wrong type, such as a bool or a float where
            an int belongs.
        ValueError: A number is zero, negative, NaN or infinite.
    """

    item_count: int = 1000
    """Items served: ids 0 to ``item_count - 1``."""
    rate: float = 50.0
    """Item requests per second that the token bucket refills."""
    burst: int = 10
    """Capacity of the token bucket: the largest burst of item requests."""
    outage_start: int | None = 100
    """Number, counted from 1, of the admitted item request that starts the
    outage; None for no outage."""
    outage_duration: float = 0.5
    """Seconds the outage lasts."""
    latency: float = 0.0
    """Seconds each item request waits for its response, as on a slow API."""

    def __post_init__(self) -> None:
        _check_int("item_count", self.item_count, minimum=1)
        _check_seconds_or_rate("rate", self.rate)
        _check_int("burst", self.burst, minimum=1)
        if self.outage_start is not None:
            _check_int("outage_start", self.outage_start, minimum=1)
        _check_seconds_or_rate("outage_duration", self.outage_duration)
        if isinstance(self.latency, bool) or not isinstance(self.latency, (int, float)):
            raise TypeError(f"latency must be a number, got {self.latency!r}")
        if not math.isfinite(self.latency) or self.latency < 0:
            raise ValueError(
                f"latency must be a finite number >= 0, got {self.latency!r}"
            )


class Response(NamedTuple):
    """A response to send: status code, extra headers and a JSON body."""

    status: int
    headers: dict[str, str]
    body: dict[str, Any]


class ItemApi:
    """The API's behaviour without the HTTP layer: limit, outage, items, counters.

    Thread-safe: the HTTP server calls it from one thread per connection.

    Args:
        settings: The limits, the outage and the number of items.
        clock: The clock that the token bucket and the outage read;
            `syncq.clock.SYSTEM_CLOCK` by default.
    """

    def __init__(self, settings: ServerSettings, clock: Clock | None = None) -> None:
        self._settings = settings
        self._clock = SYSTEM_CLOCK if clock is None else clock

        # Guards the token bucket, the outage and every counter below.
        self._lock = threading.Lock()
        self._tokens = float(settings.burst)
        self._refilled_at = self._clock.monotonic()
        self._admitted = 0
        self._outage_ends_at: float | None = None
        self._requests = 0
        self._status_counts: collections.Counter[int] = collections.Counter()
        self._served_by_id: collections.Counter[int] = collections.Counter()

    def get_item(self, item_id: int | None) -> Response:
        """Return the response to ``GET /items/<item_id>``.

        `item_id` is None when the path has no number, which gets 404. The
        rate limit applies first, then the outage, then the id check, so a
        request for a missing item still takes a token. The response is chosen
        on arrival and returned after `ServerSettings.latency` seconds.
        """
        now = self._clock.monotonic()
        with self._lock:
            self._requests += 1
            status, wait = self._decide(item_id, now)
            self._status_counts[status] += 1
            if status == HTTPStatus.OK and item_id is not None:
                self._served_by_id[item_id] += 1
        if self._settings.latency > 0:
            self._clock.sleep(self._settings.latency)

        if status == HTTPStatus.TOO_MANY_REQUESTS:
            # Retry-After takes whole seconds. Rounding up keeps the requested
            # wait from being shorter than the time until the next token.
            headers = {"Retry-After": str(max(1, math.ceil(wait)))}
            return Response(status, headers, {"error": "rate limit exceeded"})
        if status == HTTPStatus.SERVICE_UNAVAILABLE:
            return Response(status, {}, {"error": "service unavailable"})
        if status == HTTPStatus.NOT_FOUND:
            return Response(status, {}, {"error": "item not found"})
        return Response(status, {}, {"id": item_id, "name": f"item {item_id}"})

    def _decide(self, item_id: int | None, now: float) -> tuple[int, float]:
        # Called with the lock held. Returns the status, and for 429 the seconds
        # until the bucket has a token again.
        settings = self._settings
        tokens = self._tokens + (now - self._refilled_at) * settings.rate
        self._tokens = min(float(settings.burst), tokens)
        self._refilled_at = now
        if self._tokens < 1:
            return HTTPStatus.TOO_MANY_REQUESTS, (1 - self._tokens) / settings.rate
        self._tokens -= 1

        self._admitted += 1
        if self._admitted == settings.outage_start:
            self._outage_ends_at = now + settings.outage_duration
        if self._outage_ends_at is not None and now < self._outage_ends_at:
            return HTTPStatus.SERVICE_UNAVAILABLE, 0.0
        if item_id is None or item_id >= settings.item_count:
            return HTTPStatus.NOT_FOUND, 0.0
        return HTTPStatus.OK, 0.0

    def stats(self) -> dict[str, Any]:
        """Return the counters since the server started, as a JSON-ready dict.

        Keys: ``requests`` (item requests received), ``served`` (200),
        ``rate_limited`` (429), ``unavailable`` (503), ``not_found`` (404), and
        ``served_by_id``, which maps each id served, as a string, to the number
        of times it was served. The counters are a snapshot.
        """
        with self._lock:
            requests = self._requests
            status_counts = dict(self._status_counts)
            served_by_id = dict(self._served_by_id)
        return {
            "requests": requests,
            "served": status_counts.get(HTTPStatus.OK, 0),
            "rate_limited": status_counts.get(HTTPStatus.TOO_MANY_REQUESTS, 0),
            "unavailable": status_counts.get(HTTPStatus.SERVICE_UNAVAILABLE, 0),
            "not_found": status_counts.get(HTTPStatus.NOT_FOUND, 0),
            "served_by_id": {
                str(key): served_by_id[key] for key in sorted(served_by_id)
            },
        }


def _parse_item_id(text: str) -> int | None:
    if not text.isascii() or not text.isdigit() or len(text) > _MAX_ID_DIGITS:
        return None
    return int(text)


class _ItemHttpServer(http.server.ThreadingHTTPServer):
    """A threading HTTP server whose responses come from one `ItemApi`."""

    # Handler threads must not keep the process alive after the serving loop ends.
    daemon_threads = True

    def __init__(self, port: int, api: ItemApi) -> None:
        super().__init__((HOST, port), _ItemHandler)
        self.api = api

    @property
    def url(self) -> str:
        """The base URL, with the port the system chose if 0 was requested."""
        return f"http://{HOST}:{self.server_address[1]}"


class _ItemHandler(http.server.BaseHTTPRequestHandler):
    server: _ItemHttpServer

    def do_GET(self) -> None:
        """Route a GET request to the items or the stats endpoint."""
        path = urllib.parse.urlsplit(self.path).path
        api = self.server.api
        if path == "/stats":
            response = Response(HTTPStatus.OK, {}, api.stats())
        elif path.startswith("/items/"):
            response = api.get_item(_parse_item_id(path[len("/items/") :]))
        else:
            response = Response(HTTPStatus.NOT_FOUND, {}, {"error": "no such path"})
        self._send(response)

    def _send(self, response: Response) -> None:
        body = json.dumps(response.body).encode()
        try:
            self.send_response(response.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            for name, value in response.headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError) as exc:
            # A client that is killed mid-request is normal in these examples.
            logger.debug("client %s went away: %s", self.client_address, exc)

    def log_message(self, format: str, *args: Any) -> None:
        """Log each request at DEBUG instead of writing it to stderr."""
        logger.debug("%s - " + format, self.address_string(), *args)


class RunningServer:
    """An items API serving in a background thread; made by `start_server`.

    Use it as a context manager, or call `stop` when done.
    """

    def __init__(self, server: _ItemHttpServer) -> None:
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": _POLL_INTERVAL},
            name="example-api-server",
            daemon=True,
        )
        # Guards _stopped, so that two threads calling stop shut down once.
        self._lock = threading.Lock()
        self._stopped = False
        self._thread.start()

    @property
    def url(self) -> str:
        """The base URL, such as ``http://127.0.0.1:54321``."""
        return self._server.url

    def stats(self) -> dict[str, Any]:
        """Return the counters without an HTTP request (see `ItemApi.stats`)."""
        return self._server.api.stats()

    def stop(self) -> None:
        """Stop serving, close the socket and wait for the serving thread.

        Requests in progress at that moment may still finish on their own
        daemon threads. Calling it again does nothing. Thread-safe.
        """
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def __enter__(self) -> RunningServer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def start_server(
    settings: ServerSettings | None = None,
    *,
    port: int = 0,
    clock: Clock | None = None,
) -> RunningServer:
    """Start the items API on 127.0.0.1 in a background thread.

    Args:
        settings: The API's behaviour; `ServerSettings()` by default.
        port: The TCP port; 0 lets the system choose a free one.
        clock: The clock of the rate limit and the outage.

    Returns:
        The running server, whose `url` has the actual port.

    Raises:
        TypeError: `port` is not an int.
        ValueError: `port` is outside 0 to 65535.
        OSError: The port cannot be bound, for example because it is in use.
    """
    _check_int("port", port, minimum=0)
    if port > 65535:
        raise ValueError(f"port must be <= 65535, got {port!r}")
    api = ItemApi(ServerSettings() if settings is None else settings, clock)
    return RunningServer(_ItemHttpServer(port, api))


def _build_parser() -> argparse.ArgumentParser:
    defaults = ServerSettings()
    parser = argparse.ArgumentParser(
        description="Serve the rate-limited example items API on 127.0.0.1."
    )
    parser.add_argument(
        "--port", type=int, default=0, help="TCP port; 0 (the default) picks one"
    )
    parser.add_argument(
        "--item-count",
        type=int,
        default=defaults.item_count,
        help="number of items, ids 0 to N-1 (default %(default)s)",
    )
    parser.add_argument(
        "--rate",
        type=float,
        default=defaults.rate,
        help="item requests per second allowed (default %(default)s)",
    )
    parser.add_argument(
        "--burst",
        type=int,
        default=defaults.burst,
        help="largest burst of item requests allowed (default %(default)s)",
    )
    parser.add_argument(
        "--outage-start",
        type=int,
        default=defaults.outage_start,
        help="number, counted from 1, of the item request within the rate limit "
        "that starts a 503 outage; 0 for none (default %(default)s)",
    )
    parser.add_argument(
        "--outage-duration",
        type=float,
        default=defaults.outage_duration,
        help="seconds the outage lasts (default %(default)s)",
    )
    parser.add_argument(
        "--latency",
        type=float,
        default=defaults.latency,
        help="seconds each item request waits for its response (default %(default)s)",
    )
    return parser


def _parse_args(argv: Sequence[str] | None) -> tuple[int, ServerSettings]:
    parser = _build_parser()
    args = parser.parse_args(argv)
    if not 0 <= args.port <= 65535:
        parser.error(f"--port must be between 0 and 65535, got {args.port}")

    try:
        settings = ServerSettings(
            item_count=args.item_count,
            rate=args.rate,
            burst=args.burst,
            outage_start=args.outage_start or None,
            outage_duration=args.outage_duration,
            latency=args.latency,
        )
    except (TypeError, ValueError) as exc:
        parser.error(str(exc))
    return args.port, settings


def main(argv: Sequence[str] | None = None) -> int:
    """Serve the API in the foreground until interrupted, and return the exit status."""
    port, settings = _parse_args(argv)
    try:
        server = _ItemHttpServer(port, ItemApi(settings))
    except OSError as exc:
        print(f"api_server: cannot listen on {HOST}:{port}: {exc}", file=sys.stderr)
        return 1
    # Ctrl-C is the way to stop the script, so it ends it without a traceback,
    # also when it comes right after the URL, before the serving starts.
    with server, contextlib.suppress(KeyboardInterrupt):
        # The URL comes alone on the first line, so that scripts can read it.
        print(server.url, flush=True)
        print("serving; press Ctrl-C to stop", file=sys.stderr, flush=True)
        server.serve_forever(poll_interval=_POLL_INTERVAL)
    return 0


if __name__ == "__main__":
    sys.exit(main())
