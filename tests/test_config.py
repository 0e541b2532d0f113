"""Connection settings: precedence, URL forms, and a token that never shows."""

from __future__ import annotations

import datetime as dt

import pytest

from prismatic_usage.config import (
    Connection,
    FetchOptions,
    normalize_base_url,
    resolve_connection,
    resolve_zone,
    validate_date_range,
)
from prismatic_usage.errors import AuthenticationError, ConfigurationError

SECRET = "tok-SECRET-123"


def test_argument_beats_environment_beats_default() -> None:
    env = {"PRISMATIC_URL": "https://app.eu-west-1.prismatic.io", "PRISMATIC_API_KEY": "env"}
    assert resolve_connection(env=env).base_url == "https://app.eu-west-1.prismatic.io"
    assert resolve_connection(env=env).token == "env"
    conn = resolve_connection("https://app.ca-central-1.prismatic.io", "arg", env=env)
    assert (conn.base_url, conn.token) == ("https://app.ca-central-1.prismatic.io", "arg")
    assert resolve_connection(env={"PRISM_ACCESS_TOKEN": "p"}).base_url == (
        "https://app.prismatic.io"
    )
    assert resolve_connection(env={"PRISM_ACCESS_TOKEN": "p"}).token == "p"
    both = {"PRISMATIC_API_KEY": "first", "PRISM_ACCESS_TOKEN": "second"}
    assert resolve_connection(env=both).token == "first"


def test_missing_token_says_how_to_get_one() -> None:
    with pytest.raises(AuthenticationError, match="prism me:token"):
        resolve_connection(env={})


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("https://app.prismatic.io", "https://app.prismatic.io"),
        ("https://app.prismatic.io/", "https://app.prismatic.io"),
        ("https://app.prismatic.io/api", "https://app.prismatic.io"),
        ("https://app.prismatic.io/api/", "https://app.prismatic.io"),
        ("app.eu-west-2.prismatic.io", "https://app.eu-west-2.prismatic.io"),
        ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
    ],
)
def test_url_forms_people_paste_are_accepted(given: str, expected: str) -> None:
    assert normalize_base_url(given) == expected
    conn = resolve_connection(given, "t", env={})
    assert conn.api_url == f"{expected}/api"


@pytest.mark.parametrize("bad", ["", "ftp://example.com", "https://", "https://x.io/?a=1"])
def test_unusable_urls_are_refused(bad: str) -> None:
    with pytest.raises(ConfigurationError):
        normalize_base_url(bad)


def test_token_never_in_repr() -> None:
    conn = Connection(base_url="https://x", token=SECRET, refresh_token=SECRET + "r")
    assert SECRET not in repr(conn) and SECRET not in str(conn)
    assert "***" in repr(conn)


def test_options_are_validated() -> None:
    with pytest.raises(ConfigurationError, match="page size"):
        FetchOptions(page_size=101)
    with pytest.raises(ConfigurationError, match="concurrency"):
        FetchOptions(concurrency=0)
    with pytest.raises(ConfigurationError, match="pack"):
        FetchOptions(pack=0)


def test_dates_and_zones() -> None:
    validate_date_range(dt.date(2025, 1, 1), dt.date(2025, 1, 1))
    with pytest.raises(ConfigurationError, match="after"):
        validate_date_range(dt.date(2025, 1, 2), dt.date(2025, 1, 1))
    assert resolve_zone("Europe/Berlin").key == "Europe/Berlin"
    with pytest.raises(ConfigurationError, match="IANA"):
        resolve_zone("Mars/Olympus")
