"""prismatic_usage: Prismatic usage metrics as billing-ready pandas frames.

Quick start (the sandbox stands in for Prismatic; drop it and ``url=``/``token=``
to read ``PRISMATIC_URL`` and ``PRISMATIC_API_KEY`` instead)::

    from prismatic_usage import fetch_report, write_reports
    from prismatic_usage.sandbox import Sandbox

    with Sandbox() as sb:
        report = fetch_report("2024-12-01", "2024-12-31", url=sb.url, token=sb.token)
    frame = report.customer_instances  # one row per customer per day
    print(frame[["Customer Name", "Date", "Deployed Instances"]].head())
    for path in write_reports(frame, report.instance_compute, "usage-out"):
        print("wrote", path)

Data flows one way: the API (``fetch_usage``) -> raw records (``UsageRecords``)
-> frames (``customer_instance_frame``, ``instance_compute_frame``) -> files
(``write_reports``); billing views (``billing_summary`` and the roll-ups) are
pure functions over the daily frames. ``fetch_report`` does the first three
steps in one call.

Public API: the names under FUNCTIONS, CLASSES and DATA below
(``prismatic_usage.__all__``), and the submodules ``plots`` (matplotlib figures of
the frames), ``sandbox`` (a local Prismatic API for tests and demos), ``billing``
and ``columns`` (the frames' column specifications). The other modules listed
under PACKAGE CONTENTS are internal and may change without notice.
"""

import importlib as _importlib
import importlib.util as _importlib_util
import logging
import sys as _sys
import types as _types
import typing as _typing

# First, before anything heavy loads: one-line Ctrl-C/SIGTERM while the CLI starts.
from . import _startup  # noqa: F401  (acts only when launched as the command line)
from ._version import __version__

if _typing.TYPE_CHECKING:  # what type checkers and IDEs see; at run time each loads on first use
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

#: Where each public name lives. ``import prismatic_usage`` loads none of these
#: modules (pandas, pyarrow, aiohttp, gql: most of a second); a name's module is
#: imported when the name is first used (:class:`_Package`), so ``python -m prismatic_usage``
#: sends its first request before it loads what only the frames and files need.
_HOMES = {  # no annotation: a module-level one would show in help() as __annotations__
    ".audit": ("Audit", "audit"),
    ".billing": ("Prices", "billing_summary", "compute_rollup", "customer_period_rollup"),
    ".client": ("FetchProgress", "fetch_usage", "fetch_usage_async"),
    ".columns": (
        "BILLING_SUMMARY",
        "CUSTOMER_COMPUTE_ROLLUP",
        "CUSTOMER_INSTANCE",
        "CUSTOMER_PERIOD_ROLLUP",
        "INSTANCE_COMPUTE",
        "INSTANCE_COMPUTE_ROLLUP",
        "RECONCILIATION",
        "FrameSpec",
        "with_column_names",
    ),
    ".config": ("Connection", "FetchOptions", "resolve_connection"),
    ".errors": (
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
    ),
    ".estimate": ("FetchEstimate", "estimate_fetch", "estimate_fetch_async"),
    ".export": ("write_csv", "write_parquet", "write_reports"),
    ".frames": ("customer_instance_frame", "instance_compute_frame"),
    ".reconcile": ("Reconciliation", "reconcile"),
    ".records": ("FetchStats", "OrgTotals", "UsageRecords"),
    ".report": ("UsageReport", "build_report", "fetch_report", "fetch_report_async"),
    ".store.dataset": ("StoreInfo",),
    ".usage_store": ("SyncResult", "UsageStore"),
}
_HOME_OF = {name: module for module, names in _HOMES.items() for name in names}


def _is_submodule(name: str) -> bool:
    """Whether ``name`` is a module of this package (not a dunder a tool probes for)."""
    if not name.isidentifier() or name.startswith("__"):
        return False
    return _importlib_util.find_spec(f"{__name__}.{name}") is not None


class _Package(_types.ModuleType):
    """This package, loading each public name's module on first use (as PEP 562 would).

    ``prismatic_usage.NAME`` imports ``NAME``'s module the first time and keeps the
    name; ``dir()`` and ``help()`` list every public name, loaded or not. Importing a
    submodule binds it on its package (``prismatic_usage.audit`` = the module), so
    the public ``audit`` and ``reconcile`` (functions of modules of the same name)
    keep the function whenever their modules load, as they did when imported eagerly.
    """

    def __getattr__(self, name: str) -> object:
        module = _HOME_OF.get(name)
        if module is None:
            if _is_submodule(name):
                # A submodule (``prismatic_usage.billing``), as when everything loaded eagerly.
                return _importlib.import_module(f".{name}", __name__)
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        value = getattr(_importlib.import_module(module, __name__), name)
        setattr(self, name, value)
        return value

    def __dir__(self) -> list[str]:
        return sorted(set(vars(self)) | set(__all__))

    def __setattr__(self, name: str, value: object) -> None:
        if isinstance(value, _types.ModuleType) and _HOME_OF.get(name) == f".{name}":
            value = getattr(value, name)
        super().__setattr__(name, value)


_sys.modules[__name__].__class__ = _Package


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
