"""Connection settings and tuning knobs, resolved once: argument > environment > default.

This is the only module that reads the environment.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import zoneinfo
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from .errors import AuthenticationError, ConfigurationError

__all__ = [
    "DEFAULT_BASE_URL",
    "Connection",
    "FetchOptions",
    "resolve_connection",
    "resolve_zone",
    "validate_date_range",
]

DEFAULT_BASE_URL = "https://app.prismatic.io"
URL_ENV = "PRISMATIC_URL"
TOKEN_ENVS = ("PRISMATIC_API_KEY", "PRISM_ACCESS_TOKEN")
REFRESH_TOKEN_ENVS = ("PRISMATIC_REFRESH_TOKEN", "PRISM_REFRESH_TOKEN")
TENANT_ENV = "PRISMATIC_TENANT_ID"

DEFAULT_CONCURRENCY = 8
# About 20 requests a second is the reported (unconfirmed) limit of the real API; the
# pace also halves on every HTTP 429, so a lower real limit costs time, not failures.
DEFAULT_REQUESTS_PER_SECOND = 20.0
MAX_PAGE_SIZE = 100
DEFAULT_PACK = 10
DEFAULT_TIMEOUT = 60.0
DEFAULT_MAX_ATTEMPTS = 6
DEFAULT_MAX_RETRY_SECONDS = 300.0
#: A day is final (the API adds nothing to it any more) this many hours after it ended.
DEFAULT_FINAL_AFTER_HOURS = 48.0


def _mask(secret: str | None) -> str:
    return "None" if secret is None else "'***'"


@dataclass(frozen=True, kw_only=True)
class Connection:
    """Where the API is and how to authenticate; the repr never shows a token."""

    base_url: str
    token: str = field(repr=False)
    refresh_token: str | None = field(default=None, repr=False)
    tenant_id: str | None = None

    @property
    def api_url(self) -> str:
        """The GraphQL endpoint, ``<base>/api``."""
        return f"{self.base_url}/api"

    @property
    def refresh_url(self) -> str:
        """Where a refresh token is exchanged for a new access token."""
        return f"{self.base_url}/auth/refresh"

    def __repr__(self) -> str:
        return (
            f"Connection(base_url={self.base_url!r}, token={_mask(self.token)}, "
            f"refresh_token={_mask(self.refresh_token)}, tenant_id={self.tenant_id!r})"
        )

    def with_token(self, token: str) -> Connection:
        """The same connection with a new access token (after a refresh)."""
        return Connection(
            base_url=self.base_url,
            token=token,
            refresh_token=self.refresh_token,
            tenant_id=self.tenant_id,
        )


def normalize_base_url(url: str) -> str:
    """A stack URL as ``scheme://host[:port][/prefix]``, without a trailing ``/api``.

    Accepts ``app.eu-west-1.prismatic.io`` (https assumed) and ``…/api`` (the
    endpoint itself), because both are what people paste.
    """
    text = url.strip()
    if not text:
        raise ConfigurationError("the Prismatic URL is empty; pass e.g. https://app.prismatic.io")
    if "://" not in text:
        text = f"https://{text}"
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigurationError(
            f"{url!r} is not an http(s) URL; pass the stack URL, e.g. https://app.prismatic.io"
        )
    if parts.username or parts.password:
        raise ConfigurationError(
            "the URL must not contain a user or password; pass the token in PRISMATIC_API_KEY"
        )
    if parts.query or parts.fragment:
        raise ConfigurationError(f"{url!r} has a query or fragment; pass just the stack URL")
    path = parts.path.rstrip("/")
    if path.endswith("/api"):
        path = path[: -len("/api")]
    return f"{parts.scheme}://{parts.netloc}{path}"


def _first_env(env: Mapping[str, str], names: tuple[str, ...]) -> str | None:
    for name in names:
        value = env.get(name, "").strip()
        if value:
            return value
    return None


def resolve_connection(
    url: str | None = None,
    token: str | None = None,
    *,
    refresh_token: str | None = None,
    env: Mapping[str, str] | None = None,
) -> Connection:
    """Connection settings from arguments, then the environment, then defaults.

    URL: ``url`` > ``PRISMATIC_URL`` > ``https://app.prismatic.io``.
    Token: ``token`` > ``PRISMATIC_API_KEY`` > ``PRISM_ACCESS_TOKEN``.
    Refresh token (optional): ``refresh_token`` > ``PRISMATIC_REFRESH_TOKEN`` >
    ``PRISM_REFRESH_TOKEN``.

    Raises
    ------
    AuthenticationError
        No token was found anywhere.
    ConfigurationError
        The URL is not usable.
    """
    environ = os.environ if env is None else env
    base_url = normalize_base_url(url or environ.get(URL_ENV, "").strip() or DEFAULT_BASE_URL)
    resolved_token = (token or "").strip() or _first_env(environ, TOKEN_ENVS)
    if not resolved_token:
        hint = (
            "run: export PRISMATIC_API_KEY=$(prism me:token)"
            if shutil.which("prism")
            else "install the prism CLI (npm i -g @prismatic-io/prism), run 'prism login', "
            "then export PRISMATIC_API_KEY=$(prism me:token)"
        )
        raise AuthenticationError(f"no API token: set PRISMATIC_API_KEY; {hint}")
    return Connection(
        base_url=base_url,
        token=resolved_token,
        refresh_token=(refresh_token or "").strip() or _first_env(environ, REFRESH_TOKEN_ENVS),
        tenant_id=environ.get(TENANT_ENV, "").strip() or None,
    )


@dataclass(frozen=True, kw_only=True)
class FetchOptions:
    """How hard to push the API. The defaults are safe against the real one.

    concurrency
        Requests in flight at once.
    requests_per_second
        Client-side pace shared by all requests; halves on every HTTP 429 and
        creeps back up after successes. ``None`` disables pacing (sandbox only).
    page_size
        Nodes per page, 1 to 100 (the API's maximum).
    pack
        Page queries packed into one request under aliases (1 = no packing).
        Lowered automatically if the server refuses large operations.
    org_wide
        Try one org-wide query per metrics stream before falling back to one
        query per customer / instance.
    timeout
        Seconds before one HTTP request is abandoned (and retried).
    max_attempts, max_retry_seconds
        The retry budget for transient failures (429, 5xx, resets, timeouts).
    """

    concurrency: int = DEFAULT_CONCURRENCY
    requests_per_second: float | None = DEFAULT_REQUESTS_PER_SECOND
    page_size: int = MAX_PAGE_SIZE
    pack: int = DEFAULT_PACK
    org_wide: bool = True
    timeout: float = DEFAULT_TIMEOUT
    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    max_retry_seconds: float = DEFAULT_MAX_RETRY_SECONDS

    def __post_init__(self) -> None:
        if self.concurrency < 1:
            raise ConfigurationError(f"concurrency must be at least 1, got {self.concurrency}")
        if self.requests_per_second is not None and self.requests_per_second <= 0:
            raise ConfigurationError(
                f"requests per second must be positive, got {self.requests_per_second}"
            )
        if not 1 <= self.page_size <= MAX_PAGE_SIZE:
            raise ConfigurationError(
                f"page size must be between 1 and {MAX_PAGE_SIZE}, got {self.page_size}"
            )
        if self.pack < 1:
            raise ConfigurationError(f"pack must be at least 1, got {self.pack}")
        if self.timeout <= 0:
            raise ConfigurationError(f"timeout must be positive, got {self.timeout}")
        if self.max_retry_seconds <= 0:
            raise ConfigurationError(
                f"max retry seconds must be positive, got {self.max_retry_seconds}"
            )
        if self.max_attempts < 1:
            raise ConfigurationError(f"max attempts must be at least 1, got {self.max_attempts}")


def resolve_zone(tz: str) -> zoneinfo.ZoneInfo:
    """The IANA zone ``tz``; ``ConfigurationError`` says what to pass otherwise.

    Fixed offsets such as ``"+05:00"`` are refused: a billing day should follow
    its zone's daylight-saving rules.
    """
    try:
        return zoneinfo.ZoneInfo(tz)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):  # OSError: "Europe" is a folder
        raise ConfigurationError(
            f"unknown time zone {tz!r}; use an IANA name such as UTC or Europe/Berlin"
        ) from None


def validate_date_range(start: dt.date, end: dt.date) -> None:
    """Start must not be after end; both are inclusive calendar days."""
    if start > end:
        raise ConfigurationError(
            f"start date {start.isoformat()} is after end date {end.isoformat()}; swap them"
        )
