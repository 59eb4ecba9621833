"""The time column of a panel, read at the edge: times as the user wrote them, the
regular grid they lie on, and the seasonal period that grid implies.

Times keep the wall-clock time they show (a UTC offset is dropped, not applied);
periods written ``2024Q1`` or ``2024-01`` stand for their first day; a column of
numbers is refused rather than read as nanoseconds after 1970. Every refusal is a
``SpecError`` naming the field and the row (``wager.tables.row_at``).
"""

from __future__ import annotations

import re
import warnings

import numpy as np
import pandas as pd
from pandas.tseries import offsets
from pandas.tseries.frequencies import to_offset

from wager.errors import SpecError
from wager.tables import row_at

CYCLES: tuple[tuple[tuple[type, ...], int], ...] = (
    ((offsets.Hour,), 24),  # a day of hours
    ((offsets.BusinessDay,), 5),  # a week of business days (custom business days too)
    ((offsets.Day,), 7),  # a week of days
    ((offsets.Week,), 52),  # a year of weeks
    ((offsets.SemiMonthBegin, offsets.SemiMonthEnd), 24),  # a year of half months
    (
        (offsets.MonthBegin, offsets.MonthEnd, offsets.BusinessMonthBegin, offsets.BusinessMonthEnd,
         offsets.WeekOfMonth, offsets.LastWeekOfMonth),
        12,
    ),  # a year of months
    ((offsets.QuarterBegin, offsets.QuarterEnd, offsets.BQuarterBegin, offsets.BQuarterEnd), 4),  # a year of quarters
    ((offsets.YearBegin, offsets.YearEnd, offsets.BYearBegin, offsets.BYearEnd), 1),  # no cycle within a year
)
"""The default seasonal period per kind of pandas frequency: the steps of one unit in
its cycle (a day, a week, a year). A step of ``n`` units (``2MS``, ``2W-SUN``) takes
``n`` of them at once, so the period is the cycle's steps over ``n``."""
QUARTER, MONTH = r"\d{4}Q[1-4]", r"\d{4}-\d{2}"
"""Periods as people write them (2024Q1, 2024-01): each stands for its first day."""


def seasonal_period(freq: str, field: str) -> int:
    """The default seasonal period of data at frequency ``freq`` (``CYCLES``), or
    ``SpecError`` asking for ``period`` where it cannot be told: a kind of frequency
    with no cycle here (minutes, business hours), or a step that does not divide its
    cycle (3W: 52 / 3 steps)."""
    offset = to_offset(freq)
    for kinds, steps in CYCLES:
        if isinstance(offset, kinds):
            if steps % offset.n == 0:
                return steps // offset.n
            break
    raise SpecError(field, f"the seasonal period of data at frequency {freq!r} cannot be told from it; set period (--period)")


def parse_times(column: pd.Series, field: str) -> pd.Series:
    """The column's times as time stamps without a time zone, or ``SpecError(field, ...)``
    naming the first row that is not a time.

    Periods written ``2024Q1`` or ``2024-01`` stand for their first day. A time written
    with a UTC offset (``2020-01-01T00:00+01:00``, or a parquet column with a time zone)
    keeps its local wall-clock time and drops the offset: the times people write are the
    times they mean, so quarter starts written in +01:00 stay quarter starts, where
    converting to UTC would make them 23:00 the day before. So offsets may differ from
    row to row (one zone's daylight-saving time: a daily series written +01:00 in winter
    and +02:00 in summer is midnight every day); each row keeps its own wall-clock time."""
    if pd.api.types.is_numeric_dtype(column) and column.notna().any():  # booleans too; all empty: "has no time"
        # pandas would read 2024 as 2024 nanoseconds after 1970
        raise SpecError(field, f"holds numbers ({column.dropna().iloc[0]}, ...), not times: write dates (2024-01-31) or periods (2024Q1, 2024-01)")
    stamps = _read_times(column, field)
    if stamps.isna().any():
        raise SpecError(field, f"{row_at(np.flatnonzero(stamps.isna().to_numpy())[0])} has no time")
    if getattr(stamps.dt, "tz", None) is not None:
        stamps = stamps.dt.tz_localize(None)
    return stamps


def _read_times(column: pd.Series, field: str) -> pd.Series:
    """pandas' reading of a time column, or ``SpecError(field, ...)`` naming the first row
    it cannot read in the column's format. Periods (``QUARTER``, ``MONTH``, a parquet
    column of periods) are read as their first days; UTC offsets written after a
    time are dropped first (``_without_offsets``)."""
    if isinstance(column.dtype, pd.PeriodDtype):
        return column.dt.to_timestamp()
    readable = column
    if pd.api.types.is_object_dtype(column) or pd.api.types.is_string_dtype(column):
        text = column.dropna().astype(str)
        if len(text) and text.str.fullmatch(QUARTER).all():
            return pd.Series(pd.PeriodIndex(column, freq="Q").to_timestamp(), index=column.index)
        if len(text) and text.str.fullmatch(MONTH).all():
            return pd.to_datetime(column, format="%Y-%m")
        readable = _without_offsets(column)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pandas warns where it reads cell by cell; what it read is checked here
        try:
            stamps = pd.to_datetime(readable, errors="coerce")
        except (ValueError, TypeError, OverflowError) as exc:  # a column pandas refuses as a whole
            raise SpecError(field, f"could not be read as times: {' '.join(str(exc).split())}") from None
    unread = stamps.isna() & column.notna()
    if unread.any():
        row = int(np.flatnonzero(unread.to_numpy())[0])
        raise SpecError(field, f"{row_at(row)} holds {column.iloc[row]!r}, which is not a date or date-time in the column's format (e.g. 2024-01-31)")
    return stamps


OFFSET = re.compile(r"(\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)\s*(?:Z|[+-]\d{2}(?::?\d{2})?)$")
"""A UTC offset written after a time of day: ``00:00+01:00``, ``12:30:00.5Z``, ``09:00 -0500``."""


def _without_offsets(column: pd.Series) -> pd.Series:
    """The column's text with the UTC offset after each time of day removed, the time
    kept: each row then reads at the wall-clock time it shows, whatever its offset
    (pandas refuses a column whose offsets differ, as one zone's daylight-saving time
    makes them). Cells without an offset, and the column's format, are left as they are."""
    text = column.astype("string")
    return text.str.replace(OFFSET, r"\1", regex=True).where(column.notna(), None)


def regular_grid(stamps: pd.DatetimeIndex, field: str) -> tuple[pd.DatetimeIndex, str]:
    """The regular grid the stamps lie on, and its pandas frequency alias."""
    if len(stamps) < 3:
        raise SpecError(field, "at least 3 distinct time stamps are needed to tell the frequency")
    freq = _infer_freq(stamps)
    if freq is None:
        # a gap in the union (every series missing at once) still lies on a grid:
        # try the frequency of the two smallest steps
        for i in range(len(stamps) - 2):
            freq = _infer_freq(stamps[i : i + 3])
            if freq is not None:
                break
        if freq is None:
            raise SpecError(field, "the time stamps are not on a regular grid (daily, weekly, monthly, quarterly, ...)")
        grid = pd.date_range(stamps[0], stamps[-1], freq=freq)
        if not stamps.isin(grid).all():
            odd = stamps[~stamps.isin(grid)][0]
            raise SpecError(field, f"the time stamps are not on a regular grid: {odd:%Y-%m-%d %H:%M} is off the {freq} grid")
        return grid, freq
    return pd.date_range(stamps[0], stamps[-1], freq=freq), freq


def _infer_freq(stamps: pd.DatetimeIndex) -> str | None:
    """pandas' frequency alias of the stamps, or None (as a string on every pandas version)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pandas 3 warns that infer_freq will return an offset
        freq = pd.infer_freq(stamps)
    return getattr(freq, "freqstr", freq)
