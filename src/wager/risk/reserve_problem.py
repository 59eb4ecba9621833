"""The reserve task: how much to set aside for claims already incurred and not yet
paid, and the capital that covers it at a level.

The model is Meyers' leveled (or correlated) chain ladder on a cumulative paid
triangle (``wager.risk.triangle``, ``wager.risk.reserving``); the decision
reads its posterior predictive reserve: the central reserve is its mean, the
capital its VaR and TVaR at ``level``. Mack's chain ladder
(``wager.risk.mack``) is run beside it, with a lognormal of Mack's reserve and
standard error as the plug-in tail, the usual practice when only two moments
are known.
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
from wager.risk import reserving
from wager.risk.checks import PitCheck, loo_pit, thinned_draws
from wager.risk.mack import mack_reserve
from wager.risk.problem import amount, loss_distribution, mean_mcse, reading
from wager.risk.spec import ReserveSpec
from wager.risk.triangle import LossTriangle, as_triangle, bundled_triangle
from wager.tables import labels, read_table, resolve


@dataclass
class ReserveProblem:
    triangle: LossTriangle
    kind: str = "lcl"
    level: float = 0.995
    per_draw: int = 10
    prior_overrides: Mapping[str, Prior] = field(default_factory=dict)
    source: str = "triangle"

    @cached_property
    def priors(self) -> dict[str, Prior]:
        return with_overrides(reserving.default_priors(self.kind), self.prior_overrides)

    @cached_property
    def model(self) -> Model:
        return reserving.build_model(self.triangle, model=self.kind, priors=self.priors)

    # --- validation (``wager validate``) ------------------------------------------

    unsupported_checks = {
        "prior predictive": "the chain ladder samples its locations in standardised coordinates under a flat (improper) density and "
        "adds the priors of alpha and beta as factors (wager.risk.reserving.lcl_model), so NumPyro cannot draw triangles from "
        "the prior; the predictive check judges the posterior instead",
        "sbc": "simulation-based calibration is not implemented for the chain ladder: its prior is improper in the sampled "
        "coordinates and alpha's prior is centred on the triangle's own largest loss, so data simulated from it would move the "
        "prior (the recovery test in tests/test_risk_reserving.py checks NUTS at known parameters)",
    }

    def posterior_check(self, posterior: Posterior, seed: int = 0) -> PitCheck:
        """LOO-PIT of the observed cells' log cumulative paid losses under their Normals
        (``wager.risk.checks.loo_pit``); ``seed`` is unused (the check is deterministic)."""
        y, observed, mu, sigma = reserving.cell_distributions(self.triangle, thinned_draws(posterior), self.kind)
        z = (y - mu) / sigma
        log_lik = stats.norm.logpdf(z) - np.log(sigma)
        return loo_pit(log_lik[:, observed], stats.norm.cdf(z)[:, observed], "observed cells of the triangle (log cumulative paid)")

    def decide(self, posterior: Posterior) -> Outcome:
        rng = np.random.default_rng(derive_seed(posterior.seed, 1))
        bayes = reserving.predictive_reserve(posterior, self.triangle, model=self.kind, level=self.level, per_draw=self.per_draw, rng=rng)
        mack = mack_reserve(self.triangle)
        mean_se = mean_mcse(bayes.reserve, posterior.chains, self.per_draw)
        mack_var, mack_tvar = lognormal_tail(mack.reserve, mack.se, self.level)
        name = {"lcl": "leveled chain ladder (LCL)", "ccl": "correlated chain ladder (CCL)"}[self.kind]
        level = f"{self.level:g}"
        units = "the triangle's money units"
        origins = [
            {
                "origin": origin,
                "latest": float(self.triangle.latest[i]),
                "ultimate_mean": float(bayes.ultimate_mean[i]),
                "reserve_mean": float(bayes.reserve_mean_by_origin[i]),
                "reserve_sd": float(bayes.reserve_sd_by_origin[i]),
                "mack_reserve": float(mack.reserve_by_origin[i]),
                "mack_se": float(mack.se_by_origin[i]),
            }
            for i, origin in enumerate(self.triangle.origins)
        ]
        summary: dict[str, Any] = {
            "task": "reserve",
            "why": f"set aside {amount(bayes.mean, mean_se)}, the posterior predictive mean of the outstanding claims, "
            f"and hold capital to {amount(bayes.var, bayes.var_se)}, their {level} quantile",
            "source": self.source,
            "units": units,
            "reserve": {
                "model": self.kind,
                "mean": bayes.mean,
                "mean_se": mean_se,
                "sd": bayes.sd,
                "median": bayes.median,
                "level": self.level,
                "var": bayes.var,
                "var_se": bayes.var_se,
                "tvar": bayes.tvar,
                "tvar_se": bayes.tvar_se,
                "draws": int(bayes.reserve.size),
            },
            "mack": {
                "reserve": mack.reserve,
                "se": mack.se,
                "sigma_interpolation": mack.sigma_interpolation,
                "lognormal_var": mack_var,
                "lognormal_tvar": mack_tvar,
            },
            "origins": origins,
        }
        summary["lines"] = [
            f"Reserve {amount(bayes.mean, mean_se)} ({units}): the posterior predictive mean of the outstanding claims of "
            f"{self.triangle.size} origins under Meyers' {name}; sd {amount(bayes.sd, mean_se / np.sqrt(2))}, median {amount(bayes.median, mean_se)}.",
            f"Capital at the {level} level: VaR {amount(bayes.var, bayes.var_se)}, TVaR {amount(bayes.tvar, bayes.tvar_se)}.",
            f"Mack's chain ladder beside it: reserve {amount(mack.reserve)} with standard error {amount(mack.se)}; "
            f"a lognormal with those moments puts the {level} VaR at {amount(mack_var)} and the TVaR at {amount(mack_tvar)}.",
        ]
        summary["loss_distribution"] = loss_distribution(
            "Outstanding claims (the reserve)", units, bayes.reserve, self.level, bayes.var, bayes.tvar,
            {"mean": mack.reserve, "var": mack_var, "tvar": mack_tvar, "label": "Mack, lognormal with its reserve and standard error"},
            {"mean": mean_se, "var": bayes.var_se, "tvar": bayes.tvar_se},
        )
        return Outcome(action="reserve", summary=summary, lines=list(summary["lines"]))


def lognormal_tail(mean: float, sd: float, level: float) -> tuple[float, float]:
    """VaR and TVaR at ``level`` of the lognormal with ``mean`` and ``sd``:
    ``s^2 = log(1 + sd^2 / mean^2)``, ``m = log(mean) - s^2 / 2``; ``VaR = exp(m + s z)``
    and ``TVaR = mean * Phi(s - z) / (1 - level)``, ``z = Phi^-1(level)``."""
    if not (mean > 0 and sd > 0):
        return float(mean), float(mean)
    s = float(np.sqrt(np.log1p((sd / mean) ** 2)))
    z = float(stats.norm.ppf(level))
    var = float(np.exp(np.log(mean) - s * s / 2 + s * z))
    tvar = float(mean * stats.norm.cdf(s - z) / (1 - level))
    return var, tvar


def prepare(spec: ReserveSpec, base_dir: Path | None = None, triangle: Any = None) -> ReserveProblem:
    """The triangle (a shipped sample, a table, or ``triangle`` passed in), checked."""
    source = spec.data
    if triangle is not None:
        with reading("triangle"):
            tri = as_triangle(triangle)
        where = "a triangle passed in"
    elif source.sample is not None:
        with reading("data.sample", column="data.column"):
            tri = bundled_triangle(source.sample, source.column)
        where = f"chainladder sample {source.sample}"
    else:
        assert source.path is not None
        tri = _read_triangle(resolve(source.path, base_dir), source.origin)
        where = source.path
    return ReserveProblem(
        triangle=tri, kind=spec.model, level=spec.decision.level, per_draw=spec.per_draw, prior_overrides=dict(spec.priors), source=where
    )


def _read_triangle(path: Path, origin: str | None) -> LossTriangle:
    """The triangle in the table at ``path``: one row per origin, labelled in column
    ``origin`` (default: the first) as the table shows the labels."""
    frame = read_table(path, "data.path")
    if origin is not None and origin not in frame.columns:
        raise SpecError("data.origin", f"no column {origin!r} in {path.name}; columns: {', '.join(map(str, frame.columns))}")
    origin = origin if origin is not None else frame.columns[0]
    origins = labels(frame[origin], "data.origin", "origin label")
    values = frame.drop(columns=[origin])
    text = [str(c) for c in values.columns if values[c].dtype.kind not in "iuf"]
    if text:
        raise SpecError("data.path", f"triangle column {text[0]!r} must hold numbers (cumulative paid losses, empty below the diagonal)")
    with reading("data.path"):
        return as_triangle(values.to_numpy(dtype=float), origins=origins, developments=values.columns)
