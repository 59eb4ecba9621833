"""``wager fusion track``: where am I, plus or minus how much, and is it good enough to act on.

The options build the same spec a ``domain: fusion`` YAML file would
(``wager.fusion.spec``), so the run takes the shared path: gates, record, report.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer

from wager.cli import app
from wager.cli_domain import domain_command

fusion_app = typer.Typer(
    no_args_is_help=True,
    help="Sensor fusion: GPS fixes and an accelerometer fused into position and velocity (Kalman filter, noise learned by NUTS).",
)
app.add_typer(fusion_app, name="fusion")


def _dropouts(values: list[str]) -> list[list[float]]:
    """``START-END`` seconds, e.g. ``48-60``."""
    out = []
    for text in values:
        start, sep, end = text.partition("-")
        try:
            out.append([float(start), float(end)])
        except ValueError:
            from wager.errors import SpecError

            raise SpecError("data.simulate.dropouts", f"each dropout is START-END in seconds, e.g. 48-60; got {text!r}") from None
        if not sep:
            from wager.errors import SpecError

            raise SpecError("data.simulate.dropouts", f"each dropout is START-END in seconds, e.g. 48-60; got {text!r}")
    return out


@domain_command(fusion_app, "fusion", "track")
def track_command(
    tolerance: float = typer.Option(..., "--tolerance", help="Act only if the position is within this many metres ..."),
    threshold: float = typer.Option(..., "--threshold", help="... with a posterior probability above this."),
    data: Optional[Path] = typer.Option(None, "--data", help="A table (.csv/.parquet), one row per accelerometer sample: the accel column and the gps column (empty between fixes)."),
    simulate: Optional[float] = typer.Option(None, "--simulate", help="Instead of --data: simulate a drive of this many seconds."),
    sim_seed: Optional[int] = typer.Option(None, "--sim-seed", help="Seed of the simulated drive (default 11)."),
    dropout: list[str] = typer.Option([], "--dropout", help="Simulated GPS dropout START-END in seconds (repeatable)."),
    accel: Optional[str] = typer.Option(None, "--accel", help="The accelerometer column, m/s^2 (default accel)."),
    gps: Optional[str] = typer.Option(None, "--gps", help="The GPS position column, m (default gps)."),
    rate: Optional[float] = typer.Option(None, "--rate", help="Accelerometer samples per second (default 100)."),
    gps_every: Optional[int] = typer.Option(None, "--gps-every", help="A GPS fix every N samples (default 100: 1 Hz at 100 Hz)."),
    allow_missing: bool = typer.Option(False, "--allow-missing", help="GPS fixes may be missing (NaN): skip them rather than refuse the data."),
    bias_walk: Optional[float] = typer.Option(None, "--bias-walk", help="The accelerometer bias's random walk, m/s^2 per sqrt(s) (default 0.001)."),
    level: Optional[float] = typer.Option(None, "--level", help="Level of the credible intervals reported (default 0.95)."),
) -> dict[str, Any]:
    """Fuse GPS and accelerometer: where am I, plus or minus how much; act if within tolerance."""
    source: dict[str, Any] = {"accel": accel, "gps": gps, "rate": rate, "gps_every": gps_every, "allow_missing": allow_missing}
    if simulate is not None:
        drive = {"seconds": simulate, "seed": sim_seed, "dropouts": _dropouts(dropout)}
        source["simulate"] = {k: v for k, v in drive.items() if v is not None}
    elif dropout or sim_seed is not None:
        from wager.errors import SpecError

        if dropout:
            raise SpecError("data.simulate.dropouts", "--dropout applies only to a simulated drive (--simulate); in a table, a dropout is empty gps cells (with --allow-missing)")
        raise SpecError("data.simulate.seed", "--sim-seed applies only to a simulated drive (--simulate)")
    if data is not None:
        source["path"] = str(data)
    decision = {"tolerance": tolerance, "threshold": threshold, "level": level}
    return {
        "data": {k: v for k, v in source.items() if v is not None},
        "model": {"bias_walk": bias_walk} if bias_walk is not None else {},
        "decision": {k: v for k, v in decision.items() if v is not None},
    }
