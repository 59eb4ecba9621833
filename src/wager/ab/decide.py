"""The A/B decision: chance to win, lift, expected loss, and ship / keep / keep testing.

Arms are compared on their value net of the margin: the control is credited
with the margin a challenger must clear (``X_c + m``, or ``(1 + m) X_c`` for a
relative margin). Choosing arm ``i`` then loses ``max_j v_j - v_i`` (linear
opportunity loss), so

* ``expected_loss[i]`` = E[max_j v_j - v_i], in the metric's units per visitor;
* ``prob_best[i]``     = P(v_i is the largest);
* for two arms, ``prob_best[challenger] == P(lift > margin)``.

The expected-loss rule (Stucchio 2015, "threshold of caring"): ship the
challenger with the smallest expected loss when that loss is below the
threshold, keep the control when its loss is, otherwise keep testing.

With an exact (conjugate) posterior every number is a closed form or a
deterministic quadrature (``wager.kernel.compare``); P(B beats A) for Beta arms
is Evan Miller's exact sum. With sampled posteriors the same quantities are
Monte Carlo means with their standard errors.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import special

from wager.ab.models import UNITS, VALUE, value_draws
from wager.ab.spec import ABSpec
from wager.errors import SpecError
from wager.kernel import compare
from wager.kernel.closed_form import Affine, Beta, Distribution1D
from wager.kernel.decision import Decision, decide, decide_closed_form, opportunity_losses
from wager.kernel.diagnostics import mcse_mean
from wager.kernel.digits import fmt
from wager.kernel.posterior import Posterior

_WIDE = 1e-12  # tail mass outside the bisection bracket for lift quantiles


@dataclass(frozen=True)
class Estimate:
    """A number and its Monte Carlo standard error (0 when exact)."""

    value: float
    mcse: float = 0.0

    def json(self) -> float:
        return float(self.value)


def summarize(spec: ABSpec, posterior: Posterior) -> dict[str, Any]:
    """Every per-arm number the report and the rule need, as raw floats."""
    assert spec.arms is not None
    names = [a.name for a in spec.arms]
    control = spec.control_name
    policy = spec.decision
    tail = (1 - policy.credible_mass) / 2
    levels = [tail, 0.5, 1 - tail]
    value = VALUE[spec.metric]
    exact = posterior.exact is not None and all(f"{value}[{n}]" in posterior.exact.marginals for n in names)

    if exact:
        dists = {n: posterior.exact.marginals[f"{value}[{n}]"] for n in names}  # type: ignore[union-attr]
        arms, decision = _closed_form(names, control, dists, policy, levels)
    else:
        x = value_draws(spec, posterior.draws)
        arms, decision = _monte_carlo(names, control, x, policy, levels, posterior.independent)

    control_mean = arms[control]["mean"]
    if policy.threshold_units == "relative" and control_mean.value <= 0:
        raise SpecError("decision.threshold_units", "a threshold relative to the control needs a positive control mean; use absolute")
    threshold = policy.threshold * control_mean.value if policy.threshold_units == "relative" else policy.threshold
    return {
        "arms": arms,
        "decision": decision,
        "threshold": threshold,
        "method": decision.method,
        "names": names,
        "control": control,
    }


def _closed_form(names, control, dists: dict[str, Distribution1D], policy, levels):
    m = policy.min_lift
    positive = bool(dists[control].ppf(_WIDE) > 0)  # a relative lift needs X_c > 0
    if policy.lift == "relative" and not positive:
        raise SpecError("decision.lift", "a relative lift needs a control that is surely positive; use absolute")
    credit = Affine(dists[control], 1.0, m) if policy.lift == "absolute" else Affine(dists[control], 1.0 + m, 0.0)
    values = [credit if n == control else dists[n] for n in names]
    best = compare.prob_best(values)
    loss = compare.expected_regret(values)
    decision = decide_closed_form(dict(zip(names, loss)), dict(zip(names, best)))
    c = dists[control]
    arms: dict[str, dict[str, Any]] = {}
    for i, n in enumerate(names):
        d = dists[n]
        arm: dict[str, Any] = {
            "mean": Estimate(d.mean),
            "interval": tuple(float(v) for v in d.ppf(np.array([levels[0], levels[2]]))),
            "prob_best": Estimate(best[i]),
            "expected_loss": Estimate(loss[i]),
        }
        if n != control:
            if isinstance(c, Beta) and isinstance(d, Beta):
                beats = compare.prob_beta_greater(c, d)
            else:
                beats = float(compare.prob_difference_above(c, d, 0.0))
            above = (
                compare.prob_difference_above(c, d, m) if policy.lift == "absolute" else compare.prob_ratio_above(c, d, m)
            )
            abs_q, rel_q = _lift_quantiles(c, d, levels, positive)
            arm.update(
                prob_beats_control=Estimate(beats),
                prob_lift_above_margin=Estimate(float(above)),
                lift_absolute={"median": float(abs_q[1]), "interval": (float(abs_q[0]), float(abs_q[2]))},
                lift_relative=None if rel_q is None else {"median": float(rel_q[1]), "interval": (float(rel_q[0]), float(rel_q[2]))},
            )
        arms[n] = arm
    return arms, decision


def _lift_quantiles(c: Distribution1D, d: Distribution1D, levels: list[float], positive: bool = True) -> tuple[np.ndarray, np.ndarray | None]:
    """Quantiles of the absolute lift ``X_d - X_c`` and the relative lift ``X_d / X_c - 1``,
    started from their Normal (delta-method) approximations."""
    z = special.ndtri(np.asarray(levels))
    guess = d.mean - c.mean + z * np.hypot(c.sd, d.sd)
    lo, hi = d.ppf(_WIDE) - c.ppf(1 - _WIDE), d.ppf(1 - _WIDE) - c.ppf(_WIDE)
    absolute = compare.quantiles_of(
        lambda t: compare.prob_difference_above(c, d, t), lambda t: compare.density_of_difference(c, d, t), levels, lo, hi, guess
    )
    if not positive:
        return absolute, None
    ratio = d.mean / c.mean
    guess = ratio - 1 + z * ratio * np.hypot(c.sd / c.mean, d.sd / d.mean)
    rlo, rhi = d.ppf(_WIDE) / c.ppf(1 - _WIDE) - 1, d.ppf(1 - _WIDE) / max(c.ppf(_WIDE), 1e-300) - 1
    relative = compare.quantiles_of(
        lambda t: compare.prob_ratio_above(c, d, t), lambda t: compare.density_of_ratio(c, d, t), levels, rlo, min(rhi, 1e6), guess
    )
    return absolute, relative


def _monte_carlo(names, control, x: np.ndarray, policy, levels, independent: bool):
    ci = names.index(control)
    m = policy.min_lift
    v = x.copy()
    v[..., ci] = x[..., ci] + m if policy.lift == "absolute" else x[..., ci] * (1 + m)
    actions = opportunity_losses({n: (lambda d, i=i: d["v"][..., i]) for i, n in enumerate(names)})
    decision: Decision = decide(actions, {"v": v}, independent=independent)
    c = x[..., ci]
    arms: dict[str, dict[str, Any]] = {}
    for i, n in enumerate(names):
        xi = x[..., i]
        s = decision[n]
        arm: dict[str, Any] = {
            "mean": Estimate(float(xi.mean()), mcse_mean(xi, independent)),
            "interval": tuple(float(q) for q in np.quantile(xi, [levels[0], levels[2]])),
            "prob_best": Estimate(s.prob_best, mcse_mean(_winner(v) == i, independent)),
            "expected_loss": Estimate(s.expected_loss, s.mcse),
        }
        if n != control:
            positive = bool(np.all(c > 0))
            if policy.lift == "relative" and not positive:
                raise SpecError("decision.lift", "a relative lift needs a control that is surely positive; use absolute")
            lift = xi - c
            rel = xi / c - 1 if positive else np.zeros_like(xi)
            margin_event = lift > m if policy.lift == "absolute" else rel > m
            abs_q = np.quantile(lift, levels)
            rel_q = np.quantile(rel, levels)
            arm.update(
                prob_beats_control=Estimate(float(np.mean(xi > c)), mcse_mean(xi > c, independent)),
                prob_lift_above_margin=Estimate(float(np.mean(margin_event)), mcse_mean(margin_event, independent)),
                lift_absolute={"median": float(abs_q[1]), "interval": (float(abs_q[0]), float(abs_q[2]))},
                lift_relative={"median": float(rel_q[1]), "interval": (float(rel_q[0]), float(rel_q[2]))} if positive else None,
            )
        arms[n] = arm
    return arms, decision


def _winner(v: np.ndarray) -> np.ndarray:
    return np.argmax(v, axis=-1)


@dataclass(frozen=True)
class Verdict:
    kind: str  # "ship" | "keep" | "keep_testing"
    arm: str | None
    why: str

    @property
    def action(self) -> str:
        return "keep testing" if self.kind == "keep_testing" else f"{self.kind} {self.arm}"


def expected_loss_rule(summary: dict[str, Any]) -> Verdict:
    """Ship / keep / keep testing by the threshold of caring, on raw floats."""
    arms, control, threshold = summary["arms"], summary["control"], summary["threshold"]
    challengers = [n for n in summary["names"] if n != control]
    best = min(challengers, key=lambda n: arms[n]["expected_loss"].value)
    loss_best = arms[best]["expected_loss"].value
    loss_control = arms[control]["expected_loss"].value
    if loss_best < threshold and loss_best <= loss_control:
        return Verdict("ship", best, f"shipping {best} risks less than the threshold of caring")
    if loss_control < threshold:
        return Verdict("keep", control, f"keeping {control} risks less than the threshold of caring")
    return Verdict("keep_testing", None, "every choice still risks more than the threshold of caring")


def flip_points(summary: dict[str, Any], verdict: Verdict) -> list[str]:
    """What would flip the decision, read off the same raw floats the rule uses.

    The rule compares each choice's expected loss with the threshold of caring,
    so the decision flips exactly where the threshold crosses one of those
    losses; more data shrinks every expected loss towards zero.
    """
    arms, control, threshold = summary["arms"], summary["control"], summary["threshold"]
    challengers = [n for n in summary["names"] if n != control]
    best = min(challengers, key=lambda n: arms[n]["expected_loss"].value)
    est = {n: arms[n]["expected_loss"] for n in summary["names"]}
    loss = {n: e.value for n, e in est.items()}
    shown = {n: fmt(e.value, e.mcse, 3) for n, e in est.items()}
    out = []
    if verdict.kind == "keep_testing":
        cheapest = min((best, control), key=lambda n: loss[n])
        act = f"ship {cheapest}" if cheapest != control else f"keep {control}"
        out.append(
            f"It becomes '{act}' once that choice's expected loss ({shown[cheapest]}) falls below the threshold of "
            f"caring ({fmt(threshold)}): more data shrinks it, or a threshold above {shown[cheapest]} accepts it now."
        )
    else:
        chosen = verdict.arm
        assert chosen is not None
        if loss[chosen] > 0:
            out.append(
                f"It becomes 'keep testing' if the threshold of caring were below {shown[chosen]} "
                f"(it is {fmt(threshold)}), the expected loss of {verdict.action}."
            )
        else:
            out.append(f"No threshold of caring makes it 'keep testing': {verdict.action} has no expected loss to speak of.")
        rival = control if verdict.kind == "ship" else best
        out.append(
            f"It flips to '{'keep' if rival == control else 'ship'} {rival}' only if {rival}'s expected loss "
            f"({shown[rival]}) fell below {verdict.action}'s ({shown[chosen]})."
        )
    return out


def units(spec: ABSpec) -> str:
    return UNITS[spec.metric]
