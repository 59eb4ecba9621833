"""The claims task: the capital to hold against next period's total claims.

Claim frequency (negative binomial with an exposure offset) and severity
(lognormal), both pooled across rating classes (``wager.risk.claims``), on the
book's tables (``wager.risk.portfolio``). The
decision reads the posterior predictive of next period's aggregate loss: its
mean (the expected claims), its VaR and TVaR at ``level`` (the capital). The
plug-in runs the same simulation with the parameters fixed at their posterior
medians: what a fitted-then-frozen model reports, narrower in the tail.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Mapping

import numpy as np
from scipy import stats

from wager.errors import SpecError
from wager.kernel.inference import Model
from wager.kernel.outcome import Outcome
from wager.kernel.posterior import Posterior
from wager.kernel.priors import Prior, with_overrides
from wager.kernel.seeds import derive_seed
from wager.risk import aggregate, claims
from wager.risk.checks import AllOf, loo_pit, thinned_draws
from wager.risk.portfolio import Portfolio, check_portfolio
from wager.risk.problem import amount, loss_distribution, mean_mcse
from wager.risk.spec import ClaimsSpec
from wager.tables import labels, read_table, resolve

UNITS = "the claims table's currency"


@dataclass
class ClaimsProblem:
    portfolio: Portfolio
    exposure: np.ndarray
    """Next period's exposure per class ``(C,)``."""
    level: float = 0.995
    per_draw: int = 20
    plug_in_periods: int = 100_000
    prior_overrides: Mapping[str, Prior] = field(default_factory=dict)
    source: str = "claims"

    @property
    def decision_data(self) -> dict[str, np.ndarray]:
        """Next period's exposure, which the simulation reads: part of the run's identity."""
        return {"next_exposure": self.exposure}

    @cached_property
    def priors(self) -> dict[str, Prior]:
        return with_overrides(claims.default_priors(), self.prior_overrides)

    @cached_property
    def model(self) -> Model:
        return claims.build_model(self.portfolio, self.priors)

    # --- validation (``wager validate``) ------------------------------------------

    unsupported_checks = {
        "prior predictive": "the severity likelihood is a factor over per-class statistics of the claim amounts "
        "(wager.risk.claims.claims_model), which the shared check cannot simulate; the predictive check judges the posterior on counts and amounts",
        "sbc": "simulation-based calibration is not implemented for the claims model: its priors are centred on the book's own "
        "overall claim rate and median claim (wager.risk.claims.reference_levels), so data simulated from them would move the "
        "priors, and the severity likelihood is a factor the shared simulator cannot draw (the recovery test in "
        "tests/test_risk_claims.py checks NUTS at known parameters)",
    }

    def posterior_check(self, posterior: Posterior, seed: int = 0) -> AllOf:
        """LOO-PIT of the frequency table's claim counts (negative binomial, randomised
        for ties) and of the claims' log amounts (Normal per class), each against its
        posterior predictive (``wager.risk.checks.loo_pit``)."""
        book = self.portfolio
        draws = thinned_draws(posterior, claims.PARAMETERS)
        rate, phi, loc, sigma = (draws[k] for k in claims.PARAMETERS)
        mean = book.exposure * rate[:, book.row_class]
        n, p = phi[:, None], phi[:, None] / (phi[:, None] + mean)
        u = np.random.default_rng(derive_seed(seed, 3)).random(book.counts.size)
        counts = stats.nbinom(n, p)
        count_cdf = counts.cdf(book.counts - 1) + u * counts.pmf(book.counts)
        z = (np.log(book.amounts) - loc[:, book.claim_class]) / sigma[:, None]
        return AllOf((
            loo_pit(counts.logpmf(book.counts), count_cdf, "claim counts of the frequency table's rows"),
            loo_pit(stats.norm.logpdf(z) - np.log(sigma[:, None]), stats.norm.cdf(z), "claim amounts (log, by class)"),
        ))

    def decide(self, posterior: Posterior) -> Outcome:
        seed = derive_seed(posterior.seed, 1)
        book = self.portfolio
        predictive = aggregate.aggregate_predictive(
            posterior, book, np.random.default_rng(seed), exposure=self.exposure, level=self.level, per_draw=self.per_draw
        )
        plug = aggregate.aggregate_plug_in(
            aggregate.posterior_medians(posterior), book, np.random.default_rng(derive_seed(seed, 1)),
            exposure=self.exposure, level=self.level, periods=self.plug_in_periods,
        )
        total = predictive.total
        mean_se = mean_mcse(total, posterior.chains, self.per_draw)
        level = f"{self.level:g}"
        rate, mean_severity = posterior.flat("rate"), posterior.flat("mean_severity")
        classes = [
            {
                "class": str(label),
                "exposure": float(self.exposure[c]),
                "history_exposure": float(book.class_exposure()[c]),
                "history_claims": int(book.counts[book.row_class == c].sum()),
                "rate_mean": float(rate[:, c].mean()),
                "mean_severity": float(mean_severity[:, c].mean()),
                "expected_loss": float(predictive.by_class[:, c].mean()),
            }
            for c, label in enumerate(book.classes)
        ]
        summary: dict[str, Any] = {
            "task": "claims",
            "why": f"hold capital of {amount(predictive.var, predictive.var_se)} for next period's claims, their {level} VaR under "
            f"the posterior predictive (parameter uncertainty included); {amount(float(total.mean()), mean_se)} of it is expected",
            "source": self.source,
            "units": UNITS,
            "aggregate": {
                "mean": float(total.mean()),
                "mean_se": mean_se,
                "sd": float(total.std(ddof=1)),
                "level": self.level,
                "var": predictive.var,
                "var_se": predictive.var_se,
                "tvar": predictive.tvar,
                "tvar_se": predictive.tvar_se,
                "periods": int(total.size),
                "method": predictive.method,
            },
            "plug_in": {
                "mean": float(plug.total.mean()),
                "var": plug.var,
                "var_se": plug.var_se,
                "tvar": plug.tvar,
                "tvar_se": plug.tvar_se,
                "method": plug.method + " (posterior medians)",
            },
            "classes": classes,
        }
        lines = [
            f"Next period's total claims over {book.n_classes} classes: expected {amount(float(total.mean()), mean_se)} ({UNITS}), "
            f"sd {amount(float(total.std(ddof=1)), mean_se / np.sqrt(2))}; from {int(book.counts.sum()):,} claims counted and {book.amounts.size:,} amounts.",
            f"Capital at the {level} level: VaR {amount(predictive.var, predictive.var_se)}, TVaR {amount(predictive.tvar, predictive.tvar_se)} "
            f"(posterior predictive, {total.size:,} simulated periods).",
            f"Plug-in (parameters fixed at their posterior medians): VaR {amount(plug.var, plug.var_se)}, TVaR {amount(plug.tvar, plug.tvar_se)}; "
            f"the parameters' uncertainty adds {amount(predictive.var - plug.var, float(np.hypot(predictive.var_se, plug.var_se)))} to the VaR.",
        ]
        summary["lines"] = lines
        summary["loss_distribution"] = loss_distribution(
            "Next period's total claims", UNITS, total, self.level, predictive.var, predictive.tvar,
            {"mean": float(plug.total.mean()), "var": plug.var, "tvar": plug.tvar, "label": "parameters at their posterior medians (plug-in)",
             "var_se": plug.var_se, "tvar_se": plug.tvar_se},
            {"mean": mean_se, "var": predictive.var_se, "tvar": predictive.tvar_se},
        )
        return Outcome(action="hold capital", summary=summary, lines=lines)


def prepare(spec: ClaimsSpec, base_dir: Path | None = None, frequency: Any = None, amounts: Any = None) -> ClaimsProblem:
    """The frequency and claims tables (files, or DataFrames passed in), checked."""
    source = spec.data
    if frequency is None:
        frequency = read_table(resolve(source.frequency, base_dir), "data.frequency")
    if amounts is None:
        amounts = read_table(resolve(source.claims, base_dir), "data.claims")
    f_class, exposure, counts = (_column(frequency, name, "data.frequency") for name in (source.class_column, source.exposure, source.count))
    c_class, amount_ = (_column(amounts, name, "data.claims") for name in (source.class_column, source.amount))
    columns = {  # the module's field -> (the spec's table, the column it read)
        "classes": ("data.frequency", source.class_column),
        "exposure": ("data.frequency", source.exposure),
        "counts": ("data.frequency", source.count),
        "claims.amount": ("data.claims", source.amount),
        "claims.class": ("data.claims", source.class_column),
    }
    try:
        book = check_portfolio(_class_labels(f_class, "classes"), exposure, counts, _class_labels(c_class, "claims.class"), amount_)
    except SpecError as exc:
        table, column = columns.get(exc.field, ("data", None))
        raise SpecError(table, f"column {column!r} {exc.rule}" if column else exc.rule) from None
    try:
        next_exposure = aggregate.next_exposure(book, spec.exposure)
    except SpecError as exc:
        raise SpecError("exposure", exc.rule) from None
    return ClaimsProblem(
        portfolio=book, exposure=next_exposure, level=spec.decision.level, per_draw=spec.per_draw,
        plug_in_periods=spec.plug_in_periods, prior_overrides=dict(spec.priors), source=f"{source.frequency}, {source.claims}",
    )


def _column(table: Any, name: str, field: str) -> np.ndarray:
    if name not in table.columns:
        raise SpecError(field, f"no column {name!r}; columns: {', '.join(map(str, table.columns))}")
    return np.asarray(table[name])


def _class_labels(cells: Any, field: str) -> list[str]:
    """A table's class column as text, as the table shows it (``wager.tables.labels``), so
    that the two tables' labels match whichever types each was read as."""
    return [str(label) for label in labels(cells, field, "class")]
