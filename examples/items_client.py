"""Fetch one item from the example items API, and the errors that can come back.

`fetch_item` is the task that `fetch_items.py` records in its journal. A journal
stores a task as the ``module:qualname`` of its function, so the function lives
here, in a module whose import name stays ``items_client`` however the script
is started, and not in the script, whose functions are named ``__main__:...``.
"""

from __future__ import annotations

import datetime
import email.utils
import http.client
import json
import re
import urllib.error
import urllib.parse
import urllib.request
from http import HTTPStatus
from typing import Any

__all__ = [
    "DEPENDENCY_FAILURES",
    "TRANSIENT_ERRORS",
    "ApiError",
    "ItemNotFound",
    "RateLimited",
    "ServerError",
    "fetch_item",
    "parse_retry_after",
]

REQUEST_TIMEOUT = 5.0
"""Seconds `fetch_item` waits to connect, and then for each read of the response."""

_DELAY_SECONDS = re.compile(r"[0-9]+(?:\.[0-9]+)?")


class ApiError(Exception):
    """The items API responded with an error status or an invalid body.

    Attributes:
        status: The HTTP status code of the response.
        retry_after: Seconds the server asked the client to wait, from the
            Retry-After header, or None if it sent none. `syncq.Retry` waits at
            least this long before the next attempt.
    """

    def __init__(
        self, message: str, *, status: int, retry_after: float | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after


class ItemNotFound(ApiError):
    """The API has no item with the requested id (404)."""


class RateLimited(ApiError):
    """The API rejected the request because the client exceeded its rate (429)."""


class ServerError(ApiError):
    """The API failed to serve the request (a 5xx status such as 503)."""


TRANSIENT_ERRORS: tuple[type[Exception], ...] = (
    RateLimited,
    ServerError,
    OSError,
    http.client.HTTPException,
)
"""Errors that a later attempt may not meet: throttling, server and network errors.

`OSError` covers `urllib.error.URLError` (connection refused, DNS failures) and
socket timeouts. `http.client.HTTPException` covers a connection that closed in
the middle of a response.
"""

DEPENDENCY_FAILURES: tuple[type[Exception], ...] = (
    ServerError,
    OSError,
    http.client.HTTPException,
)
"""Errors that show the API itself is failing, which a circuit breaker counts.

A 404 or a 429 is a valid response from a working API, so neither is included.
"""


def fetch_item(base_url: str, item_id: int) -> dict[str, Any]:
    """Fetch ``GET {base_url}/items/{item_id}`` and return the decoded JSON object.

    Blocks for up to `REQUEST_TIMEOUT` seconds to connect and for each read.
    Thread-safe: every call opens its own connection.

    Args:
        base_url: The API's root, such as ``http://127.0.0.1:8000``.
        item_id: The id of the item, an int >= 0.

    Returns:
        The item, a dict whose ``"id"`` is `item_id`.

    Raises:
        TypeError: `base_url` is not a str or `item_id` is not an int.
        ValueError: `base_url` is not an http(s) URL or `item_id` is negative.
        ItemNotFound: The server responded with 404.
        RateLimited: The server responded with 429; `retry_after` is set if the
            server sent a Retry-After header.
        ServerError: The server responded with a 5xx status.
        ApiError: Any other error status, or a body that is not the item.
        OSError: The connection failed or timed out (`urllib.error.URLError`
            is a subclass).
        http.client.HTTPException: The connection broke during the response.
    """
    url = _item_url(base_url, item_id)
    try:
        with urllib.request.urlopen(url, timeout=REQUEST_TIMEOUT) as response:
            status = response.status
            body = response.read()
    except urllib.error.HTTPError as exc:
        retry_after = exc.headers.get("Retry-After")
        # The error contains the open response, so close it before raising.
        exc.close()
        raise _error_for_status(url, exc.code, retry_after) from exc
    return _decode_item(url, status, body, item_id)


def parse_retry_after(value: str | None) -> float | None:
    """Return the delay in seconds that a Retry-After header value requests.

    The header contains either a number of seconds or an HTTP date. A date is
    compared with the wall clock, because the server sent an absolute time, and
    a date in the past gives 0.0. Seconds with a decimal part are accepted,
    although the HTTP standard allows only whole seconds.

    Returns:
        The delay in seconds, or None if `value` is None or cannot be parsed.
    """
    if value is None:
        return None
    text = value.strip()
    if _DELAY_SECONDS.fullmatch(text):
        return float(text)
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        # Python 3.9 raises TypeError for a string that is not a date, and
        # later versions raise ValueError.
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.timezone.utc)
    delay = (when - datetime.datetime.now(datetime.timezone.utc)).total_seconds()
    return max(0.0, delay)


def _item_url(base_url: str, item_id: int) -> str:
    if not isinstance(base_url, str):
        raise TypeError(f"base_url must be a str, got {base_url!r}")
    if urllib.parse.urlsplit(base_url).scheme not in ("http", "https"):
        raise ValueError(f"base_url must be an http or https URL, got {base_url!r}")
    if isinstance(item_id, bool) or not isinstance(item_id, int):
        raise TypeError(f"item_id must be an int, got {item_id!r}")
    if item_id < 0:
        raise ValueError(f"item_id must be >= 0, got {item_id!r}")
    return f"{base_url.rstrip('/')}/items/{item_id}"


def _error_for_status(url: str, status: int, retry_after: str | None) -> ApiError:
    delay = parse_retry_after(retry_after)
    if status == HTTPStatus.NOT_FOUND:
        return ItemNotFound(f"GET {url}: item not found (404)", status=status)
    if status == HTTPStatus.TOO_MANY_REQUESTS:
        return RateLimited(
            f"GET {url}: rate limit exceeded (429), Retry-After: {retry_after}",
            status=status,
            retry_after=delay,
        )
    if status >= HTTPStatus.INTERNAL_SERVER_ERROR:
        return ServerError(
            f"GET {url}: server error ({status})", status=status, retry_after=delay
        )
    return ApiError(f"GET {url}: unexpected status {status}", status=status)


def _decode_item(url: str, status: int, body: bytes, item_id: int) -> dict[str, Any]:
    try:
        item = json.loads(body)
    except ValueError as exc:
        raise ApiError(
            f"GET {url}: the response is not valid JSON: {exc}", status=status
        ) from exc
    if not isinstance(item, dict) or item.get("id") != item_id:
        raise ApiError(
            f"GET {url}: expected an object with id {item_id}, got {item!r:.200}",
            status=status,
        )
    return item
