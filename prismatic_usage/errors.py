"""The exceptions prismatic_usage raises, chosen by what the caller does next.

::

    PrismaticUsageError                 base class; catch this for "anything from us"
    ├── ConfigurationError (ValueError) fix an argument or environment variable
    ├── AuthenticationError             get a valid token (``prism me:token``)
    ├── APIError                        the API answered, but not usefully
    │   ├── QueryError                  GraphQL errors in the answer (``.errors``)
    │   ├── MalformedResponseError      the answer has the wrong shape or types
    │   └── PaginationError             the server's paging is inconsistent
    ├── RetriesExhaustedError           transient failures outlasted the retry budget
    ├── OutputError                     the report cannot be written where asked
    └── StoreError                      the usage store cannot be used as it is
        └── StoreLockedError            another run holds the store: wait and run again

Messages never contain the API token: every message passes through
:func:`prismatic_usage._safe_text.redact` (each token a connection or a refresh
ever held is cut out) and is one line of at most 2,000 characters, whatever
server text it quotes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ._safe_text import one_line, redact

_MAX_MESSAGE_CHARS = 2000

__all__ = [
    "APIError",
    "AuthenticationError",
    "ConfigurationError",
    "MalformedResponseError",
    "OutputError",
    "PaginationError",
    "PrismaticUsageError",
    "QueryError",
    "RetriesExhaustedError",
    "StoreError",
    "StoreLockedError",
]


class PrismaticUsageError(Exception):
    """Base class of every error this library raises on purpose.

    Parameters
    ----------
    *args
        As for :class:`Exception`; a message (the first) is made one line, with
        any token redacted.
    """

    def __init__(self, *args: object) -> None:
        if args and isinstance(args[0], str):
            args = (one_line(redact(args[0]), limit=_MAX_MESSAGE_CHARS), *args[1:])
        super().__init__(*args)


class ConfigurationError(PrismaticUsageError, ValueError):
    """An argument or environment variable is missing or invalid."""


class AuthenticationError(PrismaticUsageError):
    """The API refused the token (HTTP 401/403), or no token was given.

    Parameters
    ----------
    message
        What happened and what to do, one line.
    status
        The HTTP status, or ``None`` when no request was made.
    """

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class APIError(PrismaticUsageError):
    """The API answered, but the answer cannot be used."""


class QueryError(APIError):
    """The API returned GraphQL errors for a query.

    ``errors`` holds the error objects as the server sent them; ``context``
    names the query and the customer or instance it concerned.

    Parameters
    ----------
    message
        What happened, one line.
    errors
        The GraphQL error objects, as sent.
    context
        The query and the customer or instance it concerned.
    """

    def __init__(
        self, message: str, *, errors: Sequence[Mapping[str, Any]] = (), context: str = ""
    ) -> None:
        super().__init__(message)
        self.errors = list(errors)
        self.context = context


class MalformedResponseError(APIError):
    """A response is not JSON, or a field is missing or has the wrong type."""


class PaginationError(APIError):
    """Pages contradict each other: a repeated cursor, or a total that does not add up."""


class RetriesExhaustedError(PrismaticUsageError):
    """A request kept failing with transient errors until the retry budget ran out.

    Parameters
    ----------
    message
        What failed and the last error, one line.
    attempts
        How many times the request was tried.
    last_status
        The last HTTP status, or ``None`` for a network error.
    """

    def __init__(self, message: str, *, attempts: int, last_status: int | None) -> None:
        super().__init__(message)
        self.attempts = attempts
        self.last_status = last_status


class OutputError(PrismaticUsageError):
    """The output directory or file cannot be created or written."""


class StoreError(PrismaticUsageError):
    """The usage store's directory is unusable: damaged, of another format, or unwritable."""


class StoreLockedError(StoreError):
    """Another run holds the store's lock; wait for it to finish and run again."""
