"""The example notebook and the plots it shows.

The notebook is committed clean (no outputs, no execution counts) and runs from
a clean state against the sandbox in a real ipykernel (nbclient), showing its
plots as PNGs; the plot functions render non-empty images with titles and
labelled axes.
"""

from __future__ import annotations

import base64
import datetime as dt
import io
import os
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from prismatic_usage import UsageReport, fetch_report
from prismatic_usage.sandbox import Sandbox

NOTEBOOK = Path(__file__).resolve().parent.parent / "notebooks" / "usage_report.ipynb"
MIN_PNG_BYTES = 10_000  # an empty 1000 x 500 figure is about 4 kB
START, END = dt.date(2024, 12, 1), dt.date(2024, 12, 5)  # the conftest org's range

nbformat = pytest.importorskip("nbformat", reason="nbformat missing: pip install nbformat")


def read_notebook() -> Any:
    return nbformat.read(NOTEBOOK, as_version=4)


# -- the committed notebook ------------------------------------------------------------------


def test_committed_notebook_has_no_outputs_or_execution_counts() -> None:
    nb = read_notebook()
    dirty = [
        f"cell {i} ({cell.get('id', '?')}): "
        + ", ".join(
            problem
            for problem, present in (
                (f"{len(cell.get('outputs', []))} output(s)", cell.get("outputs")),
                (f"execution_count {cell.get('execution_count')}", cell.get("execution_count")),
            )
            if present
        )
        for i, cell in enumerate(nb.cells)
        if cell.cell_type == "code" and (cell.get("outputs") or cell.get("execution_count"))
    ]
    assert not dirty, (
        f"{NOTEBOOK.name} is committed with outputs; clear them (Jupyter: Edit > Clear Outputs "
        "of All Cells) before committing: " + "; ".join(dirty)
    )


def test_committed_notebook_is_valid_and_has_one_data_source_cell() -> None:
    nb = read_notebook()
    nbformat.validate(nb)
    deciding = [c for c in nb.cells if c.cell_type == "code" and "USE_REAL_API =" in c.source]
    assert len(deciding) == 1
    assert "DATA SOURCE" in deciding[0].source


# -- executing it ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def executed(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The notebook run top to bottom in a fresh kernel, in a temporary working directory."""
    pytest.importorskip("nbclient", reason="nbclient missing: pip install nbclient")
    pytest.importorskip("ipykernel", reason="ipykernel missing: pip install ipykernel")
    pytest.importorskip("matplotlib", reason="matplotlib missing: pip install matplotlib")
    from nbclient import NotebookClient

    workdir = tmp_path_factory.mktemp("notebook")
    nb = read_notebook()
    with pytest.MonkeyPatch.context() as mp:
        # The kernel inherits this environment: no real credentials (so the sandbox is
        # used, as in CI) and temporary files (the CSV cell) under the test's directory.
        for name in [n for n in os.environ if n.startswith(("PRISMATIC_", "PRISM_"))]:
            mp.delenv(name)
        mp.setenv("TMPDIR", str(workdir))
        client = NotebookClient(
            nb,
            kernel_name="python3",
            timeout=120,
            resources={"metadata": {"path": str(workdir)}},
        )
        client.execute()  # raises CellExecutionError, naming the cell, if one fails
    return nb


def code_outputs(nb: Any) -> list[tuple[str, dict[str, Any]]]:
    return [
        (cell.get("id", "?"), output)
        for cell in nb.cells
        if cell.cell_type == "code"
        for output in cell.outputs
    ]


def test_notebook_runs_every_cell_without_error(executed: Any) -> None:
    code = [c for c in executed.cells if c.cell_type == "code"]
    assert all(c.execution_count for c in code), "a code cell did not run"
    errors = [cid for cid, out in code_outputs(executed) if out["output_type"] == "error"]
    assert not errors, f"cells with errors: {errors}"
    stderr = [
        f"{cid}: {out['text'][:300]}"
        for cid, out in code_outputs(executed)
        if out["output_type"] == "stream" and out["name"] == "stderr"
    ]
    assert not stderr, "cells wrote to stderr (warnings?):\n" + "\n".join(stderr)


def test_notebook_uses_the_sandbox_without_credentials(executed: Any) -> None:
    text = "".join(
        out.get("text", "") for _, out in code_outputs(executed) if out["output_type"] == "stream"
    )
    assert "built-in sandbox" in text
    assert "customer-instance-data.csv" in text
    assert "instance-compute-data.csv" in text


def test_notebook_shows_the_plots_as_pngs(executed: Any) -> None:
    from matplotlib.image import imread

    pngs = [
        (cid, base64.b64decode(out["data"]["image/png"]))
        for cid, out in code_outputs(executed)
        if "image/png" in out.get("data", {})
    ]
    assert len(pngs) >= 3, f"expected at least 3 plots, got {len(pngs)}"
    for cid, png in pngs:
        assert png.startswith(b"\x89PNG"), cid
        assert len(png) > MIN_PNG_BYTES, f"{cid}: only {len(png)} bytes"
        assert imread(io.BytesIO(png)).std() > 0.05, f"{cid}: the image is almost one colour"


# -- the plot functions ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def report(sandbox: Sandbox) -> UsageReport:
    return fetch_report(START, END, url=sandbox.url, token=sandbox.token)


@pytest.fixture
def plots() -> Any:
    pytest.importorskip("matplotlib", reason="matplotlib missing: pip install matplotlib")
    from prismatic_usage import plots

    return plots


def saved_png(fig: Any, path: Path) -> Any:
    """Render ``fig`` to ``path`` and read the pixels back; checks the image is not blank."""
    from matplotlib.image import imread

    fig.savefig(path)
    assert path.stat().st_size > MIN_PNG_BYTES, f"{path.name}: {path.stat().st_size} bytes"
    pixels = imread(path)
    assert pixels.shape[:2] == (500, 1000)
    assert pixels.std() > 0.05, f"{path.name} is almost one colour"
    return pixels


def test_deployed_instances_plot(plots: Any, report: UsageReport, tmp_path: Path) -> None:
    fig = plots.plot_deployed_instances(report.customer_instances, top=5)
    saved_png(fig, tmp_path / "deployed.png")
    (ax,) = fig.axes
    assert ax.get_title().startswith("Deployed instances per customer — top 5 of ")
    assert ax.get_xlabel() == "Date"
    assert "Deployed instances" in ax.get_ylabel()
    assert len(ax.get_lines()) == 5
    assert len(fig.legends[0].get_texts()) == 5


def test_daily_executions_plot(plots: Any, report: UsageReport, tmp_path: Path) -> None:
    fig = plots.plot_daily_executions(report.instance_compute)
    saved_png(fig, tmp_path / "executions.png")
    counts, rate = fig.axes
    assert fig.get_suptitle() == "Daily executions: successful vs failed"
    assert counts.get_ylabel() == "Executions per day"
    assert rate.get_ylabel() == "Failed (% of executions)"
    assert rate.get_xlabel() == "Date"
    assert [t.get_text() for t in counts.get_legend().get_texts()] == ["Successful", "Failed"]
    # Stacked bars: one successful and one failed bar per day, heights = the frame's sums.
    days = (END - START).days + 1
    assert len(counts.patches) == 2 * days
    heights = sum(p.get_height() for p in counts.patches)
    frame = report.instance_compute
    assert heights == frame["Successful Executions"].sum() + frame["Failed Executions"].sum()


def test_top_compute_plot(plots: Any, report: UsageReport, tmp_path: Path) -> None:
    fig = plots.plot_top_compute(report.instance_compute, top=6)
    saved_png(fig, tmp_path / "compute.png")
    (ax,) = fig.axes
    assert ax.get_title().startswith("Compute per instance — top 6 of ")
    assert ax.get_xlabel().startswith("Execution compute (GB-seconds; 1 GB = 1024 MB)")
    assert ax.get_ylabel() == "Customer — Instance"
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert len(labels) == 6
    assert all(" — " in label and "\n" not in label for label in labels)
    # Largest first, in GB-seconds (the sandbox's above-2**53 row makes the axis logarithmic).
    totals = report.instance_compute.groupby("Instance ID")["Execution Mb-Seconds"].sum()
    widths = [p.get_width() for p in ax.patches]
    assert widths == sorted(widths, reverse=True)
    assert widths[0] == pytest.approx(float(totals.max()) / 1024)
    assert ax.get_xscale() == "log"


def _drawn_without_missing_glyphs(fig: Any) -> None:
    """Render ``fig`` with matplotlib's own font (no CJK) and fail on any missing-glyph warning."""
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fig.savefig(io.BytesIO(), format="png")
    missing = [str(w.message) for w in caught if "missing from font" in str(w.message)]
    assert not missing, missing


def test_names_are_drawable_single_lines_and_duplicates_told_apart(plots: Any) -> None:
    frame = pd.DataFrame(
        {
            "Customer ID": ["id-A", "id-B", "id-C", "id-D", "id-E"],
            "Customer Name": [
                "Northwind\nTraders",
                "株式会社サンプル",
                "Globex",
                "Globex",
                "Müller 株式会社 Berlin",
            ],
            "Date": [dt.date(2025, 1, 1)] * 5,
            "Deployed Instances": [5.0, 4.0, 3.0, 2.0, 1.0],
        }
    )
    from matplotlib import rc_context

    with rc_context({"font.family": ["DejaVu Sans"]}):  # matplotlib's own font: no CJK
        fig = plots.plot_deployed_instances(frame)
        _drawn_without_missing_glyphs(fig)
    assert [t.get_text() for t in fig.legends[0].get_texts()] == [
        "Northwind Traders",
        "Customer …id-B",  # nothing drawable: the kind and the end of the ID
        "Globex (…id-C)",
        "Globex (…id-D)",
        "Müller Berlin (…id-E)",  # the drawable part, told apart by the ID
    ]


def test_a_font_that_lacks_a_name_never_warns_in_any_plot(plots: Any) -> None:
    compute = pd.DataFrame(
        {
            "Customer ID": ["c1", "c2"],
            "Customer Name": ["株式会社サンプル", "Acme"],
            "Instance ID": ["i-1", "i-2"],
            "Instance Name": ["注文同期", "Orders 注文"],
            "Date": [dt.date(2025, 1, 1)] * 2,
            "Successful Executions": [3, 4],
            "Failed Executions": [0, 1],
            "Execution Mb-Seconds": [2048, 1024],
        }
    )
    coverage = compute[["Customer ID", "Customer Name", "Date"]].assign(Coverage=[1.0, 0.5])
    from matplotlib import rc_context

    with rc_context({"font.family": ["DejaVu Sans"]}):
        top = plots.plot_top_compute(compute)
        _drawn_without_missing_glyphs(top)
        heat = plots.plot_coverage(coverage)
        _drawn_without_missing_glyphs(heat)
    assert [t.get_text() for t in top.axes[0].get_yticklabels()] == [
        "Customer …c1 — Instance …i-1",
        "Acme — Orders (…i-2)",
    ]
    # Lowest coverage first.
    assert [t.get_text() for t in heat.axes[0].get_yticklabels()] == ["Acme", "Customer …c1"]


def test_empty_frames_give_a_labelled_no_data_figure(
    plots: Any, report: UsageReport, tmp_path: Path
) -> None:
    for name, fig in [
        ("deployed", plots.plot_deployed_instances(report.customer_instances.iloc[:0])),
        ("executions", plots.plot_daily_executions(report.instance_compute.iloc[:0])),
        ("compute", plots.plot_top_compute(report.instance_compute.iloc[:0])),
    ]:
        fig.savefig(tmp_path / f"{name}.png")
        texts = [t.get_text() for ax in fig.axes for t in ax.texts]
        assert texts == ["No data in this range"], name


def test_bad_arguments(plots: Any, report: UsageReport) -> None:
    with pytest.raises(ValueError, match="top must be a positive int"):
        plots.plot_top_compute(report.instance_compute, top=0)
    with pytest.raises(ValueError, match=r"lacks the column\(s\) \['Execution Mb-Seconds'\]"):
        plots.plot_top_compute(report.instance_compute.drop(columns="Execution Mb-Seconds"))


def test_missing_matplotlib_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch, report: UsageReport
) -> None:
    from prismatic_usage import plots

    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)  # import now fails
    with pytest.raises(ImportError, match=r"pip install 'prismatic-usage\[notebook\]'"):
        plots.plot_daily_executions(report.instance_compute)
