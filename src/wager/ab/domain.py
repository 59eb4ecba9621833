"""The A/B domain's part of the shared path: spec -> model, posterior -> outcome."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from wager.ab.data import arms_from_table
from wager.tables import read_table
from wager.tables import resolve as resolve_path  # this module's own resolve() reduces a spec
from wager.ab.decide import Estimate, expected_loss_rule, flip_points, summarize, units
from wager.ab.models import PRIOR_SITES, build_model, priors_for
from wager.ab.spec import ABSpec
from wager.ab.srm import SRMCheck, srm_check
from wager.errors import SpecError, from_pydantic
from wager.kernel.digits import fmt, fmt_percent
from wager.kernel.inference import Model
from wager.kernel.outcome import Outcome
from wager.kernel.posterior import Posterior
from wager.kernel.priors import Prior


def resolve(spec: ABSpec, frame: Any = None, base_dir: Path | None = None) -> ABSpec:
    """The spec with its per-visitor table (file or DataFrame) reduced to arm statistics.

    A relative ``data.path`` is read relative to ``base_dir`` (the spec file's folder).
    """
    if spec.arms is not None:
        return spec
    if frame is None:
        assert spec.data is not None
        if spec.data.path is None:
            raise SpecError("data.path", "is required (a .csv or .parquet file) unless a DataFrame is passed in")
        frame = read_table(resolve_path(spec.data.path, base_dir))
    source = spec.data
    arms = arms_from_table(frame, spec.metric, source.arm if source else "arm", source.value if source else "value")
    payload = spec.model_dump(exclude={"data"})
    payload["arms"] = arms
    from pydantic import ValidationError

    try:
        return ABSpec.model_validate(payload)
    except ValidationError as exc:
        raise from_pydantic(exc) from None


@dataclass(frozen=True)
class ABProblem:
    spec: ABSpec

    @property
    def model(self) -> Model:
        return build_model(self.spec)

    @property
    def priors(self) -> dict[str, Prior]:
        return priors_for(self.spec)

    @property
    def prior_sites(self) -> dict[str, tuple[str, ...]]:
        """Prior name -> the posterior variables drawn from it (for prior sensitivity)."""
        return dict(PRIOR_SITES[self.spec.metric])

    def decide(self, posterior: Posterior) -> Outcome:
        return outcome(self.spec, posterior)

    @property
    def prior_check_units(self) -> tuple[str, ...]:
        """The arms. Every observed site holds one element per arm and each arm has a prior of its own,
        so ``wager validate`` checks each arm's data against its own prior predictive (``units`` of
        ``wager.workflow.predictive.prior_predictive_check``)."""
        return tuple(a.name for a in self.spec.arms or [])

    def realized_loss(self, action: str, data: Mapping[str, Any]) -> float | None:
        """What ``action`` gave up in a window of outcomes ``data`` (the model's data keys):
        the best arm's observed value per visitor minus the chosen arm's, in the metric's
        units; ``None`` when no arm was chosen or the metric's data do not say."""
        names = [a.name for a in self.spec.arms or []]
        verb, _, arm = action.partition(" ")
        if verb not in ("ship", "keep") or arm not in names:
            return None
        per_visitor = {
            "conversion": lambda d: np.asarray(d["conversions"], float) / np.asarray(d["visitors"], float),
            "count": lambda d: np.asarray(d["events"], float) / np.asarray(d["visitors"], float),
            "mean": lambda d: np.asarray(d["sample_mean"], float),
        }.get(self.spec.metric)
        if per_visitor is None:
            return None
        value = per_visitor(data)
        return float(np.max(value) - value[names.index(arm)])


def prepare(spec: ABSpec, base_dir: Path | None = None, frame: Any = None) -> ABProblem:
    """Validate what needs the data and return the problem the shared path runs."""
    spec = resolve(spec, frame, base_dir)
    priors_for(spec)  # validates prior families against the metric
    return ABProblem(spec)


def outcome(spec: ABSpec, posterior: Posterior) -> Outcome:
    assert spec.arms is not None
    summary = summarize(spec, posterior)
    verdict = expected_loss_rule(summary)
    srm = srm_check([a.visitors for a in spec.arms], spec.expected_split, spec.decision.srm_alpha)
    control = summary["control"]
    payload: dict[str, Any] = {
        "metric": spec.metric,
        "units": units(spec),
        "control": control,
        "verdict": verdict.kind,
        "arm": verdict.arm,
        "why": verdict.why,
        "threshold": summary["threshold"],
        "min_lift": spec.decision.min_lift,
        "lift": spec.decision.lift,
        "method": summary["method"],
        "bayes_action": summary["decision"].best,
        "indifferent": summary["decision"].indifferent,
        "gap": summary["decision"].gap,
        "gap_mcse": summary["decision"].gap_mcse,
        "arms": {n: _arm_json(a) for n, a in summary["arms"].items()},
        "srm": {"chi2": srm.chi2, "dof": srm.dof, "p_value": srm.p_value, "alpha": srm.alpha, "flagged": srm.flagged},
    }
    if spec.metric == "revenue":
        payload["normal_approximation"] = normal_approximation(spec)
    payload["flips"] = flip_points(summary, verdict)
    flips = " ".join(payload["flips"])
    lines = narrative(spec, summary, verdict.action, verdict.why, srm) + [f"What would flip it: {flips[:1].lower()}{flips[1:]}"]
    if spec.metric == "revenue":
        lines += normal_approximation_lines(payload["normal_approximation"], control, spec.decision.credible_mass)
    warnings = []
    action: str | None = verdict.action
    if srm.flagged:
        warnings.append(
            f"Sample-ratio mismatch: visitor counts are unlikely under the designed split "
            f"(chi-square p = {srm.p_value:.2g} < {srm.alpha}). The assignment looks broken; no action is recommended."
        )
        action = None
    return Outcome(action=action, summary=payload, lines=lines, warnings=warnings)


def _arm_json(arm: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in arm.items():
        if isinstance(value, Estimate):
            out[key] = value.value
            if value.mcse:
                out[f"{key}_mcse"] = value.mcse
        elif isinstance(value, tuple):
            out[key] = list(value)
        elif isinstance(value, dict):
            out[key] = {k: list(v) if isinstance(v, tuple) else v for k, v in value.items()}
        else:
            out[key] = value
    return out


def normal_approximation(spec: ABSpec) -> dict[str, Any]:
    """Revenue per visitor by the central limit theorem, beside the model's answer.

    Per arm: mean ``R / n`` and standard error ``sqrt(var / n)`` with the sample
    variance of per-visitor revenue (zeros included). For each challenger: the
    lift's Normal interval and ``P(lift > 0) = Phi(lift / se)``. Heavy tails make
    this interval too narrow or too wide; showing both makes that visible.
    """
    from scipy import special

    assert spec.arms is not None
    stats = {}
    for a in spec.arms:
        n = a.visitors
        mean = a.revenue / n  # type: ignore[operator]
        var = max(a.revenue_sq / n - mean**2, 0.0) * n / max(n - 1, 1)  # type: ignore[operator]
        stats[a.name] = (mean, float(np.sqrt(var / n)))
    control = spec.control_name
    z = float(special.ndtri(1 - (1 - spec.decision.credible_mass) / 2))
    out: dict[str, Any] = {"arms": {n: {"mean": m, "se": s} for n, (m, s) in stats.items()}}
    mc, sc = stats[control]
    for name, (m, s) in stats.items():
        if name == control:
            continue
        diff, se = m - mc, float(np.hypot(s, sc))
        out["arms"][name].update(
            lift_absolute={"median": diff, "interval": [diff - z * se, diff + z * se]},
            prob_beats_control=float(special.ndtr(diff / se)) if se > 0 else float(diff > 0),
        )
    return out


def normal_approximation_lines(normal: dict[str, Any], control: str, mass: float) -> list[str]:
    """The Normal approximation's answer, beside the model's, in the same words."""
    lines = []
    for name, arm in normal["arms"].items():
        if name == control:
            continue
        lo, hi = arm["lift_absolute"]["interval"]
        lines.append(
            f"Normal approximation, for comparison: lift {_signed(arm['lift_absolute']['median'])} "
            f"({mass:.0%} interval {_signed(lo)} to {_signed(hi)}), "
            f"{name} beats {control} with probability {arm['prob_beats_control']:.1%}."
        )
    return lines


def narrative(spec: ABSpec, summary: dict[str, Any], action: str, why: str, srm: SRMCheck) -> list[str]:
    """Plain language for a non-statistician, digits limited by Monte Carlo error."""
    arms, control = summary["arms"], summary["control"]
    policy = spec.decision
    mass = f"{policy.credible_mass:.0%}"
    lines = [f"Decision: {action} ({why})."]
    for name in summary["names"]:
        if name == control:
            continue
        a = arms[name]
        beats, above = a["prob_beats_control"], a["prob_lift_above_margin"]
        margin = (
            f"{_num(policy.min_lift)}" if policy.lift == "absolute" else f"{policy.min_lift:.1%} (relative)"
        )
        sentence = f"{name} beats {control} with probability {fmt_percent(beats.value, beats.mcse)}"
        if policy.min_lift > 0:
            sentence += f"; probability its lift clears the {margin} margin: {fmt_percent(above.value, above.mcse)}"
        lines.append(sentence + ".")
        lo, hi = a["lift_absolute"]["interval"]
        sentence = (
            f"Lift of {name} over {control}: {_signed(a['lift_absolute']['median'])} "
            f"({mass} credible interval {_signed(lo)} to {_signed(hi)})"
        )
        if a["lift_relative"] is not None:
            rlo, rhi = a["lift_relative"]["interval"]
            sentence += f", relative {a['lift_relative']['median']:+.1%} ({rlo:+.1%} to {rhi:+.1%})"
        lines.append(sentence + ".")
    losses = ", ".join(
        f"{'keep' if n == control else 'ship'} {n}: {fmt(arms[n]['expected_loss'].value, arms[n]['expected_loss'].mcse, 2)}"
        for n in summary["names"]
    )
    lines.append(
        f"Expected loss, in {units(spec)} given up: {losses}; "
        f"threshold of caring: {fmt(summary['threshold'], 0.0, 2)}."
    )
    lines.append("Probability each arm is the best choice (margin included): " + ", ".join(
        f"{n} {fmt_percent(arms[n]['prob_best'].value, arms[n]['prob_best'].mcse)}" for n in summary["names"]
    ) + ".")
    if summary["decision"].indifferent:
        lines.append("The best two choices are indistinguishable within Monte Carlo error.")
    if srm.flagged:
        lines.append(f"Warning: sample-ratio mismatch (p = {srm.p_value:.2g}); check the traffic split before trusting any of this.")
    return lines


def _num(x: float) -> str:
    return f"{x:.4g}"


def _signed(x: float) -> str:
    return f"{x:+.3g}"
