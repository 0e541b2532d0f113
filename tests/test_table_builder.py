"""Record builders sharing one bound on the rows they hold unconverted (ChunkConverter)."""

from __future__ import annotations

import datetime as dt
from concurrent.futures import ThreadPoolExecutor

import pytest

from prismatic_usage.errors import MalformedResponseError
from prismatic_usage.records import SNAPSHOT_SCHEMA
from prismatic_usage.table_builder import ChunkConverter, TableBuilder


def _page(stream: str, first: int, rows: int) -> dict[str, list[object]]:
    """One page of snapshot rows ``first`` .. ``first + rows - 1`` of a stream, as JSON gives them."""
    numbers = range(first, first + rows)
    return {
        "id": [f"{stream}-{n}" for n in numbers],
        "customer_id": [stream] * rows,
        "snapshot_time": [f"2025-01-01T{n % 24:02d}:00:00Z" for n in numbers],
        "deployed_instance_count": [n for n in numbers],
        "deployed_unique_integration_count": [1] * rows,
    }


@pytest.mark.parametrize("threaded", [False, True])
def test_interleaved_streams_hold_at_most_the_bound_and_keep_their_rows(threaded: bool) -> None:
    pool = ThreadPoolExecutor(max_workers=1) if threaded else None
    converter = ChunkConverter(pool, held_rows=12)
    builders = {name: TableBuilder(SNAPSHOT_SCHEMA, converter) for name in ("a", "b", "c")}
    for page in range(10):  # pages of the three streams arrive in turn
        for name, builder in builders.items():
            builder.append_columns(_page(name, 3 * page, 3))
            assert sum(b.pending for b in builders.values()) <= 12
    tables = {name: builder.finish() for name, builder in builders.items()}
    converter.shutdown()
    for name, table in tables.items():
        assert table.column("id").to_pylist() == [f"{name}-{n}" for n in range(30)]
        assert table.column("deployed_instance_count").to_pylist() == list(range(30))
        assert table.column("snapshot_time")[25].as_py() == dt.datetime(
            2025, 1, 1, 1, tzinfo=dt.UTC
        )
        assert table.column("id").num_chunks == 1  # the early conversions are joined again


def test_early_chunks_are_joined_up_to_the_chunk_size() -> None:
    converter = ChunkConverter(None, held_rows=4)
    builders = [TableBuilder(SNAPSHOT_SCHEMA, converter) for _ in range(2)]
    for builder in builders:
        builder.CHUNK_ROWS = 10
    for page in range(12):
        for k, builder in enumerate(builders):
            builder.append_columns(_page(str(k), 2 * page, 2))
    table = builders[0].finish()
    assert table.num_rows == 24
    sizes = [len(chunk) for chunk in table.column("id").chunks]
    assert sum(sizes) == 24 and max(sizes) <= 10 and len(sizes) <= 4


def test_a_value_refused_in_an_early_conversion_is_raised_by_finish() -> None:
    converter = ChunkConverter(None, held_rows=2)
    builder = TableBuilder(SNAPSHOT_SCHEMA, converter)
    bad = _page("a", 0, 3)
    bad["deployed_instance_count"] = [1, "many", 3]
    builder.append_columns(bad)  # over the bound: converted now, the error kept
    with pytest.raises(MalformedResponseError, match="deployed_instance_count"):
        builder.finish()


def test_the_lean_allocator_becomes_arrows_default_pool() -> None:
    import subprocess
    import sys

    script = (
        "import pyarrow as pa\n"
        "from prismatic_usage._memory import use_lean_allocator\n"
        "chosen = use_lean_allocator()\n"
        "print(chosen, pa.default_memory_pool().backend_name)\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    chosen, backend = result.stdout.split()
    assert (chosen, backend) in {("True", "jemalloc"), ("False", "mimalloc"), ("False", "system")}
