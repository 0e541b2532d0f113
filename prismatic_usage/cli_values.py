"""The report command's value types: one argument's text -> a checked value, or a one-line refusal.

Split from :mod:`prismatic_usage.cli_args` (the parser and the date range its
arguments name): each function here is an argparse ``type=``, so a bad value is
refused while parsing, as ``prismatic-usage: error: argument --x: ...; see
prismatic-usage --help`` (exit 2), before anything else runs.
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
from decimal import Decimal, InvalidOperation

from ._money import checked_price
from .errors import ConfigurationError

__all__ = [
    "final_after",
    "iso_date",
    "month",
    "non_negative_float",
    "positive_float",
    "positive_int",
    "price",
]


def iso_date(text: str) -> dt.date:
    """A ``YYYY-MM-DD`` day."""
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a valid date; use YYYY-MM-DD, e.g. 2025-02-13"
        ) from None


def positive_int(text: str) -> int:
    """A whole number of at least 1 (counts, sizes, limits)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be at least 1")
    return value


def positive_float(text: str) -> float:
    """A number above 0 that is finite (rates, seconds, sizes)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not (value > 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"{text!r} must be a positive finite number")
    return value


def non_negative_float(text: str) -> float:
    """A finite number of at least 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not (value >= 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"{text!r} must be a finite number of at least 0")
    return value


def final_after(text: str) -> float:
    """``--final-after`` hours: at least 0, at most the store's limit (a millennium)."""
    from .usage_store import (
        MAX_FINAL_AFTER_HOURS,  # only when given: the store loads pyarrow.parquet
    )

    value = non_negative_float(text)
    if value > MAX_FINAL_AFTER_HOURS:
        raise argparse.ArgumentTypeError(f"{text!r} hours is more than a millennium")
    return value


def month(text: str) -> str:
    """``--month``: ``previous``, ``current`` or a ``YYYY-MM`` month, kept as text."""
    if text in ("previous", "current"):
        return text
    try:
        dt.date.fromisoformat(f"{text}-01")
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a month; use previous, current or YYYY-MM, e.g. 2025-01"
        ) from None
    return text


def price(text: str) -> Decimal:
    """A ``--price-*`` amount: a decimal the billing summary accepts (as :class:`Prices` does)."""
    try:
        Decimal(text)
    except InvalidOperation:
        raise argparse.ArgumentTypeError(
            f"{text!r:.40} is not a decimal amount, e.g. 12.50"
        ) from None
    try:
        checked = checked_price("amount", text)
    except ConfigurationError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    assert checked is not None
    return checked
