"""Write report frames to CSV and Parquet, atomically.

This is the only module that opens output files. Every file is written to a
sibling temporary file (``.<name>.<random>.tmp`` in the same directory), flushed
to disk, then moved over the target with :func:`os.replace`, so a reader sees
either the old file or the complete new one, never a partial write. A set of
files (:func:`write_reports`) is moved into place all or nothing, even when an
exception or a signal (SIGINT, SIGTERM) lands between two moves: see
:mod:`prismatic_usage._atomic`. On any failure no temporary file is left.

CSV format
----------
UTF-8 without BOM, ``\\n`` line endings, headers exactly as declared in
:mod:`prismatic_usage.columns`, dates as ISO ``2025-02-12``, integers as digits.
Averages are written as Python's ``repr`` of the float: the shortest text that
reads back as the same float64 (``8.5``, ``7.958333333333333``). Whole numbers
keep their ``.0`` (``8.0``) so that a reader infers a float column for every
file; the original script wrote ``8``. Money amounts (the billing summary's
``decimal128(18, 2)`` columns) are written with exactly two decimal places
(``12.30``), which :class:`decimal.Decimal` reads back exactly. Text is quoted
only when needed: when it contains a comma, a double quote, ``\\r`` or ``\\n``
(quotes doubled), or is the empty string (written ``""`` to tell it apart from
a missing value, which is written as an empty field). The stdlib ``csv``
writer does not quote a lone ``\\r`` when the line terminator is ``\\n``, which
would split the row on reading, hence the writer here.

``pandas.read_csv`` and ``float()`` read every float back exactly.
"""

from __future__ import annotations

import functools
import logging
import math
import os
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import IO

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from . import _atomic
from .columns import (
    CUSTOMER_INSTANCE,
    EXACT,
    INSTANCE_COMPUTE,
    REPORTS,
    FrameSpec,
    check_column,
    spec_for_columns,
)
from .errors import ConfigurationError, OutputError

__all__ = ["FORMATS", "write_csv", "write_parquet", "write_reports"]

log = logging.getLogger(__name__)

FORMATS = ("csv", "parquet")
"""The output formats :func:`write_reports` accepts."""

_CSV_CHUNK_ROWS = 32_768
_NEEDS_QUOTES = r'[",\r\n]'
_FORMULA_START = r"^[=+\-@\t\r]"

Writer = Callable[[pa.Table, IO[bytes]], None]


def write_csv(
    frame: pd.DataFrame, path: str | os.PathLike[str], *, excel_safe: bool = False
) -> Path:
    """Write a report frame to a CSV file, atomically.

    Parameters
    ----------
    frame : pandas.DataFrame
        A frame from :func:`~prismatic_usage.frames.customer_instance_frame` or
        :func:`~prismatic_usage.frames.instance_compute_frame` (basic or
        extended), or a roll-up or summary from :mod:`prismatic_usage.billing`:
        its columns must be a declared set with the declared dtypes.
        Columns are written in declared order.
    path : str or os.PathLike
        The file to write; its directory is created if missing.
    excel_safe : bool, default False
        Prefix ``'`` to text cells that start with ``=``, ``+``, ``-``, ``@``,
        tab or carriage return, so that spreadsheet programs show them as text
        instead of evaluating them as formulas (CSV injection). Off by default
        because it changes the data: the file then no longer reads back equal to
        the frame. Only text columns are touched; numbers and dates never are.

    Returns
    -------
    pathlib.Path
        The path written.

    Raises
    ------
    ConfigurationError
        If the frame's columns or dtypes are not a declared report's.
    OutputError
        If the directory or file cannot be created or written.
    """
    return _write_one(frame, path, _csv_writer(excel_safe))


def write_parquet(frame: pd.DataFrame, path: str | os.PathLike[str]) -> Path:
    """Write a report frame to a Parquet file, atomically, with the declared schema.

    The schema comes from the frame's declaration, not from inference: ``Date``
    is ``date32``, counts ``int64``, averages ``float64`` (``double``), IDs and
    names ``string``, money amounts ``decimal128(18, 2)``; only optional
    columns (external IDs, integration names, a billing summary's averages)
    are nullable. ``pandas.read_parquet`` gives back the same dtypes, except
    amounts: ``object`` columns of the same exact :class:`decimal.Decimal`.

    Parameters
    ----------
    frame : pandas.DataFrame
        A report frame, as for :func:`write_csv`.
    path : str or os.PathLike
        The file to write; its directory is created if missing.

    Returns
    -------
    pathlib.Path
        The path written.

    Raises
    ------
    ConfigurationError
        If the frame's columns or dtypes are not a declared report's.
    OutputError
        If the directory or file cannot be created or written.
    """
    return _write_one(frame, path, _write_parquet_to)


def _write_one(frame: pd.DataFrame, path: str | os.PathLike[str], writer: Writer) -> Path:
    """Check ``frame`` against its declaration and write it atomically with ``writer``."""
    table = _arrow_table(frame, _checked_spec(frame))
    target = Path(path)
    _make_dir(target.parent)
    _write_atomically([(target, writer, table)])
    return target


def write_reports(
    customer_frame: pd.DataFrame,
    compute_frame: pd.DataFrame,
    output_dir: str | os.PathLike[str],
    *,
    formats: Sequence[str] = ("csv",),
    excel_safe: bool = False,
    extra: Sequence[pd.DataFrame] = (),
) -> list[Path]:
    """Write both reports in each format: all files or none.

    Files are named after the declarations: ``customer-instance-data.<format>``
    and ``instance-compute-data.<format>``. Every file is first written to a
    temporary file; only when all have been written are they moved into place,
    so a failure while writing leaves no new file behind.

    Parameters
    ----------
    customer_frame : pandas.DataFrame
        From :func:`~prismatic_usage.frames.customer_instance_frame`.
    compute_frame : pandas.DataFrame
        From :func:`~prismatic_usage.frames.instance_compute_frame`.
    output_dir : str or os.PathLike
        Directory to write into; created if missing.
    formats : sequence of {"csv", "parquet"}, default ("csv",)
        The formats to write.
    excel_safe : bool, default False
        Neutralise formula-like text in the CSV files (see :func:`write_csv`);
        Parquet files are never changed.
    extra : sequence of pandas.DataFrame, default ()
        More declared frames (e.g. the billing summary) written in the same
        all-or-none batch, each under its declared file stem.

    Returns
    -------
    list of pathlib.Path
        The files written, customer report first, in the order of ``formats``.

    Raises
    ------
    ConfigurationError
        If a format is unknown or a frame is not the report it should be.
    OutputError
        If the directory or a file cannot be created or written.
    """
    unknown = [f for f in formats if f not in FORMATS]
    if unknown or not formats:
        raise ConfigurationError(
            f"unknown output format(s) {unknown or list(formats)}; choose from {list(FORMATS)}"
        )
    tables = [
        (spec.stem, _arrow_table(frame, spec))
        for frame, spec in [
            (customer_frame, _checked_spec(customer_frame, expected=CUSTOMER_INSTANCE)),
            (compute_frame, _checked_spec(compute_frame, expected=INSTANCE_COMPUTE)),
            *((frame, _checked_spec(frame)) for frame in extra),
        ]
    ]
    directory = Path(output_dir)
    _make_dir(directory)
    writers: dict[str, Writer] = {"csv": _csv_writer(excel_safe), "parquet": _write_parquet_to}
    jobs = [
        (directory / f"{stem}.{fmt}", writers[fmt], table)
        for stem, table in tables
        for fmt in dict.fromkeys(formats)
    ]
    _write_atomically(jobs)
    written = [target for target, *_ in jobs]
    _warn_of_stale_reports(directory, written)
    return written


def _warn_of_stale_reports(directory: Path, written: list[Path]) -> None:
    """Say so when report files this run did not write sit beside the ones it did.

    A run with fewer formats or reports than an earlier one into the same
    directory leaves the earlier files; they are the user's, so they are named,
    not deleted.
    """
    known = {directory / f"{spec.stem}.{fmt}" for spec in REPORTS for fmt in FORMATS}
    stale = sorted(path.name for path in known - set(written) if path.is_file())
    if stale:
        log.warning(
            "%s also holds %s from an earlier run (not rewritten by this one)",
            directory,
            ", ".join(stale),
        )


# -- atomic writing ---------------------------------------------------------------------------


def _make_dir(directory: Path) -> None:
    """Create ``directory`` (and parents) unless it exists."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(
            f"cannot create output directory {str(directory)!r}: {_reason(exc)}; "
            "choose a directory you can write to"
        ) from exc


def _write_atomically(jobs: Iterable[tuple[Path, Writer, pa.Table]]) -> None:
    """Write every job to a temporary sibling, then move all of them into place at once.

    All or nothing (see :mod:`prismatic_usage._atomic`): whatever ends the
    write, an error or a signal, no temporary file is left and the targets are
    either all new or all as before.
    """
    done: list[tuple[Path, Path]] = []
    try:
        for target, writer, table in jobs:
            temp = _atomic.temp_name(target)
            done.append((temp, target))  # before writing: cleaned up however writing ends
            _atomic.write_temp(temp, target, functools.partial(_apply, writer, table))
        for _, target in done:
            if target.is_dir():
                raise IsADirectoryError(21, "a directory is in the way", str(target))
        _atomic.replace_all(done)
    except OSError as exc:
        where = exc.filename2 or exc.filename or "the output directory"
        raise OutputError(
            f"cannot write {str(where)!r}: {_reason(exc)}; "
            "check that the directory is writable and has free space"
        ) from exc
    finally:
        _atomic.remove(temp for temp, _ in done)


def _apply(writer: Writer, table: pa.Table, fh: IO[bytes]) -> None:
    """``writer(table, fh)``, in the argument order :func:`functools.partial` needs."""
    writer(table, fh)


def _reason(exc: OSError) -> str:
    """The OS's one-line reason for ``exc``."""
    return " ".join(str(exc.strerror or exc).split())


# -- frame checks -----------------------------------------------------------------------------


def _checked_spec(frame: pd.DataFrame, *, expected: FrameSpec | None = None) -> FrameSpec:
    """The declaration ``frame`` follows, after checking its columns and dtypes."""
    spec = spec_for_columns(frame.columns)
    if spec is None or (expected is not None and spec.stem != expected.stem):
        wanted = expected.names if expected is not None else "a declared report's columns"
        raise ConfigurationError(
            f"frame has columns {list(map(str, frame.columns))}, expected {wanted}"
        )
    for column in spec.columns:
        check_column(frame[column.name], column)
    return spec


# -- Arrow, Parquet ---------------------------------------------------------------------------


def _arrow_table(frame: pd.DataFrame, spec: FrameSpec) -> pa.Table:
    """``frame`` as an Arrow table with the declared schema (both writers start from this)."""
    exact = [c.name for c in spec.columns if c.type is EXACT]
    if exact:  # exact numbers of mixed kinds travel as their exact text
        frame = frame.assign(
            **{
                name: pd.Series([_exact_text(v) for v in frame[name]], dtype=object)
                for name in exact
            }
        )
    try:
        return pa.Table.from_pandas(
            frame[spec.names], schema=spec.arrow_schema, preserve_index=False
        )
    except (pa.ArrowInvalid, pa.ArrowTypeError, ValueError) as exc:
        reason = " ".join(str(exc).split())
        raise ConfigurationError(f"frame does not fit the {spec.stem} schema: {reason}") from exc


def _exact_text(value: object) -> str | None:
    """An int as its digits, a float as its shortest round-trip text; None/NaN as missing."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigurationError(f"{value!r} is not a number")
    return str(value) if isinstance(value, int) else repr(float(value))


def _write_parquet_to(table: pa.Table, fh: IO[bytes]) -> None:
    """Write ``table`` as Parquet."""
    pq.write_table(table, fh)


# -- CSV --------------------------------------------------------------------------------------


def _csv_writer(excel_safe: bool) -> Writer:
    """A CSV writer function with the ``excel_safe`` choice bound."""

    def write(table: pa.Table, fh: IO[bytes]) -> None:
        header = [_csv_text(pa.array([name]), excel_safe=False) for name in table.column_names]
        fh.write(_joined_lines(header))
        for batch in table.to_batches(max_chunksize=_CSV_CHUNK_ROWS):
            fh.write(_joined_lines([_csv_cells(column, excel_safe) for column in batch.columns]))

    return write


def _csv_cells(values: pa.Array, excel_safe: bool) -> pa.Array:
    """One column's CSV cells as strings, formatted by its type."""
    if pa.types.is_string(values.type):
        return _csv_text(values, excel_safe=excel_safe)
    if pa.types.is_floating(values.type):
        return _csv_float(values)
    # Integers as digits, dates as ISO 8601 (YYYY-MM-DD): Arrow's casts.
    return pc.fill_null(values.cast(pa.string()), "")


def _csv_text(values: pa.Array, *, excel_safe: bool) -> pa.Array:
    """Text cells: quoted only when needed; missing values become empty fields."""
    if excel_safe:
        formula = pc.fill_null(pc.match_substring_regex(values, _FORMULA_START), False)
        values = pc.if_else(formula, pc.binary_join_element_wise("'", values, ""), values)
    needs_quotes = pc.or_(pc.match_substring_regex(values, _NEEDS_QUOTES), pc.equal(values, ""))
    quoted = pc.binary_join_element_wise('"', pc.replace_substring(values, '"', '""'), '"', "")
    return pc.fill_null(pc.if_else(pc.fill_null(needs_quotes, False), quoted, values), "")


def _csv_float(values: pa.Array) -> pa.Array:
    """Float cells as Python ``repr`` (shortest round-trip text); NaN or null as empty."""
    numbers = values.to_numpy(zero_copy_only=False)
    text = pa.array(numbers.astype(str), type=pa.string())
    return pc.if_else(pc.is_nan(pc.fill_null(values, np.nan)), "", text)


def _joined_lines(columns: Sequence[pa.Array]) -> memoryview:
    """The UTF-8 bytes of the rows: cells joined with commas, each row ending in a newline.

    The joined lines lie end to end in the Arrow array's data buffer, so that
    span is written as it is: no Python string per row.
    """
    rows = pc.binary_join_element_wise(*columns, ",")
    lines = pc.binary_join_element_wise(rows, "\n", "")
    _, offsets, data = lines.buffers()
    if data is None or not len(lines):
        return memoryview(b"")
    width = np.int64 if pa.types.is_large_string(lines.type) else np.int32
    bounds = np.frombuffer(offsets, dtype=width)[lines.offset : lines.offset + len(lines) + 1]
    return memoryview(data)[int(bounds[0]) : int(bounds[-1])]
