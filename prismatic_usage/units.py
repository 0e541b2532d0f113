"""The values the planner works with: page units, stream results, progress reports.

Plain data, no I/O: a :class:`PageUnit` is one page of one stream (what one
alias of a packed request fetches); a :class:`StreamResult` is every record of
a finished stream, handed to the planner's sink; :class:`FetchProgress` goes to
the progress callback after every request.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pyarrow as pa

from .plan import Window
from .queries import Stream
from .records import (
    CUSTOMER_SCHEMA,
    DAILY_METRIC_SCHEMA,
    INSTANCE_SCHEMA,
    ORG_DAILY_SCHEMA,
    ORG_HOURLY_SCHEMA,
    SNAPSHOT_SCHEMA,
    TableBuilder,
)

__all__ = [
    "PHASES",
    "FetchProgress",
    "PageUnit",
    "ProgressCallback",
    "StreamKey",
    "StreamResult",
    "StreamSink",
    "StreamState",
]


#: The phases a fetch goes through, in order (:attr:`FetchProgress.phase`).
PHASES = ("listing customers", "listing instances", "fetching usage")


@dataclass(frozen=True)
class FetchProgress:
    """A progress report, sent after every request.

    ``pages_done`` of ``pages_total`` is what a progress bar shows: pages
    (one page of one list or usage stream, up to ``page_size`` records) that
    arrived, against every page known to be needed so far. The total grows
    while the run learns its work: each stream counts one page until its
    first page's ``totalCount`` tells how many follow, and the usage streams
    of each customer / instance are planned once its list is complete. A
    stream read again from the start adds its pages again.

    Attributes
    ----------
    entities_done, entities_total
        Units of work (lists and per-customer / per-instance streams) finished, and in all.
    requests
        HTTP requests made so far.
    rows
        Records received so far (system records included).
    pages_done, pages_total
        Pages arrived, and pages known to be needed so far.
    phase
        One of :data:`PHASES`: the lists are read first (usage fetched
        org-wide may already arrive meanwhile).
    """

    entities_done: int
    entities_total: int
    requests: int
    rows: int
    pages_done: int = 0
    pages_total: int = 0
    phase: str = PHASES[-1]


ProgressCallback = Callable[[FetchProgress], None]


@dataclass(frozen=True)
class StreamResult:
    """Every record of one finished stream, checked complete and without duplicates.

    ``kind`` is ``customers``, ``instances``, ``snapshots`` or ``metrics``;
    ``entity`` the customer / instance a per-entity stream is scoped to (None
    for lists and org-wide streams); ``window`` the days a usage stream covered.
    """

    kind: str
    org_wide: bool
    entity: str | None
    window: Window | None
    table: pa.Table


StreamSink = Callable[[StreamResult], None]

SCHEMAS = {
    "customers": CUSTOMER_SCHEMA,
    "instances": INSTANCE_SCHEMA,
    "snapshots": SNAPSHOT_SCHEMA,
    "metrics": DAILY_METRIC_SCHEMA,
    "org_daily": ORG_DAILY_SCHEMA,
    "org_hourly": ORG_HOURLY_SCHEMA,
}


@dataclass(frozen=True)
class PageUnit:
    """One page of one stream: what a single alias in a packed request fetches."""

    stream: Stream
    entity: str | None
    offset: int
    first: int
    window: Window | None = None
    #: The first page of an org-wide stream, which the server may refuse. Probes
    #: travel alone: a refused non-null root field nulls the whole answer, and
    #: its siblings would have to be fetched again.
    is_probe: bool = False
    #: Which reading of its stream this page belongs to: a stream read again
    #: from the start (its pages contradicted each other) ignores older pages.
    attempt: int = 0

    @property
    def key(self) -> StreamKey:
        return (self.stream.name, self.entity, self.window)

    def describe(self) -> str:
        return f"{self.describe_stream()} (offset {self.offset})"

    def describe_stream(self) -> str:
        """The stream's name in messages: ``customers``, ``daily metrics of instance X``."""
        scope = f" of {self.stream.entity_arg} {self.entity}" if self.entity else ""
        return f"{self.stream.name}{scope}"


StreamKey = tuple[str, str | None, Window | None]


@dataclass(frozen=True)
class Claim:
    """What a worker reserved before waiting for its turn."""

    probe: bool
    count: int
    trial: bool


@dataclass
class StreamState:
    """Paging state of one (stream, entity): the one place that decides when it is done.

    ``planned_until`` is the offset up to which pages are planned: only a
    bounded window of a stream's pages is planned ahead, so a stream is done
    when its count is known, every page up to it planned and none outstanding.
    ``attempt`` counts readings from the start (a restart is the next attempt).
    """

    total: int | None = None
    planned_until: int = 0
    outstanding: int = 0
    builder: TableBuilder | None = None
    attempt: int = 0

    @property
    def done(self) -> bool:
        return self.total is not None and self.outstanding == 0 and self.planned_until >= self.total

    def end_empty(self) -> None:
        """End the stream without (more) records: refused, or replaced by other streams."""
        self.total = self.total or 0
        self.planned_until = self.total
        self.outstanding = 0
        self.builder = None
