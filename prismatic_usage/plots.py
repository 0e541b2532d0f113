"""Plots of the daily frames: pictures to look at rather than tables to read.

Each function takes a frame from :mod:`prismatic_usage.frames` and returns a
:class:`matplotlib.figure.Figure`. Nothing is shown and no pyplot state is
touched, so the functions work headless (save with ``fig.savefig(...)``) and in
Jupyter, where a figure that ends a cell is drawn inline (after
``%matplotlib inline`` or any pyplot import).

matplotlib is an optional dependency: ``pip install 'prismatic-usage[notebook]'``.

Names are shown as the font can draw them: whitespace (newlines included) is
collapsed and long names are shortened with "…". A name with a character none
of the fonts in ``rcParams["font.family"]`` has (say, Japanese, with matplotlib's
default DejaVu Sans) is labelled by what can be drawn of it and the end of its ID
(``"Customer …a1b2c3"`` when nothing can), instead of blank boxes and a warning.
To draw such names as they are, add a font that has them to that list, which
matplotlib falls back through
(``matplotlib.rcParams["font.family"] = ["DejaVu Sans", "Noto Sans CJK JP"]``).
Two customers with the same name are told apart by the end of their IDs.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ._plot_labels import MAX_NAME as MAX_NAME  # longest name shown in full
from ._plot_labels import customer_labels, labels
from .billing import MB_PER_GB
from .columns import with_original_names

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["plot_coverage", "plot_daily_executions", "plot_deployed_instances", "plot_top_compute"]

MISSING_MATPLOTLIB = "plots need matplotlib: pip install 'prismatic-usage[notebook]'"

#: Figure size in inches (at matplotlib's default 100 dpi: 1000 x 500 pixels).
FIGSIZE = (10.0, 5.0)
#: A log scale is used for compute once the largest bar is this many times the smallest.
LOG_SCALE_RATIO = 1000.0


_SUCCESS_COLOUR = "#2a9d8f"
_FAILURE_COLOUR = "#e76f51"

FloatArray = np.ndarray[Any, np.dtype[np.float64]]
DayArray = np.ndarray[Any, np.dtype[np.datetime64]]


def plot_deployed_instances(customer_frame: pd.DataFrame, *, top: int = 8) -> Figure:
    """Deployed instances per customer per day, for the ``top`` customers.

    Customers are ranked by instance-days (the sum of their daily ``Deployed
    Instances``) over the frame's range; the rest are left out and counted in
    the title, as are customers with no deployed instances at all. A day
    without data for a customer is a gap in its line, not a zero.

    Parameters
    ----------
    customer_frame : pandas.DataFrame
        From :func:`~prismatic_usage.customer_instance_frame`.
    top : int, default 8
        How many customers to draw.

    Returns
    -------
    matplotlib.figure.Figure

    Raises
    ------
    ImportError
        If matplotlib is not installed.
    ValueError
        If a needed column is missing or ``top`` < 1.
    """
    customer_frame = _checked(
        customer_frame, ("Customer ID", "Customer Name", "Date", "Deployed Instances")
    )
    _check_top(top)
    fig = _figure()
    ax = fig.add_subplot()
    customers = customer_frame["Customer ID"].nunique()
    ranked = (
        customer_frame.groupby("Customer ID", sort=False)
        .agg(days=("Deployed Instances", "sum"), name=("Customer Name", "first"))
        .reset_index()
        .query("days > 0")
        .sort_values(["days", "name", "Customer ID"], ascending=[False, True, True])
        .head(top)
    )
    ax.set_title(
        f"Deployed instances per customer — top {len(ranked)} of {customers} by instance-days"
    )
    ax.set_xlabel("Date")
    ax.set_ylabel("Deployed instances (daily average, count)")
    if ranked.empty:
        return _no_data(fig, ax)
    days = _day_range(customer_frame["Date"])
    names = customer_labels(ranked["name"], ranked["Customer ID"], customer_frame)
    for customer_id, label in zip(ranked["Customer ID"], names, strict=True):
        rows = customer_frame[customer_frame["Customer ID"] == customer_id]
        values = _on_days(days, rows["Date"], rows["Deployed Instances"].to_numpy(float))
        ax.plot(days, values, marker="o", markersize=3, linewidth=1.5, label=label)
    ax.set_ylim(bottom=0)
    _date_axis(ax)
    fig.legend(loc="outside right upper", title="Customer", fontsize="small")
    return fig


def plot_daily_executions(compute_frame: pd.DataFrame) -> Figure:
    """Executions per day over all instances: successful and failed, and the failure rate.

    The upper panel stacks successful and failed executions per day; the lower
    one shows failed executions as a percentage of all executions that day (so
    failures stay visible when they are a small share). Days without rows
    count as zero executions.

    Parameters
    ----------
    compute_frame : pandas.DataFrame
        From :func:`~prismatic_usage.instance_compute_frame`.

    Returns
    -------
    matplotlib.figure.Figure

    Raises
    ------
    ImportError
        If matplotlib is not installed.
    ValueError
        If a needed column is missing.
    """
    compute_frame = _checked(compute_frame, ("Date", "Successful Executions", "Failed Executions"))
    fig = _figure()
    counts, rate = fig.subplots(2, 1, sharex=True, height_ratios=(2, 1))
    fig.suptitle("Daily executions: successful vs failed")
    counts.set_ylabel("Executions per day")
    rate.set_ylabel("Failed (% of executions)")
    rate.set_xlabel("Date")
    if compute_frame.empty:
        return _no_data(fig, counts)
    days = _day_range(compute_frame["Date"])
    per_day = compute_frame.groupby("Date")[["Successful Executions", "Failed Executions"]].sum()
    ok = _on_days(days, per_day.index, per_day["Successful Executions"].to_numpy(float), 0.0)
    failed = _on_days(days, per_day.index, per_day["Failed Executions"].to_numpy(float), 0.0)
    counts.bar(days, ok, width=0.8, color=_SUCCESS_COLOUR, label="Successful")
    counts.bar(days, failed, width=0.8, bottom=ok, color=_FAILURE_COLOUR, label="Failed")
    counts.legend(loc="upper left", fontsize="small")
    counts.set_ylim(bottom=0)
    counts.tick_params(labelbottom=False)
    total = ok + failed
    share = np.divide(100.0 * failed, total, out=np.full_like(total, np.nan), where=total > 0)
    rate.bar(days, share, width=0.8, color=_FAILURE_COLOUR)
    rate.set_ylim(bottom=0)
    _date_axis(rate)
    return fig


def plot_top_compute(compute_frame: pd.DataFrame, *, top: int = 10) -> Figure:
    """The ``top`` instances by total compute over the frame's range, as horizontal bars.

    Compute is ``Execution Mb-Seconds`` shown in GB-seconds (1 GB = 1024 MB, as
    in :mod:`prismatic_usage.billing`), summed in float64 (exact enough to
    draw). Bars are labelled "Customer — Instance" and carry their value. When
    the largest total is over :data:`LOG_SCALE_RATIO` times the smallest
    drawn, the axis is logarithmic (and says so) so that small bars stay
    visible. Instances with no compute are not drawn.

    Parameters
    ----------
    compute_frame : pandas.DataFrame
        From :func:`~prismatic_usage.instance_compute_frame`.
    top : int, default 10
        How many instances to draw.

    Returns
    -------
    matplotlib.figure.Figure

    Raises
    ------
    ImportError
        If matplotlib is not installed.
    ValueError
        If a needed column is missing or ``top`` < 1.
    """
    columns = ("Customer ID", "Customer Name", "Instance ID", "Instance Name")
    compute_frame = _checked(compute_frame, (*columns, "Execution Mb-Seconds"))
    _check_top(top)
    fig = _figure()
    ax = fig.add_subplot()
    frame = compute_frame.assign(mb=compute_frame["Execution Mb-Seconds"].astype("float64"))
    totals = (
        frame.groupby("Instance ID", sort=False)
        .agg(
            mb=("mb", "sum"),
            customer=("Customer Name", "first"),
            customer_id=("Customer ID", "first"),
            instance=("Instance Name", "first"),
        )
        .reset_index()
    )
    instances = len(totals)
    totals = totals[totals["mb"] > 0].sort_values(
        ["mb", "customer", "instance", "Instance ID"], ascending=[False, True, True, True]
    )
    totals = totals.head(top)
    ax.set_title(f"Compute per instance — top {len(totals)} of {instances} by GB-seconds")
    ax.set_ylabel("Customer — Instance")
    if totals.empty:
        ax.set_xlabel("Execution compute (GB-seconds; 1 GB = 1024 MB)")
        return _no_data(fig, ax)
    gb = totals["mb"].to_numpy(float) / MB_PER_GB
    customers = customer_labels(totals["customer"], totals["customer_id"], compute_frame)
    instances_ = labels(totals["instance"], totals["Instance ID"], "Instance")
    names = [f"{c} — {i}" for c, i in zip(customers, instances_, strict=True)]
    positions = np.arange(len(gb))
    bars = ax.barh(positions, gb, color=_SUCCESS_COLOUR)
    ax.set_yticks(positions, names)
    ax.invert_yaxis()  # largest on top
    ax.bar_label(bars, labels=[_si(v) for v in gb], padding=3, fontsize="small")
    log = float(gb.max()) > LOG_SCALE_RATIO * float(gb.min())
    if log:
        ax.set_xscale("log")
    ax.set_xlabel("Execution compute (GB-seconds; 1 GB = 1024 MB)" + ("; log scale" if log else ""))
    ax.margins(x=0.15)  # room for the value labels
    return fig


# -- helpers ----------------------------------------------------------------------------------


def plot_coverage(coverage: pd.DataFrame, *, top: int = 30) -> Figure:
    """Snapshot coverage as a heatmap: customers down, days across, 1.0 = every hour.

    A blank cell is a day without any snapshot; a pale one, a day with missing
    hours. Customers with the lowest coverage come first, so gaps are seen.

    Parameters
    ----------
    coverage : pandas.DataFrame
        ``UsageReport.coverage`` (or an extended customer frame).
    top : int, default 30
        How many customers to draw, lowest mean coverage first.

    Returns
    -------
    matplotlib.figure.Figure

    Raises
    ------
    ImportError
        If matplotlib is not installed.
    ValueError
        If a needed column is missing or ``top`` < 1.
    """
    coverage = _checked(coverage, ("Customer ID", "Customer Name", "Date", "Coverage"))
    _check_top(top)
    fig = _figure()
    ax = fig.add_subplot()
    ax.set_title("Snapshot coverage per customer and day (1.0 = every hour)")
    if coverage.empty:
        return _no_data(fig, ax)
    days = _day_range(coverage["Date"])
    ranked = (
        coverage.groupby("Customer ID", sort=False)
        .agg(mean=("Coverage", "sum"), name=("Customer Name", "first"))
        .reset_index()
    )
    ranked["mean"] = ranked["mean"] / len(days)
    ranked = ranked.sort_values(["mean", "name", "Customer ID"]).head(top)
    grid = np.full((len(ranked), len(days)), np.nan)
    for row, customer_id in enumerate(ranked["Customer ID"]):
        rows = coverage[coverage["Customer ID"] == customer_id]
        grid[row] = _on_days(days, rows["Date"], rows["Coverage"].to_numpy(float))
    image = ax.imshow(grid, aspect="auto", vmin=0.0, vmax=1.0, cmap="viridis",
                      interpolation="nearest")  # fmt: skip
    ax.set_yticks(range(len(ranked)))
    ax.set_yticklabels(
        customer_labels(ranked["name"], ranked["Customer ID"], coverage), fontsize="small"
    )
    step = max(1, len(days) // 10)
    ax.set_xticks(range(0, len(days), step))
    ax.set_xticklabels([str(day) for day in days[::step]], rotation=45, ha="right")
    fig.colorbar(image, ax=ax, label="snapshots / hours of the day")
    return fig


def _figure() -> Figure:
    """A new, empty figure (not registered with pyplot)."""
    try:
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise ImportError(MISSING_MATPLOTLIB) from exc
    return Figure(figsize=FIGSIZE, layout="constrained")


def _checked(frame: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    """``frame`` with the report headers (snake-case names are renamed back), after
    checking it has ``columns``; ``ValueError`` names the columns it lacks."""
    frame = with_original_names(frame)
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"the frame lacks the column(s) {missing}; pass a frame from fetch_report")
    return frame


def _check_top(top: int) -> None:
    if isinstance(top, bool) or not isinstance(top, int) or top < 1:
        raise ValueError(f"top must be a positive int, not {top!r}")


def _no_data(fig: Figure, ax: Axes) -> Figure:
    """Say so in the middle of the axes, rather than drawing an empty grid."""
    ax.text(0.5, 0.5, "No data in this range", ha="center", va="center", transform=ax.transAxes)
    return fig


def _days(dates: Iterable[Any]) -> DayArray:
    """Calendar days (``datetime.date`` or date-like) as ``datetime64[D]``."""
    return np.array([np.datetime64(d, "D") for d in dates], dtype="datetime64[D]")


def _day_range(dates: pd.Series[Any]) -> DayArray:
    """Every day from the first to the last date, inclusive."""
    present = _days(dates.dropna().unique())
    return np.arange(present.min(), present.max() + np.timedelta64(1, "D"), dtype="datetime64[D]")


def _on_days(
    days: DayArray, dates: Iterable[Any], values: FloatArray, fill: float = np.nan
) -> FloatArray:
    """``values`` (one per date) spread over ``days``, ``fill`` where a day has none."""
    out = np.full(len(days), fill, dtype=np.float64)
    out[(_days(dates) - days[0]).astype(np.int64)] = values
    return out


def _date_axis(ax: Axes) -> None:
    """Short, unambiguous date ticks (month shown once, year at the edge)."""
    # matplotlib.dates has no type hints (matplotlib 3.11); held as Any, so that
    # mypy --strict needs no override and no ignore that a typed release would flag.
    dates: Any = importlib.import_module("matplotlib.dates")
    locator = dates.AutoDateLocator(minticks=4, maxticks=12)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(dates.ConciseDateFormatter(locator))
    ax.grid(axis="y", alpha=0.3)


def _si(value: float) -> str:
    """A short number: 950, 12.3 k, 4.56 M, 7.8 G, ..."""
    for factor, suffix in ((1e15, " P"), (1e12, " T"), (1e9, " G"), (1e6, " M"), (1e3, " k")):
        if abs(value) >= factor:
            return f"{value / factor:.3g}{suffix}"
    return f"{value:.3g}"
