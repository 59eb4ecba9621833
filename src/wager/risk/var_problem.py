"""The VaR task: the capital to hold against tomorrow's loss on a position.

GARCH(1,1)-t on daily percentage returns (``wager.risk.garch``); the decision
reads the posterior predictive of tomorrow's loss (parameter uncertainty
included): its VaR and Expected Shortfall at ``level``, in percent of the
position's value. ``arch``'s maximum-likelihood fit gives the plug-in figures
beside them. An optional rolling backtest scores one-day VaR forecasts over
the last ``days`` returns (Kupiec, Christoffersen, Basel traffic light).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from wager.errors import SpecError
from wager.kernel.digits import fmt
from wager.kernel.inference import InferenceConfig, Model
from wager.kernel.outcome import Outcome
from wager.kernel.posterior import Posterior
from wager.kernel.priors import Prior, with_overrides
from wager.kernel.seeds import derive_seed
from wager.risk import garch
from wager.risk.checks import PitCheck, loo_pit, thinned_draws
from wager.risk.problem import loss_distribution, mean_mcse, reading
from wager.risk.spec import BacktestSpec, VarSpec
from wager.tables import read_table, resolve, row_at

UNITS = "percent of the position's value"
SAMPLE_PRICE = {"sp500": "Adj Close"}
"""The price column a shipped sample is read from unless the spec names another."""


@dataclass
class VarProblem:
    returns: np.ndarray
    """Every daily percentage return the data give, oldest first ``(n,)``."""
    fit_days: int
    level: float = 0.99
    per_draw: int = 100
    prior_overrides: Mapping[str, Prior] = field(default_factory=dict)
    backtest: BacktestSpec | None = None
    inference: InferenceConfig = field(default_factory=InferenceConfig)
    source: str = "returns"

    @property
    def fitted(self) -> np.ndarray:
        """The returns the model is fitted to: the last ``fit_days``."""
        return self.returns[-self.fit_days :]

    @property
    def decision_data(self) -> dict[str, np.ndarray]:
        """Returns the backtest reads beyond the fitted ones: part of the run's identity."""
        return {"returns": self.returns} if self.backtest is not None else {}

    @cached_property
    def priors(self) -> dict[str, Prior]:
        return with_overrides(garch.default_priors(), self.prior_overrides)

    @cached_property
    def model(self) -> Model:
        priors = self.priors  # outside reading("data"): a bad override is named at its own field, priors.<name>
        with reading("data"):
            return garch.build_model(self.fitted, priors)

    # --- validation (``wager validate``) ------------------------------------------

    unsupported_checks = {
        "prior predictive": "GARCH's likelihood is one factor over the variance recursion (wager.risk.garch.garch_model), not an "
        "observed site, so the shared check has no returns to simulate from the prior; the predictive check judges the posterior instead",
        "sbc": "simulation-based calibration of GARCH(1,1)-t is not implemented: its likelihood is a factor, so SBC needs a simulator "
        "hook (wager.risk.garch.simulate_garch_t is one) and a NUTS fit of the whole history per simulation (the recovery test in "
        "tests/test_risk_garch.py checks NUTS at known parameters)",
    }

    def posterior_check(self, posterior: Posterior, seed: int = 0) -> PitCheck:
        """LOO-PIT of the fitted daily returns under their one-step Student-t
        (``wager.risk.checks.loo_pit``); ``seed`` is unused (the check is deterministic)."""
        from scipy import stats

        draws = thinned_draws(posterior, ("mu", "omega", "alpha", "beta", "nu"))
        mu, nu = draws["mu"][:, None], draws["nu"][:, None]
        scale = garch.one_step_scales(self.fitted, draws)
        t = (self.fitted - mu) / scale
        return loo_pit(stats.t.logpdf(t, nu) - np.log(scale), stats.t.cdf(t, nu), "fitted daily returns (one step ahead)")

    def decide(self, posterior: Posterior) -> Outcome:
        seed = derive_seed(posterior.seed, 1)
        losses = garch.predictive_losses(posterior, np.random.default_rng(seed), self.per_draw)
        bayes = garch.one_day_var_es(posterior, self.level, np.random.default_rng(seed), self.per_draw)  # the same losses
        ml = garch.fit_arch(self.fitted)
        plug = garch.plug_in_var_es(ml.mu, ml.sigma_next, ml.nu, self.level)
        sigma_next = posterior.flat("sigma_next")
        level = f"{self.level:g}"
        summary: dict[str, Any] = {
            "task": "var",
            "why": f"hold capital for a one-day loss of {fmt(bayes.var, bayes.var_se)}% of the position, "
            f"its {level} VaR under the posterior predictive (parameter uncertainty included)",
            "source": self.source,
            "units": UNITS,
            "returns": {"fitted": int(self.fit_days), "available": int(self.returns.size), "last": float(self.returns[-1])},
            "var": {
                "level": self.level,
                "var": bayes.var,
                "var_se": bayes.var_se,
                "es": bayes.es,
                "es_se": bayes.es_se,
                "method": bayes.method,
                "sigma_next_mean": float(sigma_next.mean()),
            },
            "plug_in": {
                "var": plug.var,
                "es": plug.es,
                "method": "arch maximum likelihood, Student-t closed form",
                "mu": ml.mu, "omega": ml.omega, "alpha": ml.alpha, "beta": ml.beta, "nu": ml.nu, "sigma_next": ml.sigma_next,
            },
        }
        lines = [
            f"One-day {level} VaR {fmt(bayes.var, bayes.var_se)}% and Expected Shortfall {fmt(bayes.es, bayes.es_se)}% of the position "
            f"(GARCH(1,1)-t posterior predictive on the last {self.fit_days} daily returns, {losses.size:,} simulated days).",
            f"Plug-in (arch maximum likelihood): VaR {plug.var:.3f}%, ES {plug.es:.3f}%; "
            f"tomorrow's volatility {float(sigma_next.mean()):.3f}% (posterior mean) against {ml.sigma_next:.3f}% (ML).",
        ]
        if self.backtest is not None:
            summary["backtest"] = self._backtest(posterior.seed)
            b = summary["backtest"]
            lines.append(
                f"Backtest of {b['days']} one-day {level} VaR forecasts ({b['engine']}, refitted every {b['refit_every']} days on "
                f"{b['window']}-day windows): {b['exceptions']} exceptions against {b['expected_exceptions']:.3g} expected; "
                f"Kupiec p = {b['kupiec_p_value']:.3f}, Christoffersen p = {b['christoffersen_p_value']:.3f}; Basel zone {b['zone']}."
            )
        summary["lines"] = lines
        summary["loss_distribution"] = loss_distribution(
            "Tomorrow's loss", UNITS, losses, self.level, bayes.var, bayes.es,
            {"mean": -ml.mu, "var": plug.var, "tvar": plug.es, "label": "arch maximum likelihood (plug-in)"},
            {"mean": mean_mcse(losses.ravel(), posterior.chains, self.per_draw), "var": bayes.var_se, "tvar": bayes.es_se},
        )
        return Outcome(action="hold capital", summary=summary, lines=lines)

    def _backtest(self, seed: int) -> dict[str, Any]:
        from wager.risk.backtest import backtest

        spec = self.backtest
        assert spec is not None
        history = self.returns[-(spec.window + spec.days) :]
        config = self.inference
        rolled = garch.rolling_backtest(
            history, spec.window, spec.refit_every, self.level, spec.engine, priors=self.priors,
            chains=config.chains, warmup=config.warmup, draws=config.draws, per_draw=self.per_draw, seed=seed,
        )
        scored = backtest(rolled.losses, rolled.var, self.level)
        return {
            "engine": spec.engine,
            "window": spec.window,
            "refit_every": spec.refit_every,
            "days": scored.n_days,
            "refits": int(rolled.refits.size),
            "exceptions": scored.n_exceptions,
            "expected_exceptions": scored.expected_exceptions,
            "kupiec": scored.pof,
            "kupiec_p_value": scored.pof_p_value,
            "christoffersen": scored.independence,
            "christoffersen_p_value": scored.independence_p_value,
            "conditional_coverage": scored.conditional_coverage,
            "conditional_coverage_p_value": scored.conditional_coverage_p_value,
            "zone": scored.zone,
            "divergences": rolled.divergences,
            "fit_seconds": rolled.fit_seconds,
        }


def prepare(spec: VarSpec, base_dir: Path | None = None, frame: Any = None) -> VarProblem:
    """Daily percentage returns from a shipped sample, a table, or ``frame`` passed in."""
    source = spec.data
    if frame is None and source.sample is not None:
        from arch.data import sp500  # imported here: only the shipped sample needs arch's data

        frame = sp500.load()
        where = f"arch sample {source.sample}"
    elif frame is None:
        assert source.path is not None
        frame = read_table(resolve(source.path, base_dir), "data.path")
        where = source.path
    else:
        where = "a table passed in"
    if source.returns is not None:
        returns = _column(frame, source.returns, "data.returns")
    else:
        column = source.price or SAMPLE_PRICE.get(source.sample or "", "")
        prices = _column(frame, column, "data.price")
        if np.any(prices <= 0):
            row = int(np.argmax(prices <= 0))
            raise SpecError("data.price", f"column {column!r} must hold prices > 0: {row_at(row)} has {prices[row]:g}")
        returns = 100 * np.diff(np.log(prices))
    if source.last is not None and source.last > returns.size:
        raise SpecError("data.last", f"must not exceed the {returns.size} daily returns in the data; got {source.last}")
    fit_days = source.last or returns.size
    if fit_days < garch.MIN_RETURNS:
        raise SpecError("data", f"need at least {garch.MIN_RETURNS} daily returns to fit GARCH(1,1); got {returns.size}")
    with reading("data.returns" if source.returns is not None else "data.price"):
        garch.check_returns(returns[-fit_days:])
    if spec.backtest is not None and spec.backtest.window + spec.backtest.days > returns.size:
        raise SpecError(
            "backtest.days",
            f"window + days ({spec.backtest.window} + {spec.backtest.days}) must not exceed the {returns.size} daily returns in the data",
        )
    return VarProblem(
        returns=returns, fit_days=fit_days, level=spec.decision.level, per_draw=spec.per_draw, prior_overrides=dict(spec.priors),
        backtest=spec.backtest, inference=spec.inference, source=where,
    )


def _column(frame: Any, name: str, field: str) -> np.ndarray:
    if name not in frame.columns:
        raise SpecError(field, f"no column {name!r}; columns: {', '.join(map(str, frame.columns))}")
    try:
        values = np.asarray(frame[name], dtype=float)
    except (TypeError, ValueError):
        raise SpecError(field, f"column {name!r} must hold numbers") from None
    bad = ~np.isfinite(values)
    if bad.any():
        raise SpecError(field, f"column {name!r} must be finite (no NaN or empty cells): {int(bad.sum())} bad value(s), the first at {row_at(np.argmax(bad))}")
    return values
