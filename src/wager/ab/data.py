"""Per-visitor tables -> per-arm sufficient statistics.

One row per visitor: an arm column and a value column. For ``conversion`` the
value is 0/1 (or boolean); for ``count`` a non-negative whole number of events;
for ``revenue`` a non-negative spend (0 for visitors who bought nothing).
Arms keep the order of their first appearance; the first is the control unless
the spec names one.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from wager.ab.spec import square_sum_is_finite
from wager.errors import SpecError
from wager.tables import row_at

if TYPE_CHECKING:
    import pandas as pd


def arms_from_table(frame: "pd.DataFrame", metric: str, arm: str = "arm", value: str = "value") -> list[dict]:
    """Sufficient statistics per arm, as dicts ready for ``Arm``."""
    for column, role in ((arm, "arm"), (value, "value")):
        if column not in frame.columns:
            raise SpecError(f"data.{role}", f"column {column!r} is not in the table (columns: {', '.join(map(str, frame.columns))})")
    if frame[arm].isna().any():
        row = int(np.flatnonzero(frame[arm].isna().to_numpy())[0])
        raise SpecError(f"data.{arm}", f"{row_at(row)} has no arm")
    try:
        values = frame[value].to_numpy(dtype=float)
    except (TypeError, ValueError):
        raise SpecError(f"data.{value}", "must be numeric") from None
    bad = ~np.isfinite(values)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise SpecError(f"data.{value}", f"{row_at(row)} is {values[row]}; every visitor needs a finite value")
    if metric != "mean" and (values < 0).any():
        row = int(np.flatnonzero(values < 0)[0])
        raise SpecError(f"data.{value}", f"{row_at(row)} is negative ({values[row]}); values must be >= 0")
    if metric == "conversion" and not np.isin(values, (0.0, 1.0)).all():
        row = int(np.flatnonzero(~np.isin(values, (0.0, 1.0)))[0])
        raise SpecError(f"data.{value}", f"{row_at(row)} is {values[row]}; a conversion is 0 or 1")
    if metric == "count" and not np.all(values == np.floor(values)):
        row = int(np.flatnonzero(values != np.floor(values))[0])
        raise SpecError(f"data.{value}", f"{row_at(row)} is {values[row]}; event counts are whole numbers")

    labels = frame[arm].astype(str).to_numpy()
    _, first = np.unique(labels, return_index=True)
    order = labels[np.sort(first)]
    arms = []
    for name in order:
        v = values[labels == name]
        stats: dict = {"name": str(name), "visitors": int(v.size)}
        if metric == "conversion":
            stats["conversions"] = int(v.sum())
        elif metric == "count":
            stats["events"] = int(v.sum())
        elif metric == "mean":
            stats.update(_mean_and_sd(v, f"data.{value}", str(name)))
        else:
            spend = v[v > 0]
            logs = np.log(spend)
            stats.update(
                purchasers=int(spend.size),
                revenue=float(spend.sum()),
                revenue_sq=float(np.sum(spend**2)),
                log_revenue=float(logs.sum()),
                log_revenue_sq=float(np.sum(logs**2)),
            )
        arms.append(stats)
    return arms


def _mean_and_sd(v: np.ndarray, field: str, arm: str) -> dict[str, float]:
    """Sample mean and standard deviation (``ddof=1``; 0 for one visitor) of one arm's
    values, or ``SpecError`` at ``field`` when they are too large for float64: their
    sum or the sum of their squared deviations overflows."""
    with np.errstate(over="ignore", invalid="ignore"):  # an overflow is reported below, as the user's data
        mean, sd = float(v.mean()), float(v.std(ddof=1)) if v.size > 1 else 0.0
    n = int(v.size)
    if not (math.isfinite(mean) and math.isfinite(sd) and square_sum_is_finite(mean, n) and square_sum_is_finite(sd, n - 1)):
        raise SpecError(field, f"arm {arm}'s values are too large for float64 arithmetic: their sum or sum of squares overflows")
    return {"mean": mean, "sd": sd}
