"""The days every sandbox serves by default: the README's range, 2024-12-01 to 2025-02-13.

One rule for the three ways to start a sandbox, so the README's commands work
against each and give the same numbers: ``Sandbox()``, ``python -m
prismatic_usage sandbox`` and ``--demo`` all serve :func:`default_org` (seed 0,
50 customers) unless told otherwise, with usage from :data:`FIRST_DAY` to
:data:`LAST_DAY` and one more UTC day on each side, so every time zone's first
and last local day is whole. The data is fixed, not relative to today, so a run
repeats; a range outside it finds no usage, and ``--demo`` says so and which
days it covers. ``Sandbox(generate_org(start=..., days=...))`` and ``sandbox
--start-date ... --days ...`` serve other days.
"""

from __future__ import annotations

import datetime as dt

from .data import OrgData
from .generator import demo_org

__all__ = ["FIRST_DAY", "LAST_DAY", "UTC_DAYS", "UTC_START", "default_org", "describe"]

#: The first and last day of the default data (the README's range).
FIRST_DAY = dt.date(2024, 12, 1)
LAST_DAY = dt.date(2025, 2, 13)
#: The UTC days generated: the range and one day either side.
UTC_START = FIRST_DAY - dt.timedelta(days=1)
UTC_DAYS = (LAST_DAY - FIRST_DAY).days + 3


def default_org() -> OrgData:
    """The organisation every sandbox serves by default (see the module docstring)."""
    return demo_org(FIRST_DAY, LAST_DAY)


def describe() -> str:
    """The default data's days for messages: ``2024-12-01 to 2025-02-13``."""
    return f"{FIRST_DAY} to {LAST_DAY}"
