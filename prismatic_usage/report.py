"""The one-call convenience: fetch a date range and build both frames."""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import os
from dataclasses import dataclass

import pandas as pd

from .client import fetch_usage_async
from .columns import snake_name
from .config import DEFAULT_FINAL_AFTER_HOURS, Connection, FetchOptions
from .frames import customer_instance_frame, instance_compute_frame
from .progress import ProgressArg
from .reconcile import Reconciliation
from .reconcile import reconcile as reconcile_report
from .records import UsageRecords
from .sync import run_sync
from .usage_store import UsageStore

__all__ = ["UsageReport", "fetch_report", "fetch_report_async"]


@dataclass(frozen=True)
class UsageReport:
    """Both daily frames for a date range, the raw records they came from, and their checks.

    ``reconciliation`` is set when the org totals were fetched
    (``fetch_report(..., reconcile=True)``); ``coverage`` is each customer's
    snapshot coverage per day, for a heatmap.
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
    """Fetch ``start``..``end`` (inclusive) and build both frames; see :func:`fetch_report`."""
    if store is not None:
        usage_store = store if isinstance(store, UsageStore) else UsageStore(store)
        synced = await usage_store.sync_async(
            start,
            end,
            url=url,
            token=token,
            connection=connection,
            tz=tz,
            options=options,
            final_after=final_after,
            progress=progress,
            org_totals=reconcile,
        )
        stored = usage_store.records(synced.start, synced.end, tz=tz)
        stored = dataclasses.replace(stored, org_totals=synced.org_totals)
        return build_report(
            stored.with_stats(synced.stats),
            extended=extended,
            final_after=final_after,
            column_names=column_names,
        )
    records = await fetch_usage_async(
        start,
        end,
        url=url,
        token=token,
        connection=connection,
        tz=tz,
        options=options,
        progress=progress,
        org_totals=reconcile,
    )
    return build_report(
        records, extended=extended, final_after=final_after, column_names=column_names
    )


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

    Works in scripts and inside Jupyter (see :func:`prismatic_usage.fetch_usage`
    for the parameters; ``extended`` adds the external ID, integration name and
    snapshot-count columns; ``column_names="snake"`` names the columns
    ``customer_id``, ``deployed_instances``, ... for warehouse engines).

    With ``reconcile``, Prismatic's org totals are fetched too and the report
    is checked against them (``report.reconciliation``; a token that may not
    read them gives a reconciliation that says so, never an error).

    With ``store`` (a :class:`UsageStore` or its directory), only what the store
    lacks is fetched (days that ended ``final_after`` hours ago are final and
    never fetched again) and the frames are built from the store: equal to a
    fetch without it, plus the usage of customers and instances deleted since
    the store recorded it.

    Examples
    --------
    >>> from prismatic_usage import fetch_report
    >>> from prismatic_usage.sandbox import Sandbox
    >>> with Sandbox() as sb:  # doctest: +SKIP
    ...     report = fetch_report("2025-01-01", "2025-01-31", url=sb.url, token=sb.token)
    >>> report.customer_instances.columns.tolist()  # doctest: +SKIP
    ['Customer ID', 'Customer Name', 'Date', 'Deployed Instances', 'Unique Integrations']
    """
    return run_sync(
        fetch_report_async(
            start,
            end,
            url=url,
            token=token,
            connection=connection,
            tz=tz,
            options=options,
            extended=extended,
            progress=progress,
            store=store,
            final_after=final_after,
            reconcile=reconcile,
            column_names=column_names,
        )
    )
