"""Commands that build a domain's spec from options and run it on the shared path.

A domain's command declares only its own options and returns the spec's payload;
``domain_command`` adds the options every such run shares (name, NUTS settings,
output and recording), validates the payload as a ``domain:`` spec and runs it
(gates, record, report). ``wager risk ...`` and ``wager science ...`` use it.
"""

from __future__ import annotations

import functools
import inspect
from typing import Any, Callable, Optional

import typer

from wager.cli import DbOpt, JsonOpt, NoRecordOpt, QuietOpt, Recording, _execute

INFERENCE_OPTIONS = {
    "seed": (Optional[int], typer.Option(None, "--seed", help="Integer seed.")),
    "draws": (Optional[int], typer.Option(None, "--draws", help="Posterior draws per chain.")),
    "warmup": (Optional[int], typer.Option(None, "--warmup", help="NUTS warmup iterations per chain.")),
    "chains": (Optional[int], typer.Option(None, "--chains", help="NUTS chains.")),
    "target_accept": (Optional[float], typer.Option(None, "--target-accept", help="NUTS target acceptance probability (higher: smaller steps).")),
}
"""The spec's ``inference`` settings every such command takes (omitted: the spec's defaults)."""
RUN_OPTIONS = {
    "name": (Optional[str], typer.Option(None, "--name", help="A name for the run (plans and reports use it).")),
    **INFERENCE_OPTIONS,
    "as_json": (bool, JsonOpt),
    "quiet": (bool, QuietOpt),
    "db": (Optional[str], DbOpt),
    "no_record": (bool, NoRecordOpt),
}
"""Every such command's shared options, after its own, in this order."""


def domain_command(group: typer.Typer, domain: str, name: str) -> Callable[[Callable[..., dict[str, Any]]], Callable[..., dict[str, Any]]]:
    """Register ``NAME`` on ``group`` from a function of the task's own options that
    returns the ``domain`` spec's payload (``task``, ``data``, ``decision``, ...;
    ``None`` values are left out). ``RUN_OPTIONS`` are added to its signature (Typer
    reads ``__signature__``); the command validates the payload with them and runs it
    through the shared path."""

    def register(payload: Callable[..., dict[str, Any]]) -> Callable[..., dict[str, Any]]:
        own = inspect.signature(payload, eval_str=True)
        shared = [
            inspect.Parameter(option, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=kind)
            for option, (kind, default) in RUN_OPTIONS.items()
        ]

        @functools.wraps(payload)
        def command(**options: Any) -> None:
            run = {option: options.pop(option) for option in RUN_OPTIONS}
            settings = {k: run[k] for k in INFERENCE_OPTIONS if run[k] is not None}

            def build() -> Any:
                from wager.workflow.specs import parse_spec

                fields = {"name": run["name"], **payload(**options)}
                return parse_spec({"domain": domain, **{k: v for k, v in fields.items() if v is not None}, "inference": settings})

            _execute(build, None, run["as_json"], run["quiet"], Recording(run["db"], not run["no_record"]))

        command.__signature__ = own.replace(parameters=[*own.parameters.values(), *shared], return_annotation=None)  # type: ignore[attr-defined]
        group.command(name)(command)
        return payload

    return register
