"""Predictive checks: does the fitted model reproduce the data, old and new?

Replicated data come from the model's NumPyro function run under NumPyro's
``uncondition`` handler (every observed site is sampled, not observed), with
the latent sites substituted by posterior draws (or prior draws, for a prior
predictive check). Data that a model receives as arguments (``visitors``,
``sigma``) stay fixed; the observed sites are found by tracing the model once.

* ``prior_predictive_check``: the same statistics of data simulated from
  the priors alone; the data in an outer tail is a prior-data conflict.
* ``posterior_predictive_check``: for test statistics ``T`` (mean, sd, min,
  max of each observed site), the posterior predictive p-value
  ``ppp = P(T(y_rep) >= T(y) | y)`` (Gelman, Meng & Stern 1996). A value in the
  outer ``alpha / 2`` tails (Bonferroni over the statistics) flags a feature of
  the data the model does not reproduce.
* ``check_new_data`` (``wager monitor``): a new window of data under the
  recorded posterior. Randomised PIT values ``P(y_rep < y) + U P(y_rep = y)``
  per observation; coverage of the central 50/80/95% predictive intervals
  against a binomial tolerance; and the log predictive density of the window
  against its own predictive distribution (the LPD of windows simulated from
  the fitted process). Out-of-sample, so PIT values are uniform when the
  process has not moved.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np
from scipy import stats as sps

from wager.errors import CheckNotApplicable
from wager.kernel.calibration import LooPit
from wager.kernel.inference import Model
from wager.kernel.posterior import Posterior

STATISTICS = ("mean", "sd", "min", "max")
COVERAGE_LEVELS = (0.5, 0.8, 0.95)
MAX_DRAWS = 1000
"""Posterior draws used for replication (evenly thinned): the ppp-values' Monte Carlo
error is at most ``sqrt(0.25 / 1000) = 0.016``."""


def observed_sites(model: Model) -> dict[str, str]:
    """Observed site -> the data argument passed as its ``obs=`` (by identity, else by name)."""
    from wager.kernel.nuts import configure_jax

    configure_jax()
    import jax
    from numpyro import handlers
    from numpyro.distributions import Unit

    if model.numpyro_model is None:
        raise ValueError(f"model {model.name!r} has no NumPyro model to replicate data from")
    data = dict(model.data)
    trace = handlers.trace(handlers.seed(model.numpyro_model, jax.random.PRNGKey(0))).get_trace(**data)
    found = {}
    for name, site in trace.items():
        if site["type"] == "sample" and site.get("is_observed") and not isinstance(site["fn"], Unit):  # a factor is no data
            key = next((k for k, v in data.items() if v is site["value"]), None)
            if key is None and name in data:
                key = name
            if key is None:
                # NumPyro may have converted the array: match by value
                key = next((k for k, v in data.items() if _same(v, site["value"])), None)
            if key is None:
                raise CheckNotApplicable(
                    f"the model observes {name!r}, which is none of its data entries (a statistic it computes?): "
                    "there is no data to compare replications of it with (pass the data as obs=, or name the site after it)"
                )
            found[name] = key
    if not found:
        raise CheckNotApplicable(f"model {model.name!r} observes none of its data (no likelihood, or one written as a factor): nothing to replicate")
    return found


def _same(a: Any, b: Any) -> bool:
    try:
        a, b = np.asarray(a), np.asarray(b)
    except Exception:  # noqa: BLE001 - a prior or other object: not the data
        return False
    return a.shape == b.shape and a.dtype.kind in "biuf" and bool(np.array_equal(a, b))


def latent_draws(posterior: Posterior, limit: int = MAX_DRAWS) -> dict[str, np.ndarray]:
    """Posterior draws with chains pooled, evenly thinned to at most ``limit``."""
    flat = {name: posterior.flat(name) for name in posterior.draws}
    total = next(iter(flat.values())).shape[0]
    keep = np.unique(np.linspace(0, total - 1, min(limit, total)).round().astype(int))
    return {name: x[keep] for name, x in flat.items()}


def replicate(model: Model, draws: Mapping[str, np.ndarray], seed: int, data: Mapping[str, Any] | None = None) -> dict[str, np.ndarray]:
    """Observed site -> replicated data, shape ``(S, *site shape)``, one per draw."""
    import jax
    from numpyro.infer import Predictive

    sites = observed_sites(model)
    data = dict(model.data if data is None else data)
    predictive = Predictive(replicating(model.numpyro_model), posterior_samples=dict(draws), return_sites=list(sites))
    out = predictive(jax.random.PRNGKey(seed), **data)
    return {name: np.asarray(out[name]) for name in sites}


def replicating(fn: Any) -> Any:
    """``fn`` with every observed site sampled instead, in the shape of its data.

    Like NumPyro's ``uncondition``, but a likelihood written without a plate
    (``sample("y", Normal(mu, 1), obs=y)``) gets its distribution expanded to
    the observed shape: one replicated value per observation, not one in all.
    """
    from numpyro.handlers import uncondition

    class Replicate(uncondition):
        def process_message(self, msg: dict) -> None:
            if msg["type"] == "sample" and msg.get("is_observed"):
                observed = np.shape(msg["value"])
                dist = msg["fn"]
                batch = observed[: len(observed) - len(dist.event_shape)]
                if tuple(dist.batch_shape) != tuple(batch):
                    msg["fn"] = dist.expand(batch)
            super().process_message(msg)

    return Replicate(fn)


def statistic(name: str, y: np.ndarray, axis: Any = None) -> np.ndarray:
    """``name`` (``mean``, ``sd``, ``min``, ``max``; ``value``: the one element of ``y``) over ``axis``."""
    y = np.asarray(y, dtype=float)
    if name == "value":  # one element, or one per row along axis 1 (reshape refuses more)
        return y.reshape(()) if axis is None else y.reshape(y.shape[0])
    if name == "mean":
        return y.mean(axis=axis)
    if name == "sd":
        return y.std(axis=axis, ddof=0)
    if name == "min":
        return y.min(axis=axis)
    if name == "max":
        return y.max(axis=axis)
    raise ValueError(f"unknown test statistic {name!r}; known: {', '.join(STATISTICS)}")


@dataclass(frozen=True)
class StatisticCheck:
    site: str
    statistic: str
    observed: float
    ppp: float
    flagged: bool

    def to_json(self) -> dict[str, Any]:
        return {"site": self.site, "statistic": self.statistic, "observed": self.observed, "ppp": self.ppp, "flagged": self.flagged}


@dataclass(frozen=True)
class PredictiveCheck:
    checks: tuple[StatisticCheck, ...]
    draws: int
    alpha: float
    loo_pit: LooPit | None = None
    kind: str = "posterior"
    unsimulated: tuple[str, ...] = ()
    """The model's ``numpyro.factor`` terms, which forward simulation leaves out (a prior check draws without them)."""

    @property
    def passed(self) -> bool:
        return not any(c.flagged for c in self.checks) and (self.loo_pit is None or self.loo_pit.passed)

    def lines(self) -> list[str]:
        if self.kind == "prior":
            head = "Prior predictive check: " + ("the priors allow data like these." if self.passed else "the priors put almost no mass on data like these:")
        else:
            head = "Posterior predictive check: " + ("the model reproduces the data." if self.passed else "the model does NOT reproduce the data:")
        out = [head]
        for c in self.checks:
            mark = "FLAGGED " if c.flagged else ""
            what = c.site if c.statistic == "value" else f"{c.statistic}({c.site})"
            out.append(f"  {mark}{what} = {c.observed:.4g}: {self.kind} predictive p-value {c.ppp:.3f}")
        if self.loo_pit is not None:
            out.append("  " + self.loo_pit.line("observations"))
        if self.unsimulated:
            out.append(f"  Not simulated: the factor term{'s' if len(self.unsimulated) > 1 else ''} {', '.join(self.unsimulated)} "
                       f"(numpyro.factor has no distribution to draw from): the data were drawn without {'them' if len(self.unsimulated) > 1 else 'it'}.")
        return out

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "passed": self.passed, "draws": self.draws, "alpha": self.alpha, "checks": [c.to_json() for c in self.checks],
                "loo_pit": self.loo_pit.to_json() if self.loo_pit is not None else None, "unsimulated": list(self.unsimulated)}


def posterior_predictive_check(
    model: Model, posterior: Posterior, seed: int, statistics: tuple[str, ...] = STATISTICS, alpha: float = 0.01
) -> PredictiveCheck:
    """ppp-values of ``statistics`` of each observed site (over its elements), and LOO-PIT."""
    draws = latent_draws(posterior)
    replicated = replicate(model, draws, seed)
    checks = statistic_checks(model, replicated, statistics, alpha)
    pit = replicated_loo_pit(model, draws, replicated, seed, alpha)
    return PredictiveCheck(checks=checks, draws=len(next(iter(draws.values()))), alpha=alpha, loo_pit=pit)


def prior_predictive_check(
    model: Model, seed: int, statistics: tuple[str, ...] = STATISTICS, alpha: float = 0.01, draws: int = MAX_DRAWS,
    units: tuple[str, ...] | None = None,
) -> PredictiveCheck:
    """Where the data's ``statistics`` fall among data simulated from the priors alone.

    A p-value in the outer tails says the priors put (almost) no mass on data
    like these: a prior-data conflict to resolve before trusting a decision.

    ``units``: the names of the elements of every observed site when each has parameters of its own
    with independent priors (an A/B test's arms). Each element's value is then checked against its own
    prior predictive, Bonferroni over them: statistics across such elements (their mean, spread) would
    test the priors' independence, and independent priors wide enough for any test's level make arms as
    close as real ones improbable, however defensible each prior is.
    """
    import jax
    from numpyro.infer import Predictive

    sites = observed_sites(model)
    predictive = Predictive(replicating(model.numpyro_model), num_samples=draws, return_sites=list(sites))
    out = predictive(jax.random.PRNGKey(seed), **dict(model.data))
    replicated = {name: np.asarray(out[name]) for name in sites}
    if units is None:
        checks = statistic_checks(model, replicated, statistics, alpha)
    else:
        for site, key in sites.items():
            if np.size(model.data[key]) != len(units):
                raise ValueError(f"observed site {site!r} has {np.size(model.data[key])} elements, not one per unit ({len(units)})")
        per_test = alpha / (len(sites) * len(units))
        checks = tuple(
            ppp_check(f"{site}[{unit}]", "value", np.asarray(model.data[key], dtype=float).ravel()[i], replicated[site].reshape(draws, -1)[:, i], per_test)
            for site, key in sites.items() for i, unit in enumerate(units)
        )
    return PredictiveCheck(checks=checks, draws=draws, alpha=alpha, kind="prior", unsimulated=factor_sites(model))


def factor_sites(model: Model) -> tuple[str, ...]:
    """The names of the model's ``numpyro.factor`` terms (observed sites of NumPyro's ``Unit``)."""
    import jax
    from numpyro import handlers
    from numpyro.distributions import Unit

    trace = handlers.trace(handlers.seed(model.numpyro_model, jax.random.PRNGKey(0))).get_trace(**dict(model.data))
    return tuple(name for name, site in trace.items() if site["type"] == "sample" and isinstance(site["fn"], Unit))


def statistic_checks(model: Model, replicated: Mapping[str, np.ndarray], statistics: tuple[str, ...], alpha: float) -> tuple[StatisticCheck, ...]:
    """``p = P(T(y_rep) > T(y)) + P(T(y_rep) = T(y)) / 2`` for each statistic of each observed
    site; flagged in the outer ``alpha / 2`` tails, Bonferroni over the statistics."""
    sites = observed_sites(model)
    tests = [(site, stat) for site in sites for stat in statistics if np.asarray(model.data[sites[site]]).size > (1 if stat == "sd" else 0)]
    per_test = alpha / max(len(tests), 1)
    return tuple(
        ppp_check(site, stat, np.asarray(model.data[sites[site]], dtype=float), replicated[site], per_test) for site, stat in tests
    )


def ppp_check(site: str, stat: str, y: np.ndarray, replicated: np.ndarray, level: float) -> StatisticCheck:
    """``p = P(T(y_rep) > T(y)) + P(T(y_rep) = T(y)) / 2`` of ``y`` (any shape) among ``replicated``
    ``(draws, ...)``, flagged in the outer ``level / 2`` tails."""
    t_obs = float(statistic(stat, np.ravel(y)))
    t_rep = statistic(stat, replicated.reshape(replicated.shape[0], -1), axis=1)
    ppp = float(np.mean(t_rep > t_obs) + 0.5 * np.mean(t_rep == t_obs))
    return StatisticCheck(site, stat, t_obs, ppp, flagged=min(ppp, 1 - ppp) < level / 2)


def prior_check_of(site: str, y: np.ndarray, replicated: np.ndarray, statistics: tuple[str, ...] = STATISTICS, alpha: float = 0.01) -> PredictiveCheck:
    """The prior predictive check of data ``y`` against ``replicated`` ``(draws, ...)`` simulated
    from the priors by the domain itself (a model whose likelihood is a factor has no observed
    site to replicate): the ``statistics``' ppp-values, Bonferroni over them."""
    checks = tuple(ppp_check(site, stat, y, replicated, alpha / len(statistics)) for stat in statistics)
    return PredictiveCheck(checks=checks, draws=int(replicated.shape[0]), alpha=alpha, kind="prior")


def replicated_loo_pit(model: Model, draws: Mapping[str, np.ndarray], replicated: Mapping[str, np.ndarray], seed: int, alpha: float) -> LooPit:
    """LOO-PIT of every observed element (``wager.kernel.calibration.loo_pit``), each draw's predictive
    CDF at ``y_i`` estimated by its replicate: ``F_s(y_i) = [y_rep_si < y_i] + U_i [y_rep_si = y_i]``,
    ``U_i`` uniform (randomised for ties, so discrete data give uniform values too)."""
    from numpyro.infer import log_likelihood

    from wager.kernel.calibration import loo_pit

    sites = observed_sites(model)
    pointwise = log_likelihood(model.numpyro_model, dict(draws), **dict(model.data))
    rng = np.random.default_rng(seed)
    log_lik, cdf = [], []
    for site, key in sites.items():
        y = np.asarray(model.data[key], dtype=float).ravel()
        rep = replicated[site].reshape(-1, y.size).astype(float)
        log_lik.append(np.asarray(pointwise[site], dtype=float).reshape(-1, y.size))
        cdf.append((rep < y) + rng.random(y.size) * (rep == y))
    return loo_pit(np.concatenate(log_lik, axis=1), np.concatenate(cdf, axis=1), alpha)


# --- new data (wager monitor) -------------------------------------------------------


@dataclass(frozen=True)
class Coverage:
    level: float
    inside: int
    total: int
    low: int
    high: int

    @property
    def alert(self) -> bool:
        return not self.low <= self.inside <= self.high

    def to_json(self) -> dict[str, Any]:
        return {"level": self.level, "inside": self.inside, "total": self.total, "tolerance": [self.low, self.high], "alert": self.alert}


@dataclass(frozen=True)
class DataCheck:
    """How a new window of data sits in the recorded posterior predictive distribution."""

    pit: np.ndarray
    coverage: tuple[Coverage, ...]
    lpd: float
    lpd_reference: tuple[float, float, float]
    """Quantiles 1%, 50%, 99% of the LPD of windows simulated from the fitted process."""
    lpd_quantile: float
    """Fraction of simulated windows with a lower LPD than the new one."""
    alpha: float
    reasons: tuple[str, ...] = field(default_factory=tuple)
    realized: "RealizedLoss | None" = None

    @property
    def alert(self) -> bool:
        return bool(self.reasons)

    def lines(self) -> list[str]:
        out = ["ALERT: the model no longer reproduces the new data." if self.alert else "No alert: the new data look like the fitted process."]
        out += [f"  {r}" for r in self.reasons]
        for c in self.coverage:
            out.append(f"  {c.level:.0%} predictive interval covers {c.inside} of {c.total} observations (tolerance {c.low}-{c.high}).")
        out.append(
            f"  Log predictive density {self.lpd:.4g}; windows from the fitted process: median {self.lpd_reference[1]:.4g}, "
            f"1% quantile {self.lpd_reference[0]:.4g} (this window is above {self.lpd_quantile:.1%} of them)."
        )
        if self.realized is not None:
            out.append("  " + self.realized.line())
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "alert": self.alert,
            "reasons": list(self.reasons),
            "pit": [float(p) for p in self.pit],
            "coverage": [c.to_json() for c in self.coverage],
            "lpd": self.lpd,
            "lpd_reference": {"q01": self.lpd_reference[0], "median": self.lpd_reference[1], "q99": self.lpd_reference[2]},
            "lpd_quantile": self.lpd_quantile,
            "alpha": self.alpha,
            "realized_loss": self.realized.to_json() if self.realized is not None else None,
        }


@dataclass(frozen=True)
class RealizedLoss:
    """What the recorded decision gave up in the new window, against what was expected.

    ``expected`` is the recorded expected loss of the action; ``reference`` the
    realized loss of windows simulated from the recorded posterior predictive
    (quantiles 50% and ``1 - alpha``): above the latter, the decision is doing
    worse than the model said it would.
    """

    action: str
    realized: float
    expected: float | None
    median: float
    upper: float
    quantile: float

    def line(self) -> str:
        expected = f"expected {self.expected:.4g} when decided; " if self.expected is not None else ""
        return (
            f"Realized loss of '{self.action}' in this window: {self.realized:.4g} ({expected}windows from the fitted "
            f"process: median {self.median:.4g}, upper tolerance {self.upper:.4g})."
        )

    def to_json(self) -> dict[str, Any]:
        return {"action": self.action, "realized": self.realized, "expected": self.expected, "reference_median": self.median,
                "reference_upper": self.upper, "quantile": self.quantile}


def check_new_data(
    model: Model,
    draws: Mapping[str, np.ndarray],
    seed: int,
    alpha: float = 0.01,
    windows: int = 200,
    realized_loss: Any = None,
    action: str | None = None,
    expected_loss: float | None = None,
) -> DataCheck:
    """Check the data in ``model`` (a new window) against posterior ``draws`` of an earlier fit.

    ``draws`` are pooled latent draws, shape ``(S, ...)``. Alerts when a coverage
    count leaves its two-sided ``1 - alpha`` binomial tolerance, or the window's
    LPD falls below the ``alpha`` quantile of simulated windows' LPDs.
    """
    sites = observed_sites(model)
    replicated = replicate(model, draws, seed)
    rng = np.random.default_rng(seed)
    pits, inside = [], {level: 0 for level in COVERAGE_LEVELS}
    for site, key in sites.items():
        y = np.asarray(model.data[key], dtype=float).ravel()
        rep = replicated[site].reshape(replicated[site].shape[0], -1).astype(float)
        below, equal = np.mean(rep < y, axis=0), np.mean(rep == y, axis=0)
        pits.append(below + rng.random(y.size) * equal)
        for level in COVERAGE_LEVELS:
            lo, hi = np.quantile(rep, [(1 - level) / 2, (1 + level) / 2], axis=0)
            inside[level] += int(np.sum((y >= lo) & (y <= hi)))
    pit = np.concatenate(pits)
    n = pit.size
    coverage = []
    for level in COVERAGE_LEVELS:
        low, high = sps.binom.ppf(alpha / 2, n, level), sps.binom.isf(alpha / 2, n, level)
        coverage.append(Coverage(level, inside[level], n, int(low), int(high)))
    keys = tuple(sites.values())
    lpd_of = _lpd_function(model, draws, keys)
    lpd = float(lpd_of(*(np.asarray(model.data[k]) for k in keys)))
    picked = rng.choice(len(next(iter(replicated.values()))), size=min(windows, len(next(iter(replicated.values())))), replace=False)
    import jax

    reference = np.asarray(jax.vmap(lpd_of)(*(replicated[s][picked].astype(np.asarray(model.data[sites[s]]).dtype) for s in sites)))
    quantile = float(np.mean(reference < lpd))
    reasons = [f"{c.level:.0%} predictive interval covers {c.inside} of {c.total}, outside the tolerance {c.low}-{c.high}" for c in coverage if c.alert]
    if quantile < alpha:
        reasons.append(f"log predictive density {lpd:.4g} is below {1 - quantile:.1%} of windows simulated from the fitted process")
    q = np.quantile(reference, [0.01, 0.5, 0.99])
    realized = None
    if realized_loss is not None and action is not None:
        observed = realized_loss(action, model.data)
        if observed is not None:
            simulated = np.array([realized_loss(action, {**model.data, **{sites[s]: replicated[s][i] for s in sites}}) for i in picked])
            upper = float(np.quantile(simulated, 1 - alpha))
            realized = RealizedLoss(action, observed, expected_loss, float(np.median(simulated)), upper, float(np.mean(simulated < observed)))
            if observed > upper:
                reasons.append(f"the realized loss of '{action}' ({observed:.4g}) is above {1 - alpha:.0%} of windows simulated from the fitted process")
    return DataCheck(pit=pit, coverage=tuple(coverage), lpd=lpd, lpd_reference=(float(q[0]), float(q[1]), float(q[2])),
                     lpd_quantile=quantile, alpha=alpha, reasons=tuple(reasons), realized=realized)


def _lpd_function(model: Model, draws: Mapping[str, np.ndarray], keys: tuple[str, ...]) -> Any:
    """A compiled ``obs -> log mean_s p(obs | theta_s)``: the log predictive density of
    the observed entries ``keys``, the other data fixed."""
    import jax
    from jax.scipy.special import logsumexp
    from numpyro.infer import log_likelihood

    fixed = {k: v for k, v in model.data.items() if k not in keys}
    draws = {k: np.asarray(v) for k, v in draws.items()}
    size = len(next(iter(draws.values())))

    def lpd(*observed: Any) -> Any:
        ll = log_likelihood(model.numpyro_model, draws, **fixed, **dict(zip(keys, observed)))
        total = sum(v.reshape(v.shape[0], -1).sum(axis=1) for v in ll.values())
        return logsumexp(total) - np.log(size)

    return jax.jit(lpd)
