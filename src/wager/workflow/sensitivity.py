"""Prior sensitivity at the level of the decision.

``prior_sensitivity(result)`` asks of a decided run: would another defensible
prior have changed the action? Each prior the run used is tried ``factor``
times wider and ``factor`` times narrower (``Prior.widened``), and so is every
alternative the spec declares under ``sensitivity.alternatives``. Under each
alternative the domain's own ``decide`` runs on a posterior obtained

* by **refitting**, when the run's engine was exact (a conjugate update costs
  milliseconds), or when the draws cannot be reweighted;
* by **reweighting** the run's sampler draws otherwise: ``log w = log q(theta) -
  log p(theta)`` over the variables the prior governs, Pareto-smoothed, then
  resampled to equal weights (``wager.kernel.sensitivity``). When the weights'
  Pareto ``k_hat`` exceeds ``max_pareto_k`` (or PSIS's sample-size bound
  ``1 - 1/log10(S)``, where that is lower) the reweighting is not trusted and
  the model is refitted with the same inference settings; a refit that fails a
  gate decides nothing.

The report says "Decision unchanged under N of N alternative priors." or names
every prior whose alternative flips the action, and to what. Beside it stands
the power-scaling diagnostic of Kallioinen et al. (2023), per posterior
quantity: its sensitivity to the (spec's) prior and to the likelihood.

What a domain's problem may offer, beyond ``model``, ``priors`` and ``decide``:

* ``prior_sites``: prior name -> the posterior variables drawn from it. Needed
  to reweight and to compute the log prior; a prior missing from it is refitted
  and left out of the power-scaled prior. A joint ``normal_inverse_gamma`` prior
  lists its ``(mean, variance)`` variables in that order.
* ``model.log_likelihood(draws)``: the data's log-likelihood per draw in NumPy.
  Without it the likelihood is read off the NumPyro model
  (``numpyro.infer.log_likelihood``), which needs JAX.

An exact run with a NumPy log-likelihood (every conjugate A/B metric) never
imports JAX or ArviZ here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from wager.errors import SpecError
from wager.kernel import sensitivity as ks
from wager.kernel.diagnostics import pareto_k_limit, reliable_pareto_k
from wager.kernel.inference import EngineError, infer
from wager.kernel.posterior import Posterior
from wager.kernel.priors import Prior, widening_label
from wager.kernel.seeds import derive_seed
from wager.workflow.pipeline import RunResult, domain_prepare

RESAMPLING_STREAM = 5_311
"""Seed stream of the resampling offsets: ``derive_seed(run seed, RESAMPLING_STREAM, i)``
for alternative ``i``, apart from every chain seed (``derive_seed(seed, chain)``)."""

MAX_ELEMENTS = 500
"""Posterior elements the power-scaling diagnostic covers (the first ones, in variable order)."""


@dataclass(frozen=True)
class Alternative:
    """One alternative prior and the action the run would have taken under it."""

    prior: str
    change: str  # "widened x2" | "narrowed x2" | "declared alternative #1"
    replacement: Prior
    method: str  # "refit" | "reweighted" | "not assessed"
    action: str | None
    flips: bool
    pareto_k: float | None = None
    effective_draws: float | None = None
    note: str = ""

    @property
    def phrase(self) -> str:
        """``rate is widened x2 (beta(alpha=0.25, beta=0.25))``."""
        verb = "is replaced by" if self.change.startswith("declared") else "is"
        return f"{self.prior} {verb} {self.change} ({self.replacement.describe()})"

    def to_json(self) -> dict[str, Any]:
        return {
            "prior": self.prior,
            "change": self.change,
            "family": self.replacement.family,
            "params": dict(self.replacement.params),
            "method": self.method,
            "pareto_k": _finite(self.pareto_k),
            "effective_draws": _finite(self.effective_draws),
            "action": self.action,
            "flips": self.flips,
            "note": self.note,
        }


@dataclass(frozen=True)
class VariableSensitivity:
    """Power-scaling sensitivity of one posterior element (``theta[0]``)."""

    variable: str
    prior: float | None
    likelihood: float | None
    diagnosis: str | None

    def to_json(self) -> dict[str, Any]:
        return {"variable": self.variable, "prior": _finite(self.prior), "likelihood": _finite(self.likelihood), "diagnosis": self.diagnosis}


@dataclass(frozen=True)
class PowerScaling:
    """The per-quantity diagnostic, how it was computed, and what it could not do."""

    variables: tuple[VariableSensitivity, ...]
    priors: tuple[str, ...]
    weights: str
    pareto_k: Mapping[str, float | None] = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    threshold: float = ks.SENSITIVITY_THRESHOLD

    @property
    def flagged(self) -> tuple[VariableSensitivity, ...]:
        return tuple(v for v in self.variables if v.diagnosis)

    def to_json(self) -> dict[str, Any]:
        return {
            "threshold": self.threshold,
            "priors": list(self.priors),
            "weights": self.weights,
            "pareto_k": {k: _finite(v) for k, v in self.pareto_k.items()},
            "variables": [v.to_json() for v in self.variables],
            "notes": list(self.notes),
        }


@dataclass(frozen=True)
class SensitivityReport:
    """Whether the decision survives alternative priors, and the power-scaling diagnostic."""

    assessed: bool
    base_action: str | None
    factor: float
    alternatives: tuple[Alternative, ...] = ()
    power_scaling: PowerScaling | None = None
    reason: str = ""

    @property
    def flips(self) -> tuple[Alternative, ...]:
        return tuple(a for a in self.alternatives if a.flips)

    @property
    def unchanged(self) -> int:
        return sum(1 for a in self.alternatives if a.action is not None and not a.flips)

    @property
    def unassessed(self) -> tuple[Alternative, ...]:
        """Alternatives under which no action came out (not assessable, or a refit blocked by a gate)."""
        return tuple(a for a in self.alternatives if a.action is None)

    @property
    def headline(self) -> str:
        if not self.assessed:
            return f"Prior sensitivity not assessed: {self.reason}"
        if not self.alternatives:
            return f"No alternative prior to try: {self.reason}" if self.reason else "No alternative prior to try."
        n = len(self.alternatives)
        missing = len(self.unassessed)
        tail = f" ({missing} could not be assessed)" if missing else ""
        if not self.flips:
            return f"Decision unchanged under {self.unchanged} of {n} alternative priors{tail}."
        flips = "; ".join(f"to {a.action} when {a.phrase}" for a in self.flips)
        return f"Decision flips {flips}. Unchanged under {self.unchanged} of {n} alternative priors{tail}."

    def lines(self) -> list[str]:
        """Plain language, one finding a line."""
        lines = [self.headline]
        for a in self.alternatives:
            how = {"refit": "refitted", "reweighted": "reweighted draws"}.get(a.method, a.method)
            if a.method == "reweighted":
                how += f", Pareto k {a.pareto_k:.2f}"
            result = a.action if a.action is not None else "no action"
            mark = "FLIPS to " if a.flips else ""
            note = f"; {a.note}" if a.note else ""
            lines.append(f"  {a.phrase}: {mark}{result} [{how}{note}]")
        ps = self.power_scaling
        if ps is not None:
            lines.append(
                f"Power-scaling sensitivity (Kallioinen et al. 2023; above {ps.threshold:g} is sensitive), "
                f"prior = {', '.join(ps.priors) or 'none'}:"
            )
            for v in ps.variables[:20]:
                lik = "n/a" if v.likelihood is None else f"{v.likelihood:.3f}"
                pri = "n/a" if v.prior is None else f"{v.prior:.3f}"
                flag = f"  <- {v.diagnosis}" if v.diagnosis else ""
                lines.append(f"  {v.variable}: prior {pri}, likelihood {lik}{flag}")
            if len(ps.variables) > 20:
                lines.append(f"  ... and {len(ps.variables) - 20} more (see the JSON).")
            if not ps.flagged and ps.variables:
                lines.append("  No quantity is flagged: the likelihood, not the prior, drives the posterior.")
            lines += [f"  Note: {n}" for n in ps.notes]
        return lines

    def to_json(self) -> dict[str, Any]:
        return {
            "assessed": self.assessed,
            "headline": self.headline,
            "reason": self.reason,
            "base_action": self.base_action,
            "factor": self.factor,
            "unchanged": self.unchanged,
            "alternatives": [a.to_json() for a in self.alternatives],
            "flips": [{"prior": a.prior, "change": a.change, "action": a.action} for a in self.flips],
            "power_scaling": None if self.power_scaling is None else self.power_scaling.to_json(),
        }


# --- the analysis ---------------------------------------------------------------


def prior_sensitivity(
    result: RunResult, base_dir: Path | str | None = None, policy: ks.SensitivityPolicy | None = None
) -> SensitivityReport:
    """Check ``result``'s decision against alternative priors; see the module docstring.

    ``policy`` defaults to the spec's ``sensitivity`` (or ``SensitivityPolicy()``).
    ``base_dir`` is where the spec's relative paths point (a refit of a
    bring-your-own model reloads its file). Nothing is written.
    """
    spec = getattr(result.problem, "spec", result.spec)
    policy = policy or getattr(result.spec, "sensitivity", None) or ks.SensitivityPolicy()
    if not policy.enabled:
        return SensitivityReport(False, result.action, policy.factor, reason="turned off by the spec (sensitivity.enabled: false).")
    if not result.decided:
        return SensitivityReport(False, None, policy.factor, reason="no action was recommended, so there is no decision to test.")
    priors = dict(result.priors)
    for name in policy.alternatives:
        if name not in priors:
            raise SpecError(f"sensitivity.alternatives.{name}", f"names no prior of this run (its priors: {', '.join(priors) or 'none'})")
    power = power_scaling(result)
    if getattr(spec, "decision", True) is None:
        return SensitivityReport(True, result.action, policy.factor, power_scaling=power, reason="the spec declares no actions, so there is no decision to flip.")
    candidates = []
    for name, prior in priors.items():
        for factor in (policy.factor, 1.0 / policy.factor):
            candidates.append((name, widening_label(factor), prior.widened(factor, name)))
    for name, declared in policy.alternatives.items():
        for i, prior in enumerate(declared):
            candidates.append((name, f"declared alternative #{i + 1}", prior))
    base_dir = Path(base_dir) if base_dir is not None else None
    alternatives = tuple(
        _assess(result, spec, name, change, prior, policy, i, base_dir) for i, (name, change, prior) in enumerate(candidates)
    )
    return SensitivityReport(True, result.action, policy.factor, alternatives, power)


def _assess(
    result: RunResult, spec: Any, name: str, change: str, prior: Prior, policy: ks.SensitivityPolicy, index: int, base_dir: Path | None
) -> Alternative:
    """The action under one alternative prior: refit (exact engine, or draws that
    cannot be reweighted) or reweight the run's draws."""
    posterior = result.posterior

    def outcome(method: str, action: str | None, **extra: Any) -> Alternative:
        flips = action is not None and action != result.action
        return Alternative(prior=name, change=change, replacement=prior, method=method, action=action, flips=flips, **extra)

    try:
        if posterior.exact is not None:
            return outcome("refit", _refit(spec, name, prior, base_dir, gated=False))
        sites = dict(getattr(result.problem, "prior_sites", None) or {})
        if name not in sites:
            note = f"{name} does not map to posterior variables, so the draws cannot be reweighted"
            return outcome("refit", _refit(spec, name, prior, base_dir, gated=True), note=note)
        with np.errstate(invalid="ignore"):
            log_ratio = log_prior(prior, sites[name], posterior.draws) - log_prior(result.priors[name], sites[name], posterior.draws)
        log_w, k_hat = None, math.nan
        if not np.any(np.isnan(log_ratio)) and np.any(np.isfinite(log_ratio)):
            log_w, k_hat = ks.importance_log_weights(log_ratio, smooth=True)
        limit = pareto_k_limit(policy.max_pareto_k, log_ratio.size)
        if log_w is None or not k_hat <= limit:  # type: ignore[operator]
            shown = "undefined" if math.isnan(k_hat) else f"{k_hat:.2f}"  # type: ignore[arg-type]
            note = f"reweighting rejected (Pareto k {shown} > {limit:.2g}), so the model was refitted"
            return outcome("refit", _refit(spec, name, prior, base_dir, gated=True), pareto_k=k_hat, note=note)
        seed = derive_seed(posterior.seed, RESAMPLING_STREAM, index)
        resampled = ks.resample(posterior, log_w, seed, f"{name} {change}: importance-resampled from the run's draws")
        action = result.problem.decide(resampled).action
        return outcome("reweighted", action, pareto_k=k_hat, effective_draws=ks.effective_draws(log_w))
    except _Blocked as blocked:
        return outcome("refit", None, note=str(blocked))
    except (SpecError, EngineError, ValueError) as exc:  # the domain rejects this prior, or its posterior
        return outcome("not assessed", None, note=str(exc))


class _Blocked(Exception):
    """A refit failed a gate: it decides nothing."""


def _refit(spec: Any, name: str, prior: Prior, base_dir: Path | None, gated: bool) -> str | None:
    """The action under ``prior`` by the shared path: prepare -> infer -> (check) -> decide."""
    alternative = spec.model_copy(update={"priors": {**spec.priors, name: prior}})
    problem = domain_prepare(alternative)(alternative, base_dir=base_dir)
    posterior = infer(problem.model, alternative.inference)
    if gated and not posterior.independent:
        from wager.kernel.gates import check

        report, _ = check(posterior, alternative.gates)
        if not report.passed:
            raise _Blocked("the refit failed its gates (" + "; ".join(g.describe() for g in report.failed) + ")")
    return problem.decide(posterior).action


def log_prior(prior: Prior, sites: tuple[str, ...] | list[str], draws: Mapping[str, np.ndarray]) -> np.ndarray:
    """``log prior(theta)`` at each draw, shape ``(chains, draws)``, summed over the
    prior's variables and their elements (a joint prior reads its variables together)."""
    if prior.family == "normal_inverse_gamma":
        return _per_draw(prior.log_density(tuple(np.asarray(draws[s]) for s in sites)))
    return sum((_per_draw(prior.log_density(np.asarray(draws[s]))) for s in sites), start=np.zeros(_draw_shape(draws)))


def power_scaling(result: RunResult) -> PowerScaling:
    """Kallioinen et al.'s prior and likelihood sensitivity of every posterior element.

    The prior that is power-scaled is the spec's priors (those mapped to posterior
    variables), not the model's internal structure (a non-centred ``theta_tilde ~
    Normal(0, 1)`` stays put), as ``priorsense`` does for ``brms``'s ``lprior``.
    Exact draws are independent and ``alpha`` is within 1% of 1, so their
    weights are used as they are; sampler draws get Pareto-smoothed weights and
    their ``k_hat``.
    """
    posterior = result.posterior
    smooth = not posterior.independent
    notes: list[str] = []
    sites = dict(getattr(result.problem, "prior_sites", None) or {})
    mapped = tuple(n for n in result.priors if n in sites)
    for n in result.priors:
        if n not in sites:
            notes.append(f"prior {n} does not map to posterior variables and is not power-scaled")
    components: dict[str, np.ndarray | None] = {"prior": None, "likelihood": None}
    if mapped:
        lp = sum((log_prior(result.priors[n], sites[n], posterior.draws) for n in mapped), start=np.zeros(_draw_shape(posterior.draws)))
        if not np.all(np.isfinite(lp)):
            notes.append("the log prior is not finite at every draw; prior sensitivity not computed")
        elif np.ptp(lp) == 0:
            notes.append(
                "the prior's density is the same at every draw (a flat prior such as Beta(1, 1)): power-scaling "
                "cannot move it, so its prior sensitivity is 0 by construction"
            )
            components["prior"] = lp
        else:
            components["prior"] = lp
    else:
        notes.append("no prior maps to posterior variables; prior sensitivity not computed")
    try:
        ll = _log_likelihood(result)
        if np.all(np.isfinite(ll)):
            components["likelihood"] = ll
        else:
            notes.append("the log-likelihood is not finite at every draw; likelihood sensitivity not computed")
    except Exception as exc:  # a diagnostic must not fail the run: say why it is missing
        notes.append(f"likelihood sensitivity not computed: {type(exc).__name__}: {exc}")

    weights: dict[str, tuple[np.ndarray, np.ndarray] | None] = {}
    pareto_k: dict[str, float | None] = {}
    for part, values in components.items():
        if values is None:
            weights[part] = None
            continue
        try:
            lower, upper, k = ks.power_scaling_weights(values, smooth)
        except ValueError as exc:
            notes.append(f"{part} sensitivity not computed: {exc}")
            weights[part] = None
            continue
        weights[part] = (lower, upper)
        if k is not None:
            pareto_k[part] = k
            limit = reliable_pareto_k(np.size(values))
            if not k <= limit:
                notes.append(f"Pareto k of the {part} power-scaling weights is {k:.2f} (> {limit:.2g}): its sensitivity is unreliable")

    rows: list[VariableSensitivity] = []
    for label, x in _elements(posterior):
        if len(rows) >= MAX_ELEMENTS:
            notes.append(f"only the first {MAX_ELEMENTS} posterior elements are shown")
            break
        values = {}
        for part in ("prior", "likelihood"):
            w = weights[part]
            values[part] = None if w is None else ks.power_scaling_sensitivity(x, *w)
        diagnosis = None if values["prior"] is None else ks.diagnose(values["prior"], values["likelihood"])
        rows.append(VariableSensitivity(label, values["prior"], values["likelihood"], diagnosis))
    return PowerScaling(
        variables=tuple(rows),
        priors=mapped,
        weights="Pareto-smoothed importance weights" if smooth else "importance weights (independent exact draws)",
        pareto_k=pareto_k,
        notes=tuple(notes),
    )


def _log_likelihood(result: RunResult) -> np.ndarray:
    """The data's log-likelihood per draw, ``(chains, draws)``: the domain's NumPy
    function when it has one, else NumPyro's ``log_likelihood`` on the model."""
    model = result.problem.model
    draws = result.posterior.draws
    if model.log_likelihood is not None:
        return np.asarray(model.log_likelihood(draws), dtype=float)
    if model.numpyro_model is None:
        raise ValueError("the model has neither a NumPy log-likelihood nor a NumPyro model")
    from wager.kernel.nuts import configure_jax

    configure_jax()
    from numpyro.infer import log_likelihood

    per_site = log_likelihood(model.numpyro_model, dict(draws), batch_ndims=2, parallel=True, **dict(model.data))
    total = np.zeros(_draw_shape(draws))
    for values in per_site.values():
        total = total + _per_draw(np.asarray(values, dtype=float))
    return total


def _elements(posterior: Posterior):
    """``(label, draws shaped (chains, draws))`` per scalar element, ``theta[0]`` style."""
    for name, x in posterior.draws.items():
        x = np.asarray(x, dtype=float)
        for index in np.ndindex(*x.shape[2:]):
            label = name + (f"[{','.join(map(str, index))}]" if index else "")
            yield label, x[(slice(None), slice(None)) + index]


def _per_draw(values: np.ndarray) -> np.ndarray:
    values = np.asarray(values, dtype=float)
    return values.reshape(values.shape[:2] + (-1,)).sum(axis=-1)


def _draw_shape(draws: Mapping[str, np.ndarray]) -> tuple[int, int]:
    first = np.asarray(next(iter(draws.values())))
    return (first.shape[0], first.shape[1])


def _finite(x: float | None) -> float | None:
    """JSON has no NaN or infinity: an undefined number is ``None``."""
    if x is None or not math.isfinite(x):
        return None
    return float(x)
