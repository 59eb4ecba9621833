"""The registry commands: ``wager runs list|show|diff``, ``replay``, ``plan``, ``report``.

They read recorded runs; none of them runs inference except ``replay``, which
re-executes a run from its manifest and exits 4 when it disagrees.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer

from wager.cli import (
    EXIT_BAD_INPUT,
    EXIT_CHECK_FAILED,
    DbOpt,
    JsonOpt,
    QuietOpt,
    _dump,
    json_text,
    _open_registry,
    _progress,
    app,
    check_output_file,
    exits_on_error,
)
from wager.errors import SpecError

runs_app = typer.Typer(no_args_is_help=True, help="Recorded runs: list, show, diff.")
app.add_typer(runs_app, name="runs")


def _guard(fn: Any) -> Any:
    """Run ``fn()`` turning wager's errors into one line and an exit code."""
    with exits_on_error():
        return fn()


def _decision(decision: dict) -> str:
    """``decided 'ship B'`` or ``blocked``: a blocked run has no action to name."""
    return f"{decision['status']} {decision['action']!r}" if decision.get("action") is not None else str(decision["status"])


@runs_app.command("list")
def runs_list(
    limit: int = typer.Option(20, "--limit", "-n", min=1, max=10**9, help="How many runs, newest first."),
    domain: Optional[str] = typer.Option(None, "--domain", help="Only this domain (ab, model, ...)."),
    status: Optional[str] = typer.Option(None, "--status", help="Only decided or blocked runs."),
    db: Optional[str] = DbOpt,
    as_json: bool = JsonOpt,
) -> None:
    """The most recent runs."""
    from wager.workflow.registry import RUN_STATUSES

    def go() -> Any:
        if status is not None and status not in RUN_STATUSES:
            raise SpecError("--status", f"must be {' or '.join(RUN_STATUSES)}, got {status!r}")
        from wager.workflow.specs import schemas

        if domain is not None and domain not in schemas():
            raise SpecError("--domain", f"must be one of {', '.join(schemas())}; got {domain!r}")
        return _open_registry(db).list(limit=limit, domain=domain, status=status)

    rows = _guard(go)
    if as_json:
        _dump([row.__dict__ for row in rows])
        return
    if not rows:
        typer.echo("No runs recorded yet.")
        return
    from rich.console import Console
    from rich.table import Table

    table = Table("run", "recorded (UTC)", "domain", "name", "status", "action", "engine", box=None)
    for row in rows:
        table.add_row(row.run_id, row.created_at[:19].replace("T", " "), row.domain, row.name or "", row.status, row.action or "-", row.engine or "")
    Console(width=200).print(table)


@runs_app.command("show")
def runs_show(
    run: str = typer.Argument(..., metavar="RUN", help="A run id, a unique prefix of one, or 'latest'."),
    db: Optional[str] = DbOpt,
    as_json: bool = JsonOpt,
) -> None:
    """One run: its decision in plain language and its manifest."""
    record = _guard(lambda: _open_registry(db).load(run))
    if as_json:
        from wager.workflow.report import json_report

        _dump({**json_report(record), "manifest": record.manifest})
        return
    from wager.workflow.report import plain_report

    for line in plain_report(record):
        typer.echo(line)
    m = record.manifest
    ident, env = m["identity"], m["environment"]
    typer.echo("")
    typer.echo(f"Run {record.run_id}, recorded {record.created_at[:19]} UTC by {m['recorded']['user']} on {m['recorded']['host']}.")
    typer.echo(f"Identity hash {m['identity_hash']}; data hash {ident['data']['sha256']}.")
    typer.echo(f"Engine {ident['engine']}; seed {ident['seed']}; chain seeds {', '.join(map(str, ident['chain_seeds']))}.")
    versions = ", ".join(f"{k} {v}" for k, v in env["versions"].items() if v)
    typer.echo(f"Python {env['python']} on {env['platform']}; {versions}.")
    for name, digest in m["outputs"]["draws"].items():
        typer.echo(f"  draws {name}: sha256 {digest}")


@runs_app.command("diff")
def runs_diff(
    old: str = typer.Argument(..., metavar="RUN", help="The earlier run."),
    new: str = typer.Argument(..., metavar="RUN", help="The later run."),
    db: Optional[str] = DbOpt,
    as_json: bool = JsonOpt,
) -> None:
    """What changed between two runs: data, priors, policy, inference, seed, versions."""
    from wager.workflow.diff import diff_manifests

    def load() -> tuple[Any, Any]:
        registry = _open_registry(db)
        return registry.load(old), registry.load(new)

    a, b = _guard(load)
    found = diff_manifests(a.manifest, b.manifest)
    decisions = (a.manifest["outputs"]["decision"], b.manifest["outputs"]["decision"])
    if as_json:
        _dump({
            "runs": [a.run_id, b.run_id],
            "same_identity": a.manifest["identity_hash"] == b.manifest["identity_hash"],
            "changes": {section: [c.to_json() for c in items] for section, items in found.items()},
            "decision": {"old": decisions[0], "new": decisions[1]},
        })
        return
    typer.echo(f"{a.run_id} -> {b.run_id}")
    if not found:
        typer.echo("No differences: same inputs, same environment.")
    for section, items in found.items():
        typer.echo(f"{section}:")
        for change in items:
            typer.echo(f"  {change.describe()}")
    if decisions[0] != decisions[1]:
        typer.echo(f"decision: {_decision(decisions[0])} -> {_decision(decisions[1])}")
    else:
        typer.echo(f"decision unchanged: {_decision(decisions[0])}")


@app.command("replay")
def replay_command(
    run: str = typer.Argument(..., metavar="RUN", help="A run id, a unique prefix of one, or 'latest'."),
    k: float = typer.Option(4.0, "--k", min=0.5, max=100.0, help="Tolerance in Monte Carlo standard errors when bit-identity is not expected (0.5 to 100)."),
    db: Optional[str] = DbOpt,
    as_json: bool = JsonOpt,
    quiet: bool = QuietOpt,
) -> None:
    """Re-execute a recorded run from its manifest and verify it regenerates (exit 4 if not)."""
    from wager.workflow.replay import replay

    def go() -> Any:
        record = _open_registry(db).load(run)
        with _progress(enabled=not (quiet or as_json)) as progress:
            return replay(record, k=k, progress=progress)

    outcome = _guard(go)
    if as_json:
        _dump(outcome.to_json())
    else:
        for line in outcome.lines():
            typer.echo(line)
    if not outcome.agrees:
        raise typer.Exit(EXIT_CHECK_FAILED)


@app.command("plan")
def plan_command(
    spec_path: Path = typer.Argument(..., metavar="SPEC.yaml", help="A spec; only its domain, name and decision policy are read."),
    db: Optional[str] = DbOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Record the decision policy before any data exists."""
    from wager.workflow.plan import policy_from_payload
    from wager.workflow.specs import read_spec_file

    def go() -> Any:
        policy = policy_from_payload(read_spec_file(spec_path))
        registry = _open_registry(db)
        earlier = registry.latest_plan(policy.domain, policy.name)
        runs_before = registry.runs_named(policy.domain, policy.name)
        return registry.record_plan(policy.domain, policy.name, policy.policy, policy.digest), earlier, runs_before

    plan, earlier, runs_before = _guard(go)
    if as_json:
        _dump({**plan.__dict__, "replaces": earlier.plan_id if earlier else None, "runs_before": runs_before})
        return
    typer.echo(f"Recorded plan {plan.plan_id} for {plan.domain} {plan.name!r} (policy hash {plan.policy_hash[:12]}).")
    if earlier is not None:
        typer.echo(f"It replaces plan {earlier.plan_id} (recorded {earlier.created_at[:19]} UTC).")
    if runs_before:
        typer.echo(f"{runs_before} run{'s' if runs_before > 1 else ''} of this name {'were' if runs_before > 1 else 'was'} recorded before it: this plan does not precede that data, and runs will say so.")
    typer.echo("Runs with this domain and name will report whether their decision policy still matches it.")


@app.command("report")
def report_command(
    run: str = typer.Argument(..., metavar="RUN", help="A run id, a unique prefix of one, or 'latest'."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Where to write the report (default: the HTML to wager-report-RUN.html here, text and JSON to the terminal)."),
    fmt: str = typer.Option("html", "--format", help="html (a self-contained file), text or json."),
    db: Optional[str] = DbOpt,
) -> None:
    """A run's report: plain language, JSON, or one self-contained HTML file."""
    if fmt not in ("html", "text", "json"):
        typer.echo(f"error: --format: must be html, text or json; got {fmt!r}", err=True)
        raise typer.Exit(EXIT_BAD_INPUT)
    _guard(lambda: check_output_file(out, "--out"))
    registry = _guard(lambda: _open_registry(db))
    record = _guard(lambda: registry.load(run))
    from wager.workflow import report

    if fmt == "html" and out is None:
        out = Path(f"wager-report-{record.run_id}.html")
        _guard(lambda: check_output_file(out, "--out"))
    if fmt == "text":
        text = "\n".join(report.plain_report(record)) + "\n"
    elif fmt == "json":
        text = json_text(report.json_report(record))
    else:
        text = report.html_report(record, _guard(lambda: registry.validations(record.run_id)))
    if out is None:
        typer.echo(text, nl=False)
        return
    path = report.write_text(out, text)
    typer.echo(f"{'HTML report' if fmt == 'html' else 'Report'}: {path}")
