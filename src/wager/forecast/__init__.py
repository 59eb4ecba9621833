"""Hierarchical forecasting: many related series, partial pooling, calibrated
bands, and the orders and capacity they imply.

``forecast_panel`` is the programmatic entry for one fit and its sample paths
(benchmarks, notebooks). A decision someone acts on goes through the shared
path instead (``wager forecast`` or a spec with ``domain: forecast``): gates,
record, report.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import pandas as pd

__all__ = ["ForecastResult", "forecast_panel"]


@dataclass(frozen=True)
class ForecastResult:
    """``paths`` ``(draws, series, horizon)`` on the data's scale; ``keys`` one row
    per series (its grouping labels) in the order of ``paths``; ``future`` the
    forecast's time stamps; the posterior and the gates' verdict on it."""

    paths: np.ndarray
    keys: pd.DataFrame
    future: pd.DatetimeIndex
    posterior: Any
    gates: Any
    problem: Any


def forecast_panel(
    frame: pd.DataFrame,
    *,
    time: str,
    groups: Sequence[str],
    value: str,
    horizon: int,
    engine: str = "auto",
    seed: int = 0,
    likelihood: str = "normal",
    transform: str = "auto",
    period: float | None = None,
    seasonality: Any = "states",
    common_levels: str = "auto",
    regressors: Sequence[str] = (),
    progress: Any = None,
    **inference: Any,
) -> ForecastResult:
    """Fit the panel model to a long table and draw forecast sample paths.
    ``seasonality``: ``"states"`` or ``{"fourier": K}``; ``common_levels``: ``"auto"``,
    ``"on"`` or ``"off"`` (see ``wager.forecast.spec``); ``regressors``: columns of
    ``frame`` with values at every time, the ``horizon`` periods after the data
    included (rows whose ``value`` is missing)."""
    from wager.forecast.domain import prepare
    from wager.forecast.spec import ForecastSpec
    from wager.kernel.gates import check
    from wager.kernel.inference import infer

    spec = ForecastSpec(
        data={"time": time, "group": list(groups), "value": value, "regressors": list(regressors)},
        horizon=horizon,
        period=period,
        seasonality=seasonality,
        likelihood=likelihood,
        transform=transform,
        common_levels=common_levels,
        inference={"engine": engine, "seed": seed, **inference},
    )
    problem = prepare(spec, frame=frame)
    posterior = infer(problem.model, spec.inference, progress)
    gates, _ = check(posterior, spec.gates)
    return ForecastResult(
        paths=problem.paths(posterior),
        keys=problem.panel.keys,
        future=problem.panel.future,
        posterior=posterior,
        gates=gates,
        problem=problem,
    )
