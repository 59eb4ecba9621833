"""``wager forecast``: a panel forecast (and orders, capacity) from a long table.

The options build the same spec a ``domain: forecast`` YAML file would, so the
run takes the shared path: gates, record, report.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer

from wager.cli import DbOpt, JsonOpt, NoRecordOpt, QuietOpt, Recording, _execute, app


@app.command("forecast")
def forecast_command(
    data: Path = typer.Option(..., "--data", help="Long table (.csv or .parquet): one row per series and time."),
    time: str = typer.Option(..., "--time", help="The time column."),
    group: str = typer.Option(..., "--group", help="Grouping column(s) naming a series, comma-separated, e.g. State,Region,Purpose."),
    value: str = typer.Option(..., "--value", help="The value column (empty where unobserved)."),
    horizon: int = typer.Option(..., "--horizon", help="Periods to forecast (> 0)."),
    period: Optional[float] = typer.Option(None, "--period", help="Seasonal period (default: from the frequency: 4 quarterly, 12 monthly, ...); fractional (52.18, 365.25) with --fourier."),
    fourier: Optional[int] = typer.Option(None, "--fourier", help="Model the seasonal cycle with K Fourier harmonics (1 <= K <= period / 2) instead of seasonal states."),
    likelihood: str = typer.Option("normal", "--likelihood", help="normal or student_t (transformed scale); negbin or zinb (counts)."),
    transform: str = typer.Option("auto", "--transform", help="auto, log, log1p or identity."),
    common_levels: str = typer.Option("auto", "--common-levels", help="auto, on or off: a level and trend shared by each group's series (auto: on above 40 series)."),
    regressors: str = typer.Option("", "--regressors", help="Regressor columns, comma-separated (values needed over the forecast window too)."),
    events: Optional[Path] = typer.Option(None, "--events", help="Events table: time, event[, grouping columns]."),
    under: Optional[float] = typer.Option(None, "--under", help="Newsvendor: cost per unit of unmet demand (with --over)."),
    over: Optional[float] = typer.Option(None, "--over", help="Newsvendor: cost per unit left over (with --under)."),
    capacity_level: Optional[float] = typer.Option(None, "--capacity", help="Capacity at this quantile of demand, e.g. 0.95."),
    unit_cost: Optional[float] = typer.Option(None, "--unit-cost", help="Capacity: cost per unit provisioned (with --capacity; default 0)."),
    shortage_cost: Optional[float] = typer.Option(None, "--shortage-cost", help="Capacity: cost per unit of demand above capacity (with --capacity; default 0)."),
    engine: str = typer.Option("auto", "--engine", help="auto (NUTS for small panels, SVI for large), nuts or vi."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Integer seed."),
    draws: Optional[int] = typer.Option(None, "--draws", help="Posterior draws per chain."),
    warmup: Optional[int] = typer.Option(None, "--warmup", help="NUTS warmup iterations per chain."),
    chains: Optional[int] = typer.Option(None, "--chains", help="Chains (NUTS) or draw groups (VI)."),
    vi_steps: Optional[int] = typer.Option(None, "--vi-steps", help="SVI optimisation steps."),
    as_json: bool = JsonOpt,
    quiet: bool = QuietOpt,
    db: Optional[str] = DbOpt,
    no_record: bool = NoRecordOpt,
) -> None:
    """Forecast every series of a panel with one hierarchical model."""

    def build() -> Any:
        from wager.errors import SpecError
        from wager.workflow.specs import parse_spec

        decision: dict[str, Any] = {}
        if (under is None) != (over is None):
            raise SpecError("--under/--over", "give both costs for a newsvendor order, or neither")
        if under is not None:
            decision["newsvendor"] = {"under": under, "over": over}
        costs = {"unit_cost": unit_cost, "shortage_cost": shortage_cost}
        for name, cost in costs.items():
            if cost is not None and capacity_level is None:  # a cost of a capacity nobody asked for
                raise SpecError(f"decision.capacity.{name}", f"--{name.replace('_', '-')} needs --capacity (the quantile to provision at)")
        if capacity_level is not None:
            decision["capacity"] = {"level": capacity_level, **{k: v for k, v in costs.items() if v is not None}}
        inference = {"engine": engine, "seed": seed, "draws": draws, "warmup": warmup, "chains": chains, "vi_steps": vi_steps}
        payload = {
            "domain": "forecast",
            "name": f"forecast of {value} by {group}",
            "data": {
                "path": str(data),
                "time": time,
                "group": group,
                "value": value,
                "regressors": regressors,
                "events": str(events) if events is not None else None,
            },
            "horizon": horizon,
            "period": int(period) if period is not None and period.is_integer() else period,
            "seasonality": "states" if fourier is None else {"fourier": fourier},
            "likelihood": likelihood,
            "transform": transform,
            "common_levels": common_levels,
            "decision": decision,
            "inference": {k: v for k, v in inference.items() if v is not None},
        }
        return parse_spec(payload)

    _execute(build, None, as_json, quiet, Recording(db, not no_record))
