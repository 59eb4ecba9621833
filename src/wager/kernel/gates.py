"""Gates that fail closed: a posterior that fails one is not decided on.

Defaults follow Vehtari et al. (2021) and the Stan manual: rank-normalised
split R-hat < 1.01, bulk and tail ESS >= 400, no post-warmup divergence,
E-BFMI >= 0.3 in every chain, no transition that saturated the tree depth.
Variational posteriors pass one gate instead: the Pareto shape ``k_hat`` of
their importance ratios (PSIS; Yao et al. 2018) below 0.7, or below PSIS's
sample-size bound ``1 - 1/log10(S)`` where that is lower (fewer than about
2,200 draws; Vehtari et al. 2024).
Gates read raw floats from ``Diagnostics``, never formatted text. An undefined
diagnostic (NaN) fails its gate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field

from wager.kernel.diagnostics import RELIABLE_K, Diagnostics, diagnose, pareto_k_limit
from wager.kernel.posterior import Posterior


class GatePolicy(BaseModel):
    """Thresholds of the gates; part of a run's identity.

    Every threshold is finite: ``max_rhat: .inf`` would switch its gate off
    while the run still reported it as checked.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    max_rhat: float = Field(default=1.01, gt=1.0)
    min_ess_bulk: float = Field(default=400, ge=0)
    min_ess_tail: float = Field(default=400, ge=0)
    max_divergences: int = Field(default=0, ge=0)
    min_bfmi: float = Field(default=0.3, ge=0)
    max_tree_depth_hits: int = Field(default=0, ge=0)
    max_pareto_k: float = Field(default=RELIABLE_K, gt=0)
    """Upper limit on a variational fit's Pareto k. Up to 0.7 the gate holds a fit with few draws to
    PSIS's lower sample-size bound (``wager.kernel.diagnostics.reliable_pareto_k``); a limit above 0.7
    accepts weights PSIS does not vouch for at any draw count, and is taken as given."""


REMEDIES = {
    "r_hat": "the chains disagree: run longer (more warmup and draws), or look for a posterior with several modes",
    "ess_bulk": "too few effective draws: run more draws or chains",
    "ess_tail": "too few effective draws in the tails: run more draws or chains",
    "divergences": "the sampler hit geometry it cannot follow: raise target_accept (inference.target_accept) or reparametrise",
    "e_bfmi": "the momentum resampling explores the energy poorly: look for heavy tails or a funnel in the model",
    "tree_depth": "trajectories stopped at the depth limit: a longer warmup, or a model whose scales differ less",
    "pareto_k": "the variational approximation is too far from the posterior to decide on: if its fit had not converged (too few inference.vi_steps), fit longer; otherwise run NUTS instead (inference: {engine: nuts} in a spec, or --engine nuts), which the convergence gates can check; with thousands of parameters expect it to take far longer than VI, and possibly more warmup and draws than the defaults",
}
"""What to do about each failed gate, for the people who read a blocked run."""


@dataclass(frozen=True)
class Gate:
    """One gate's verdict: ``value`` measured against ``threshold`` with ``rule``."""

    name: str
    value: float
    threshold: float
    rule: str  # "<", "<=", ">="
    passed: bool
    where: str = ""

    def describe(self) -> str:
        verdict = "passed" if self.passed else "FAILED"
        where = f" ({self.where})" if self.where else ""
        return f"{self.name} {verdict}: {_fmt(self.value, self.threshold)}{where}, needs {self.rule} {_fmt(self.threshold)}"

    @property
    def remedy(self) -> str:
        """What to do about it when failed, in a sentence (empty when passed)."""
        return "" if self.passed else REMEDIES.get(self.name, "")


@dataclass(frozen=True)
class GateReport:
    gates: tuple[Gate, ...]
    applicable: bool = True
    note: str = ""

    @property
    def passed(self) -> bool:
        return all(g.passed for g in self.gates)

    @property
    def failed(self) -> tuple[Gate, ...]:
        return tuple(g for g in self.gates if not g.passed)


def check(posterior: Posterior, policy: GatePolicy) -> tuple[GateReport, Diagnostics | None]:
    """Evaluate the convergence gates on ``posterior``.

    Independent draws from an exact posterior are not a Markov chain: the
    convergence gates do not apply and the report says so.
    """
    if posterior.independent:
        return (
            GateReport(gates=(), applicable=False, note="independent draws from the exact posterior: no Markov chain to converge"),
            None,
        )
    if posterior.engine == "vi":
        k_hat = posterior.settings.get("pareto_k", math.nan)
        draws = posterior.chains * posterior.draws_per_chain
        threshold = pareto_k_limit(policy.max_pareto_k, draws)
        where = f"PSIS of {draws} variational draws"
        if threshold < policy.max_pareto_k:
            where += (
                f"; with {draws} draws PSIS is reliable only below 1 - 1/log10({draws}), lower than {_fmt(policy.max_pareto_k)}: "
                "more draws (inference.draws) raise it"
            )
        if "elbo_not_finite_from_step" in posterior.settings:  # wager.kernel.vi._Optimum
            where += (
                f"; the optimisation's loss was not finite from step {posterior.settings['elbo_not_finite_from_step']}, "
                f"so these are the guide's of step {posterior.settings['guide_from_step']}: the model is "
                "undefined where it went, or its steps were too large (inference.vi_learning_rate)"
            )
        gate = _gate("pareto_k", k_hat, threshold, "<", where)
        return GateReport(gates=(gate,), note="variational draws: checked by PSIS Pareto-k, not by convergence diagnostics"), None
    max_depth = posterior.settings.get("max_tree_depth")
    diag = diagnose(posterior, max_tree_depth=max_depth)
    worst_rhat = max(diag.variables, key=lambda n: _nan_high(diag.variables[n].rhat))
    worst_bulk = min(diag.variables, key=lambda n: _nan_low(diag.variables[n].ess_bulk))
    worst_tail = min(diag.variables, key=lambda n: _nan_low(diag.variables[n].ess_tail))
    gates = [
        _gate("r_hat", diag.variables[worst_rhat].rhat, policy.max_rhat, "<", worst_rhat),
        _gate("ess_bulk", diag.variables[worst_bulk].ess_bulk, policy.min_ess_bulk, ">=", worst_bulk),
        _gate("ess_tail", diag.variables[worst_tail].ess_tail, policy.min_ess_tail, ">=", worst_tail),
        _gate("divergences", diag.divergences, policy.max_divergences, "<=", "after warmup"),
    ]
    if diag.bfmi:
        worst_chain = min(range(len(diag.bfmi)), key=lambda c: _nan_low(diag.bfmi[c]))
        gates.append(_gate("e_bfmi", diag.bfmi[worst_chain], policy.min_bfmi, ">=", f"chain {worst_chain}"))
    if max_depth is not None:
        gates.append(
            _gate("tree_depth", diag.tree_depth_hits, policy.max_tree_depth_hits, "<=", f"transitions at depth {max_depth}")
        )
    return GateReport(gates=tuple(gates)), diag


def _gate(name: str, value: float, threshold: float, rule: str, where: str) -> Gate:
    value = float(value)
    if math.isnan(value):
        passed = False
    elif rule == "<":
        passed = value < threshold
    elif rule == "<=":
        passed = value <= threshold
    else:
        passed = value >= threshold
    return Gate(name=name, value=value, threshold=float(threshold), rule=rule, passed=passed, where=where)


def _nan_high(x: float) -> float:
    return math.inf if math.isnan(x) else x


def _nan_low(x: float) -> float:
    return -math.inf if math.isnan(x) else x


def _fmt(x: float, apart_from: float | None = None) -> str:
    """``x`` to 4 significant digits, or as many more as tell it apart from ``apart_from`` (an R-hat
    of 1.00996 against 1.01 reads 1.00996, not 1.01)."""
    if float(x).is_integer() and abs(x) < 1e9:
        return str(int(x))
    digits = 4
    while apart_from is not None and x != apart_from and digits < 17 and f"{x:.{digits}g}" == _fmt(apart_from):
        digits += 1
    return f"{x:.{digits}g}"
