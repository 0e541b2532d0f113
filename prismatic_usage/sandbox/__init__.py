"""A local, schema-faithful Prismatic GraphQL API for tests, demos and benchmarks.

Start one with ``with Sandbox() as sb:`` and point a client at ``sb.url`` with
``sb.token``. Every sandbox (``Sandbox()``, ``python -m prismatic_usage sandbox``,
``--demo``) serves :func:`default_org` unless given other data: usage from
2024-12-01 to 2025-02-13, the README's range (:mod:`.window`). Server-side packages (aiohttp's web server,
graphql-core execution) are imported only inside this subpackage.
"""

from __future__ import annotations

from .data import (
    Customer,
    DailyMetric,
    Instance,
    Integration,
    OrgDailyMetric,
    OrgData,
    OrgTotalMetric,
    Snapshot,
    global_id,
)
from .faults import ORG_TOTALS, FaultPlan
from .generator import demo_org, generate_org
from .server import Sandbox
from .stats import RequestRecord, RootFieldCall, SandboxStats
from .window import default_org

__all__ = [
    "ORG_TOTALS",
    "Customer",
    "DailyMetric",
    "FaultPlan",
    "Instance",
    "Integration",
    "OrgDailyMetric",
    "OrgData",
    "OrgTotalMetric",
    "RequestRecord",
    "RootFieldCall",
    "Sandbox",
    "SandboxStats",
    "Snapshot",
    "default_org",
    "demo_org",
    "generate_org",
    "global_id",
]
