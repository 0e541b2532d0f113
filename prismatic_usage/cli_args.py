"""The report command's arguments: the parser, its one-line errors and the date range they name.

Only parsing and checking; :mod:`prismatic_usage.cli` runs what they ask for. Each
argument's value type (text -> checked date, number, month, price) is in
:mod:`prismatic_usage.cli_values`.
"""

from __future__ import annotations

import argparse
import calendar
import datetime as dt
from pathlib import Path
from typing import NoReturn

from . import config
from ._safe_text import one_line
from .cli_values import final_after, iso_date, month, positive_float, positive_int, price
from .config import DEFAULT_FINAL_AFTER_HOURS, PERIODS
from .errors import ConfigurationError

__all__ = [
    "DEFAULT_MAX_DAYS",
    "EXAMPLES",
    "OneLineParser",
    "UsageError",
    "build_parser",
    "resolve_range",
]

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

  # the nightly job: keep a store, fetch only what is new, report last month
  python -m prismatic_usage --store usage-store --month previous --summary

  # what a store holds
  python -m prismatic_usage store info usage-store

  # a local sandbox server for experiments (prints its url and token)
  python -m prismatic_usage sandbox --port 8080

exit codes: 0 ok, 1 unexpected failure, 2 usage error, 3 the API refused the token,
  4 the API or network failed after retries, 5 an output could not be written,
  6 (--strict) written but not clean, 130 interrupted, 143 terminated
"""


class UsageError(ConfigurationError):
    """A command-line mistake (exit code 2)."""


def resolve_range(args: argparse.Namespace, today: dt.date) -> tuple[dt.date, dt.date]:
    """The inclusive days the arguments name: explicit dates, ``--last-days`` or ``--month``.

    ``today`` is today's date in the report's zone. Exactly one of the three
    ways must be used; anything else is a :class:`UsageError`.
    """
    explicit = args.start_date is not None or args.end_date is not None
    chosen = [explicit, args.last_days is not None, args.month is not None]
    if sum(chosen) != 1:
        raise UsageError(
            "give the range one way: --start-date and --end-date, --last-days N, "
            "or --month previous|current|YYYY-MM"
        )
    if explicit:
        if args.start_date is None or args.end_date is None:
            raise UsageError("--start-date and --end-date go together; give both")
        return args.start_date, args.end_date
    if args.last_days is not None:
        end = today - dt.timedelta(days=1)
        try:
            return end - dt.timedelta(days=args.last_days - 1), end
        except OverflowError:
            raise UsageError(f"--last-days {args.last_days} reaches before year 1") from None
    if args.month == "current":
        return today.replace(day=1), today
    if args.month == "previous":
        last = today.replace(day=1) - dt.timedelta(days=1)
        return last.replace(day=1), last
    first = dt.date.fromisoformat(f"{args.month}-01")
    return first, first.replace(day=calendar.monthrange(first.year, first.month)[1])


class OneLineParser(argparse.ArgumentParser):
    """An argument parser whose errors are one line and a hint, not a usage block."""

    def error(self, message: str) -> NoReturn:
        """Print ``prog: error: message; see prog --help`` and exit 2."""
        self.exit(2, f"{self.prog}: error: {one_line(message)}; see {self.prog} --help\n")


def build_parser() -> argparse.ArgumentParser:
    """The report command's arguments."""
    parser = OneLineParser(
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
        type=iso_date,
        metavar="YYYY-MM-DD",
        help="first day, inclusive",
    )
    dates.add_argument(
        "--end-date",
        type=iso_date,
        metavar="YYYY-MM-DD",
        help="last day, inclusive (the whole day is fetched)",
    )
    dates.add_argument(
        "--last-days",
        type=positive_int,
        metavar="N",
        help="instead of dates: the N days ending yesterday (in --timezone)",
    )
    dates.add_argument(
        "--month",
        type=month,
        metavar="previous|current|YYYY-MM",
        help="instead of dates: a calendar month (current: up to today)",
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
        type=positive_int,
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
        help="extended adds Customer External ID, Integration Name, Snapshots, "
        "Expected Snapshots, Coverage, Final",
    )
    output.add_argument(
        "--column-names",
        choices=("original", "snake"),
        default="original",
        help="original: the report headers (Customer ID, ...); snake: identifier-safe "
        "names for warehouse engines (customer_id, deployed_instances, ...)",
    )
    output.add_argument(
        "--excel-safe",
        action="store_true",
        help="prefix formula-like text cells with ' for spreadsheets",
    )

    checks = parser.add_argument_group("audit (can finance invoice this?)")
    checks.add_argument(
        "--reconcile",
        action="store_true",
        help="fetch Prismatic's org totals and write reconciliation.csv: org vs report per date",
    )
    checks.add_argument(
        "--strict",
        action="store_true",
        help="exit 6 when the files were written but the data is not clean: a reconciliation "
        "difference, a day not yet final, or a customer-day with missing snapshot hours",
    )

    store = parser.add_argument_group("usage store (incremental runs)")
    store.add_argument(
        "--store",
        type=Path,
        metavar="DIR",
        help="keep raw records in DIR and fetch only what it lacks; reports are built from it",
    )
    store.add_argument(
        "--final-after",
        type=final_after,
        default=DEFAULT_FINAL_AFTER_HOURS,
        metavar="HOURS",
        help="a day is final this long after it ended: a store never fetches it again and "
        "extended columns mark it Final (default: %(default)g)",
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
        type=price,
        metavar="AMOUNT",
        help="price of one instance deployed for a whole month",
    )
    billing.add_argument(
        "--price-gb-second",
        type=price,
        metavar="AMOUNT",
        help="price of one GB-second of execution (1 GB = 1024 MB)",
    )
    billing.add_argument(
        "--price-1k-executions",
        type=price,
        metavar="AMOUNT",
        help="price of 1,000 executions (successful + failed)",
    )

    tuning = parser.add_argument_group("tuning (defaults are safe for the real API)")
    tuning.add_argument(
        "--concurrency",
        type=positive_int,
        default=config.DEFAULT_CONCURRENCY,
        help="requests in flight (default: %(default)s)",
    )
    tuning.add_argument(
        "--rate",
        type=positive_float,
        default=None,
        help="requests per second, lowered on HTTP 429 "
        f"(default: {config.DEFAULT_REQUESTS_PER_SECOND:g}; unpaced with --demo)",
    )
    tuning.add_argument(
        "--page-size",
        type=positive_int,
        default=config.MAX_PAGE_SIZE,
        help="nodes per page, at most 100 (default: %(default)s)",
    )
    tuning.add_argument(
        "--pack",
        type=positive_int,
        default=None,
        help="fixed node budget per request, in pages (K x page size nodes); 1 disables "
        f"packing (default: adaptive, from {config.DEFAULT_PACK} pages up or down with the "
        "server's answers)",
    )
    tuning.add_argument(
        "--no-org-wide",
        dest="org_wide",
        action="store_false",
        help="skip the org-wide attempt; query per customer / instance",
    )
    tuning.add_argument(
        "--timeout",
        type=positive_float,
        default=config.DEFAULT_TIMEOUT,
        help="seconds per request before it is retried (default: %(default)s)",
    )
    tuning.add_argument(
        "--max-retry-seconds",
        type=positive_float,
        default=config.DEFAULT_MAX_RETRY_SECONDS,
        help="give up on a request failing this long (default: %(default)s)",
    )
    tuning.add_argument(
        "--max-attempts",
        type=positive_int,
        default=config.DEFAULT_MAX_ATTEMPTS,
        help="attempts per request on transient errors (default: %(default)s)",
    )
    tuning.add_argument(
        "--max-response-mb",
        type=positive_float,
        default=config.DEFAULT_MAX_RESPONSE_BYTES / 2**20,
        help="largest answer read, in MiB; a pack over it is split (default: %(default)g)",
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
