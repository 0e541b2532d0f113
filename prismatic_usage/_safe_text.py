"""Server text made safe to show: one line, no control characters, capped, no secrets.

Anything a server (or a URL the user pasted) says may reach a terminal or a log:
an error message with newlines and ANSI escape codes, an echoed ``Authorization``
header, a megabyte of HTML. These helpers are the one place that text is tamed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import urlsplit

__all__ = [
    "MAX_SHOWN_CHARS",
    "forget_secrets",
    "one_line",
    "redact",
    "register_secret",
    "safe_origin",
    "scrub",
]

#: Server text longer than this is cut (with an ellipsis) before it is shown.
MAX_SHOWN_CHARS = 300
#: Secrets shorter than this are not searched for: they would mask ordinary words.
_MIN_SECRET_CHARS = 6
# C0 and C1 control characters, DEL, the line and paragraph separators (U+2028,
# U+2029: str.splitlines breaks there), and the bidirectional marks and overrides
# that can reorder what a terminal shows (U+061C, U+200E-200F, U+202A-202E, U+2066-2069).
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
# Every token and refresh token this process has held (see register_secret).
_SECRETS: set[str] = set()
_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escaped(match: re.Match[str]) -> str:
    char = match.group()
    if char in _ESCAPES:
        return _ESCAPES[char]
    return f"\\x{ord(char):02x}" if ord(char) < 0x100 else f"\\u{ord(char):04x}"


def one_line(text: str, *, limit: int = MAX_SHOWN_CHARS) -> str:
    """``text`` as one printable line of at most ``limit`` characters.

    Parameters
    ----------
    text
        Anything, typically a message a server sent.
    limit
        The most characters kept; longer text ends in ``…``.

    Control characters (newlines, ANSI escapes, bidi overrides) are written as
    visible escapes such as ``\\n`` and ``\\x1b``, so they cannot move the cursor,
    recolour the terminal or fake a second line. Lone surrogates become ``\\udxxx``.
    """
    shown = _UNSAFE.sub(_escaped, text)
    shown = shown.encode("utf-8", "backslashreplace").decode("utf-8")
    return shown if len(shown) <= limit else shown[: limit - 1] + "…"


def register_secret(secret: str | None) -> None:
    """Remember ``secret`` so that :func:`redact` and :func:`scrub` cut it out of any text.

    Parameters
    ----------
    secret
        A token or refresh token; ``None`` and very short values are ignored.

    Every :class:`~prismatic_usage.config.Connection` registers its tokens, and the
    session registers each refreshed one, so an error message, a log line or a
    traceback never shows a token, whichever route the text took.
    """
    if secret and len(secret) >= _MIN_SECRET_CHARS:
        _SECRETS.add(secret)


def forget_secrets() -> None:
    """Forget every registered secret (for tests; nothing else needs it)."""
    _SECRETS.clear()


def redact(text: str, secrets: Iterable[str | None] = ()) -> str:
    """``text`` with every registered secret, and each of ``secrets``, replaced by ``***``.

    Parameters
    ----------
    text
        The text to show or raise.
    secrets
        More secrets to cut out besides the registered ones; ``None`` and very
        short values are skipped.
    """
    wanted = _SECRETS | {s for s in secrets if s and len(s) >= _MIN_SECRET_CHARS}
    for secret in sorted(wanted, key=len, reverse=True):
        text = text.replace(secret, "***")
    return text


def scrub(text: str, *, line_limit: int = 2000) -> str:
    """Multi-line text (a traceback, a log record) with secrets redacted and each line
    made safe: line breaks are kept, every other control character is escaped.

    Parameters
    ----------
    text
        The text to write to a terminal or a log file.
    line_limit
        The most characters kept of each line (a traceback may quote a whole
        answer body in one line).
    """
    lines = redact(text).split("\n")
    return "\n".join(one_line(line, limit=line_limit) for line in lines)


def safe_origin(url: str) -> str:
    """``scheme://host[:port]`` of ``url``: never its user, password, path or query.

    Parameters
    ----------
    url
        A URL from a user or a server (a redirect's ``Location``); may be invalid.

    Returns ``"an invalid URL"`` when no origin can be read from it.
    """
    try:
        parts = urlsplit(url.strip())
        host = parts.hostname
        port = parts.port
    except ValueError:
        return "an invalid URL"
    if not parts.scheme or not host:
        return "an invalid URL"
    where = f"[{host}]" if ":" in host else host
    return one_line(f"{parts.scheme}://{where}" + (f":{port}" if port else ""), limit=120)
