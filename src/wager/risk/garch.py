"""GARCH(1,1) with Student-t innovations: one-day Value-at-Risk and Expected
Shortfall with the parameters' uncertainty carried into the forecast.

The model, on daily percentage returns ``r_t = 100 log(P_t / P_{t-1})``,
``t = 1..n`` (Bollerslev 1986, 1987)::

    r_t         = mu + e_t
    e_t         = sigma_t sqrt((nu - 2) / nu) T_t,       T_t ~ Student-t(nu)
    sigma_t^2   = omega + alpha e_{t-1}^2 + beta sigma_{t-1}^2
    sigma_1^2   = (1/n) sum_t (r_t - rbar)^2              (the sample variance)

so ``sigma_t`` is the conditional standard deviation of ``r_t`` (the
innovation ``sqrt((nu - 2)/nu) T`` has unit variance, as in ``arch``'s
``dist="t"``). ``sigma_{n+1}``, the next day's conditional sd, is recorded as
the deterministic ``sigma_next``.

Parameterisation. Stationarity (``alpha + beta < 1``) and positivity hold by
construction: the model samples ``persistence = alpha + beta`` in (0, 1),
``alpha_share = alpha / (alpha + beta)`` in (0, 1), the log of the
unconditional variance ``v = omega / (1 - alpha - beta)``, and ``nu - 2 > 0``;
then ``alpha = persistence * alpha_share``, ``beta = persistence * (1 -
alpha_share)``, ``omega = v (1 - persistence)``, all recorded as deterministics.

Start of the recursion. ``sigma_1^2`` is the sample variance of the data being
fitted. ``arch`` instead *backcasts*: its ``sigma_1^2 = omega + (alpha + beta)
b`` with ``b`` the exponentially weighted (0.94) mean of the first 75 squared
residuals, a local rather than a whole-sample level. The two starts differ by a
term that decays as ``beta^t`` (about 0.9^t: under 1% after 45 days), so they
change the first weeks' likelihood terms and nothing that a one-day forecast
at the end of a window of several hundred days depends on.

Forecasts. ``one_day_var_es`` draws the next day's return from each posterior
draw of ``(mu, sigma_next, nu)``: the *predictive* VaR and ES, which include
the parameters' uncertainty. ``plug_in_var_es`` is the closed form at point
estimates (what a maximum-likelihood fit reports). ``rolling_backtest`` makes
one-day VaR forecasts over a history, refitting every few days, for scoring by
a VaR backtest. Losses are ``-return``, in the returns' units (percent).
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass, field
from typing import Any, Literal, Mapping, Unpack

import numpy as np

from wager.errors import SpecError
from wager.kernel.inference import Model, ProgressFn
from wager.kernel.posterior import Posterior
from wager.kernel.priors import Prior
from wager.kernel.seeds import derive_seed
from wager.risk.problem import NutsSettings, fit_by_nuts
from wager.risk.tail import chain_tail_summary, check_level, tail_summary

MIN_RETURNS = 100
"""Fewest returns a fit accepts: with fewer, alpha and beta are barely identified."""
MIN_SD = 0.05
"""Smallest sample sd (percent a day) taken as percentage returns; below it the data look like fractions."""
MAX_RETURN = 1000.0
"""Largest size of a daily percentage return taken as one: 1000 is a price moving by a factor
e^10 (about 22,000) in a day. Far beyond it the data are not percentage returns, and
their squares overflow."""
UNROLL = 1
"""Time steps per loop iteration of the variance recursion's scan: on CPU, unrolling 8 steps made a
gradient of 2000 days 3x slower (840 against 260 microseconds) and compiling slower too."""
SOURCE = "wager.risk defaults; Bollerslev (1987); Ardia & Hoogerheide (2010), bayesGARCH; Juarez & Steel (2010)"


def default_priors() -> dict[str, Prior]:
    """The documented default priors, for daily returns in percent."""

    def p(family: str, why: str, **params: float) -> Prior:
        return Prior(family=family, params=params, why=why, source=SOURCE)

    return {
        "mu": p("normal", "Mean daily return in percent: a few hundredths for equity indices, within +-2 for anything traded.", loc=0.0, scale=1.0),
        "persistence": p("beta", "alpha + beta: fitted daily GARCH models give 0.9-0.99; Beta(15, 1.5) has 90% in (0.77, 0.99) and no mass piled at 1.", alpha=15.0, beta=1.5),
        "alpha_share": p("beta", "alpha / (alpha + beta): news moves variance a little, typically 0.05-0.15; Beta(2, 15) has 90% in (0.02, 0.26).", alpha=2.0, beta=15.0),
        "log_unconditional_variance": p("normal", "Long-run daily variance of percent returns about 1 (sd 1%/day), within a factor of e^4 (sd 0.14% to 7%/day).", loc=0.0, scale=2.0),
        "nu_minus_2": p("gamma", "Degrees of freedom above 2 (finite variance): Gamma(2, 0.1), heavy tails possible, Normal-like allowed (Juarez & Steel 2010).", shape=2.0, rate=0.1),
    }


# --- the model -----------------------------------------------------------------


def garch_model(r: Any, *, priors: Mapping[str, Prior], horizon_sigma: bool = True) -> None:
    """GARCH(1,1)-t on returns ``r`` ``(n,)``; ``priors`` as ``default_priors()``.

    Samples ``mu``, ``persistence``, ``alpha_share``, ``log_unconditional_variance``,
    ``nu_minus_2``; records ``alpha``, ``beta``, ``omega``, ``nu`` and (with
    ``horizon_sigma``) ``sigma_next``, the conditional sd of day ``n + 1``.
    """
    import jax.numpy as jnp
    import numpyro

    def prior(name: str) -> Any:
        return numpyro.sample(name, priors[name].to_numpyro())

    r = jnp.asarray(r)
    mu = prior("mu")
    persistence = prior("persistence")
    share = prior("alpha_share")
    log_v = prior("log_unconditional_variance")
    nu = numpyro.deterministic("nu", 2.0 + prior("nu_minus_2"))
    alpha = numpyro.deterministic("alpha", persistence * share)
    beta = numpyro.deterministic("beta", persistence * (1.0 - share))
    omega = numpyro.deterministic("omega", jnp.exp(log_v) * (1.0 - persistence))

    e = r - mu
    sigma2, sigma2_next = variance_path(e, omega, alpha, beta, jnp.var(r))
    numpyro.factor("log_likelihood", t_log_likelihood(e, sigma2, nu))
    if horizon_sigma:
        numpyro.deterministic("sigma_next", jnp.sqrt(sigma2_next))


def variance_path(e: Any, omega: Any, alpha: Any, beta: Any, sigma2_first: Any) -> tuple[Any, Any]:
    """``(sigma_1^2 .. sigma_n^2, sigma_{n+1}^2)`` from residuals ``e`` ``(n,)`` by
    ``sigma_{t+1}^2 = omega + alpha e_t^2 + beta sigma_t^2`` (``jax.lax.scan``)."""
    import jax

    def step(s2: Any, et: Any) -> tuple[Any, Any]:
        return omega + alpha * et * et + beta * s2, s2

    sigma2_next, sigma2 = jax.lax.scan(step, sigma2_first, e, unroll=UNROLL)
    return sigma2, sigma2_next


def t_log_likelihood(e: Any, sigma2: Any, nu: Any) -> Any:
    """``sum_t log p(e_t)`` for ``e_t = sigma_t sqrt((nu - 2)/nu) T_nu``, in JAX, over the last axis.

    One sum rather than NumPyro's ``StudentT`` observed site: that broadcasts
    ``nu`` to every day and so takes ``n`` log-gamma functions (and their
    gradients) where two do; on 2000 days its gradient took about 1.5 times
    as long to compile and to run.
    """
    import jax.numpy as jnp
    from jax.scipy.special import gammaln

    s2 = sigma2 * (nu - 2.0) / nu
    n = e.shape[-1]
    const = gammaln(0.5 * (nu + 1.0)) - gammaln(0.5 * nu) - 0.5 * jnp.log(nu * jnp.pi)
    return n * const - 0.5 * jnp.sum(jnp.log(s2), axis=-1) - 0.5 * (nu + 1.0) * jnp.sum(jnp.log1p(e * e / (s2 * nu)), axis=-1)


def log_likelihood(r: np.ndarray, draws: Mapping[str, Any]) -> np.ndarray:
    """The model's log-likelihood of returns ``r`` ``(n,)`` at each draw of ``mu``,
    ``omega``, ``alpha``, ``beta``, ``nu`` (any common shape), in NumPy and SciPy."""
    return daily_log_likelihood(r, draws).sum(axis=-1)


def one_step_scales(r: np.ndarray, draws: Mapping[str, Any]) -> np.ndarray:
    """The scale of each day's Student-t, ``sigma_t sqrt((nu - 2)/nu)``, shaped ``(..., n)``
    for draws of ``mu``, ``omega``, ``alpha``, ``beta``, ``nu`` shaped ``(...)``: the
    variance recursion run from ``var(r)`` over the returns before day ``t``."""
    r = np.asarray(r, dtype=float)
    mu, omega, alpha, beta, nu = (np.asarray(draws[k], dtype=float) for k in ("mu", "omega", "alpha", "beta", "nu"))
    s2 = np.full(np.broadcast(mu, omega, alpha, beta, nu).shape, r.var())
    k = np.sqrt((nu - 2.0) / nu)
    scales = np.empty(s2.shape + r.shape)
    for t, rt in enumerate(r):
        scales[..., t] = np.sqrt(s2) * k
        e = rt - mu
        s2 = omega + alpha * e * e + beta * s2
    return scales


def daily_log_likelihood(r: np.ndarray, draws: Mapping[str, Any]) -> np.ndarray:
    """``log p(r_t | r_<t, theta)`` for each day ``(..., n)`` at each draw (as ``one_step_scales``)."""
    from scipy import stats

    mu, nu = (np.asarray(draws[k], dtype=float)[..., None] for k in ("mu", "nu"))
    scale = one_step_scales(r, draws)
    return stats.t.logpdf((np.asarray(r, dtype=float) - mu) / scale, nu) - np.log(scale)


def build_model(returns: Any, priors: Mapping[str, Prior] | None = None) -> Model:
    """The kernel's ``Model`` for daily percentage ``returns`` (validated)."""
    r = check_returns(returns)
    return Model(
        name="risk:garch_t",
        numpyro_model=garch_model,
        data={"r": r, "priors": dict(priors or default_priors())},
        log_likelihood=functools.partial(log_likelihood, r),  # picklable, for SBC's worker processes
    )


def fit_nuts(returns: Any, *, priors: Mapping[str, Prior] | None = None, **nuts: Unpack[NutsSettings]) -> Posterior:
    """The posterior of GARCH(1,1)-t on ``returns`` by NUTS (``wager.risk.problem.fit_by_nuts``:
    ``chains``, ``warmup``, ``draws``, ``seed``, ``target_accept``, ``progress``)."""
    return fit_by_nuts(build_model(returns, priors), **nuts)


# --- the maximum-likelihood peer ------------------------------------------------------


@dataclass(frozen=True)
class GarchFit:
    """Point estimates of GARCH(1,1)-t (percent units) and the next day's conditional sd."""

    mu: float
    omega: float
    alpha: float
    beta: float
    nu: float
    sigma_next: float
    std_err: Mapping[str, float] = field(default_factory=dict)
    loglik: float = float("nan")


def fit_arch(r: Any) -> GarchFit:
    """Maximum likelihood by ``arch``: constant mean, GARCH(1,1), standardised t;
    ``sigma_next`` is its one-step-ahead forecast sd."""
    from arch import arch_model  # imported here: only the ML peer needs arch

    data = check_returns(r)
    result = arch_model(data, mean="Constant", vol="GARCH", p=1, q=1, dist="t", rescale=False).fit(disp="off")
    params, se = result.params, result.std_err
    names = {"mu": "mu", "omega": "omega", "alpha": "alpha[1]", "beta": "beta[1]", "nu": "nu"}
    variance = result.forecast(horizon=1, reindex=False).variance
    return GarchFit(
        **{k: float(params[v]) for k, v in names.items()},
        sigma_next=float(np.sqrt(np.asarray(variance)[-1, 0])),
        std_err={k: float(se[v]) for k, v in names.items()},
        loglik=float(result.loglikelihood),
    )


# --- one-day VaR and ES ----------------------------------------------------------------


@dataclass(frozen=True)
class VarEs:
    """One-day VaR and Expected Shortfall of the loss ``-return`` at ``level``, with
    Monte Carlo standard errors (0 for a closed form)."""

    level: float
    var: float
    var_se: float
    es: float
    es_se: float
    method: str


def one_day_var_es(draws: Mapping[str, Any], level: float, rng: np.random.Generator, per_draw: int = 100) -> VarEs:
    """Predictive VaR and ES of tomorrow's loss from posterior draws.

    ``draws`` holds ``mu``, ``sigma_next`` and ``nu``, shaped ``(chains, draws)``
    (a ``Posterior`` will do) or ``(draws,)`` (read as one chain). Each draw gives
    ``per_draw`` returns ``mu + sigma_next sqrt((nu - 2)/nu) T_nu``; over all of
    them ``wager.risk.tail.chain_tail_summary`` gives VaR (inverted empirical
    CDF) and ``ES = VaR + mean((L - VaR)^+) / (1 - level)`` (its TVaR), with
    standard errors through the chains' effective sample size: the ``per_draw``
    losses of a draw share its parameters, and the draws come from Markov chains.
    """
    level = check_level(level)
    if per_draw < 1:
        raise SpecError("per_draw", f"must be at least 1, got {per_draw}")
    mu, sigma, nu = (_chains(draws[name]) for name in ("mu", "sigma_next", "nu"))
    summary = chain_tail_summary(_simulate_losses(mu, sigma, nu, rng, per_draw), level)
    return VarEs(
        level=level,
        var=float(summary.var),
        var_se=float(summary.var_se),
        es=float(summary.tvar),
        es_se=float(summary.tvar_se),
        method=f"predictive: {per_draw} simulated returns per posterior draw",
    )


def predictive_losses(draws: Mapping[str, Any], rng: np.random.Generator, per_draw: int = 100) -> np.ndarray:
    """Tomorrow's simulated losses ``(chains, draws, per_draw)``, the very numbers
    ``one_day_var_es`` reads when given a generator in the same state: ``per_draw``
    returns ``mu + sigma_next sqrt((nu - 2)/nu) T_nu`` per posterior draw, negated."""
    if per_draw < 1:
        raise SpecError("per_draw", f"must be at least 1, got {per_draw}")
    mu, sigma, nu = (_chains(draws[name]) for name in ("mu", "sigma_next", "nu"))
    return _simulate_losses(mu, sigma, nu, rng, per_draw)


def plug_in_var_es(mu: float, sigma_next: float, nu: float, level: float) -> VarEs:
    """VaR and ES of ``L = -(mu + sigma sqrt((nu - 2)/nu) T_nu)`` in closed form at point estimates.

    ``VaR = -mu + s t_p`` and ``ES = -mu + s f_nu(t_p) (nu + t_p^2) / ((nu - 1)(1 - p))``
    with ``s = sigma sqrt((nu - 2)/nu)``, ``t_p`` the Student-t quantile at ``p = level``
    and ``f_nu`` its density (McNeil, Frey & Embrechts 2015, Example 2.15).
    """
    level = check_level(level)
    var, es = _t_var_es(np.asarray(mu, float), np.asarray(sigma_next, float), np.asarray(nu, float), level)
    return VarEs(level=level, var=float(var), var_se=0.0, es=float(es), es_se=0.0, method="plug-in: Student-t closed form")


def _t_var_es(mu: np.ndarray, sigma: np.ndarray, nu: np.ndarray, level: float) -> tuple[np.ndarray, np.ndarray]:
    from scipy import stats

    s = sigma * np.sqrt((nu - 2.0) / nu)
    tp = stats.t.ppf(level, nu)
    tail = stats.t.pdf(tp, nu) * (nu + tp * tp) / ((nu - 1.0) * (1.0 - level))
    return -mu + s * tp, -mu + s * tail


def _simulate_losses(mu: np.ndarray, sigma: np.ndarray, nu: np.ndarray, rng: np.random.Generator, per_draw: int) -> np.ndarray:
    """Losses ``(..., per_draw)``: ``-(mu + sigma sqrt((nu - 2)/nu) T_nu)`` for each draw."""
    t = rng.standard_t(nu[..., None], size=nu.shape + (per_draw,))
    return -(mu[..., None] + (sigma * np.sqrt((nu - 2.0) / nu))[..., None] * t)


def _chains(x: Any) -> np.ndarray:
    x = np.asarray(x, dtype=float)
    return x[None, :] if x.ndim == 1 else x.reshape(x.shape[0], -1)


# --- rolling one-day forecasts ---------------------------------------------------------


@dataclass(frozen=True)
class RollingVar:
    """One-day VaR and ES forecasts over a history, each made with the data up to the day before.

    ``days[i]`` is the index in the input ``returns`` of the day forecast;
    ``losses[i] = -returns[days[i]]`` is what a backtest scores against
    ``var[i]``. ``refits`` are the days whose forecast came from a fresh fit.
    """

    engine: str
    level: float
    window: int
    refit_every: int
    days: np.ndarray
    losses: np.ndarray
    var: np.ndarray
    es: np.ndarray
    refits: np.ndarray
    fit_seconds: float
    divergences: int = 0


def rolling_backtest(
    returns: Any,
    window: int,
    refit_every: int,
    level: float,
    engine: Literal["nuts", "ml"] = "nuts",
    *,
    priors: Mapping[str, Prior] | None = None,
    chains: int = 2,
    warmup: int = 300,
    draws: int = 300,
    per_draw: int = 100,
    seed: int = 20240101,
    progress: ProgressFn | None = None,
) -> RollingVar:
    """One-day VaR forecasts for every day after the first ``window``.

    On day ``t`` (``window <= t < n``) the model is refitted on ``returns[t -
    window:t]`` when ``(t - window) % refit_every == 0``; on the days between,
    the last fit's parameters are kept and its variance recursion rolled forward
    over the returns seen since (per posterior draw for ``"nuts"``). ``"nuts"``
    reports the predictive VaR (parameter uncertainty included), ``"ml"``
    (``arch``) the plug-in one. Each NUTS refit runs ``chains x (warmup +
    draws)`` with a seed derived from ``seed`` and the day; refits of one
    window length reuse one compiled chain.
    """
    r = check_returns(returns, "returns")
    level = check_level(level)
    if engine not in ("nuts", "ml"):
        raise SpecError("engine", f"must be 'nuts' or 'ml', got {engine!r}")
    if not isinstance(window, (int, np.integer)) or not MIN_RETURNS <= window < r.size:
        raise SpecError("window", f"must be an integer from {MIN_RETURNS} to len(returns) - 1 = {r.size - 1}, got {window}")
    if not isinstance(refit_every, (int, np.integer)) or refit_every < 1:
        raise SpecError("refit_every", f"must be a positive integer, got {refit_every}")

    days = np.arange(window, r.size)
    var, es = np.empty(days.size), np.empty(days.size)
    refits, seconds, divergences = [], 0.0, 0
    rng = np.random.default_rng(derive_seed(seed, 1))
    state: dict[str, np.ndarray] = {}
    for i, t in enumerate(days):
        if (t - window) % refit_every == 0:
            if progress:
                progress(f"rolling {engine} GARCH fits", len(refits), -(-days.size // refit_every))
            start = time.perf_counter()
            if engine == "ml":
                fit = fit_arch(r[t - window : t])
                state = {k: np.asarray(getattr(fit, k)) for k in ("mu", "omega", "alpha", "beta", "nu")}
                state["sigma2"] = np.asarray(fit.sigma_next**2)
            else:
                posterior = fit_nuts(
                    r[t - window : t], priors=priors, chains=chains, warmup=warmup, draws=draws, seed=derive_seed(seed, 0, int(t))
                )
                state = {k: np.asarray(posterior[k], float) for k in ("mu", "omega", "alpha", "beta", "nu")}
                state["sigma2"] = np.asarray(posterior["sigma_next"], float) ** 2
                divergences += int(posterior.sample_stats["diverging"].sum())
            seconds += time.perf_counter() - start
            refits.append(t)
        else:
            e = r[t - 1] - state["mu"]
            state["sigma2"] = state["omega"] + state["alpha"] * e * e + state["beta"] * state["sigma2"]
        sigma = np.sqrt(state["sigma2"])
        if engine == "ml":
            var[i], es[i] = _t_var_es(state["mu"], sigma, state["nu"], level)
        else:
            summary = tail_summary(_simulate_losses(state["mu"], sigma, state["nu"], rng, per_draw).ravel(), level)
            var[i], es[i] = summary.var, summary.tvar
    return RollingVar(
        engine=engine,
        level=level,
        window=int(window),
        refit_every=int(refit_every),
        days=days,
        losses=-r[days],
        var=var,
        es=es,
        refits=np.asarray(refits),
        fit_seconds=seconds,
        divergences=divergences,
    )


# --- simulation and validation ---------------------------------------------------------------


def simulate_garch_t(
    n: int, *, mu: float, omega: float, alpha: float, beta: float, nu: float, rng: np.random.Generator, burn: int = 500
) -> np.ndarray:
    """``n`` returns from GARCH(1,1)-t (the model above), after ``burn`` days started
    at the unconditional variance ``omega / (1 - alpha - beta)``."""
    s2 = omega / (1.0 - alpha - beta)
    z = rng.standard_t(nu, size=n + burn) * np.sqrt((nu - 2.0) / nu)
    out = np.empty(n + burn)
    for t in range(n + burn):
        e = np.sqrt(s2) * z[t]
        out[t] = mu + e
        s2 = omega + alpha * e * e + beta * s2
    return out[burn:]


def check_returns(returns: Any, name: str = "returns") -> np.ndarray:
    """Daily percentage returns as a float array ``(n,)``, or ``SpecError`` naming ``name``."""
    try:
        r = np.asarray(returns, dtype=float)
    except (TypeError, ValueError) as exc:
        raise SpecError(name, f"must be numbers (daily percentage returns): {exc}") from None
    if r.ndim != 1:
        raise SpecError(name, f"must be one series (1-D), got shape {r.shape}")
    bad = ~np.isfinite(r)
    if bad.any():
        raise SpecError(name, f"must be finite (no NaN or inf): {int(bad.sum())} bad value(s), the first at position {int(np.argmax(bad))}")
    if r.size < MIN_RETURNS:
        raise SpecError(name, f"must hold at least {MIN_RETURNS} returns to fit GARCH(1,1), got {r.size}")
    big = np.abs(r) > MAX_RETURN
    if big.any():
        first = int(np.argmax(big))
        raise SpecError(
            name, f"must be daily percentage returns (100 x log price changes), within +-{MAX_RETURN:g} (a price moving by a factor "
            f"e^10 in a day): {int(big.sum())} beyond it, the first at position {first} ({r[first]:.3g})",
        )
    sd = float(r.std())
    if sd == 0:
        raise SpecError(name, f"must vary: every return is {r[0]:g} (sample sd 0), as when the prices never change")
    if sd < MIN_SD:
        raise SpecError(name, f"must be percentage returns (100 x log price changes): sample sd {sd:.3g} looks like fractions")
    return r
