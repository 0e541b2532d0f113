"""Tests for prismatic_usage.export: CSV/Parquet fidelity and atomic writes."""

from __future__ import annotations

import csv
import datetime as dt
import errno
import io
import os
import tempfile
from pathlib import Path
from typing import IO, Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from prismatic_usage import export
from prismatic_usage.errors import ConfigurationError, OutputError
from prismatic_usage.export import write_csv, write_parquet, write_reports

CUSTOMER_HEADER = b"Customer ID,Customer Name,Date,Deployed Instances,Unique Integrations\n"
CUSTOMER_EXTENDED_HEADER = (
    b"Customer ID,Customer Name,Date,Deployed Instances,Unique Integrations,"
    b"Customer External ID,Snapshots,Expected Snapshots,Coverage,Final\n"
)
COMPUTE_HEADER = (
    b"Customer ID,Customer Name,Instance ID,Instance Name,Date,Successful Executions,"
    b"Failed Executions,Step Count,Execution Mb-Seconds\n"
)
STR = pd.StringDtype("pyarrow", na_value=np.nan)
DATE = np.dtype("datetime64[s]")
TRICKY_NAMES = [
    "Comma, Inc.",
    'Quote "Q" Co',
    "Line\nBreak Ltd",
    "Carriage\rReturn",
    "Crlf\r\nCo",
    "Ünïcødé 日本 🚀",
    "=SUM(A1:A9)",
    "+1 Plus",
    "-1 Minus",
    "@Mention",
    "\tTabbed",
    "\rLeading CR",
    "  spaced  ",
    "Plain",
]
FORMULA_LIKE = {"=SUM(A1:A9)", "+1 Plus", "-1 Minus", "@Mention", "\tTabbed", "\rLeading CR"}


def read_parquet_days(path: Path) -> pd.DataFrame:
    """A Parquet report read back with pandas, its date32 ``Date`` (read as
    ``datetime.date`` objects) turned into the frames' midnight ``datetime64[s]``."""
    frame = pd.read_parquet(path)
    assert all(isinstance(day, dt.date) for day in frame["Date"])
    return frame.assign(Date=pd.to_datetime(frame["Date"]).astype(DATE))


def dates(values: list[dt.date]) -> pd.api.extensions.ExtensionArray:
    """A DATE array: days at midnight, ``datetime64[s]``."""
    return np.array([np.datetime64(v, "s") for v in values], dtype="datetime64[s]")


def customer_frame(
    names: list[str], *, averages: list[float] | None = None, extended: bool = False
) -> pd.DataFrame:
    """A customer-instance frame built by hand, one row per name."""
    n = len(names)
    averages = averages if averages is not None else [8.5, 7.958333333333333, 8.0, 0.1] * n
    data: dict[str, Any] = {
        "Customer ID": pd.array([f"Q3VzdG9tZXI6{k}" for k in range(n)], dtype=STR),
        "Customer Name": pd.array(names, dtype=STR),
        "Date": dates([dt.date(2025, 2, 12) + dt.timedelta(days=k) for k in range(n)]),
        "Deployed Instances": np.array(averages[:n], dtype=np.float64),
        "Unique Integrations": np.array(averages[::-1][:n], dtype=np.float64),
    }
    if extended:
        data["Customer External ID"] = pd.array([None if k % 2 else f"e{k}" for k in range(n)], STR)
        data["Snapshots"] = np.arange(n, dtype=np.int64) + 23
        data["Expected Snapshots"] = np.full(n, 24, dtype=np.int64)
        data["Coverage"] = data["Snapshots"] / 24
        data["Final"] = np.arange(n) % 2 == 0
    return pd.DataFrame(data)


def compute_frame(names: list[str]) -> pd.DataFrame:
    """An instance-compute frame built by hand, with int64 extremes."""
    n = len(names)
    big = [2**53 + 1, 2**63 - 1, 0, -(2**63)]
    return pd.DataFrame(
        {
            "Customer ID": pd.array([f"C{k}" for k in range(n)], dtype=STR),
            "Customer Name": pd.array(names, dtype=STR),
            "Instance ID": pd.array([f"I{k}" for k in range(n)], dtype=STR),
            "Instance Name": pd.array(names[::-1], dtype=STR),
            "Date": dates([dt.date(2024, 12, 1)] * n),
            "Successful Executions": np.array([1440 + k for k in range(n)], dtype=np.int64),
            "Failed Executions": np.zeros(n, dtype=np.int64),
            "Step Count": np.full(n, 5760, dtype=np.int64),
            "Execution Mb-Seconds": np.array([big[k % 4] for k in range(n)], dtype=np.int64),
        }
    )


def read_csv_rows(path: Path) -> list[list[str]]:
    """All rows, header included, parsed with the stdlib csv module."""
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.reader(fh))


def read_back(path: Path) -> pd.DataFrame:
    """A CSV read back with pandas, Date converted to the frame's date dtype."""
    frame = pd.read_csv(path, keep_default_na=False, na_values=[""])
    frame["Date"] = frame["Date"].astype(DATE)
    return frame


def leftovers(directory: Path) -> list[str]:
    """Names of every file in ``directory``."""
    return sorted(os.listdir(directory))


# -- CSV --------------------------------------------------------------------------------------


def test_csv_headers_are_byte_exact(tmp_path: Path) -> None:
    write_csv(customer_frame(["Acme"]), tmp_path / "a.csv")
    write_csv(customer_frame(["Acme"], extended=True), tmp_path / "b.csv")
    write_csv(compute_frame(["Acme"]), tmp_path / "c.csv")
    write_csv(customer_frame([]), tmp_path / "empty.csv")
    assert (tmp_path / "a.csv").read_bytes().startswith(CUSTOMER_HEADER)
    assert (tmp_path / "b.csv").read_bytes().startswith(CUSTOMER_EXTENDED_HEADER)
    assert (tmp_path / "c.csv").read_bytes().startswith(COMPUTE_HEADER)
    assert (tmp_path / "empty.csv").read_bytes() == CUSTOMER_HEADER


def test_csv_bytes_for_a_readme_like_frame(tmp_path: Path) -> None:
    frame = customer_frame(["Acme Corp", "Beta"], averages=[8.0, 7.958333333333333])
    write_csv(frame, tmp_path / "out.csv")
    assert (tmp_path / "out.csv").read_bytes() == CUSTOMER_HEADER + (
        b"Q3VzdG9tZXI60,Acme Corp,2025-02-12,8.0,7.958333333333333\n"
        b"Q3VzdG9tZXI61,Beta,2025-02-13,7.958333333333333,8.0\n"
    )


@pytest.mark.parametrize("chunk_rows", [1, 2, 3, 5, 32_768])
def test_csv_bytes_do_not_depend_on_where_chunks_end(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, chunk_rows: int
) -> None:
    monkeypatch.setattr(export, "_CSV_CHUNK_ROWS", chunk_rows)
    write_csv(customer_frame(["a,b", "", 'q"x', "plain", "line\nbreak"]), tmp_path / "out.csv")
    assert (tmp_path / "out.csv").read_bytes() == CUSTOMER_HEADER + (
        b'Q3VzdG9tZXI60,"a,b",2025-02-12,8.5,0.1\n'
        b'Q3VzdG9tZXI61,"",2025-02-13,7.958333333333333,8.0\n'
        b'Q3VzdG9tZXI62,"q""x",2025-02-14,8.0,7.958333333333333\n'
        b"Q3VzdG9tZXI63,plain,2025-02-15,0.1,8.5\n"
        b'Q3VzdG9tZXI64,"line\nbreak",2025-02-16,8.5,0.1\n'
    )


def test_csv_columns_follow_declared_order(tmp_path: Path) -> None:
    frame = customer_frame(["Acme"], extended=True)
    write_csv(frame[frame.columns[::-1]], tmp_path / "out.csv")
    assert (tmp_path / "out.csv").read_bytes().startswith(CUSTOMER_EXTENDED_HEADER)


def test_csv_encoding_and_line_endings(tmp_path: Path) -> None:
    write_csv(customer_frame(["Ünïcødé 日本 🚀", "Plain"]), tmp_path / "out.csv")
    raw = (tmp_path / "out.csv").read_bytes()
    assert not raw.startswith(b"\xef\xbb\xbf")
    assert b"\r" not in raw
    assert raw.count(b"\n") == 3
    assert "Ünïcødé 日本 🚀".encode() in raw


def test_tricky_names_survive_csv_module_round_trip(tmp_path: Path) -> None:
    frame = compute_frame(TRICKY_NAMES)
    write_csv(frame, tmp_path / "out.csv")
    header, *body = read_csv_rows(tmp_path / "out.csv")
    assert header == list(frame.columns)
    assert [row[1] for row in body] == TRICKY_NAMES
    assert [row[3] for row in body] == TRICKY_NAMES[::-1]
    assert [row[4] for row in body] == ["2024-12-01"] * len(TRICKY_NAMES)
    assert [int(row[8]) for row in body] == frame["Execution Mb-Seconds"].tolist()


def test_tricky_names_survive_pandas_round_trip(tmp_path: Path) -> None:
    frame = compute_frame(TRICKY_NAMES)
    write_csv(frame, tmp_path / "out.csv")
    pd.testing.assert_frame_equal(read_back(tmp_path / "out.csv"), frame)


def test_quoting_is_minimal(tmp_path: Path) -> None:
    frame = customer_frame(["a,b", 'say "hi"', "cr\ronly", "", "plain"])
    write_csv(frame, tmp_path / "out.csv")
    lines = (tmp_path / "out.csv").read_bytes().split(b"\n")
    names = [line.split(b",2025")[0].split(b",", 1)[1] for line in lines[1:6]]
    assert names == [b'"a,b"', b'"say ""hi"""', b'"cr\ronly"', b'""', b"plain"]


def test_big_integers_are_exact_in_csv(tmp_path: Path) -> None:
    write_csv(compute_frame(["a", "b", "c", "d"]), tmp_path / "out.csv")
    text = (tmp_path / "out.csv").read_text(encoding="utf-8")
    assert ",9007199254740993\n" in text
    assert ",9223372036854775807\n" in text
    assert ",-9223372036854775808\n" in text
    assert ".0" not in text


def test_extended_frame_round_trips_with_missing_values(tmp_path: Path) -> None:
    frame = customer_frame(["a", "b", "c"], extended=True)
    write_csv(frame, tmp_path / "out.csv")
    body = read_csv_rows(tmp_path / "out.csv")[1:]
    assert [row[5] for row in body] == ["e0", "", "e2"]
    back = read_back(tmp_path / "out.csv")
    pd.testing.assert_frame_equal(back, frame[back.columns])


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.floats(allow_nan=False, allow_infinity=False, width=64), min_size=1, max_size=20)
)
def test_floats_are_written_as_repr_and_read_back_equal(averages: list[float]) -> None:
    frame = customer_frame(["x"] * len(averages), averages=averages)
    with tempfile.TemporaryDirectory() as directory:
        text = write_csv(frame, Path(directory) / "out.csv").read_text(encoding="utf-8")
    body = list(csv.reader(io.StringIO(text, newline="")))[1:]
    assert [row[3] for row in body] == [repr(x) for x in averages]
    assert [float(row[3]) for row in body] == averages
    back = pd.read_csv(io.StringIO(text))
    assert back["Deployed Instances"].tolist() == averages


def test_excel_safe_neutralises_formula_like_text_only(tmp_path: Path) -> None:
    frame = compute_frame(TRICKY_NAMES)
    write_csv(frame, tmp_path / "out.csv", excel_safe=True)
    body = read_csv_rows(tmp_path / "out.csv")[1:]
    expected = [f"'{name}" if name in FORMULA_LIKE else name for name in TRICKY_NAMES]
    assert [row[1] for row in body] == expected
    # Negative numbers are numbers, not text: never prefixed.
    assert body[3][8] == "-9223372036854775808"


def test_excel_safe_is_off_by_default(tmp_path: Path) -> None:
    write_csv(customer_frame(["=cmd|' /C calc'!A0"]), tmp_path / "out.csv")
    assert read_csv_rows(tmp_path / "out.csv")[1][1] == "=cmd|' /C calc'!A0"


# -- Parquet ----------------------------------------------------------------------------------


def test_parquet_schema_is_declared(tmp_path: Path) -> None:
    write_parquet(compute_frame(["a"]), tmp_path / "c.parquet")
    write_parquet(customer_frame(["a"], extended=True), tmp_path / "e.parquet")
    compute = pq.read_schema(tmp_path / "c.parquet")
    assert [(f.name, f.type) for f in compute] == [
        ("Customer ID", pa.string()),
        ("Customer Name", pa.string()),
        ("Instance ID", pa.string()),
        ("Instance Name", pa.string()),
        ("Date", pa.date32()),
        ("Successful Executions", pa.int64()),
        ("Failed Executions", pa.int64()),
        ("Step Count", pa.int64()),
        ("Execution Mb-Seconds", pa.int64()),
    ]
    extended = pq.read_schema(tmp_path / "e.parquet")
    assert extended.field("Deployed Instances").type == pa.float64()
    assert extended.field("Snapshots").type == pa.int64()
    assert extended.field("Customer External ID").nullable
    assert not extended.field("Customer ID").nullable


def test_parquet_round_trip_is_exact(tmp_path: Path) -> None:
    frame = compute_frame(TRICKY_NAMES)
    write_parquet(frame, tmp_path / "c.parquet")
    pd.testing.assert_frame_equal(read_parquet_days(tmp_path / "c.parquet"), frame)
    table = pq.read_table(tmp_path / "c.parquet")
    assert table.column("Execution Mb-Seconds").to_pylist()[:2] == [2**53 + 1, 2**63 - 1]


def test_parquet_empty_frame_keeps_schema(tmp_path: Path) -> None:
    write_parquet(customer_frame([]), tmp_path / "e.parquet")
    back = pd.read_parquet(tmp_path / "e.parquet", dtype_backend="pyarrow")
    assert back.empty
    assert back["Date"].dtype == pd.ArrowDtype(pa.date32())


# -- write_reports ----------------------------------------------------------------------------


def test_write_reports_creates_directory_and_names_files(tmp_path: Path) -> None:
    out = tmp_path / "new" / "nested"
    paths = write_reports(
        customer_frame(["a"]), compute_frame(["b"]), out, formats=("csv", "parquet")
    )
    assert paths == [
        out / "customer-instance-data.csv",
        out / "customer-instance-data.parquet",
        out / "instance-compute-data.csv",
        out / "instance-compute-data.parquet",
    ]
    assert leftovers(out) == sorted(p.name for p in paths)


def test_write_reports_default_is_csv_only(tmp_path: Path) -> None:
    paths = write_reports(customer_frame(["a"]), compute_frame(["b"]), tmp_path)
    assert [p.name for p in paths] == ["customer-instance-data.csv", "instance-compute-data.csv"]
    assert leftovers(tmp_path) == ["customer-instance-data.csv", "instance-compute-data.csv"]


def test_write_reports_excel_safe_applies_to_csv_only(tmp_path: Path) -> None:
    write_reports(
        customer_frame(["=1+1"]),
        compute_frame(["@x"]),
        tmp_path,
        formats=("csv", "parquet"),
        excel_safe=True,
    )
    assert read_csv_rows(tmp_path / "customer-instance-data.csv")[1][1] == "'=1+1"
    parquet = pd.read_parquet(tmp_path / "customer-instance-data.parquet")
    assert parquet["Customer Name"].tolist() == ["=1+1"]


@pytest.mark.parametrize("formats", [("xlsx",), ("csv", "json"), ()])
def test_unknown_format_is_rejected_before_writing(
    tmp_path: Path, formats: tuple[str, ...]
) -> None:
    with pytest.raises(ConfigurationError, match="format"):
        write_reports(customer_frame(["a"]), compute_frame(["b"]), tmp_path, formats=formats)
    assert leftovers(tmp_path) == []


def test_frames_swapped_are_rejected(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="columns"):
        write_reports(compute_frame(["b"]), customer_frame(["a"]), tmp_path)
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize(
    "breakage",
    [
        lambda f: f.drop(columns=["Date"]),
        lambda f: f.assign(Extra=1),
        lambda f: f.astype({"Step Count": "float64"}),
        lambda f: f.astype({"Date": "str"}),
        lambda f: f.assign(**{"Customer ID": pd.array([None], dtype=STR)}),
    ],
)
def test_nonconforming_frame_writes_nothing(tmp_path: Path, breakage: Any) -> None:
    frame = breakage(compute_frame(["a"]))
    with pytest.raises(ConfigurationError) as info:
        write_csv(frame, tmp_path / "out.csv")
    assert "\n" not in str(info.value)
    with pytest.raises(ConfigurationError):
        write_parquet(frame, tmp_path / "out.parquet")
    assert leftovers(tmp_path) == []


# -- failures leave nothing behind ------------------------------------------------------------


def test_output_dir_under_a_file_is_an_output_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(OutputError, match="cannot create output directory") as info:
        write_reports(customer_frame(["a"]), compute_frame(["b"]), blocker / "out")
    assert "\n" not in str(info.value)
    with pytest.raises(OutputError):
        write_csv(customer_frame(["a"]), blocker / "x.csv")
    assert leftovers(tmp_path) == ["file"]


def test_failure_mid_write_leaves_no_file_and_keeps_old_ones(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    old = tmp_path / "customer-instance-data.csv"
    old.write_bytes(b"old report\n")

    def disk_full(table: pa.Table, where: IO[bytes]) -> None:
        where.write(b"PAR1 partial")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(export, "_write_parquet_to", disk_full)
    with pytest.raises(OutputError, match="No space left") as info:
        write_reports(
            customer_frame(["a"]), compute_frame(["b"]), tmp_path, formats=("csv", "parquet")
        )
    assert "\n" not in str(info.value)
    assert "customer-instance-data.parquet" in str(info.value)
    assert leftovers(tmp_path) == ["customer-instance-data.csv"]
    assert old.read_bytes() == b"old report\n"


def test_writer_exception_propagates_and_cleans_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(values: pa.Array, excel_safe: bool) -> pa.Array:
        raise RuntimeError("formatter bug")

    monkeypatch.setattr(export, "_csv_cells", broken)
    with pytest.raises(RuntimeError, match="formatter bug"):
        write_csv(customer_frame(["a"]), tmp_path / "out.csv")
    assert leftovers(tmp_path) == []


def test_directory_in_the_way_leaves_no_file(tmp_path: Path) -> None:
    (tmp_path / "instance-compute-data.csv").mkdir()
    with pytest.raises(OutputError, match=r"instance-compute-data\.csv"):
        write_reports(customer_frame(["a"]), compute_frame(["b"]), tmp_path)
    assert leftovers(tmp_path) == ["instance-compute-data.csv"]
    assert (tmp_path / "instance-compute-data.csv").is_dir()


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write to read-only directories")
def test_read_only_directory_is_an_output_error(tmp_path: Path) -> None:
    tmp_path.chmod(0o500)
    try:
        with pytest.raises(OutputError, match="Permission denied"):
            write_csv(customer_frame(["a"]), tmp_path / "out.csv")
    finally:
        tmp_path.chmod(0o700)
    assert leftovers(tmp_path) == []


def test_new_files_follow_the_umask(tmp_path: Path) -> None:
    path = write_csv(customer_frame(["a"]), tmp_path / "out.csv")
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask


def test_a_failed_move_restores_the_previous_reports(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("customer-instance-data.csv", "instance-compute-data.csv"):
        (tmp_path / name).write_bytes(b"old " + name.encode() + b"\n")
    real_replace = os.replace
    moves: list[str] = []

    def second_move_fails(src: Any, dst: Any) -> None:
        if str(dst).endswith(".csv") and not str(src).endswith(".bak"):
            moves.append(str(dst))
            if len(moves) == 2:
                raise OSError(errno.EBUSY, os.strerror(errno.EBUSY), str(src), None, str(dst))
        real_replace(src, dst)

    monkeypatch.setattr(export.os, "replace", second_move_fails)
    with pytest.raises(OutputError, match=r"instance-compute-data\.csv'"):
        write_reports(customer_frame(["a"]), compute_frame(["b"]), tmp_path)
    # Neither report is new: the first one was put back, and nothing else is left.
    for name in ("customer-instance-data.csv", "instance-compute-data.csv"):
        assert (tmp_path / name).read_bytes() == b"old " + name.encode() + b"\n"
    assert leftovers(tmp_path) == ["customer-instance-data.csv", "instance-compute-data.csv"]
