"""The one path every domain runs: spec -> model -> infer -> check -> decide.

A domain supplies ``prepare(spec, base_dir) -> problem`` where the problem has
``model`` (a kernel ``Model``), ``priors`` (name -> ``Prior``) and
``decide(posterior) -> Outcome``. Everything after the model is shared here.
Recording (manifest, registry) slots in after ``decide`` and reads ``RunResult``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Protocol

from pydantic import BaseModel

from wager.errors import SpecError
from wager.kernel.diagnostics import Diagnostics
from wager.kernel.gates import GateReport, check
from wager.kernel.inference import EngineError, Model, ProgressFn, choose_engine, infer
from wager.kernel.outcome import Outcome
from wager.kernel.posterior import Posterior
from wager.kernel.priors import Prior


class Problem(Protocol):
    @property
    def model(self) -> Model: ...

    @property
    def priors(self) -> dict[str, Prior]: ...

    def decide(self, posterior: Posterior) -> Outcome: ...


def domain_prepare(spec: BaseModel) -> Callable[..., Problem]:
    domain = getattr(spec, "domain")
    if domain == "ab":
        from wager.ab.domain import prepare

        return prepare
    if domain == "model":
        from wager.custom.domain import prepare

        return prepare
    if domain == "forecast":
        from wager.forecast.domain import prepare

        return prepare
    if domain == "risk":
        from wager.risk.domain import prepare

        return prepare
    if domain == "science":
        from wager.science.domain import prepare

        return prepare
    if domain == "fusion":
        from wager.fusion.domain import prepare

        return prepare
    raise SpecError("domain", f"unknown domain {domain!r}")


@dataclass(frozen=True)
class RunResult:
    """Everything a run produced. ``status`` is ``decided`` or ``blocked``."""

    spec: BaseModel
    problem: Problem
    status: str
    action: str | None
    posterior: Posterior
    gates: GateReport
    diagnostics: Diagnostics | None
    priors: dict[str, Prior]
    outcome: Outcome | None
    blocked_by: tuple[str, ...] = ()
    messages: tuple[str, ...] = field(default_factory=tuple)

    @property
    def decided(self) -> bool:
        return self.status == "decided"


MIN_NUTS_CHAINS = 2
"""The fewest NUTS chains a run may ask for: R-hat (ArviZ's rank-normalised split
R-hat) needs two to compare, and without it the gates would block every run."""


def prepare(spec: BaseModel, base_dir: str | Path | None = None, **prepare_kwargs: Any) -> Problem:
    """``spec``'s problem, its data read and checked, its model built and its engine
    chosen: all bad input is raised here, as ``SpecError``, before a caller opens or
    writes anything (the CLI opens the registry after it)."""
    problem = domain_prepare(spec)(spec, base_dir=Path(base_dir) if base_dir else None, **prepare_kwargs)
    try:
        engine, _ = choose_engine(problem.model, spec.inference.engine)  # type: ignore[attr-defined]
    except EngineError as exc:
        raise SpecError("inference.engine", str(exc)) from None
    chains = spec.inference.chains  # type: ignore[attr-defined]
    if engine == "nuts" and chains < MIN_NUTS_CHAINS:
        raise SpecError(
            "inference.chains", f"NUTS needs at least {MIN_NUTS_CHAINS} chains: the R-hat gate compares chains, so {chains} could never pass it"
        )
    return problem


def run(
    spec: BaseModel,
    base_dir: str | Path | None = None,
    progress: ProgressFn | None = None,
    problem: Problem | None = None,
    **prepare_kwargs: Any,
) -> RunResult:
    """Run ``spec`` through the shared path (``problem``: ``prepare``'s, where the caller has it)."""
    if problem is None:
        problem = prepare(spec, base_dir, **prepare_kwargs)
    posterior = infer(problem.model, spec.inference, progress)  # type: ignore[attr-defined]
    report, diagnostics = check(posterior, spec.gates)  # type: ignore[attr-defined]
    common = dict(spec=spec, problem=problem, posterior=posterior, gates=report, diagnostics=diagnostics, priors=problem.priors)
    if not report.passed:
        failed = report.failed
        return RunResult(
            status="blocked",
            action=None,
            outcome=None,
            blocked_by=tuple(g.name for g in failed),
            messages=tuple(g.describe() + (f". What to do: {g.remedy}." if g.remedy else "") for g in failed),
            **common,
        )
    outcome = problem.decide(posterior)
    if outcome.action is None:
        return RunResult(
            status="blocked",
            action=None,
            outcome=outcome,
            blocked_by=("data",),
            messages=tuple(outcome.warnings),
            **common,
        )
    return RunResult(status="decided", action=outcome.action, outcome=outcome, **common)


def result_json(result: RunResult) -> dict[str, Any]:
    """One JSON-ready object: status, action, the domain's summary, engine and gates."""
    post = result.posterior
    payload: dict[str, Any] = {
        "status": result.status,
        "action": result.action,
        "domain": getattr(result.spec, "domain"),
        "name": getattr(result.spec, "name", None),
    }
    if result.outcome is not None:
        payload.update(result.outcome.summary)
        if result.outcome.warnings:
            payload["warnings"] = list(result.outcome.warnings)
    payload["blocked_by"] = list(result.blocked_by)
    payload["inference"] = {
        "engine": post.engine,
        "reason": post.reason,
        "seed": post.seed,
        "chain_seeds": list(post.chain_seeds),
        **{k: v for k, v in post.settings.items()},
    }
    payload["gates"] = {
        "passed": result.gates.passed,
        "applicable": result.gates.applicable,
        "note": result.gates.note,
        "checks": [
            {"name": g.name, "value": g.value, "threshold": g.threshold, "rule": g.rule, "passed": g.passed, "where": g.where}
            | ({"remedy": g.remedy} if g.remedy else {})
            for g in result.gates.gates
        ],
    }
    payload["priors"] = {name: prior.model_dump() for name, prior in result.priors.items()}
    return payload
