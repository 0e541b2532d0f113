"""``python -m prismatic_usage`` / ``prismatic-usage``: arguments in, reports out, exit codes.

Exit codes: 0 success, 1 failure (API, network, output), 2 usage error
(bad arguments, dates, URL), 130 interrupted. The only module that reads argv
or exits.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import logging
import math
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from decimal import Decimal, InvalidOperation
from pathlib import Path

from . import config
from .billing import PERIODS, Prices, billing_summary
from .client import estimate_fetch
from .config import Connection, FetchOptions
from .errors import ConfigurationError, OutputError, PrismaticUsageError
from .export import write_reports
from .report import UsageReport, fetch_report

__all__ = ["main"]

log = logging.getLogger("prismatic_usage")

EXIT_OK, EXIT_FAILURE, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
DEFAULT_MAX_DAYS = 400

EXAMPLES = """\
examples:
  # the built-in sandbox: no token, no network
  python -m prismatic_usage --demo --start-date 2024-12-01 --end-date 2025-02-13

  # the real API (token from `prism me:token`)
  export PRISMATIC_API_KEY=$(prism me:token)
  python -m prismatic_usage --start-date 2024-12-01 --end-date 2025-02-13

  # another region, Parquet too, into ./reports
  python -m prismatic_usage --url https://app.eu-west-1.prismatic.io \\
      --start-date 2025-01-01 --end-date 2025-01-31 --format both --output-dir reports

  # a monthly billing summary with prices
  python -m prismatic_usage --start-date 2025-01-01 --end-date 2025-03-31 --summary \\
      --price-instance-month 25 --price-gb-second 0.0001 --price-1k-executions 0.50

  # a local sandbox server for experiments (prints its url and token)
  python -m prismatic_usage sandbox --port 8080

exit codes: 0 ok, 1 failure (API, network, output), 2 usage error, 130 interrupted
"""


class UsageError(ConfigurationError):
    """A command-line mistake (exit code 2)."""


def _iso_date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a valid date; use YYYY-MM-DD, e.g. 2025-02-13"
        ) from None


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be at least 1")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not (value > 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"{text!r} must be a positive finite number")
    return value


def _price(text: str) -> Decimal:
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise argparse.ArgumentTypeError(f"{text!r} is not a decimal amount, e.g. 12.50") from None
    if not value.is_finite() or value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be a non-negative amount")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The report command's arguments."""
    parser = argparse.ArgumentParser(
        prog="prismatic-usage",
        description=(
            "Fetch Prismatic usage for a date range and write "
            "customer-instance-data.csv and instance-compute-data.csv."
        ),
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    dates = parser.add_argument_group("what to fetch")
    dates.add_argument(
        "--start-date",
        type=_iso_date,
        required=True,
        metavar="YYYY-MM-DD",
        help="first day, inclusive",
    )
    dates.add_argument(
        "--end-date",
        type=_iso_date,
        required=True,
        metavar="YYYY-MM-DD",
        help="last day, inclusive (the whole day is fetched)",
    )
    dates.add_argument(
        "--timezone",
        "--tz",
        dest="tz",
        default="UTC",
        metavar="ZONE",
        help="IANA zone whose midnights bound the days (default: UTC)",
    )
    dates.add_argument(
        "--max-days",
        type=_positive_int,
        default=DEFAULT_MAX_DAYS,
        help=f"refuse longer ranges unless --yes (default: {DEFAULT_MAX_DAYS})",
    )
    dates.add_argument("--yes", action="store_true", help="accept a range over --max-days")

    source = parser.add_argument_group("where from")
    source.add_argument(
        "--url",
        help="stack URL (default: $PRISMATIC_URL, else "
        "https://app.prismatic.io); the token comes from $PRISMATIC_API_KEY",
    )
    source.add_argument(
        "--demo",
        action="store_true",
        help="use the built-in sandbox with generated data (no token, no network)",
    )

    output = parser.add_argument_group("output")
    output.add_argument(
        "--output-dir",
        type=Path,
        default=Path("."),
        help="where to write the reports (default: current directory)",
    )
    output.add_argument(
        "--format",
        choices=("csv", "parquet", "both"),
        default="csv",
        help="file format (default: csv)",
    )
    output.add_argument(
        "--columns",
        choices=("default", "extended"),
        default="default",
        help="extended adds Customer External ID, Integration Name, Snapshots",
    )
    output.add_argument(
        "--excel-safe",
        action="store_true",
        help="prefix formula-like text cells with ' for spreadsheets",
    )

    billing = parser.add_argument_group("billing summary")
    billing.add_argument(
        "--summary",
        action="store_true",
        help="also write billing-summary.csv: one row per customer per period",
    )
    billing.add_argument(
        "--period", choices=PERIODS, default="month", help="billing period (default: month)"
    )
    billing.add_argument(
        "--price-instance-month",
        type=_price,
        metavar="AMOUNT",
        help="price of one instance deployed for a whole month",
    )
    billing.add_argument(
        "--price-gb-second",
        type=_price,
        metavar="AMOUNT",
        help="price of one GB-second of execution (1 GB = 1024 MB)",
    )
    billing.add_argument(
        "--price-1k-executions",
        type=_price,
        metavar="AMOUNT",
        help="price of 1,000 executions (successful + failed)",
    )

    tuning = parser.add_argument_group("tuning (defaults are safe for the real API)")
    tuning.add_argument(
        "--concurrency",
        type=_positive_int,
        default=config.DEFAULT_CONCURRENCY,
        help="requests in flight (default: %(default)s)",
    )
    tuning.add_argument(
        "--rate",
        type=_positive_float,
        default=None,
        help="requests per second, lowered on HTTP 429 "
        f"(default: {config.DEFAULT_REQUESTS_PER_SECOND:g}; unpaced with --demo)",
    )
    tuning.add_argument(
        "--page-size",
        type=_positive_int,
        default=config.MAX_PAGE_SIZE,
        help="nodes per page, at most 100 (default: %(default)s)",
    )
    tuning.add_argument(
        "--pack",
        type=_positive_int,
        default=config.DEFAULT_PACK,
        help="page queries per request; 1 disables packing (default: %(default)s)",
    )
    tuning.add_argument(
        "--no-org-wide",
        dest="org_wide",
        action="store_false",
        help="skip the org-wide attempt; query per customer / instance",
    )
    tuning.add_argument(
        "--timeout",
        type=_positive_float,
        default=config.DEFAULT_TIMEOUT,
        help="seconds per request before it is retried (default: %(default)s)",
    )
    tuning.add_argument(
        "--max-retry-seconds",
        type=_positive_float,
        default=config.DEFAULT_MAX_RETRY_SECONDS,
        help="give up on a request failing this long (default: %(default)s)",
    )
    tuning.add_argument(
        "--max-attempts",
        type=_positive_int,
        default=config.DEFAULT_MAX_ATTEMPTS,
        help="attempts per request on transient errors (default: %(default)s)",
    )

    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="list customers and instances, estimate requests and time, fetch no metrics",
    )

    chatter = parser.add_argument_group("messages")
    chatter.add_argument("-q", "--quiet", action="store_true", help="no progress bar or summary")
    chatter.add_argument(
        "-v", "--verbose", action="store_true", help="log requests and retries; show tracebacks"
    )
    return parser


def _check_dates(args: argparse.Namespace) -> None:
    start: dt.date = args.start_date
    end: dt.date = args.end_date
    config.validate_date_range(start, end)
    days = (end - start).days + 1
    if days > args.max_days and not args.yes:
        raise UsageError(
            f"the range covers {days} days, over --max-days {args.max_days}; "
            "pass --yes to fetch it anyway"
        )
    if end >= dt.datetime.now(config.resolve_zone(args.tz)).date():
        log.warning("the end date %s is today or later: its numbers are still partial", end)


def _check_output_dir(directory: Path) -> None:
    """Create the output directory and prove it writable before any network work."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=directory):
            pass
    except OSError as exc:
        raise OutputError(
            f"cannot write to {directory}: {exc.strerror or exc}; choose another --output-dir"
        ) from None


@contextlib.contextmanager
def _connection(args: argparse.Namespace) -> Iterator[Connection]:
    if not args.demo:
        yield config.resolve_connection(args.url)
        return
    from .sandbox import Sandbox, demo_org

    with Sandbox(demo_org(args.start_date, args.end_date)) as sandbox:
        yield Connection(base_url=sandbox.url, token=sandbox.token)


def _prices(args: argparse.Namespace) -> Prices | None:
    """The billing summary's prices, checked before any network work; None if no summary."""
    given = (args.price_instance_month, args.price_gb_second, args.price_1k_executions)
    if not args.summary and all(price is None for price in given):
        return None
    return Prices(instance_month=given[0], gb_second=given[1], per_1k_executions=given[2])


def _run(args: argparse.Namespace) -> int:
    config.resolve_zone(args.tz)
    _check_dates(args)
    prices = _prices(args)  # a price implies --summary
    if not args.demo:
        config.resolve_connection(args.url)  # URL and token problems before any side effect
    options = FetchOptions(
        concurrency=args.concurrency,
        requests_per_second=args.rate
        if args.rate is not None or args.demo
        else config.DEFAULT_REQUESTS_PER_SECOND,
        page_size=args.page_size,
        pack=args.pack,
        org_wide=args.org_wide,
        timeout=args.timeout,
        max_attempts=args.max_attempts,
        max_retry_seconds=args.max_retry_seconds,
    )
    if args.dry_run:
        with _connection(args) as connection:
            estimate = estimate_fetch(
                args.start_date, args.end_date, connection=connection, tz=args.tz, options=options
            )
        print(estimate.summary())
        return EXIT_OK
    _check_output_dir(args.output_dir)
    formats = ("csv", "parquet") if args.format == "both" else (args.format,)
    started = time.monotonic()
    with _connection(args) as connection:
        report: UsageReport = fetch_report(
            args.start_date,
            args.end_date,
            connection=connection,
            tz=args.tz,
            options=options,
            extended=args.columns == "extended",
            progress=not args.quiet,
        )
    extra = []
    if prices is not None:
        try:
            summary = billing_summary(
                report.customer_instances,
                report.instance_compute,
                period=args.period,
                start=args.start_date,
                end=args.end_date,
                prices=prices,
            )
        except OverflowError as exc:
            raise PrismaticUsageError(
                f"billing summary: {exc}; check the --price-* values"
            ) from exc
        extra.append(summary)
    paths = write_reports(
        report.customer_instances,
        report.instance_compute,
        args.output_dir,
        formats=formats,
        excel_safe=args.excel_safe,
        extra=extra,
    )
    if not args.quiet:
        for path in paths:
            print(f"wrote {path}")
        records = report.records
        print(
            f"{records.customers.num_rows} customers, {records.instances.num_rows} instances, "
            f"{len(report.customer_instances)} + {len(report.instance_compute)} rows, "
            f"{records.stats.requests} requests, {time.monotonic() - started:.1f} s"
        )
    return EXIT_OK


def _configure_logging(verbose: bool) -> None:
    root = logging.getLogger("prismatic_usage")
    if not any(getattr(h, "_prismatic_usage_cli", False) for h in root.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        handler._prismatic_usage_cli = True  # type: ignore[attr-defined]
        root.addHandler(handler)
    root.setLevel(logging.DEBUG if verbose else logging.WARNING)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    if arguments[:1] == ["sandbox"]:
        from .sandbox.command import run as run_sandbox

        return run_sandbox(arguments[1:])
    parser = build_parser()
    try:
        args = parser.parse_args(arguments)
    except SystemExit as exit_:
        return int(exit_.code or 0)
    _configure_logging(args.verbose)
    try:
        return _run(args)
    except KeyboardInterrupt:
        print("prismatic-usage: interrupted; no report written", file=sys.stderr)
        return EXIT_INTERRUPTED
    except PrismaticUsageError as exc:
        if args.verbose:
            log.exception("failed")
        print(f"prismatic-usage: error: {exc}", file=sys.stderr)
        return EXIT_USAGE if isinstance(exc, ConfigurationError) else EXIT_FAILURE
