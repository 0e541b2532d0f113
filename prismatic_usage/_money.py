"""Exact money for :mod:`prismatic_usage.billing`: price checks, amounts, cent rounding.

Every amount is ``quantity / per * price`` computed exactly in :class:`decimal.Decimal`
and rounded once, to the cent, half-up; a total is the sum of rounded amounts,
so an invoice's lines add up to its total.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import (
    ROUND_HALF_UP,
    Context,
    Decimal,
    DivisionByZero,
    Inexact,
    InvalidOperation,
    Overflow,
)

from .errors import ConfigurationError

_MAX_PRICE_DIGITS = 40
_CENT = Decimal("0.01")
_MAX_AMOUNT = Decimal(10) ** 16  # decimal128(18, 2) holds 16 digits before the point
# Products of an int64 (19 digits), /1024 (10 more) and a price (<= 40 digits) fit
# in 100 digits, so with Inexact trapped any rounding before the final one is an error.
_EXACT = Context(prec=100, traps=[Inexact, InvalidOperation, Overflow, DivisionByZero])
_ROUND = Context(prec=100, rounding=ROUND_HALF_UP, traps=[InvalidOperation, Overflow])


def checked_price(name: str, value: object) -> Decimal | None:
    """One validated price, or None."""
    if value is None:
        return None
    shown = f"{value!r:.40}"  # a 5,000-digit price is not echoed whole
    if isinstance(value, bool) or not isinstance(value, Decimal | int | str):
        raise ConfigurationError(
            f"price {name}={shown}: give a Decimal, an int or a decimal string such as "
            "'0.25' (floats are not exact)"
        )
    try:
        price = Decimal(value)
    except InvalidOperation:
        raise ConfigurationError(f"price {name}={shown} is not a decimal number") from None
    if not price.is_finite() or price < 0:
        raise ConfigurationError(f"price {name}={shown} must be a finite number >= 0")
    if len(price.as_tuple().digits) > _MAX_PRICE_DIGITS:
        raise ConfigurationError(
            f"price {name}={shown} has more than {_MAX_PRICE_DIGITS} significant digits"
        )
    exponent = price.as_tuple().exponent
    if not price.is_zero() and (
        price >= _MAX_AMOUNT or (isinstance(exponent, int) and exponent < -_MAX_PRICE_DIGITS)
    ):
        raise ConfigurationError(
            f"price {name}={shown} is out of range: below {_MAX_AMOUNT:,.0f} "
            f"with at most {_MAX_PRICE_DIGITS} decimal places"
        )
    return price.copy_abs() if price.is_zero() else price  # no "-0.00" amounts


def amount(quantity: Decimal | int, per: int, price: Decimal) -> Decimal:
    """``quantity / per * price``, computed exactly, then rounded to the cent half-up."""
    return money(_EXACT.divide(_EXACT.multiply(Decimal(quantity), price), Decimal(per)))


def total(amounts: Iterable[Decimal]) -> Decimal:
    """The sum of ``amounts``, as money."""
    return money(sum(amounts, Decimal(0)))


def money(value: Decimal) -> Decimal:
    """``value`` rounded to the cent, half-up; :class:`OverflowError` if it does not fit."""
    cents = value.quantize(_CENT, context=_ROUND)
    if abs(cents) >= _MAX_AMOUNT:
        raise OverflowError(f"amount {cents} does not fit the 16-digit amount columns")
    return cents
