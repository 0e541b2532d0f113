"""Run manifests (``runs/<run id>.json``): their totals, and closing those of dead runs.

Plain JSON files, written atomically; no network, no secrets (the caller puts
only the API host in them).
"""

from __future__ import annotations

import json
from pathlib import Path

from .files import atomic_write

__all__ = ["close_stale_manifests", "manifest_totals", "write_json"]


def manifest_totals(syncs: list[dict[str, object]]) -> dict[str, object]:
    """The manifest's top level: the last sync's range and settings, every sync's sums."""
    if not syncs:
        return {}
    totals: dict[str, object] = {
        key: value for key, value in syncs[-1].items() if key not in ("rows", "changes")
    }
    rows: dict[str, dict[str, int]] = {}
    for sync in syncs:
        per_table = sync.get("rows")
        if not isinstance(per_table, dict):
            continue
        for table, counts in per_table.items():
            into = rows.setdefault(table, dict.fromkeys(counts, 0))
            for name, value in counts.items():
                into[name] += value
    totals["rows"] = rows
    for key in ("changes", "requests", "retries"):
        values = [sync.get(key) for sync in syncs]
        totals[key] = None if None in values else sum(int(str(v)) for v in values)
    return totals


def close_stale_manifests(runs: Path, *, by: str) -> None:
    """Mark manifests still ``running`` as ``interrupted``: their run died (we hold the lock)."""
    if not runs.is_dir():
        return
    for path in sorted(runs.glob("*.json")):
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if document.get("outcome") != "running" or document.get("run_id") == by:
            continue
        document["outcome"] = "interrupted"
        document["note"] = (
            f"stopped without finishing (killed?); run {by} merged what it had journaled"
        )
        write_json(path, document)


def write_json(path: Path, document: dict[str, object]) -> None:
    payload = json.dumps(document, indent=2, default=str).encode()
    atomic_write(path, lambda fh: fh.write(payload))
