"""aiohttp at the edge: what an answer may be before gql parses it.

A status callback that never lets a redirect be followed, a response class that
never holds a body over a cap, and a JSON reader that accepts only an object.
gql wraps whatever these raise in ``TransportConnectionFailed`` (or, for the
reader, ``TransportProtocolError``); :mod:`prismatic_usage.session` maps them.
"""

from __future__ import annotations

import errno
import json
import socket
from typing import Any

import aiohttp

from ._gc_pause import collector_paused
from ._safe_text import safe_origin

__all__ = [
    "BodyTooLarge",
    "Redirected",
    "capped_response",
    "json_object",
    "raise_for_bad_status",
    "unreachable_host",
    "unreachable_reason",
]


class Redirected(Exception):
    """The server answered with a redirect, which is never followed."""

    def __init__(self, status: int, location: str) -> None:
        super().__init__(f"HTTP {status} redirect to {safe_origin(location)}")
        self.status = status
        self.location = location


class BodyTooLarge(Exception):
    """A response body is larger than ``FetchOptions.max_response_bytes``."""


async def raise_for_bad_status(response: aiohttp.ClientResponse) -> None:
    # gql maps a JSON body to a status-less TransportQueryError whatever the HTTP
    # status; raising here keeps the status (and Retry-After) authoritative.
    # A 400 may still carry GraphQL errors, so it is left to gql.
    if 300 <= response.status < 400:
        raise Redirected(response.status, response.headers.get("Location", ""))
    if response.status >= 400 and response.status != 400:
        response.raise_for_status()


def capped_response(max_bytes: int) -> type[aiohttp.ClientResponse]:
    """An aiohttp response class that refuses to hold a body over ``max_bytes``.

    aiohttp has no client-side body limit, and gql reads the whole body before it
    parses it, so without this a server could make the process grow without end.
    The cap counts decompressed bytes, so a small gzip bomb is refused too.
    """

    class CappedResponse(aiohttp.ClientResponse):
        # gql reads a body again (as text) after failing to parse it: say "too
        # large" every time, never parse a truncated remainder.
        too_large: BodyTooLarge | None = None

        async def read(self) -> bytes:
            if self.too_large is not None:
                raise self.too_large
            if self._body is None:
                declared = self.content_length or 0
                size = 0
                chunks: list[bytes] = []
                if declared <= max_bytes:
                    async for chunk in self.content.iter_any():
                        size += len(chunk)
                        if size > max_bytes:
                            break
                        chunks.append(chunk)
                if max(size, declared) > max_bytes:
                    self.close()
                    self.too_large = BodyTooLarge(f"over {max_bytes} bytes")
                    raise self.too_large
                self._body = b"".join(chunks)
            return await super().read()

    return CappedResponse


def json_object(text: str) -> dict[str, Any]:
    """Parse an answer body; only a JSON object can be a GraphQL answer.

    Parameters
    ----------
    text
        The body as text. A list, number or string raises ``ValueError``, which
        gql reports as a protocol error instead of failing later with a TypeError.

    The collector pauses while it parses (counted across threads; on again after
    if it was on): the answer is a tree of fresh dicts and strings with no cycles,
    and passes over them while they are made took up to half of the parse, the
    more the larger the heap (measured: 30-37 ms against 18-19 ms for a 10,000-node
    answer in a fetch's process; 8.8 against 8.1 ms in a fresh one).
    """
    with collector_paused():  # a 10,000-node answer is ~10^5 new dicts and strings
        value = json.loads(text)
    if not isinstance(value, dict):
        raise ValueError(f"the answer is a JSON {type(value).__name__}, not an object")
    return value


def unreachable_host(url: str) -> str:
    """``host[:port]`` of ``url`` for messages: never its user, password, path or query."""
    return safe_origin(url).partition("://")[2] or safe_origin(url)


def unreachable_reason(cause: BaseException) -> str:
    """Why a connection could not be made, in a user's words, from the exception's type.

    Classified by type (and errno), never by message text, so every request
    that fails the same way gives the same words: ``name not found`` (DNS),
    ``connection refused``, ``no answer`` (the connect timed out), ``its TLS
    certificate is not valid``, ``the TLS handshake failed``, ``network
    unreachable``, ``host unreachable``; else ``connection failed``.

    Parameters
    ----------
    cause
        What aiohttp raised while connecting (``ClientConnectorError`` and its
        subclasses, or ``ConnectionTimeoutError``).
    """
    if isinstance(cause, aiohttp.ConnectionTimeoutError):
        return "no answer"
    if isinstance(cause, aiohttp.ClientConnectorCertificateError):
        return "its TLS certificate is not valid"
    if isinstance(cause, aiohttp.ClientSSLError):
        return "the TLS handshake failed"
    os_error = getattr(cause, "os_error", cause)
    if isinstance(os_error, socket.gaierror):
        return "name not found"
    if isinstance(os_error, ConnectionRefusedError):
        return "connection refused"
    if isinstance(os_error, TimeoutError):
        return "no answer"
    reasons = {errno.ENETUNREACH: "network unreachable", errno.EHOSTUNREACH: "host unreachable"}
    return reasons.get(getattr(os_error, "errno", None) or 0, "connection failed")
