"""``wager validate SPEC|RUN`` and ``wager monitor RUN --data NEW``: checks for CI and schedulers.

Both exit 0 when everything holds and 4 when a check fails (validation) or
an alert is raised (monitoring); ``--json`` prints the same verdict for
machines and ``--junit FILE`` writes JUnit XML for CI systems.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Optional

import typer

from wager.cli import EXIT_CHECK_FAILED, DbOpt, JsonOpt, QuietOpt, _dump, _open_registry, _progress, app, check_output_file, exits_on_error
from wager.errors import SpecError
from wager.kernel.seeds import MAX_SEED
from wager.workflow.sbc import MAX_SIMULATIONS as MAX_SBC_SIMULATIONS, MIN_SIMULATIONS as MIN_SBC_SIMULATIONS


def _looks_like_spec(target: str) -> bool:
    """A path, not a run reference: a file that exists, or text with a folder in it or a
    spec's extension (run ids have no folder, and may hold dots: ``v1.2``), so a
    mistyped path is "no such file"."""
    return Path(target).is_file() or "/" in target or os.sep in target or target.endswith((".yaml", ".yml", ".json"))


@app.command("validate")
def validate_command(
    target: str = typer.Argument(..., metavar="SPEC|RUN", help="A spec file, or a recorded run (id, unique prefix, or 'latest')."),
    sbc: int = typer.Option(100, "--sbc", min=0, max=MAX_SBC_SIMULATIONS, help=f"Simulation-based calibration replications (0 skips it; else at least {MIN_SBC_SIMULATIONS})."),
    seed: int = typer.Option(0, "--seed", min=0, max=MAX_SEED, help="Seed of the simulations (SBC, predictive checks)."),
    executor: str = typer.Option("process", "--executor", help="Where SBC fits run: serial, process (a local spawn pool) or ray."),
    workers: Optional[int] = typer.Option(None, "--workers", min=1, help="Parallel workers (default: the CPUs available)."),
    address: Optional[str] = typer.Option(None, "--address", help="Ray cluster address (default: $RAY_ADDRESS, else a local Ray)."),
    junit: Optional[Path] = typer.Option(None, "--junit", help="Also write JUnit XML here."),
    no_record: bool = typer.Option(False, "--no-record", help="Do not keep the verdict of a recorded run's validation in the registry."),
    db: Optional[str] = DbOpt,
    as_json: bool = JsonOpt,
    quiet: bool = QuietOpt,
) -> None:
    """Gates, replay, predictive checks and simulation-based calibration in one command (exit 4 on failure)."""
    from wager.executors import check_ray_address, make_executor
    from wager.workflow.validate import validate

    def go() -> Any:
        if 0 < sbc < MIN_SBC_SIMULATIONS:
            raise SpecError("--sbc", f"must be 0 (skip it) or at least {MIN_SBC_SIMULATIONS}: fewer simulations fill too few rank bins to test; got {sbc}")
        check_output_file(junit, "--junit")
        if executor == "ray" and sbc:
            check_ray_address(address)
        pool = make_executor(executor, workers=workers, address=address)
        with _progress(enabled=not (quiet or as_json)) as progress:
            if _looks_like_spec(target):
                from wager.workflow.specs import load_spec

                path = Path(target)
                return validate(spec=load_spec(path), base_dir=path.parent, sbc_simulations=sbc, seed=seed, executor=pool, progress=progress)
            registry = _open_registry(db)
            record = registry.load(target)
            checked = validate(record=record, sbc_simulations=sbc, seed=seed, executor=pool, progress=progress)
            if not no_record:
                registry.record_validation(record.run_id, checked.passed, checked.to_json())
            return checked

    with exits_on_error():
        outcome = go()
    if junit is not None:
        junit.parent.mkdir(parents=True, exist_ok=True)
        junit.write_text(outcome.junit_xml())
    if as_json:
        _dump(outcome.to_json())
    else:
        for line in outcome.lines():
            typer.echo(line)
    if not outcome.passed:
        raise typer.Exit(EXIT_CHECK_FAILED)


@app.command("monitor")
def monitor_command(
    run: str = typer.Argument(..., metavar="RUN", help="A recorded run (id, unique prefix, or 'latest')."),
    data: Path = typer.Option(..., "--data", help="The new window: a table (CSV/parquet) or YAML/JSON with arms: or data:."),
    seed: int = typer.Option(0, "--seed", min=0, max=MAX_SEED, help="Seed of the predictive simulations."),
    alpha: float = typer.Option(0.01, "--alpha", min=1e-6, max=0.5, help="False-alarm rate of each check."),
    db: Optional[str] = DbOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Does the recorded model still reproduce reality? Exit 4 and "alert": true when it does not."""
    from wager.workflow.monitor import monitor

    with exits_on_error():
        record = _open_registry(db).load(run)
        check = monitor(record, data, seed=seed, alpha=alpha)
    if as_json:
        _dump({"run_id": record.run_id, **check.to_json()})
    else:
        for line in check.lines():
            typer.echo(line)
    if check.alert:
        raise typer.Exit(EXIT_CHECK_FAILED)
