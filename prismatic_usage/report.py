"""The one-call convenience: fetch a date range and build both frames.

pandas and the frame builders are imported when the frames are built, not
with this module: the command line imports it, and its first request need
not wait for them (see README, Performance).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .client import fetch_usage_async
from .config import DEFAULT_FINAL_AFTER_HOURS, Connection, FetchOptions
from .progress import ProgressArg
from .records import UsageRecords
from .sync import run_sync

if TYPE_CHECKING:
    import pandas as pd

    from .reconcile import Reconciliation
    from .usage_store import UsageStore

__all__ = ["UsageReport", "fetch_report", "fetch_report_async"]


@dataclass(frozen=True)
class UsageReport:
    """Both daily frames for a date range, the raw records they came from, and their checks.

    ``reconciliation`` is set when the org totals were fetched
    (``fetch_report(..., reconcile=True)``); ``coverage`` is each customer's
    snapshot coverage per day, for a heatmap.

    Attributes
    ----------
    customer_instances
        The daily customer frame (:func:`customer_instance_frame`).
    instance_compute
        The daily compute frame (:func:`instance_compute_frame`).
    records
        The raw records both came from (:class:`UsageRecords`).
    reconciliation
        The check against Prismatic's org totals, or ``None``.
    final_after
        Hours after a day's end from which it counts as final.
    column_names
        ``"original"`` or ``"snake"``: the naming of both frames and ``coverage``.
    """

    customer_instances: pd.DataFrame
    instance_compute: pd.DataFrame
    records: UsageRecords
    reconciliation: Reconciliation | None = None
    final_after: float = DEFAULT_FINAL_AFTER_HOURS
    column_names: str = "original"

    @functools.cached_property
    def coverage(self) -> pd.DataFrame:
        """Per customer and day with data: Snapshots, Expected Snapshots, Coverage, Final."""
        from .columns import snake_name
        from .frames import customer_instance_frame

        frame = customer_instance_frame(self.records, extended=True, final_after=self.final_after)
        frame = frame[
            ["Customer ID", "Customer Name", "Date", "Snapshots", "Expected Snapshots",
             "Coverage", "Final"]
        ]  # fmt: skip
        if self.column_names == "snake":
            frame = frame.rename(columns=snake_name)
        return frame


def build_report(
    records: UsageRecords,
    *,
    extended: bool = False,
    final_after: float = DEFAULT_FINAL_AFTER_HOURS,
    column_names: str = "original",
) -> UsageReport:
    """Both frames from already fetched records (no network).

    Parameters
    ----------
    records
        What :func:`fetch_usage` (or a store) returned.
    extended
        Add the extended columns (external ID, integration name, snapshot
        coverage and finality).
        With org totals in ``records``, the report is also reconciled.
    final_after
        Hours after its end from which a day counts as final (``Final``).
    column_names
        ``"original"`` (the report headers) or ``"snake"`` (identifier-safe
        names such as ``deployed_instances``) for both frames and ``coverage``.
    """
    from .frames import customer_instance_frame, instance_compute_frame
    from .reconcile import reconcile as reconcile_report

    report = UsageReport(
        customer_instances=customer_instance_frame(
            records, extended=extended, final_after=final_after, column_names=column_names
        ),
        instance_compute=instance_compute_frame(
            records, extended=extended, final_after=final_after, column_names=column_names
        ),
        records=records,
        final_after=final_after,
        column_names=column_names,
    )
    if records.org_totals is None:
        return report
    return dataclasses.replace(report, reconciliation=reconcile_report(report))


async def fetch_report_async(
    start: dt.date | str,
    end: dt.date | str,
    *,
    url: str | None = None,
    token: str | None = None,
    connection: Connection | None = None,
    tz: str = "UTC",
    options: FetchOptions | None = None,
    extended: bool = False,
    progress: ProgressArg = True,
    store: UsageStore | str | os.PathLike[str] | None = None,
    final_after: float = DEFAULT_FINAL_AFTER_HOURS,
    reconcile: bool = False,
    column_names: str = "original",
) -> UsageReport:
    """Fetch ``start``..``end`` (inclusive) and build both frames; ``await``-able :func:`fetch_report`.

    Parameters
    ----------
    start, end
        Inclusive calendar days (``date`` or ``"YYYY-MM-DD"``) in ``tz``.
    url, token
        Stack URL and API token; default to ``PRISMATIC_URL`` (else
        ``https://app.prismatic.io``) and ``PRISMATIC_API_KEY`` (else
        ``PRISM_ACCESS_TOKEN``). Ignored when ``connection`` is given.
    connection
        A resolved :class:`Connection` (from :func:`resolve_connection`), instead
        of ``url`` and ``token``.
    tz
        IANA zone whose midnights bound the days, e.g. ``"Europe/Berlin"``.
    options
        Tuning knobs (:class:`FetchOptions`): concurrency, pace, page size, packing.
    extended
        Add the external ID, integration name and snapshot-count columns.
    progress
        ``True`` (default) shows a tqdm bar when stderr is a terminal or in
        Jupyter; ``False`` shows none; a callable receives a
        :class:`FetchProgress` after every request instead.
    store
        A :class:`UsageStore` or its directory: fetch only what it lacks and build
        the frames from it.
    final_after
        Hours after a day's end from which the store treats it as final (never
        fetched again); used with ``store`` and for the frames' finality.
    reconcile
        Also fetch Prismatic's org totals and check the report against them
        (``report.reconciliation``).
    column_names
        ``"original"`` (the report headers) or ``"snake"`` (``customer_id``,
        ``deployed_instances``, ...: identifier-safe names for warehouse engines).

    Returns
    -------
    UsageReport
        Both daily frames, the raw records and, with ``reconcile``, the reconciliation.
    """
    records = await _report_records(
        start, end, url=url, token=token, connection=connection, tz=tz, options=options,
        progress=progress, store=store, final_after=final_after, reconcile=reconcile,
    )  # fmt: skip
    return build_report(
        records, extended=extended, final_after=final_after, column_names=column_names
    )


async def _report_records(
    start: dt.date | str,
    end: dt.date | str,
    *,
    url: str | None,
    token: str | None,
    connection: Connection | None,
    tz: str,
    options: FetchOptions | None,
    progress: ProgressArg,
    store: UsageStore | str | os.PathLike[str] | None,
    final_after: float,
    reconcile: bool,
) -> UsageRecords:
    """The records a report is built from: fetched, or synced into ``store`` and read back.

    The parameters are :func:`fetch_report_async`'s. Building the frames is left
    to the caller, so that :func:`fetch_report` builds them outside the event
    loop (a signal there acts at once, not at the loop's next await).
    """
    if store is None:
        return await fetch_usage_async(
            start, end, url=url, token=token, connection=connection, tz=tz,
            options=options, progress=progress, org_totals=reconcile,
        )  # fmt: skip
    from .usage_store import UsageStore

    usage_store = store if isinstance(store, UsageStore) else UsageStore(store)
    synced = await usage_store.sync_async(
        start, end, url=url, token=token, connection=connection, tz=tz, options=options,
        final_after=final_after, progress=progress, org_totals=reconcile,
    )  # fmt: skip
    stored = usage_store.records(synced.start, synced.end, tz=tz)
    return dataclasses.replace(stored, org_totals=synced.org_totals).with_stats(synced.stats)


def fetch_report(
    start: dt.date | str,
    end: dt.date | str,
    *,
    url: str | None = None,
    token: str | None = None,
    connection: Connection | None = None,
    tz: str = "UTC",
    options: FetchOptions | None = None,
    extended: bool = False,
    progress: ProgressArg = True,
    store: UsageStore | str | os.PathLike[str] | None = None,
    final_after: float = DEFAULT_FINAL_AFTER_HOURS,
    reconcile: bool = False,
    column_names: str = "original",
) -> UsageReport:
    """Fetch a date range and return the daily customer-instance and compute frames.

    Works in scripts and inside Jupyter's running event loop; ``fetch_report_async``
    is the ``await``-able twin.

    With ``reconcile``, Prismatic's org totals are fetched too and the report
    is checked against them (``report.reconciliation``; a token that may not
    read them gives a reconciliation that says so, never an error).

    With ``store`` (a :class:`UsageStore` or its directory), only what the store
    lacks is fetched (days that ended ``final_after`` hours ago are final and
    never fetched again) and the frames are built from the store: equal to a
    fetch without it, plus the usage of customers and instances deleted since
    the store recorded it.

    Parameters
    ----------
    start, end
        Inclusive calendar days (``date`` or ``"YYYY-MM-DD"``) in ``tz``.
    url, token
        Stack URL and API token; default to ``PRISMATIC_URL`` (else
        ``https://app.prismatic.io``) and ``PRISMATIC_API_KEY`` (else
        ``PRISM_ACCESS_TOKEN``). Ignored when ``connection`` is given.
    connection
        A resolved :class:`Connection` (from :func:`resolve_connection`), instead
        of ``url`` and ``token``.
    tz
        IANA zone whose midnights bound the days, e.g. ``"Europe/Berlin"``.
    options
        Tuning knobs (:class:`FetchOptions`): concurrency, pace, page size, packing.
    extended
        Add the external ID, integration name and snapshot-count columns.
    progress
        ``True`` (default) shows a tqdm bar when stderr is a terminal or in
        Jupyter; ``False`` shows none; a callable receives a
        :class:`FetchProgress` after every request instead.
    store
        A :class:`UsageStore` or its directory: fetch only what it lacks and build
        the frames from it.
    final_after
        Hours after a day's end from which the store treats it as final (never
        fetched again); used with ``store`` and for the frames' finality.
    reconcile
        Also fetch Prismatic's org totals and check the report against them
        (``report.reconciliation``).
    column_names
        ``"original"`` (the report headers) or ``"snake"`` (``customer_id``,
        ``deployed_instances``, ...: identifier-safe names for warehouse engines).

    Returns
    -------
    UsageReport
        Both daily frames, the raw records and, with ``reconcile``, the reconciliation.

    Examples
    --------
    >>> from prismatic_usage import fetch_report
    >>> from prismatic_usage.sandbox import Sandbox
    >>> with Sandbox() as sb:  # doctest: +SKIP
    ...     report = fetch_report("2025-01-01", "2025-01-31", url=sb.url, token=sb.token)
    >>> report.customer_instances.columns.tolist()  # doctest: +SKIP
    ['Customer ID', 'Customer Name', 'Date', 'Deployed Instances', 'Unique Integrations']
    """
    records = run_sync(
        _report_records(
            start, end, url=url, token=token, connection=connection, tz=tz, options=options,
            progress=progress, store=store, final_after=final_after, reconcile=reconcile,
        )
    )  # fmt: skip
    return build_report(
        records, extended=extended, final_after=final_after, column_names=column_names
    )
