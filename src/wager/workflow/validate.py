"""``wager validate SPEC|RUN``: every check a CI pipeline should run, in one place.

1. **gates** — the spec is run (a recorded run is replayed) and its
   convergence gates must pass;
2. **replay** — the run regenerates: a recorded run by ``wager replay``'s
   rules, a spec by running it twice and comparing draw hashes;
3. **prior predictive** — the priors put mass on data like these (no
   prior-data conflict); **predictive** — the posterior predictive check
   reproduces the data's test statistics and its LOO-PIT values are uniform
   (``wager.workflow.predictive``);
4. **sbc** — simulation-based calibration of the model and its engine
   (``wager.workflow.sbc``), fanned out on the executor given.

A check that cannot apply (a model with no NumPyro function to replicate data
from; ``sbc_simulations=0``) is *skipped* and says why. ``Validation.passed``
is true when no check failed; ``junit_xml()`` is the JUnit report CI systems
display.
"""

from __future__ import annotations

import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from wager.errors import CheckNotApplicable, SpecError
from wager.kernel.inference import ProgressFn


@dataclass(frozen=True)
class Check:
    name: str
    status: str  # "passed" | "failed" | "skipped"
    lines: tuple[str, ...]
    data: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "status": self.status, "lines": list(self.lines), "data": self.data, "seconds": self.seconds}


@dataclass(frozen=True)
class Validation:
    target: str
    checks: tuple[Check, ...]

    @property
    def passed(self) -> bool:
        return all(c.status != "failed" for c in self.checks)

    def lines(self) -> list[str]:
        verdict = "PASSED" if self.passed else "FAILED"
        out = [f"Validation of {self.target}: {verdict}."]
        for c in self.checks:
            out.append(f"[{c.status}] {c.name} ({c.seconds:.1f} s)")
            out += [f"    {line}" for line in c.lines]
        return out

    def to_json(self) -> dict[str, Any]:
        return {"target": self.target, "passed": self.passed, "checks": [c.to_json() for c in self.checks]}

    def junit_xml(self) -> str:
        """JUnit XML: one test suite, one test case per check."""
        failures = sum(c.status == "failed" for c in self.checks)
        skipped = sum(c.status == "skipped" for c in self.checks)
        suite = ET.Element(
            "testsuite", name=f"wager validate {self.target}", tests=str(len(self.checks)),
            failures=str(failures), errors="0", skipped=str(skipped), time=f"{sum(c.seconds for c in self.checks):.3f}",
        )
        for c in self.checks:
            case = ET.SubElement(suite, "testcase", classname="wager.validate", name=c.name, time=f"{c.seconds:.3f}")
            if c.status == "failed":
                failure = ET.SubElement(case, "failure", message=c.lines[0] if c.lines else "failed")
                failure.text = "\n".join(c.lines)
            elif c.status == "skipped":
                ET.SubElement(case, "skipped", message=c.lines[0] if c.lines else "skipped")
            else:
                ET.SubElement(case, "system-out").text = "\n".join(c.lines)
        root = ET.Element("testsuites")
        root.append(suite)
        ET.indent(root)
        return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def _timed(name: str, fn: Callable[[], tuple[str, list[str], dict[str, Any]]]) -> Check:
    """Run one check; one that cannot apply to this model is skipped with its reason."""
    start = time.perf_counter()
    try:
        status, lines, data = fn()
    except CheckNotApplicable as reason:
        status, lines, data = "skipped", [str(reason)], {}
    return Check(name, status, tuple(lines), data, round(time.perf_counter() - start, 3))


def validate(
    spec: Any = None,
    record: Any = None,
    base_dir: Path | None = None,
    sbc_simulations: int = 100,
    seed: int = 0,
    executor: Any = None,
    progress: ProgressFn | None = None,
) -> Validation:
    """Validate a spec (``spec``, read from ``base_dir``) or a recorded run (``record``)."""
    from wager.workflow.manifest import draw_digests
    from wager.workflow.pipeline import run
    from wager.workflow.replay import replay

    checks: list[Check] = []
    if record is not None:
        from wager.workflow.specs import parse_spec

        target = f"run {record.run_id}"
        folder = record.manifest["source"].get("base_dir")
        base_dir = Path(folder) if folder else None
        spec = parse_spec(record.manifest["spec"])
        start = time.perf_counter()
        replayed = replay(record, progress=progress)
        result = replayed.result
        replay_seconds = round(time.perf_counter() - start, 3)
    else:
        target = getattr(spec, "name", None) or "spec"
        result = run(spec, base_dir=base_dir, progress=progress)
        replayed = None
        replay_seconds = 0.0

    checks.append(_timed("gates", lambda: _gates(result)))
    if replayed is not None:
        checks.append(Check("replay", "passed" if replayed.agrees else "failed", tuple(replayed.lines()), replayed.to_json(), replay_seconds))
    else:

        def again() -> tuple[str, list[str], dict[str, Any]]:
            second = run(spec, base_dir=base_dir, progress=progress)
            same = draw_digests(second.posterior.draws) == draw_digests(result.posterior.draws)
            line = "a second run gives bit-identical draws" if same else "a second run with the same seed gives different draws"
            return ("passed" if same else "failed"), [line], {"identical": same}

        checks.append(_timed("replay", again))
    # a domain may replace a check with its own (``posterior_check`` of the posterior it decided on,
    # ``predictive_check`` with fits of its own) or say why one does not apply
    unsupported = getattr(result.problem, "unsupported_checks", {})
    for name, fn in (
        ("prior predictive", lambda: _prior_predictive(result, seed)),
        ("predictive", lambda: _predictive(result, seed, progress)),
        ("sbc", lambda: _sbc(spec, base_dir, sbc_simulations, seed, executor, progress)),
    ):
        if name in unsupported:
            checks.append(Check(name, "skipped", (unsupported[name],), {}, 0.0))
        else:
            checks.append(_timed(name, fn))
    return Validation(target=target, checks=tuple(checks))


def _gates(result: Any) -> tuple[str, list[str], dict[str, Any]]:
    gates = result.gates
    if not gates.applicable:
        return "passed", [f"not applicable: {gates.note}"], {"applicable": False}
    lines = [g.describe() for g in gates.gates]
    return ("passed" if gates.passed else "failed"), lines, {"failed": [g.name for g in gates.failed]}


def _prior_predictive(result: Any, seed: int) -> tuple[str, list[str], dict[str, Any]]:
    from wager.workflow.predictive import prior_check_of, prior_predictive_check

    model = result.problem.model
    simulated = getattr(result.problem, "prior_predictive", None)
    if simulated is not None:  # the domain simulates its own prior predictive (a likelihood written as a factor)
        check = prior_check_of(*simulated(seed=seed))
        return ("passed" if check.passed else "failed"), check.lines(), check.to_json()
    if model.numpyro_model is None:
        return "skipped", [f"model {model.name!r} has no NumPyro model to simulate data from"], {}
    check = prior_predictive_check(model, seed=seed, units=getattr(result.problem, "prior_check_units", None))
    return ("passed" if check.passed else "failed"), check.lines(), check.to_json()


def _predictive(result: Any, seed: int, progress: ProgressFn | None = None) -> tuple[str, list[str], dict[str, Any]]:
    from wager.workflow.predictive import posterior_predictive_check

    model = result.problem.model
    if model.numpyro_model is None:
        return "skipped", [f"model {model.name!r} has no NumPyro model to replicate data from"], {}
    if not result.gates.passed:
        return "skipped", ["the posterior failed its gates: predictive checks on it would mean nothing"], {}
    posterior_check = getattr(result.problem, "posterior_check", None)
    if posterior_check is not None:  # the domain's own check of the posterior it decided on
        check = posterior_check(result.posterior, seed=seed)
        return ("passed" if check.passed else "failed"), check.lines(), check.to_json()
    domain_check = getattr(result.problem, "predictive_check", None)
    if domain_check is not None:
        check = domain_check(result.spec.inference, seed=seed, progress=progress)
        return ("passed" if check.passed else "failed"), check.lines(), check.to_json()
    check = posterior_predictive_check(model, result.posterior, seed=seed)
    return ("passed" if check.passed else "failed"), check.lines(), check.to_json()


def _sbc(spec: Any, base_dir: Path | None, simulations: int, seed: int, executor: Any, progress: ProgressFn | None) -> tuple[str, list[str], dict[str, Any]]:
    from wager.workflow.sbc import sbc

    if simulations <= 0:
        return "skipped", ["simulation-based calibration not asked for (--sbc 0)"], {}
    engine = spec.inference.engine  # the engine the run used (or would use): SBC calibrates model and engine
    try:
        result = sbc(spec, simulations=simulations, seed=seed, executor=executor, progress=progress, base_dir=base_dir, engine=engine)
    except SpecError as error:  # the spec was fitted: the data that broke it are a simulation's
        return "failed", [f"a dataset simulated from the prior could not be fitted: {error}"], {"error": str(error)}
    return ("passed" if result.passed else "failed"), result.lines(), result.to_json()
