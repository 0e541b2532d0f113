"""Org-wide first, per entity where needed: which usage streams to plan, and when.

Hourly snapshots and daily metrics are first asked for org-wide, one stream
per window of the :class:`~prismatic_usage.plan.FetchPlan` (the first window
is the probe the server may refuse). Per-entity streams (one customer or
instance each) wait until their entity list is complete, then cover the days
org-wide did not: all of them after a refused probe, the days the plan still
needs otherwise, and the window of an org-wide stream that kept contradicting
itself (rows tied on the one sort field; per entity they do not tie).

Pure bookkeeping: it says which streams to plan; the planner plans them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from . import queries
from .plan import FetchPlan, Window
from .queries import Stream

__all__ = ["ENTITY_STREAMS", "LIST_STREAMS", "ORG_STREAMS", "FanOut", "Planned"]

#: The org-wide and per-entity stream of each usage kind, and the list naming its entities.
ORG_STREAMS = {"snapshots": queries.SNAPSHOTS_ORG_WIDE, "metrics": queries.METRICS_ORG_WIDE}
ENTITY_STREAMS = {"snapshots": queries.SNAPSHOTS, "metrics": queries.METRICS}
LIST_STREAMS = {"snapshots": queries.CUSTOMERS, "metrics": queries.INSTANCES}

#: A stream to plan: (stream, entity, window, is a probe).
Planned = tuple[Stream, str | None, Window, bool]


class FanOut:
    """Which usage streams one fetch plans, as probes, lists and fallbacks are answered.

    Parameters
    ----------
    plan
        The windows to fetch.
    org_wide
        Whether org-wide streams are tried at all (``FetchOptions.org_wide``).
    """

    def __init__(self, plan: FetchPlan, *, org_wide: bool) -> None:
        self._plan = plan
        #: Whether each usage kind runs org-wide; a refused probe turns it off.
        self.org_wide = {kind: org_wide and bool(plan.org_windows[kind]) for kind in ORG_STREAMS}
        # Org-wide windows after the first, until the probe is answered.
        self._org_rest: dict[str, tuple[Window, ...]] = {}
        # Per kind waiting for its list: the days org-wide streams cover.
        self._waiting: dict[str, frozenset[dt.date]] = {}
        # Org-wide windows that fell back, to fetch per entity once the list is known.
        self._fallbacks: dict[str, list[Window]] = {kind: [] for kind in ORG_STREAMS}

    def start(self) -> list[Planned]:
        """The org-wide probes (per-entity kinds wait for their list)."""
        planned: list[Planned] = []
        for kind, org_stream in ORG_STREAMS.items():
            if self.org_wide[kind]:
                probe, *rest = self._plan.org_windows[kind]
                self._org_rest[kind] = tuple(rest)
                planned.append((org_stream, None, probe, True))
            else:
                self._waiting[kind] = frozenset()
        return planned

    def probe_pending(self, kind: str) -> bool:
        """Whether the org-wide probe of ``kind`` is still unanswered."""
        return kind in self._org_rest

    def probe_answered(self, kind: str, *, accepted: bool) -> list[Planned]:
        """After the probe of ``kind``: its other org-wide windows, or per entity throughout."""
        rest = self._org_rest.pop(kind, ())
        if not accepted:
            self.org_wide[kind] = False
            self._waiting[kind] = frozenset()
            return []
        covered = set(self._plan.org_windows[kind][0].days())
        for window in rest:
            covered.update(window.days())
        self._waiting[kind] = frozenset(covered)
        return [(ORG_STREAMS[kind], None, window, False) for window in rest]

    def fall_back(self, kind: str, window: Window) -> None:
        """Fetch ``window`` of ``kind`` per entity (its org-wide stream gave up)."""
        self._fallbacks[kind].append(window)

    def ready(self, list_ids: Callable[[str], list[str] | None]) -> list[Planned]:
        """The per-entity streams whose list is now complete (``list_ids(kind)``, else None)."""
        planned: list[Planned] = []
        for kind, windows in self._fallbacks.items():
            ids = list_ids(kind) if windows else None
            if ids is not None:
                stream = ENTITY_STREAMS[kind]
                planned.extend((stream, e, w, False) for w in windows for e in ids)
                windows.clear()
        for kind, covered in list(self._waiting.items()):
            ids = list_ids(kind)
            if ids is None:
                continue
            del self._waiting[kind]
            for entity in ids:
                for window in self._plan.entity_windows(kind, entity, covered=covered):
                    planned.append((ENTITY_STREAMS[kind], entity, window, False))
        return planned

    @property
    def unfinished(self) -> bool:
        """Whether streams are still to be planned (a bug if the fetch ended)."""
        return bool(self._waiting or self._org_rest or any(self._fallbacks.values()))
