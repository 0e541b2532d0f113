"""The files a report run writes: its frames as asked, the billing summary, the reconciliation.

Split from :mod:`prismatic_usage.cli` (which checks the arguments, fetches or
syncs, and maps errors to exit codes): here the arguments decide what goes into
the files once a :class:`~prismatic_usage.report.UsageReport` exists. The billing
prices are checked here too, before any network work, because a price implies
``--summary`` and the summary needs the extended frames (their hour coverage).

The billing summary, the column declarations and the writers (pandas, pyarrow)
are imported where they are used, after the fetch: the first request does not
wait for them (README, Performance).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import PrismaticUsageError

if TYPE_CHECKING:
    from .billing import Prices
    from .report import UsageReport

__all__ = ["fetch_extended", "summary_prices", "write"]


def summary_prices(args: argparse.Namespace) -> Prices | None:
    """The billing summary's prices, checked before any network work; None if no summary."""
    given = (args.price_instance_month, args.price_gb_second, args.price_1k_executions)
    if not args.summary and all(price is None for price in given):
        return None
    from .billing import Prices

    return Prices(instance_month=given[0], gb_second=given[1], per_1k_executions=given[2])


def fetch_extended(args: argparse.Namespace, prices: Prices | None) -> bool:
    """Build the extended frames: asked for, or needed for the summary's hour coverage."""
    return args.columns == "extended" or prices is not None


def write(
    args: argparse.Namespace, report: UsageReport, prices: Prices | None
) -> list[tuple[Path, int]]:
    """Write the reports (and the billing summary) that the arguments ask for.

    Returns every file written with its rows (files come per frame, per format).
    """
    from .billing import billing_summary
    from .columns import CUSTOMER_INSTANCE, INSTANCE_COMPUTE, with_column_names
    from .export import write_reports

    extended = args.columns == "extended"
    customer, compute = report.customer_instances, report.instance_compute
    extra = []
    if prices is not None:
        try:
            summary = billing_summary(
                customer,
                compute,
                period=args.period,
                start=args.start_date,
                end=args.end_date,
                prices=prices,
                tz=args.tz,
                as_of=report.records.fetched_at,
                final_after=args.final_after,
            )
        except OverflowError as exc:
            raise PrismaticUsageError(
                f"billing summary: {exc}; check the --price-* values"
            ) from exc
        extra.append(summary if extended else summary.drop(columns=["Customer External ID"]))
    if report.reconciliation is not None and report.reconciliation.refused is None:
        extra.append(report.reconciliation.frame)
    if not extended:  # the frames were extended for the summary only
        customer = customer[CUSTOMER_INSTANCE.select(extended=False).names]
        compute = compute[INSTANCE_COMPUTE.select(extended=False).names]
    formats = ("csv", "parquet") if args.format == "both" else (args.format,)
    named = [with_column_names(frame, args.column_names) for frame in (customer, compute, *extra)]
    paths = write_reports(
        named[0],
        named[1],
        args.output_dir,
        formats=formats,
        excel_safe=args.excel_safe,
        extra=named[2:],
    )
    rows = [len(frame) for frame in (customer, compute, *extra) for _ in formats]
    return list(zip(paths, rows, strict=True))
