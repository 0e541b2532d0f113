"""A local, schema-faithful Prismatic GraphQL API for tests, demos and benchmarks.

Start one with ``with Sandbox(generate_org(seed=1)) as sb:`` and point a client at
``sb.url`` with ``sb.token``. Server-side packages (aiohttp's web server,
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
    "demo_org",
    "generate_org",
    "global_id",
]
