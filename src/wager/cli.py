"""The ``wager`` command line.

Exit codes: 0 decided, 2 bad input, 3 blocked by a gate, 1 internal error.
Bad input prints one line naming the field and the rule; never a traceback.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any, Callable, Optional

import typer

from wager.errors import SpecError, WagerError

EXIT_DECIDED, EXIT_INTERNAL, EXIT_BAD_INPUT, EXIT_BLOCKED = 0, 1, 2, 3

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="wager: turn a posterior into the action with the lowest expected loss.",
)

JsonOpt = typer.Option(False, "--json", help="Print one JSON object instead of prose.")
QuietOpt = typer.Option(False, "--quiet", "-q", help="No progress display.")


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
) -> None:
    """Decide an A/B test from counts."""

    def build():
        from wager.ab.cli_args import payload_from_arms
        from wager.workflow.specs import parse_spec

        return parse_spec(payload_from_arms(arm, metric=metric, min_lift=min_lift, relative=relative, threshold=threshold, engine=engine, seed=seed))

    _execute(build, None, as_json, quiet)


@app.command("run")
def run_command(
    spec_path: Path = typer.Argument(..., metavar="SPEC.yaml", help="A declarative spec (see examples/)."),
    as_json: bool = JsonOpt,
    quiet: bool = QuietOpt,
) -> None:
    """Run a declarative spec."""

    def build():
        from wager.workflow.specs import load_spec

        return load_spec(spec_path)

    _execute(build, spec_path.parent, as_json, quiet)


@app.command("demo")
def demo_command(as_json: bool = JsonOpt, quiet: bool = QuietOpt) -> None:
    """The founding example: A 1100/20000 vs B 1200/20000, margin 0.005."""

    def build():
        from wager.ab.examples import FOUNDING_EXAMPLE
        from wager.workflow.specs import parse_spec

        return parse_spec(FOUNDING_EXAMPLE)

    if not as_json:
        typer.echo("wager demo: the founding A/B test (A 1100/20000 vs B 1200/20000, business margin 0.005)\n")
    _execute(build, None, as_json, quiet)


def _execute(build: Callable[[], Any], base_dir: Optional[Path], as_json: bool, quiet: bool) -> None:
    from wager.workflow.pipeline import result_json, run

    try:
        spec = build()
        with _progress(enabled=not (quiet or as_json)) as progress:
            result = run(spec, base_dir=base_dir, progress=progress)
    except SpecError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(EXIT_BAD_INPUT)
    except WagerError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(EXIT_INTERNAL)
    if as_json:
        typer.echo(json.dumps(result_json(result), indent=2, default=_json_default, allow_nan=False))
    else:
        _print_prose(result)
    raise typer.Exit(EXIT_DECIDED if result.decided else EXIT_BLOCKED)


def _print_prose(result: Any) -> None:
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


def _json_default(value: Any) -> Any:
    import numpy as np

    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, tuple):
        return list(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


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
            SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("chains"),
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
    """Entry point: typer app with an outer guard so nothing escapes as a traceback."""
    try:
        app(standalone_mode=True)
    except SystemExit:
        raise
    except Exception as exc:  # an internal error: one line, exit 1
        if os.environ.get("WAGER_DEBUG"):
            raise
        print(f"internal error: {type(exc).__name__}: {exc}", file=sys.stderr)
        sys.exit(EXIT_INTERNAL)


if __name__ == "__main__":
    main()
