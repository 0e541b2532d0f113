"""prismatic_usage: Prismatic usage metrics as billing-ready pandas frames.

Data flows one way: the API (``fetch_usage``) -> raw records (``UsageRecords``)
-> frames (``customer_instance_frame``, ``instance_compute_frame``) -> files
(``write_reports``); billing views (``billing_summary`` and the roll-ups) are
pure functions over the daily frames. ``fetch_report`` does the first three
steps in one call.
"""

import logging

# First, before pandas and pyarrow load: one-line Ctrl-C/SIGTERM while the CLI starts.
from . import _startup  # noqa: F401  (acts only when launched as the command line)
from ._version import __version__
from .audit import Audit, audit
from .billing import Prices, billing_summary, compute_rollup, customer_period_rollup
from .client import FetchProgress, fetch_usage, fetch_usage_async
from .columns import (
    BILLING_SUMMARY,
    CUSTOMER_COMPUTE_ROLLUP,
    CUSTOMER_INSTANCE,
    CUSTOMER_PERIOD_ROLLUP,
    INSTANCE_COMPUTE,
    INSTANCE_COMPUTE_ROLLUP,
    RECONCILIATION,
    FrameSpec,
    with_column_names,
)
from .config import Connection, FetchOptions, resolve_connection
from .errors import (
    APIError,
    AuthenticationError,
    ConfigurationError,
    MalformedResponseError,
    OutputError,
    PaginationError,
    PrismaticUsageError,
    QueryError,
    RetriesExhaustedError,
    StoreError,
    StoreLockedError,
)
from .estimate import FetchEstimate, estimate_fetch, estimate_fetch_async
from .export import write_csv, write_parquet, write_reports
from .frames import customer_instance_frame, instance_compute_frame
from .reconcile import Reconciliation, reconcile
from .records import FetchStats, OrgTotals, UsageRecords
from .report import UsageReport, build_report, fetch_report, fetch_report_async
from .store.dataset import StoreInfo
from .usage_store import SyncResult, UsageStore

# A library logs, the application decides where it goes: no "No handlers" warnings.
logging.getLogger(__name__).addHandler(logging.NullHandler())

__all__ = [
    "BILLING_SUMMARY",
    "CUSTOMER_COMPUTE_ROLLUP",
    "CUSTOMER_INSTANCE",
    "CUSTOMER_PERIOD_ROLLUP",
    "INSTANCE_COMPUTE",
    "INSTANCE_COMPUTE_ROLLUP",
    "RECONCILIATION",
    "APIError",
    "Audit",
    "AuthenticationError",
    "ConfigurationError",
    "Connection",
    "FetchEstimate",
    "FetchOptions",
    "FetchProgress",
    "FetchStats",
    "FrameSpec",
    "MalformedResponseError",
    "OrgTotals",
    "OutputError",
    "PaginationError",
    "Prices",
    "PrismaticUsageError",
    "QueryError",
    "Reconciliation",
    "RetriesExhaustedError",
    "StoreError",
    "StoreInfo",
    "StoreLockedError",
    "SyncResult",
    "UsageRecords",
    "UsageReport",
    "UsageStore",
    "__version__",
    "audit",
    "billing_summary",
    "build_report",
    "compute_rollup",
    "customer_instance_frame",
    "customer_period_rollup",
    "estimate_fetch",
    "estimate_fetch_async",
    "fetch_report",
    "fetch_report_async",
    "fetch_usage",
    "fetch_usage_async",
    "instance_compute_frame",
    "reconcile",
    "resolve_connection",
    "with_column_names",
    "write_csv",
    "write_parquet",
    "write_reports",
]
