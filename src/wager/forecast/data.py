"""A panel of related series, checked at the edge and laid out for the model.

The input is a long table: a time column, one or more grouping columns that
together name a series, a value column, and optionally regressor columns.
``Panel.from_frame`` refuses, with a ``SpecError`` naming the field and the
rule, anything the model would silently get wrong: missing columns, times that
do not parse (``wager.forecast.times``), the same time twice in one series, time
stamps off a regular grid, labels of one column that differ only in surrounding spaces,
values the likelihood cannot have (true/false, infinite, negative or fractional
counts; non-positive values under a log transform), regressors that are not
finite numbers, a horizon that is not positive.

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
from wager.forecast.times import parse_times, regular_grid, seasonal_period
from wager.tables import row_at

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

        stamps = parse_times(frame[time], f"{field}.time")
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

        grid, freq = regular_grid(pd.DatetimeIndex(np.unique(stamps.to_numpy())), f"{field}.time")
        if period is None:
            period = seasonal_period(freq, f"{field}.time")
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
        stamps = parse_times(events["time"], f"{field}.time")
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
