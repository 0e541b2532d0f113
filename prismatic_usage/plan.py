"""What to fetch: date windows per stream, minus what is already complete (pure).

A :class:`FetchPlan` tells the planner which windows of days to ask for, org-wide
and per customer / instance. A one-shot fetch asks for the whole range once
(:meth:`FetchPlan.whole`). An incremental fetch (the usage store) asks only for
the UTC days that are not yet complete (:meth:`FetchPlan.incremental`): org-wide
one window per day, so every finished day can be kept on its own, and per entity
one window per run of consecutive missing days. The plan knows no files and no
network; the store computes the completed days and hands them over.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import zoneinfo
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

__all__ = ["KINDS", "FetchPlan", "Window", "day_runs", "utc_days_covering", "utc_window"]

#: The two usage streams: hourly snapshots per customer, daily metrics per instance.
KINDS = ("snapshots", "metrics")


@dataclass(frozen=True)
class Window:
    """A span of days one stream is asked for.

    ``first`` .. ``last`` are the inclusive days (the ``snapshotDate`` bounds of
    daily metrics); ``time_gte`` .. ``time_lte`` the inclusive ``snapshotTime``
    bounds (ISO, UTC) of hourly snapshots over the same days.
    """

    first: dt.date
    last: dt.date
    time_gte: str
    time_lte: str

    def days(self) -> list[dt.date]:
        """Every day of the window, in order."""
        return [self.first + dt.timedelta(days=i) for i in range((self.last - self.first).days + 1)]

    def variables(self) -> dict[str, str]:
        """The range variables a packed document takes for this window."""
        return {
            "timeGte": self.time_gte,
            "timeLte": self.time_lte,
            "dateGte": self.first.isoformat(),
            "dateLte": self.last.isoformat(),
        }


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat(timespec="microseconds")


def local_window(start: dt.date, end: dt.date, tz: str) -> Window:
    """Days ``start`` .. ``end`` as calendar days in ``tz`` (the snapshot bounds move with it)."""
    zone = zoneinfo.ZoneInfo(tz)
    low = dt.datetime.combine(start, dt.time(0), tzinfo=zone)
    high = dt.datetime.combine(end + dt.timedelta(days=1), dt.time(0), tzinfo=zone)
    return Window(start, end, _iso(low), _iso(high - dt.timedelta(microseconds=1)))


def utc_window(first: dt.date, last: dt.date) -> Window:
    """UTC days ``first`` .. ``last``: the unit the store tracks."""
    return local_window(first, last, "UTC")


def utc_days_covering(start: dt.date, end: dt.date, tz: str) -> tuple[dt.date, dt.date]:
    """The first and last UTC day that overlap local days ``start`` .. ``end`` in ``tz``."""
    window = local_window(start, end, tz)
    low = dt.datetime.fromisoformat(window.time_gte).date()
    high = dt.datetime.fromisoformat(window.time_lte).date()
    return low, high


def day_runs(days: Iterable[dt.date]) -> list[tuple[dt.date, dt.date]]:
    """Consecutive days grouped into inclusive ``(first, last)`` runs, in order."""
    runs: list[tuple[dt.date, dt.date]] = []
    for day in sorted(set(days)):
        if runs and (day - runs[-1][1]).days == 1:
            runs[-1] = (runs[-1][0], day)
        else:
            runs.append((day, day))
    return runs


def _span(first: dt.date, last: dt.date) -> list[dt.date]:
    return [first + dt.timedelta(days=i) for i in range((last - first).days + 1)]


@dataclass(frozen=True)
class FetchPlan:
    """Which windows each stream needs.

    ``org_windows[kind]`` are fetched org-wide (the first one is the probe that
    may be refused). ``entity_windows`` says, once the customer / instance list
    is known, which windows one entity still needs: its missing days, less the
    days an org-wide fetch of this run covered.
    """

    org_windows: Mapping[str, tuple[Window, ...]]
    needed: Mapping[str, frozenset[dt.date]]
    entity_done: Mapping[str, Mapping[str, frozenset[dt.date]]] = field(default_factory=dict)
    whole_window: Window | None = None
    #: Per kind, every day asked for and the entities the store has ever seen:
    #: an entity it has never seen gets its whole history fetched once.
    requested: Mapping[str, frozenset[dt.date]] = field(default_factory=dict)
    known: Mapping[str, frozenset[str]] | None = None
    #: The days to fetch the org totals for (reconciliation); None: not wanted.
    org_totals: Window | None = None

    def with_org_totals(self, start: dt.date, end: dt.date, tz: str) -> FetchPlan:
        """The same plan, also fetching the org totals for local days ``start`` .. ``end``."""
        return dataclasses.replace(self, org_totals=local_window(start, end, tz))

    @classmethod
    def whole(cls, start: dt.date, end: dt.date, tz: str) -> FetchPlan:
        """Everything from ``start`` to ``end`` (local days in ``tz``), nothing skipped."""
        window = local_window(start, end, tz)
        days = frozenset(_span(start, end))
        return cls(
            org_windows={kind: (window,) for kind in KINDS},
            needed=dict.fromkeys(KINDS, days),
            whole_window=window,
        )

    @classmethod
    def incremental(
        cls,
        days: Mapping[str, tuple[dt.date, dt.date]],
        *,
        org_done: Mapping[str, Iterable[dt.date]],
        entity_done: Mapping[str, Mapping[str, frozenset[dt.date]]],
        current: Mapping[str, Iterable[str]] | None = None,
        known: Mapping[str, frozenset[str]] | None = None,
    ) -> FetchPlan:
        """UTC days in ``days[kind]`` that are not yet complete.

        Parameters
        ----------
        days
            Per kind, the inclusive UTC days the caller wants complete.
        org_done
            Per kind, the days an earlier org-wide fetch completed for everyone.
        entity_done
            Per kind and entity ID, the days completed for that entity alone.
        current
            Per kind, the entities the last list named. A day every one of them
            has completed is not fetched org-wide (an entity new to this run's
            list still gets its own window).
        known
            Per kind, every entity the store has seen; one it has not gets all
            requested days fetched for it alone, unless this run's org-wide
            fetch covers them.
        """
        needed: dict[str, frozenset[dt.date]] = {}
        requested: dict[str, frozenset[dt.date]] = {}
        org_windows: dict[str, tuple[Window, ...]] = {}
        for kind in KINDS:
            first, last = days[kind]
            requested[kind] = frozenset(_span(first, last))
            missing = requested[kind] - frozenset(org_done.get(kind, ()))
            needed[kind] = missing
            done_by = entity_done.get(kind, {})
            entities = list((current or {}).get(kind, ()))
            if entities:
                everyone = frozenset.intersection(
                    *(done_by.get(entity, frozenset()) for entity in entities)
                )
                missing -= everyone
            org_windows[kind] = tuple(utc_window(day, day) for day in sorted(missing))
        return cls(
            org_windows=org_windows,
            needed=needed,
            entity_done=entity_done,
            requested=requested,
            known=known,
        )

    def entity_windows(
        self, kind: str, entity: str, *, covered: Iterable[dt.date] = ()
    ) -> list[Window]:
        """The windows ``entity`` still needs, given the days ``covered`` org-wide this run.

        Parameters
        ----------
        kind
            ``"snapshots"`` (entity is a customer ID) or ``"metrics"`` (an instance ID).
        entity
            The customer or instance ID.
        covered
            Days an org-wide fetch of this run already returned for everyone.
        """
        if self.known is not None and entity not in self.known.get(kind, frozenset()):
            missing = self.requested[kind]
        else:
            missing = self.needed[kind] - self.entity_done.get(kind, {}).get(entity, frozenset())
        missing -= frozenset(covered)
        if not missing:
            return []
        if self.whole_window is not None:
            return [self.whole_window]
        return [utc_window(first, last) for first, last in day_runs(missing)]
