"""Connection settings and tuning knobs, resolved once: argument > environment > default.

This is the only module that reads the environment.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import shutil
import zoneinfo
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from ._safe_text import register_secret
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
#: The largest answer body read (decompressed); a full pack of pages is well under 1 MiB.
DEFAULT_MAX_RESPONSE_BYTES = 32 * 2**20
#: Sane bounds for the tuning knobs: outside them a run would hang or be refused.
MAX_CONCURRENCY = 64
MIN_REQUESTS_PER_SECOND, MAX_REQUESTS_PER_SECOND = 0.01, 100_000.0
MAX_PACK = 100
MAX_TIMEOUT = 3600.0
MAX_ATTEMPTS = 100
MAX_RETRY_SECONDS = 24 * 3600.0
MIN_RESPONSE_BYTES, MAX_RESPONSE_BYTES = 2**16, 2**30
#: A day is final (the API adds nothing to it any more) this many hours after it ended.
DEFAULT_FINAL_AFTER_HOURS = 48.0

PERIODS: tuple[str, ...] = ("month", "week", "range")
"""The billing periods the roll-ups accept (here, not in ``billing``: the CLI's parser
needs them without importing pandas)."""


def _mask(secret: str | None) -> str:
    return "None" if secret is None else "'***'"


@dataclass(frozen=True, kw_only=True)
class Connection:
    """Where the API is and how to authenticate; the repr never shows a token.

    Build it with :func:`resolve_connection` rather than by hand.

    Attributes
    ----------
    base_url
        The stack's URL without a path, e.g. ``https://app.prismatic.io``.
    token
        The API access token.
    refresh_token
        Optional token exchanged for a new access token when the old one expires.
    tenant_id
        Optional tenant sent with a refresh.
    """

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

    def __post_init__(self) -> None:
        register_secret(self.token)
        register_secret(self.refresh_token)

    def __repr__(self) -> str:
        return (
            f"Connection(base_url={self.base_url!r}, token={_mask(self.token)}, "
            f"refresh_token={_mask(self.refresh_token)}, tenant_id={self.tenant_id!r})"
        )

    def with_token(self, token: str) -> Connection:
        """The same connection with a new access token (after a refresh).

        Parameters
        ----------
        token
            The new access token.
        """
        return Connection(
            base_url=self.base_url,
            token=token,
            refresh_token=self.refresh_token,
            tenant_id=self.tenant_id,
        )


# A DNS name (after IDNA encoding) or an IPv4 address, or an IPv6 address (urlsplit
# strips its brackets).
_HOST = re.compile(r"[A-Za-z0-9._-]+|[0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*(%[A-Za-z0-9._-]+)?")
_CONTROL = re.compile(r"[\x00-\x20\x7f-\x9f]")


def _valid_host(host: str) -> bool:
    """Whether ``host`` is a name, an IP address, or an internationalised name."""
    try:
        ascii_host = host.encode("idna").decode("ascii")
    except UnicodeError:
        return False
    return bool(_HOST.fullmatch(ascii_host)) and not ascii_host.endswith(".")


def normalize_base_url(url: str) -> str:
    """A stack URL as ``scheme://host[:port][/prefix]``, without a trailing ``/api``.

    Accepts ``app.eu-west-1.prismatic.io`` (https assumed) and ``…/api`` (the
    endpoint itself), because both are what people paste.
    """
    text = url.strip()
    if not text:
        raise ConfigurationError("the Prismatic URL is empty; pass e.g. https://app.prismatic.io")
    if _CONTROL.search(text):
        raise ConfigurationError(
            "the Prismatic URL holds a space or control character; pass the stack URL, "
            "e.g. https://app.prismatic.io"
        )
    if "://" not in text:
        text = f"https://{text}"
    # Never echo the URL itself: its user, password or query may hold a secret.
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        raise ConfigurationError(
            "the Prismatic URL cannot be read (a bracket or port is wrong); "
            "pass the stack URL, e.g. https://app.prismatic.io"
        ) from None
    if "@" in parts.netloc:
        raise ConfigurationError(
            "the URL must not contain a user or password; pass the token in PRISMATIC_API_KEY"
        )
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigurationError(
            "the Prismatic URL is not an http(s) URL; pass the stack URL, "
            "e.g. https://app.prismatic.io"
        )
    if parts.query or parts.fragment or text.rstrip().endswith(("?", "#")):
        raise ConfigurationError(
            "the Prismatic URL has a query or fragment (not shown: it may hold a secret); "
            "pass just the stack URL, e.g. https://app.prismatic.io"
        )
    if port == 0 or not _valid_host(parts.hostname):
        raise ConfigurationError(
            "the Prismatic URL's host or port is not valid; "
            "pass the stack URL, e.g. https://app.prismatic.io"
        )
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

    Parameters
    ----------
    url
        The stack, e.g. ``https://app.prismatic.io`` (a region's or a private stack's URL).
    token
        An API access token (``prism me:token``).
    refresh_token
        Optional: lets a long run exchange it for a new access token when the old one expires.
    env
        The environment to read instead of ``os.environ`` (for tests and services).

    Returns
    -------
    Connection

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


def secrets_in_environment(env: Mapping[str, str] | None = None) -> tuple[str, ...]:
    """Every token and refresh token the environment holds, to redact from output.

    Parameters
    ----------
    env
        The environment to read; ``os.environ`` when None.
    """
    environ = os.environ if env is None else env
    names = TOKEN_ENVS + REFRESH_TOKEN_ENVS
    return tuple(value.strip() for name in names if (value := environ.get(name, "")).strip())


@dataclass(frozen=True, kw_only=True)
class FetchOptions:
    """How hard to push the API. The defaults are safe against the real one.

    Parameters
    ----------
    concurrency
        Requests in flight at once.
    requests_per_second
        The server's limit in requests per second. The client-side pace shared by
        all requests starts them at 95% of it and never more than it in any second
        (see :mod:`prismatic_usage.pacing`); it halves on every HTTP 429 and
        creeps back up after successes. ``None`` disables pacing (sandbox only).
    page_size
        Nodes per page, 1 to 100 (the API's maximum).
    pack
        The node budget of one request, in pages: page queries are packed into
        one request under aliases while their nodes fit ``pack * page_size``.
        None (the default) adapts it: it starts at ``DEFAULT_PACK`` (1,000
        nodes), grows after fast whole answers and halves on refusals and slow
        answers, up to 10,000 nodes (see :mod:`prismatic_usage.budget`). A
        number is a fixed budget (1 = no packing): never raised, only lowered
        if the server refuses a request as too large.
    org_wide
        Try one org-wide query per metrics stream before falling back to one
        query per customer / instance.
    timeout
        Seconds before one HTTP request is abandoned (and retried).
    max_attempts, max_retry_seconds
        The retry budget for transient failures (429, 5xx, resets, timeouts).
    max_response_bytes
        The largest answer body read. A pack over it is split like a refused
        pack; a single page over it is an error (``MalformedResponseError``).

    Each knob has sane bounds (the ``MAX_*`` / ``MIN_*`` constants); a value
    outside them is a ``ConfigurationError``, never a hang.
    """

    concurrency: int = DEFAULT_CONCURRENCY
    requests_per_second: float | None = DEFAULT_REQUESTS_PER_SECOND
    page_size: int = MAX_PAGE_SIZE
    pack: int | None = None
    org_wide: bool = True
    timeout: float = DEFAULT_TIMEOUT
    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    max_retry_seconds: float = DEFAULT_MAX_RETRY_SECONDS
    max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES

    def __post_init__(self) -> None:
        for name in ("concurrency", "page_size", "pack", "max_attempts", "max_response_bytes"):
            value = getattr(self, name)
            if name == "pack" and value is None:
                continue  # adaptive
            if isinstance(value, bool) or not isinstance(value, int):
                raise ConfigurationError(f"{name} must be a whole number, got {value!r:.40}")
        for name in ("timeout", "max_retry_seconds"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ConfigurationError(f"{name} must be a number, got {value!r:.40}")
        rate = self.requests_per_second
        if rate is not None and (isinstance(rate, bool) or not isinstance(rate, int | float)):
            raise ConfigurationError(f"requests_per_second must be a number, got {rate!r:.40}")
        _check_range("concurrency", self.concurrency, 1, MAX_CONCURRENCY)
        if self.requests_per_second is not None:
            _check_range(
                "requests per second",
                self.requests_per_second,
                MIN_REQUESTS_PER_SECOND,
                MAX_REQUESTS_PER_SECOND,
            )
        _check_range("page size", self.page_size, 1, MAX_PAGE_SIZE)
        if self.pack is not None:
            _check_range("pack", self.pack, 1, MAX_PACK)
        _check_range("timeout", self.timeout, 0.001, MAX_TIMEOUT)
        _check_range("max retry seconds", self.max_retry_seconds, 0.001, MAX_RETRY_SECONDS)
        _check_range("max attempts", self.max_attempts, 1, MAX_ATTEMPTS)
        _check_range(
            "max response bytes", self.max_response_bytes, MIN_RESPONSE_BYTES, MAX_RESPONSE_BYTES
        )


def _check_range(what: str, value: float, low: float, high: float) -> None:
    """Refuse ``value`` outside ``[low, high]`` (NaN included) in one line."""
    if not low <= value <= high:
        raise ConfigurationError(
            f"{what} must be between {_number(low)} and {_number(high)}, got {_number(value)}"
        )


def _number(value: float) -> str:
    """``value`` as people write it: ``1048576``, ``0.01``, ``1e-300``."""
    if isinstance(value, int) or (value.is_integer() and abs(value) < 1e15):
        return str(int(value))
    return f"{value:g}"


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


#: Usage dates outside these years cannot exist (and the calendar arithmetic of a
#: day before year 1 or after 9999 would overflow): such a date is a typo.
EARLIEST_DATE, LATEST_DATE = dt.date(2000, 1, 1), dt.date(2100, 12, 31)


def validate_date_range(start: dt.date, end: dt.date) -> None:
    """Start must not be after end; both are inclusive calendar days.

    Parameters
    ----------
    start, end
        The first and last day of the range; each must lie between
        ``EARLIEST_DATE`` (2000-01-01) and ``LATEST_DATE`` (2100-12-31).
    """
    for day in (start, end):
        if not EARLIEST_DATE <= day <= LATEST_DATE:
            raise ConfigurationError(
                f"{day.isoformat()} is outside {EARLIEST_DATE.isoformat()} .. "
                f"{LATEST_DATE.isoformat()}; check the year"
            )
    if start > end:
        raise ConfigurationError(
            f"start date {start.isoformat()} is after end date {end.isoformat()}; swap them"
        )
