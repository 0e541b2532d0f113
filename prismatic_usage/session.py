"""One gql session to the API: sends a request, survives transient faults, maps errors.

Everything gql or aiohttp can raise is translated here, by type, into the
library's own exceptions (see :mod:`prismatic_usage.errors`). Retries are ours,
not gql's: 429 waits as told and slows the shared pace, 5xx / resets / timeouts
back off exponentially with full jitter, 401 refreshes the token once when a
refresh token is available, and everything else fails fast.
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import random
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from gql import Client, GraphQLRequest
from gql.transport.aiohttp import AIOHTTPTransport
from gql.transport.exceptions import (
    TransportAlreadyConnected,
    TransportClosed,
    TransportConnectionFailed,
    TransportError,
    TransportProtocolError,
    TransportQueryError,
    TransportServerError,
)

from ._responses import (
    BodyTooLarge,
    Redirected,
    capped_response,
    json_object,
    raise_for_bad_status,
    unreachable_host,
    unreachable_reason,
)
from ._safe_text import redact, register_secret, safe_origin
from .config import Connection, FetchOptions
from .errors import (
    APIError,
    AuthenticationError,
    MalformedResponseError,
    RetriesExhaustedError,
)
from .pacing import RequestGate, sent_trace

__all__ = ["HANDLED_TRANSPORT_ERRORS", "Answer", "ApiSession", "RequestTooLarge"]

#: Every gql transport error :meth:`ApiSession._attempt` translates by type
#: (a test fails when gql grows one that is not listed here).
HANDLED_TRANSPORT_ERRORS: tuple[type[TransportError], ...] = (
    TransportQueryError,
    TransportConnectionFailed,
    TransportServerError,
    TransportProtocolError,
    TransportClosed,
    TransportAlreadyConnected,
)

log = logging.getLogger(__name__)

_BACKOFF_BASE = 0.5
_BACKOFF_CAP = 30.0
# A host that cannot be reached at all is not worth six long attempts: fail
# after a few short ones (each connect gives up after _CONNECT_TIMEOUT).
_UNREACHABLE_ATTEMPTS = 3
_MAX_REFRESHES = 20
_CONNECT_TIMEOUT = 10.0
# No such endpoint, method or feature: the URL is not a Prismatic stack. Never retried.
_NOT_AN_API = frozenset({404, 405, 501})
# A refresh answer is a few hundred bytes; an access token is printable ASCII that
# fits an HTTP header (no spaces, no control characters), and not megabytes of it.
_MAX_REFRESH_BYTES = 64 * 2**10
_TOKEN = re.compile(r"[\x21-\x7e]{1,16384}")
_REFUSED_TOKEN_HINT = (
    "get a fresh one with `prism me:token` (or from <stack URL>/get_auth_token/) "
    "and set PRISMATIC_API_KEY"
)


class RequestTooLarge(APIError):
    """The server refused a request as a whole (HTTP 400/413, or it timed out).

    Raised only for splittable requests, so the caller can split the pack in two.
    """


@dataclass
class Answer:
    """A GraphQL answer: ``data`` (possibly partial or None) and ``errors``.

    ``seconds`` is how long the attempt that answered took, from sending to the
    parsed answer (retries and pauses before it excluded): the node budget
    halves on slow answers (:mod:`prismatic_usage.budget`).
    """

    data: Mapping[str, Any] | None
    errors: Sequence[Mapping[str, Any]] = ()
    seconds: float = 0.0


@dataclass
class _Failure:
    """One failed attempt, classified."""

    description: str
    status: int | None = None
    retry_after: float | None = None
    unreachable: bool = False


@dataclass
class SessionCounters:
    requests: int = 0
    retries: int = 0
    throttled: int = 0
    refreshed: int = 0
    statuses: dict[int, int] = field(default_factory=dict)


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP-date)."""
    if not value:
        return None
    text = value.strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    current = time.time() if now is None else now
    return max(0.0, when.timestamp() - current)


class ApiSession:
    """Sends GraphQL requests for one fetch, sharing a gate, a token and a budget."""

    def __init__(self, connection: Connection, options: FetchOptions, gate: RequestGate) -> None:
        self._connection = connection
        self._options = options
        self._gate = gate
        self._token_version = 0
        self._token_works = False
        self._refresh_lock = asyncio.Lock()
        self.counters = SessionCounters()
        transport = AIOHTTPTransport(
            url=connection.api_url,
            headers={"Prismatic-Client": "prismatic-usage"},
            client_session_args={
                "raise_for_status": raise_for_bad_status,
                "response_class": capped_response(options.max_response_bytes),
                "trace_configs": [sent_trace(gate)],
                "timeout": aiohttp.ClientTimeout(
                    total=options.timeout, sock_connect=min(_CONNECT_TIMEOUT, options.timeout)
                ),
            },
            ssl=True,
            json_deserialize=json_object,
        )
        # No schema on the runtime client: documents are validated once when
        # built (queries.py), not on every request (~3 ms each).
        self._client = Client(transport=transport, execute_timeout=options.timeout + 5)
        self._session: Any = None

    def __repr__(self) -> str:
        return f"ApiSession({self._connection!r})"

    async def __aenter__(self) -> ApiSession:
        self._session = await self._client.connect_async()  # type: ignore[no-untyped-call]
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self._client.close_async()  # type: ignore[no-untyped-call]

    async def send(
        self, request: GraphQLRequest, *, what: str, splittable: bool, turn_taken: bool = False
    ) -> Answer:
        """Send one request, retrying transient failures; ``what`` names it in errors.

        ``turn_taken`` says the caller already waited for the gate's pace for
        the first attempt (so it could pack what was ready at that moment).
        """
        started = time.monotonic()
        attempts = 0
        while True:
            attempts += 1
            token_version = self._token_version
            async with self._gate.slot(turn_taken=turn_taken and attempts == 1):
                self.counters.requests += 1
                sent, turn_began = time.monotonic(), self._gate.now()
                failure = await self._attempt(request, what=what, splittable=splittable)
            if isinstance(failure, Answer):
                self._gate.succeeded()
                self._token_works = True
                failure.seconds = time.monotonic() - sent
                return self._redacted(failure)
            if failure.status in (401, 403):
                if failure.status == 401 and await self._refresh(token_version):
                    continue
                raise AuthenticationError(
                    f"the API refused the token (HTTP {failure.status}); {_REFUSED_TOKEN_HINT}",
                    status=failure.status,
                )
            elapsed = time.monotonic() - started
            pause = 0.0
            if failure.status == 429 or (failure.status == 503 and failure.retry_after):
                # Told to wait: the gate holds every task until then; a 429 also
                # halves the pace, a 503 (the server is busy, not we) does not.
                self.counters.throttled += failure.status == 429
                pause = failure.retry_after if failure.retry_after is not None else 1.0
                pause = min(pause, self._options.max_retry_seconds)
                self._gate.throttled(pause, slow_down=failure.status == 429, started=turn_began)
                wait = 0.0
            else:
                wait = random.uniform(0, min(_BACKOFF_CAP, _BACKOFF_BASE * 2 ** (attempts - 1)))
            budget = _UNREACHABLE_ATTEMPTS if failure.unreachable else self._options.max_attempts
            if attempts >= min(budget, self._options.max_attempts) or (
                elapsed + wait + pause > self._options.max_retry_seconds
            ):
                raise RetriesExhaustedError(
                    # An unreachable host is the run's problem, not one request's:
                    # the same words whichever request met it first.
                    f"{failure.description}; check --url"
                    if failure.unreachable
                    else f"{what} failed after {attempts} attempts over {elapsed:.0f} s; "
                    f"last error: {failure.description}",
                    attempts=attempts,
                    last_status=failure.status,
                )
            self.counters.retries += 1
            log.info("retrying %s in %.1f s: %s", what, wait + pause, failure.description)
            if wait:
                await asyncio.sleep(wait)

    async def _attempt(
        self, request: GraphQLRequest, *, what: str, splittable: bool
    ) -> Answer | _Failure:
        """One HTTP round trip: an Answer, or a classified transient failure."""
        headers = {"Authorization": f"Bearer {self._connection.token}"}
        log.debug("POST %s: %s", self._connection.api_url, what)
        try:
            result = await self._session.execute(
                request,
                get_execution_result=True,
                extra_args={"headers": headers, "allow_redirects": False},
            )
        except TransportQueryError as exc:
            self._count_status(200)
            errors = exc.errors or []
            if not isinstance(errors, list) or not all(isinstance(e, Mapping) for e in errors):
                raise MalformedResponseError(
                    f"{what}: the answer's 'errors' is not a list of error objects"
                ) from None
            data = exc.data
            if data is not None and not isinstance(data, Mapping):
                raise MalformedResponseError(
                    f"{what}: the answer's 'data' is not an object"
                ) from None
            return Answer(data=data, errors=errors)
        except TransportConnectionFailed as exc:
            return self._classify_connection_failure(exc, what=what, splittable=splittable)
        except TransportServerError as exc:
            status = exc.code
            self._count_status(status)
            if status in _NOT_AN_API:
                raise self._not_an_api(status) from exc
            if status in (400, 413) and splittable:
                raise RequestTooLarge(f"{what}: HTTP {status}") from exc
            if status is not None and 400 <= status < 500 and status not in (401, 403, 429):
                raise APIError(f"{what}: the API answered HTTP {status}") from exc
            return _Failure(f"HTTP {status}", status=status)
        except TransportProtocolError as exc:
            raise MalformedResponseError(
                f"{what}: the answer is not GraphQL JSON (an HTML error page?); "
                "check the URL points at a Prismatic stack"
            ) from exc
        except (TransportClosed, TransportAlreadyConnected) as exc:
            raise APIError(f"{what}: the connection was closed unexpectedly") from exc
        except TransportError as exc:
            raise APIError(f"{what}: {type(exc).__name__}") from exc
        except TimeoutError:
            if splittable:
                raise RequestTooLarge(f"{what}: timed out") from None
            return _Failure(f"timed out after {self._options.timeout:.0f} s")
        except AssertionError as exc:
            # gql asserts that an answer without errors has data ({"data": null}).
            raise MalformedResponseError(
                f"{what}: the answer has neither data nor errors; report this to Prismatic"
            ) from exc
        self._count_status(200)
        data = result.data
        if not isinstance(data, Mapping):
            raise MalformedResponseError(f"{what}: the answer has no 'data' object")
        return Answer(data=data)

    def _redacted(self, answer: Answer) -> Answer:
        """``answer`` with every token this session held cut out of its error messages."""
        if not answer.errors:
            return answer
        errors = [
            {**error, "message": redact(str(error.get("message", "")))} for error in answer.errors
        ]
        return Answer(data=answer.data, errors=errors, seconds=answer.seconds)

    def _classify_connection_failure(
        self, exc: TransportConnectionFailed, *, what: str, splittable: bool
    ) -> _Failure:
        cause = exc.__cause__
        if isinstance(cause, Redirected):
            raise APIError(
                f"{what}: the API answered with {cause} (not followed); "
                "pass the stack's own URL with --url"
            ) from None
        if isinstance(cause, BodyTooLarge):
            if splittable:
                raise RequestTooLarge(f"{what}: the answer is too large ({cause})") from None
            raise MalformedResponseError(
                f"{what}: the answer is larger than the {self._options.max_response_bytes} byte "
                "cap; raise it with --max-response-mb if this server is trusted"
            ) from None
        if isinstance(cause, aiohttp.ClientResponseError):
            status = cause.status
            self._count_status(status)
            headers: Mapping[str, str] = cause.headers or {}
            if status in _NOT_AN_API:
                raise self._not_an_api(status) from exc
            if status == 413 and splittable:
                raise RequestTooLarge(f"{what}: HTTP 413") from exc
            if status in (401, 403, 429) or status >= 500:
                return _Failure(
                    f"HTTP {status}",
                    status=status,
                    retry_after=parse_retry_after(headers.get("Retry-After")),
                )
            raise APIError(f"{what}: the API answered HTTP {status}") from exc
        if isinstance(cause, aiohttp.ConnectionTimeoutError | aiohttp.ClientConnectorError):
            host = unreachable_host(self._connection.base_url)
            return _Failure(f"cannot reach {host}: {unreachable_reason(cause)}", unreachable=True)
        if isinstance(cause, TimeoutError | asyncio.TimeoutError):
            if splittable:
                raise RequestTooLarge(f"{what}: timed out") from exc
            return _Failure(f"timed out after {self._options.timeout:.0f} s")
        return _Failure(f"connection failed ({type(cause).__name__ if cause else 'unknown'})")

    def _not_an_api(self, status: int) -> APIError:
        """The one error for a URL whose server is not a GraphQL API (same whatever request)."""
        return APIError(
            f"{safe_origin(self._connection.base_url)} does not answer like a Prismatic API "
            f"(HTTP {status} for {self._connection.api_url.rsplit('/', 1)[-1]!r}); check --url"
        )

    def _count_status(self, status: int | None) -> None:
        if status is not None:
            self.counters.statuses[status] = self.counters.statuses.get(status, 0) + 1

    async def _refresh(self, seen_version: int) -> bool:
        """Exchange the refresh token for a new access token; True if one is in place.

        Each expired token is refreshed once (tasks that saw the same 401 share
        the new token). A refreshed token that is refused before it served a
        single request is not refreshed again: the refresh token is not working.
        """
        async with self._refresh_lock:
            if self._token_version != seen_version:
                return True  # another task refreshed while this request was out
            if not self._connection.refresh_token or self.counters.refreshed >= _MAX_REFRESHES:
                return False
            if self.counters.refreshed and not self._token_works:
                return False
            self.counters.refreshed += 1
            self._token_works = False
            body: dict[str, str] = {"refresh_token": self._connection.refresh_token}
            if self._connection.tenant_id:
                body["tenant_id"] = self._connection.tenant_id
            timeout = aiohttp.ClientTimeout(total=self._options.timeout)
            try:
                async with (
                    aiohttp.ClientSession(
                        timeout=timeout, response_class=capped_response(_MAX_REFRESH_BYTES)
                    ) as http,
                    # Never redirected: the body carries the refresh token.
                    http.post(
                        self._connection.refresh_url, json=body, allow_redirects=False
                    ) as response,
                ):
                    if response.status != 200:
                        log.warning("token refresh refused (HTTP %s)", response.status)
                        return False
                    payload = await response.json(content_type=None)
            except (aiohttp.ClientError, TimeoutError, ValueError, BodyTooLarge) as exc:
                log.warning("token refresh failed: %s", type(exc).__name__)
                return False
            token = payload.get("access_token") if isinstance(payload, dict) else None
            if not isinstance(token, str) or not _TOKEN.fullmatch(token):
                log.warning("token refresh answer has no usable access_token")
                return False
            register_secret(token)
            self._connection = self._connection.with_token(token)
            self._token_version += 1
            log.info("access token refreshed")
            return True
