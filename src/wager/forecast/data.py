"""A panel of related series, checked at the edge and laid out for the model.

The input is a long table: a time column, one or more grouping columns that
together name a series, a value column, and optionally regressor columns.
``Panel.from_frame`` refuses, with a ``SpecError`` naming the field and the
rule, anything the model would silently get wrong: missing columns, times that
do not parse or mix UTC offsets, the same time twice in one series, time stamps
off a regular grid, labels of one column that differ only in surrounding spaces,
values the likelihood cannot have (true/false, infinite, negative or fractional
counts; non-positive values under a log transform), regressors that are not
finite numbers, a horizon that is not positive.

Missing values are allowed (the filter skips them), and so is a series with no
observations at all (a row with an empty value names it): it gets the forecast
its place in the hierarchy implies.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass
from typing import Sequence

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
TRANSFORMS = ("auto", "log", "log1p", "identity")


@dataclass(frozen=True)
class Panel:
    """Series as rows, times as columns. ``values`` has NaN where unobserved;
    ``keys`` holds each series' grouping labels; ``times`` the regular grid;
    ``future`` the ``horizon`` stamps after it; ``x`` the regressors over
    ``times`` then ``future``, shape ``(series, time + horizon, regressors)``."""

    values: np.ndarray
    keys: pd.DataFrame
    times: pd.DatetimeIndex
    future: pd.DatetimeIndex
    freq: str
    period: float  # an int unless fractional (Fourier seasonality only)
    groups: tuple[str, ...]
    value: str
    x: np.ndarray
    regressors: tuple[str, ...]

    @property
    def n_series(self) -> int:
        return self.values.shape[0]

    @property
    def horizon(self) -> int:
        return len(self.future)

    @property
    def observed(self) -> np.ndarray:
        return ~np.isnan(self.values)

    def labels(self) -> list[str]:
        """One readable name per series: its grouping labels joined by ' / '."""
        return [" / ".join(str(v) for v in row) for row in self.keys.itertuples(index=False)]

    def group_index(self) -> tuple[np.ndarray, tuple[int, ...]]:
        """Level index of each series in each grouping column, and the number of levels."""
        codes, counts = [], []
        for column in self.groups:
            c, uniques = pd.factorize(self.keys[column], sort=True)
            codes.append(c)
            counts.append(len(uniques))
        return np.stack(codes, axis=1), tuple(counts)

    @classmethod
    def from_frame(
        cls,
        frame: pd.DataFrame,
        *,
        time: str,
        groups: Sequence[str],
        value: str,
        horizon: int,
        regressors: Sequence[str] = (),
        period: float | None = None,
        counts: bool = False,
        field: str = "data",
    ) -> "Panel":
        """Validate a long table and lay it out; see the module docstring for the rules."""
        if not isinstance(horizon, (int, np.integer)) or isinstance(horizon, bool) or horizon <= 0:
            raise SpecError("horizon", f"must be a whole number of periods > 0; got {horizon!r}")
        groups, regressors = tuple(groups), tuple(regressors)
        if not groups:
            raise SpecError(f"{field}.group", "name at least one grouping column")
        for role, column in [("time", time), ("value", value)] + [("group", g) for g in groups] + [("regressors", r) for r in regressors]:
            if column not in frame.columns:
                known = ", ".join(map(str, frame.columns))
                raise SpecError(f"{field}.{role}", f"no column {column!r} in the data (columns: {known})")
        if len(set(groups)) != len(groups) or {time, value} & set(groups):
            raise SpecError(f"{field}.group", "grouping columns must be distinct from each other and from time and value")
        if len(set(regressors)) != len(regressors):
            raise SpecError(f"{field}.regressors", "regressor columns must be distinct; a column named twice is one regressor")
        if frame.empty:
            raise SpecError(field, "the table has no rows")

        stamps = _parse_times(frame[time], f"{field}.time")
        if _holds_booleans(frame[value]):
            raise SpecError(f"{field}.value", f"column {value!r} holds true/false values; it must hold numbers")
        values = _numbers(frame[value], f"{field}.value")
        labels = frame[list(groups)]
        keys = labels.astype(str)
        unlabelled = labels.isna() | keys.apply(lambda column: column.str.strip() == "")
        if unlabelled.any().any():
            row = int(np.flatnonzero(unlabelled.any(axis=1).to_numpy())[0])
            column = groups[int(np.flatnonzero(unlabelled.iloc[row].to_numpy())[0])]
            raise SpecError(f"{field}.group", f"{row_at(row)} has no label in grouping column {column!r}; every row needs one in each")
        for column in groups:
            _refuse_labels_alike(keys[column], f"{field}.group")

        table = keys.assign(_time=stamps.to_numpy())
        dup = table.duplicated(keep=False)
        if dup.any():
            row = table[dup].iloc[0]
            series = " / ".join(row[g] for g in groups)
            raise SpecError(f"{field}.time", f"series {series!r} has more than one row at {row['_time']:%Y-%m-%d %H:%M}; one value per series and time")

        grid, freq = _regular_grid(pd.DatetimeIndex(np.unique(stamps.to_numpy())), f"{field}.time")
        if period is None:
            period = _seasonal_period(freq, f"{field}.time")
        if period < 2:
            raise SpecError("period", f"a seasonal period >= 2 is needed (frequency {freq!r} implies {period}); set period")

        observed = ~np.isnan(values)
        if counts:
            if (values[observed] < 0).any():
                raise SpecError(f"{field}.value", "a count likelihood needs values >= 0; found a negative value")
            if (values[observed] != np.round(values[observed])).any():
                raise SpecError(f"{field}.value", "a count likelihood needs whole numbers; found a fraction")

        # rows at or before the last observed time are history; regressor-only rows after it are the future
        last = stamps[observed].max() if observed.any() else grid[0] - grid.freq
        future = pd.date_range(last, periods=horizon + 1, freq=grid.freq)[1:]
        history = pd.date_range(grid[0], last, freq=grid.freq) if observed.any() else grid[:0]
        if not len(history):
            raise SpecError(f"{field}.value", "no series has an observed value")

        series = keys.drop_duplicates().sort_values(list(groups)).reset_index(drop=True)
        series_index = pd.MultiIndex.from_frame(series)
        position = pd.Series(np.arange(len(series)), index=series_index)
        s_idx = position.reindex(pd.MultiIndex.from_frame(keys)).to_numpy()
        t_all = history.append(future)
        t_idx = pd.Index(t_all).get_indexer(stamps)
        late = (t_idx < 0) & observed
        if late.any():
            raise SpecError(f"{field}.time", "an observed value lies beyond the forecast window")
        keep = t_idx >= 0

        y = np.full((len(series), len(history)), np.nan)
        hist_rows = keep & (t_idx < len(history))
        y[s_idx[hist_rows], t_idx[hist_rows]] = values[hist_rows]

        x = np.zeros((len(series), len(t_all), len(regressors)))
        if regressors:
            reg = np.column_stack([_numbers(frame[name], f"{field}.regressors") for name in regressors])
            have = np.zeros((len(series), len(t_all), len(regressors)), dtype=bool)
            x[s_idx[keep], t_idx[keep]] = np.nan_to_num(reg[keep])
            have[s_idx[keep], t_idx[keep]] = ~np.isnan(reg[keep])
            for j, name in enumerate(regressors):
                if not have[:, :, j].all():
                    s, t = np.argwhere(~have[:, :, j])[0]
                    label = " / ".join(series.iloc[s])
                    raise SpecError(
                        f"{field}.regressors",
                        f"regressor {name!r} has no value for series {label!r} at {t_all[t]:%Y-%m-%d}; "
                        f"regressors need values at every time, including the {horizon} forecast periods",
                    )
        return cls(
            values=y,
            keys=series,
            times=history,
            future=future,
            freq=freq,
            period=int(period) if float(period).is_integer() else float(period),
            groups=groups,
            value=value,
            x=x,
            regressors=regressors,
        )

    def truncated(self, n_time: int, horizon: int) -> "Panel":
        """The panel as it was after its first ``n_time`` periods, forecasting
        ``horizon`` ahead (the leave-future-out refits); regressors come along."""
        if not (0 < n_time < len(self.times)) or n_time + horizon > len(self.times) + self.horizon:
            raise ValueError(f"cannot cut {len(self.times)} periods at {n_time} with horizon {horizon}")
        grid = self.times.append(self.future)
        return Panel(
            values=self.values[:, :n_time], keys=self.keys, times=self.times[:n_time], future=grid[n_time : n_time + horizon],
            freq=self.freq, period=self.period, groups=self.groups, value=self.value,
            x=self.x[:, : n_time + horizon], regressors=self.regressors,
        )

    def with_events(self, events: pd.DataFrame, field: str = "events") -> "Panel":
        """Add one indicator regressor per event name from a table with ``time``
        and ``event`` columns (and, optionally, grouping columns: the event then
        applies only to the series with the row's labels; an empty cell, to all).
        An event outside the data's and horizon's window changes nothing; one that
        would match nothing inside it (a time between the grid's stamps, a label no
        series has, a column that is not a grouping column) is refused, naming it."""
        for column in ("time", "event"):
            if column not in events.columns:
                raise SpecError(f"{field}", f"the events table needs a column {column!r}")
        for column in events.columns:
            if column not in ("time", "event", *self.groups):
                raise SpecError(
                    f"{field}.{column}",
                    f"is not a grouping column of the data ({', '.join(self.groups)}); an events table holds "
                    "time, event and, to limit an event to some series, grouping columns",
                )
        stamps = _parse_times(events["time"], f"{field}.time")
        t_all = self.times.append(self.future)
        t_idx = pd.Index(t_all).get_indexer(stamps)
        between = (t_idx < 0) & (stamps >= t_all[0]).to_numpy() & (stamps <= t_all[-1]).to_numpy()
        if between.any():
            row = int(np.flatnonzero(between)[0])
            raise SpecError(
                f"{field}.time",
                f"{row_at(row)} is at {stamps.iloc[row]:%Y-%m-%d %H:%M}, between the data's time stamps "
                f"({self.freq}); an event goes at one of them",
            )
        unnamed = events["event"].isna() | (events["event"].astype(str).str.strip() == "")
        if unnamed.any():
            raise SpecError(f"{field}.event", f"{row_at(np.flatnonzero(unnamed.to_numpy())[0])} has no event name")
        event = events["event"].astype(str).to_numpy()
        names = tuple(sorted(set(event)))
        match = np.ones((len(events), self.n_series), dtype=bool)
        for g in self.groups:
            if g in events.columns:
                match &= _event_scope(events[g], self.keys[g], f"{field}.{g}")
        extra = np.zeros((self.n_series, len(t_all), len(names)))
        for row in np.flatnonzero(t_idx >= 0):
            extra[match[row], t_idx[row], names.index(event[row])] = 1.0
        return Panel(
            values=self.values, keys=self.keys, times=self.times, future=self.future, freq=self.freq,
            period=self.period, groups=self.groups, value=self.value,
            x=np.concatenate([self.x, extra], axis=2), regressors=self.regressors + tuple(f"event:{n}" for n in names),
        )


def _event_scope(labels: pd.Series, keys: pd.Series, field: str) -> np.ndarray:
    """Which series ``(event rows, series)`` each event applies to by one grouping column:
    those whose label (``keys``) the row holds, or every one where its cell is empty;
    ``SpecError`` naming the first row holding a label no series has."""
    known = keys.to_numpy()
    match = np.ones((len(labels), len(known)), dtype=bool)
    for row, cell in enumerate(labels):
        if pd.isna(cell) or str(cell).strip() == "":
            continue
        text = str(cell)
        if text not in known and isinstance(cell, float) and cell.is_integer():
            text = str(int(cell))  # whole numbers are read as floats where a cell is empty
        if text not in known:
            have = sorted(set(known))
            shown = ", ".join(have[:10]) + (", ..." if len(have) > 10 else "")
            raise SpecError(field, f"{row_at(row)} holds {cell!r}, which no series has (labels: {shown}); leave it empty to mean every series")
        match[row] = known == text
    return match


def choose_transform(values: np.ndarray, requested: str, counts: bool) -> tuple[str, str]:
    """The transform to model on and why, in words for the record."""
    observed = values[~np.isnan(values)]
    if counts:
        if requested not in ("auto", "identity"):
            raise SpecError("transform", "a count likelihood models the counts themselves; use transform: identity (or auto)")
        return "identity", "counts are modelled on their own scale by the count likelihood"
    if requested == "log" and (observed <= 0).any():
        raise SpecError("transform", "log needs every value > 0; the data hold zeros or negatives (use log1p or identity)")
    if requested == "log1p" and (observed < 0).any():
        raise SpecError("transform", "log1p needs every value >= 0; the data hold negatives (use identity)")
    if requested != "auto":
        return requested, f"requested: {requested}"
    if (observed > 0).all():
        return "log", "auto: every value > 0, so log (multiplicative effects, positive forecasts)"
    if (observed >= 0).all():
        return "log1p", "auto: values >= 0 with zeros, so log1p (log breaks on zeros); forecasts clipped at 0"
    return "identity", "auto: negative values present, so no transform"


def transform(values: np.ndarray, kind: str) -> np.ndarray:
    if kind == "log":
        return np.log(values)
    if kind == "log1p":
        return np.log1p(values)
    return values


def _numbers(column: pd.Series, field: str) -> np.ndarray:
    """A column of numbers as floats (an empty cell NaN), or ``SpecError(field, ...)``
    naming the first row that holds something else (text, a time) or an infinity."""
    if pd.api.types.is_numeric_dtype(column):  # true/false too: a regressor may be a flag
        numbers = column.astype(float)
    elif pd.api.types.is_datetime64_any_dtype(column) or pd.api.types.is_timedelta64_dtype(column):
        numbers = pd.Series(np.nan, index=column.index)  # pandas would read a time as nanoseconds
    else:
        numbers = pd.to_numeric(column, errors="coerce")
    text = numbers.isna() & column.notna() & (column.astype(str).str.strip() != "")
    if text.any():
        row = int(np.flatnonzero(text.to_numpy())[0])
        raise SpecError(field, f"column {column.name!r} must be numeric; {row_at(row)} holds {column.iloc[row]!r}")
    values = numbers.to_numpy(dtype=float)
    if np.isinf(values).any():
        row = int(np.flatnonzero(np.isinf(values))[0])
        raise SpecError(field, f"column {column.name!r} holds an infinite value at {row_at(row)}; values must be finite")
    return values


def _holds_booleans(column: pd.Series) -> bool:
    """Whether a column holds true/false cells (with empty cells pandas keeps them as
    objects), which pandas would otherwise read as the numbers 1 and 0."""
    if pd.api.types.is_bool_dtype(column):
        return True
    return column.dtype == object and bool(column.map(lambda cell: isinstance(cell, (bool, np.bool_))).any())


def _refuse_labels_alike(labels: pd.Series, field: str) -> None:
    """``SpecError`` where two labels of one grouping column differ only in spaces at
    their ends (``a`` and ``a ``): most likely one series typed two ways, which would
    otherwise become two series. Merging them silently could hide a real difference,
    so the first such row is named."""
    first = labels.reset_index(drop=True).drop_duplicates()  # each label at the row it first appears
    stripped = first.str.strip()
    alike = stripped.duplicated()
    if alike.any():
        row = int(alike.idxmax())
        other = int(stripped.index[stripped == stripped[row]][0])
        raise SpecError(
            field,
            f"{row_at(row)} labels column {labels.name!r} {first[row]!r}, which differs from {first[other]!r} "
            f"({row_at(other)}) only in spaces at its ends; write each label one way",
        )


def _seasonal_period(freq: str, field: str) -> int:
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


def _parse_times(column: pd.Series, field: str) -> pd.Series:
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


def _regular_grid(stamps: pd.DatetimeIndex, field: str) -> tuple[pd.DatetimeIndex, str]:
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
