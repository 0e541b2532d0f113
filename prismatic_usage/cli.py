"""``python -m prismatic_usage`` / ``prismatic-usage``: arguments in, reports out, exit codes.

Exit codes (see :func:`exit_code`): 0 ok, 1 unexpected failure, 2 usage error,
3 the API refused the token, 4 the API or network failed after retries, 5 an
output could not be written, 6 (``--strict``) written but not clean, 130
interrupted, 143 terminated. The only module that reads argv or exits. The
arguments themselves are declared in :mod:`prismatic_usage.cli_args`; the files
a run writes are chosen in :mod:`prismatic_usage.cli_write`.

What only the frames, the billing summary and the files need (pandas above
all) is imported where it is used, after the fetch: the first request does
not wait for it (README, Performance).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime as dt
import logging
import signal
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from . import _startup, cli_write, config
from ._atomic import completed_commits
from .cli_args import OneLineParser, UsageError, build_parser, resolve_range
from .cli_output import (
    closing_lines,
    configure_logging,
    judge,
    no_usage_warning,
    output_dir,
    shown_error,
)
from .config import Connection, FetchOptions
from .errors import (
    APIError,
    AuthenticationError,
    ConfigurationError,
    OutputError,
    PrismaticUsageError,
    RetriesExhaustedError,
    StoreError,
    StoreLockedError,
)

if TYPE_CHECKING:
    from .report import UsageReport
    from .usage_store import SyncResult

__all__ = ["main"]

log = logging.getLogger("prismatic_usage")

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2
EXIT_TOKEN, EXIT_API, EXIT_OUTPUT, EXIT_NOT_CLEAN = 3, 4, 5, 6
EXIT_INTERRUPTED, EXIT_TERMINATED = 130, 143


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the program is, so it unwinds like Ctrl-C (exit 143)."""


def exit_code(exc: BaseException) -> int:
    """The documented exit code for an error that ended a run (see the module docstring)."""
    if isinstance(exc, Terminated):
        return EXIT_TERMINATED
    if isinstance(exc, KeyboardInterrupt):
        return EXIT_INTERRUPTED
    if isinstance(exc, ConfigurationError):
        return EXIT_USAGE
    if isinstance(exc, AuthenticationError):
        return EXIT_TOKEN
    if isinstance(exc, RetriesExhaustedError | APIError):
        return EXIT_API
    if isinstance(exc, StoreLockedError):
        return EXIT_FAILURE
    if isinstance(exc, OutputError | StoreError):
        return EXIT_OUTPUT
    return EXIT_FAILURE


def _raise_terminated(signum: int, frame: object) -> None:
    """SIGTERM's handler: end the run with :class:`Terminated`.

    While a fetch runs on this thread's event loop, it is cancelled and
    ``Terminated`` is raised once the loop has unwound (raised inside a task, it
    would print asyncio's "Task exception was never retrieved" and a traceback);
    another SIGTERM meanwhile changes nothing. The fetch module is looked up, not
    imported: no import in a signal handler.
    """
    sync = sys.modules.get("prismatic_usage.sync")
    if sync is not None and sync.interrupt_main_run(_terminate):
        return
    raise Terminated


def _terminate() -> NoReturn:
    raise Terminated


def _check_dates(args: argparse.Namespace) -> None:
    today = dt.datetime.now(config.resolve_zone(args.tz)).date()
    args.start_date, args.end_date = resolve_range(args, today)
    start: dt.date = args.start_date
    end: dt.date = args.end_date
    config.validate_date_range(start, end)
    days = (end - start).days + 1
    if days > args.max_days and not args.yes:
        raise UsageError(
            f"the range covers {days} days, over --max-days {args.max_days}; "
            "pass --yes to fetch it anyway"
        )
    if end >= today:
        log.warning("the end date %s is today or later: its numbers are still partial", end)


@contextlib.contextmanager
def _connection(args: argparse.Namespace) -> Iterator[Connection]:
    if not args.demo:
        yield config.resolve_connection(args.url)
        return
    if not args.quiet and sys.stderr.isatty():  # it takes seconds: no blank screen meanwhile
        print("generating demo data...", file=sys.stderr, flush=True)
    from .sandbox import Sandbox, default_org

    with Sandbox(default_org()) as sandbox:
        yield Connection(base_url=sandbox.url, token=sandbox.token)


def _demo_days(args: argparse.Namespace) -> tuple[dt.date, dt.date] | None:
    """For ``--demo``: the first and last day its generated data covers; else None."""
    if not args.demo:
        return None
    from .sandbox import window

    return window.FIRST_DAY, window.LAST_DAY


def _options(args: argparse.Namespace) -> FetchOptions:
    return FetchOptions(
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
        max_response_bytes=int(args.max_response_mb * 2**20),
    )


def _run(args: argparse.Namespace) -> int:
    config.resolve_zone(args.tz)
    _check_dates(args)
    prices = cli_write.summary_prices(args)  # a price implies --summary
    if args.demo and args.store is not None:
        raise UsageError(
            "--demo serves generated data from a sandbox that lives only for this run, so it "
            "cannot feed a --store; run `python -m prismatic_usage sandbox` and point --url "
            "at it instead"
        )
    if args.demo and args.url is not None:
        raise UsageError(
            "--demo serves its own generated data, so it cannot be combined with --url; "
            "drop one of them"
        )
    if not args.demo:
        config.resolve_connection(args.url)  # URL and token problems before any side effect
    options = _options(args)
    # The fetch (aiohttp, gql, pyarrow) loads once the arguments are checked: --help and
    # usage errors do not wait for it. The store (pyarrow.parquet) loads only for --store.
    from .estimate import estimate_fetch
    from .report import build_report, fetch_report

    if _startup.LAUNCHED_AS_CLI:  # the process is ours: Arrow may hand freed pages back
        from ._memory import use_lean_allocator

        use_lean_allocator()

    if args.store is not None:
        from .usage_store import UsageStore
    if args.dry_run:
        days = None
        if args.store is not None and (args.store / "store.json").is_file():
            days = UsageStore(args.store).missing_days(args.start_date, args.end_date, tz=args.tz)
        with _connection(args) as connection:
            estimate = estimate_fetch(
                args.start_date,
                args.end_date,
                connection=connection,
                tz=args.tz,
                options=options,
                days=days,
            )
        print(estimate.summary())
        if days is not None:
            total = (args.end_date - args.start_date).days + 1
            print(f"the store holds {total - min(days, total)} of the {total} days; "
                  f"{days} to fetch (new customers and instances add their history)")  # fmt: skip
        return EXIT_OK
    started = time.monotonic()
    synced: SyncResult | None = None
    with output_dir(args.output_dir), _connection(args) as connection:
        if args.store is None:
            report: UsageReport = fetch_report(
                args.start_date,
                args.end_date,
                connection=connection,
                tz=args.tz,
                options=options,
                extended=cli_write.fetch_extended(args, prices),
                progress=not args.quiet,
                final_after=args.final_after,
                reconcile=args.reconcile,
            )
            paths = cli_write.write(args, report, prices)
        else:
            with UsageStore(args.store).run() as run:
                synced = run.sync(
                    args.start_date,
                    args.end_date,
                    connection=connection,
                    tz=args.tz,
                    options=options,
                    final_after=args.final_after,
                    progress=not args.quiet,
                    org_totals=args.reconcile,
                )
                records = dataclasses.replace(
                    # The reports never use the usage records' IDs: not read (memory).
                    run.records(args.start_date, args.end_date, args.tz, record_ids=False),
                    org_totals=synced.org_totals,
                )
                report = build_report(
                    records.with_stats(synced.stats),
                    extended=cli_write.fetch_extended(args, prices),
                    final_after=args.final_after,
                )
                paths = cli_write.write(args, report, prices)
                run.add_outputs([path for path, _ in paths])
    demo = _demo_days(args)
    warning = no_usage_warning(report, args.start_date, args.end_date, demo=demo)
    if warning is not None:
        print(f"prismatic-usage: warning: {warning}", file=sys.stderr)
    if not args.quiet:
        seconds = time.monotonic() - started
        print("\n".join(closing_lines(paths, report, seconds, demo=demo)))
        if synced is not None:
            print(synced.summary())
    not_clean = judge(report, strict=args.strict, quiet=args.quiet)
    return EXIT_NOT_CLEAN if not_clean else EXIT_OK


def _store_command(arguments: list[str]) -> int:
    """``store info DIR``: print what a usage store holds."""
    parser = OneLineParser(prog="prismatic-usage store", description="Inspect a usage store.")
    commands = parser.add_subparsers(dest="command", required=True)
    info = commands.add_parser("info", help="date ranges, rows, open days, size, last runs")
    info.add_argument("directory", type=Path, metavar="DIR")
    try:
        args = parser.parse_args(arguments)
    except SystemExit as exit_:
        return int(exit_.code or 0)
    try:
        if not (args.directory / "store.json").is_file():
            raise UsageError(f"{args.directory} is not a usage store (no store.json in it)")
        from .usage_store import UsageStore

        print(UsageStore(args.directory).info().summary())
    except PrismaticUsageError as exc:
        print(f"prismatic-usage: error: {shown_error(exc)}", file=sys.stderr)
        return EXIT_USAGE if isinstance(exc, ConfigurationError) else EXIT_FAILURE
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code.

    Signals: SIGTERM raises :class:`Terminated` where the program is, so it
    unwinds like Ctrl-C (temporary files removed, the store's run marked
    interrupted); during a fetch, like asyncio's Ctrl-C, it first cancels the
    fetch and raises once the event loop has unwound. The reports are moved
    into place all or nothing, with SIGINT and SIGTERM deferred during the
    moves (:mod:`prismatic_usage._atomic`), so a signal ends the run either
    before the set is replaced ("interrupted; no report written": the previous
    reports are untouched) or after it ("interrupted after the reports were
    written; ..."). Both exit 130 (SIGTERM: 143): the run
    did not finish (no verdict for ``--strict``, no summary, no record of the
    outputs in the store), so a scheduler must not count it as a success;
    running it again rewrites the same set. Before this function runs,
    :mod:`prismatic_usage._startup` gives the same one line during start-up.
    """
    _startup.hand_over()
    arguments = list(sys.argv[1:] if argv is None else argv)
    if arguments[:1] == ["sandbox"]:
        from .sandbox.command import run as run_sandbox

        return run_sandbox(arguments[1:])
    # Only the main thread may install handlers (main() may run in a worker thread).
    in_main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _raise_terminated) if in_main else None
    try:
        return _main(arguments)
    except KeyboardInterrupt as exc:  # while parsing or in `store info`: nothing written
        what = "terminated" if isinstance(exc, Terminated) else "interrupted"
        print(f"prismatic-usage: {what}; no report written", file=sys.stderr)
        return exit_code(exc)
    finally:
        if in_main:
            signal.signal(signal.SIGTERM, previous)


def _main(arguments: list[str]) -> int:
    """:func:`main` once SIGTERM is handled: parse, run, say how it ended."""
    if arguments[:1] == ["store"]:
        return _store_command(arguments[1:])
    parser = build_parser()
    try:
        args = parser.parse_args(arguments)
    except SystemExit as exit_:
        return int(exit_.code or 0)
    configure_logging(args.verbose)
    commits = completed_commits()
    try:
        return _run(args)
    except KeyboardInterrupt as exc:
        what = "terminated" if isinstance(exc, Terminated) else "interrupted"
        if completed_commits() > commits:  # the whole new set is in place
            print(
                f"prismatic-usage: {what} after the reports were written; "
                "they are complete, but the run did not finish",
                file=sys.stderr,
            )
        else:
            print(f"prismatic-usage: {what}; no report written", file=sys.stderr)
        return exit_code(exc)
    except PrismaticUsageError as exc:
        if args.verbose:
            log.exception("failed")
        hint = "; see prismatic-usage --help" if isinstance(exc, UsageError) else ""
        print(f"prismatic-usage: error: {shown_error(exc)}{hint}", file=sys.stderr)
        return exit_code(exc)
    except Exception as exc:
        log.debug("unexpected failure", exc_info=True)
        print(
            f"prismatic-usage: unexpected error: {type(exc).__name__}: {shown_error(exc)}; "
            "run with --verbose for a traceback and report it",
            file=sys.stderr,
        )
        return EXIT_FAILURE
