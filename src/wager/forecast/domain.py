"""The forecasting domain's part of the shared path: spec -> problem."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from wager.errors import SpecError
from wager.forecast.data import Panel
from wager.forecast.problem import CapacityPolicy, ForecastProblem, Newsvendor
from wager.forecast.spec import ForecastSpec
from wager.tables import read_table, resolve


def prepare(spec: ForecastSpec, base_dir: Path | None = None, frame: Any = None, events: Any = None) -> ForecastProblem:
    """Read and check the panel (a file, or ``frame``), and build the problem."""
    source = spec.data
    if frame is None:
        if source.path is None:
            raise SpecError("data.path", "is required (a .csv or .parquet file) unless a DataFrame is passed in")
        frame = read_table(resolve(source.path, base_dir), "data.path")
    panel = Panel.from_frame(
        frame,
        time=source.time,
        groups=source.group,
        value=source.value,
        horizon=spec.horizon,
        regressors=source.regressors,
        period=spec.period,
        counts=spec.likelihood in ("negbin", "zinb"),
    )
    if events is None and source.events is not None:
        events = read_table(resolve(source.events, base_dir), "data.events")
    if events is not None:
        panel = panel.with_events(events, "data.events")
    decision = spec.decision
    return ForecastProblem(
        panel=panel,
        likelihood=spec.likelihood,
        transform=spec.transform,
        prior_overrides=dict(spec.priors),
        newsvendor=Newsvendor(decision.newsvendor.under, decision.newsvendor.over) if decision.newsvendor else None,
        capacity=CapacityPolicy(decision.capacity.level, decision.capacity.unit_cost, decision.capacity.shortage_cost) if decision.capacity else None,
        seed=spec.inference.seed,
        batch=spec.batch,
        harmonics=spec.harmonics,
        engine=spec.inference.engine,
        common_levels=spec.common_levels,
    )

