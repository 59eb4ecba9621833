"""A panel of related series, checked at the edge and laid out for the model.

The input is a long table: a time column, one or more grouping columns that
together name a series, a value column, and optionally regressor columns.
``Panel.from_frame`` refuses, with a ``SpecError`` naming the field and the
rule, anything the model would silently get wrong: missing columns, times that
do not parse, the same time twice in one series, time stamps off a regular
grid, values the likelihood cannot have (negative or fractional counts;
non-positive values under a log transform), a horizon that is not positive.

Missing values are allowed (the filter skips them), and so is a series with no
observations at all (a row with an empty value names it): it gets the forecast
its place in the hierarchy implies.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd

from wager.errors import SpecError
from wager.tables import row_at

PERIODS = {"Y": 1, "A": 1, "Q": 4, "M": 12, "W": 52, "D": 7, "B": 5, "h": 24, "H": 24}
"""Default seasonal period per pandas frequency (first letter of its alias)."""
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
        if frame.empty:
            raise SpecError(field, "the table has no rows")

        stamps = _parse_times(frame[time], f"{field}.time")
        values = pd.to_numeric(frame[value], errors="coerce")
        bad = values.isna() & frame[value].notna() & (frame[value].astype(str).str.strip() != "")
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            raise SpecError(f"{field}.value", f"column {value!r} must be numeric; {row_at(row)} holds {frame[value].iloc[row]!r}")
        values = values.to_numpy(dtype=float)
        if np.isinf(values).any():
            raise SpecError(f"{field}.value", f"column {value!r} holds an infinite value")
        labels = frame[list(groups)]
        keys = labels.astype(str)
        unlabelled = labels.isna() | keys.apply(lambda column: column.str.strip() == "")
        if unlabelled.any().any():
            row = int(np.flatnonzero(unlabelled.any(axis=1).to_numpy())[0])
            column = groups[int(np.flatnonzero(unlabelled.iloc[row].to_numpy())[0])]
            raise SpecError(f"{field}.group", f"{row_at(row)} has no label in grouping column {column!r}; every row needs one in each")

        table = keys.assign(_time=stamps.to_numpy())
        dup = table.duplicated(keep=False)
        if dup.any():
            row = table[dup].iloc[0]
            series = " / ".join(row[g] for g in groups)
            raise SpecError(f"{field}.time", f"series {series!r} has more than one row at {row['_time']:%Y-%m-%d %H:%M}; one value per series and time")

        grid, freq = _regular_grid(pd.DatetimeIndex(np.unique(stamps.to_numpy())), f"{field}.time")
        if period is None:
            period = PERIODS.get(freq.lstrip("0123456789-")[:1], 1)
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
            reg = frame[list(regressors)].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=float)
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
        applies only to matching series)."""
        for column in ("time", "event"):
            if column not in events.columns:
                raise SpecError(f"{field}", f"the events table needs a column {column!r}")
        stamps = _parse_times(events["time"], f"{field}.time")
        t_all = self.times.append(self.future)
        t_idx = pd.Index(t_all).get_indexer(stamps)
        unnamed = events["event"].isna() | (events["event"].astype(str).str.strip() == "")
        if unnamed.any():
            raise SpecError(f"{field}.event", f"{row_at(np.flatnonzero(unnamed.to_numpy())[0])} has no event name")
        names = tuple(sorted(events["event"].astype(str).unique()))
        extra = np.zeros((self.n_series, len(t_all), len(names)))
        scope = [g for g in self.groups if g in events.columns]
        for row, t in zip(events.itertuples(index=False), t_idx):
            if t < 0:
                continue  # an event outside the window changes nothing
            match = np.ones(self.n_series, dtype=bool)
            for g in scope:
                label = getattr(row, g)
                if pd.notna(label) and str(label) != "":
                    match &= self.keys[g].to_numpy() == str(label)
            extra[match, t, names.index(str(row.event))] = 1.0
        return Panel(
            values=self.values, keys=self.keys, times=self.times, future=self.future, freq=self.freq,
            period=self.period, groups=self.groups, value=self.value,
            x=np.concatenate([self.x, extra], axis=2), regressors=self.regressors + tuple(f"event:{n}" for n in names),
        )


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


def _parse_times(column: pd.Series, field: str) -> pd.Series:
    if pd.api.types.is_numeric_dtype(column) and column.notna().any():  # booleans too; all empty: "has no time"
        # pandas would read 2024 as 2024 nanoseconds after 1970
        raise SpecError(field, f"holds numbers ({column.dropna().iloc[0]}, ...), not times: write dates (2024-01-31) or periods (2024Q1, 2024-01)")
    try:
        stamps = pd.to_datetime(column, errors="raise")
    except (ValueError, TypeError, OverflowError):
        unread = pd.to_datetime(column, errors="coerce").isna() & column.notna()
        row = int(np.flatnonzero(unread.to_numpy())[0]) if unread.any() else 0
        raise SpecError(field, f"{row_at(row)} holds {column.iloc[row]!r}, which is not a date or date-time in the column's format (e.g. 2024-01-31)") from None
    if stamps.isna().any():
        raise SpecError(field, f"{row_at(np.flatnonzero(stamps.isna().to_numpy())[0])} has no time")
    if getattr(stamps.dt, "tz", None) is not None:
        stamps = stamps.dt.tz_convert(None)
    return stamps


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
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pandas 3 warns that infer_freq will return an offset
        freq = pd.infer_freq(stamps)
    return getattr(freq, "freqstr", freq)
