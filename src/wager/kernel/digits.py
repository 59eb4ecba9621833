"""Digits people see: only those the Monte Carlo error supports.

A number with standard error ``se`` is shown rounded to the decimal place of
``2 * se`` (so the last digit shown is uncertain by at most a couple of units);
exact numbers (``se == 0``) are shown to ``exact_digits`` significant digits.
Gates never read these strings.
"""

from __future__ import annotations

import math


def decimals_for(se: float, value: float = 0.0, exact_digits: int = 3) -> int:
    """Number of decimal places justified by standard error ``se``."""
    if se > 0 and math.isfinite(se):
        return max(0, -math.floor(math.log10(2 * se)))
    if value == 0 or not math.isfinite(value):
        return exact_digits
    return max(0, exact_digits - 1 - math.floor(math.log10(abs(value))))


def fmt(value: float, se: float = 0.0, exact_digits: int = 3) -> str:
    """``value`` with the digits ``se`` supports."""
    if not math.isfinite(value):
        return str(value)
    return f"{value:.{decimals_for(se, value, exact_digits)}f}"


def fmt_prob(p: float, se: float = 0.0, decimals: int = 3) -> str:
    """A probability: to ``decimals`` places when exact, else what ``se`` supports."""
    if se > 0:
        return fmt(p, se)
    return f"{p:.{decimals}f}"


def fmt_percent(p: float, se: float = 0.0, decimals: int = 1) -> str:
    """A probability as a percentage."""
    if se > 0:
        d = max(0, decimals_for(100 * se))
        return f"{100 * p:.{d}f}%"
    return f"{100 * p:.{decimals}f}%"
