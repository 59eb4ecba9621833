"""GARCH(1,1) with Student-t innovations by NUTS: it recovers simulated parameters,
agrees with arch's maximum likelihood run side by side, and carries parameter
uncertainty into one-day VaR and Expected Shortfall."""

import warnings

import numpy as np
import pytest
from scipy import integrate, optimize, stats

from wager.errors import SpecError
from wager.kernel.diagnostics import diagnose
from wager.risk.backtest import backtest
from wager.risk.garch import (
    build_model,
    fit_arch,
    fit_nuts,
    log_likelihood,
    one_day_var_es,
    plug_in_var_es,
    rolling_backtest,
    simulate_garch_t,
    t_log_likelihood,
    variance_path,
)
from wager.risk.spec import VarSpec
from wager.risk.var_problem import prepare

# Daily percent returns with a long-run sd of sqrt(0.05 / 0.02) = 1.6%, persistence 0.98, t(6) shocks.
TRUE = {"mu": 0.05, "omega": 0.05, "alpha": 0.08, "beta": 0.90, "nu": 6.0}
NUTS = {"chains": 2, "warmup": 500, "draws": 500}
PARAMETERS = ("mu", "omega", "alpha", "beta", "nu")


@pytest.fixture(scope="module")
def returns() -> np.ndarray:
    return simulate_garch_t(2000, rng=np.random.default_rng(7), **TRUE)


@pytest.fixture(scope="module")
def posterior(returns):
    return fit_nuts(returns, seed=1, **NUTS)


def predictive_var(draws, level: float) -> float:
    """The predictive loss quantile given the draws, without simulation: the root of
    ``mean_s F_t((x + mu_s) / s_s; nu_s) = level``."""
    mu, s, nu = _flat(draws)
    return optimize.brentq(lambda x: np.mean(stats.t.cdf((x + mu) / s, nu)) - level, -50, 50, xtol=1e-12)


def predictive_es(draws, level: float) -> float:
    """``VaR + E[(L - VaR)+] / (1 - level)`` with ``E[(T - k)+] = f(k) (nu + k^2) / (nu - 1) - k (1 - F(k))`` per draw."""
    mu, s, nu = _flat(draws)
    q = predictive_var(draws, level)
    k = (q + mu) / s
    excess = s * (stats.t.pdf(k, nu) * (nu + k * k) / (nu - 1) - k * stats.t.sf(k, nu))
    return q + excess.mean() / (1 - level)


def _flat(draws):
    mu, sigma, nu = (np.ravel(draws[k]) for k in ("mu", "sigma_next", "nu"))
    return mu, sigma * np.sqrt((nu - 2) / nu), nu


def plug_in_at_median(posterior, level: float):
    return plug_in_var_es(*(float(np.median(posterior.flat(k))) for k in ("mu", "sigma_next", "nu")), level)


# --- the model recovers what generated the data ---------------------------------------------


def test_nuts_recovers_the_parameters_of_simulated_garch_t(posterior):
    # 2000 simulated days, 2 chains x (500 warmup + 500 draws): every parameter within
    # 3 posterior sds of its true value, and the chains healthy
    for name in PARAMETERS:
        draws = posterior.flat(name)
        z = (draws.mean() - TRUE[name]) / draws.std()
        assert abs(z) < 3, (name, draws.mean(), draws.std())
    checks = diagnose(posterior)
    assert checks.divergences == 0
    assert max(v.rhat for v in checks.variables.values()) < 1.01
    assert np.all(posterior.flat("alpha") + posterior.flat("beta") < 1)  # stationary by construction


def test_posterior_medians_agree_with_arch_maximum_likelihood(returns, posterior):
    # arch.arch_model(mean="Constant", vol="GARCH", dist="t") on the same data: with a weak
    # prior and 2000 days the posterior median sits within 2 posterior sds of the MLE
    ml = fit_arch(returns)
    for name in (*PARAMETERS, "sigma_next"):
        draws = posterior.flat(name)
        assert abs(np.median(draws) - getattr(ml, name)) < 2 * draws.std(), (name, np.median(draws), getattr(ml, name))
    # and arch's own standard errors are of the size of the posterior sds (within a factor 1.5)
    for name in ("alpha", "beta", "nu"):
        assert 1 / 1.5 < ml.std_err[name] / posterior.flat(name).std() < 1.5, name


def test_variance_recursion_and_likelihood_reproduce_arch_at_its_estimates(returns):
    # Started from arch's own first variance (its backcast), the model's recursion gives
    # arch's conditional variances and its t log-likelihood arch's maximised log-likelihood.
    from arch import arch_model

    from wager.kernel.nuts import configure_jax

    configure_jax()  # float64
    res = arch_model(returns, mean="Constant", vol="GARCH", p=1, q=1, dist="t", rescale=False).fit(disp="off")
    mu, omega, alpha, beta, nu = (float(res.params[k]) for k in ("mu", "omega", "alpha[1]", "beta[1]", "nu"))
    arch_variance = np.asarray(res.conditional_volatility) ** 2
    e = returns - mu
    sigma2, _ = variance_path(e, omega, alpha, beta, arch_variance[0])
    np.testing.assert_allclose(np.asarray(sigma2), arch_variance, rtol=1e-10)
    assert float(t_log_likelihood(e, sigma2, nu)) == pytest.approx(res.loglikelihood, rel=1e-10)


def test_numpy_log_likelihood_matches_the_model_density(returns, posterior):
    # The Model's NumPy log-likelihood (for diagnostics without JAX) is the numpyro factor
    # the sampler used: the sample variance start, the standardised t.
    from numpyro.infer.util import log_density

    from wager.risk.garch import default_priors, garch_model

    model = build_model(returns)
    first = {k: posterior[k][0, :3] for k in PARAMETERS}
    numpy_ll = model.log_likelihood(first)
    for i in range(3):
        params = {k: posterior[k][0, i] for k in ("mu", "persistence", "alpha_share", "log_unconditional_variance", "nu_minus_2")}
        _, trace = log_density(garch_model, (), {"r": returns, "priors": default_priors()}, params)
        assert float(trace["log_likelihood"]["fn"].log_factor) == pytest.approx(numpy_ll[i], rel=1e-9)
    assert np.allclose(numpy_ll, log_likelihood(returns, first))


# --- one-day VaR and ES --------------------------------------------------------------------------


def test_plug_in_var_es_is_the_student_t_closed_form():
    # L = -mu + s T_nu with s = sigma sqrt((nu - 2) / nu): VaR from scipy's t quantile,
    # ES by numerically integrating the loss density beyond VaR
    mu, sigma, nu = 0.05, 1.3, 5.0
    loss = stats.t(nu, loc=-mu, scale=sigma * np.sqrt((nu - 2) / nu))
    for level in (0.95, 0.99, 0.999):
        got = plug_in_var_es(mu, sigma, nu, level)
        tail, _ = integrate.quad(lambda x: x * loss.pdf(x), loss.ppf(level), np.inf)
        assert got.var == pytest.approx(loss.ppf(level), rel=1e-12)
        assert got.es == pytest.approx(tail / (1 - level), rel=1e-8)
        assert got.var_se == got.es_se == 0.0
    # unit-variance innovations: the sd of the loss is sigma
    assert loss.std() == pytest.approx(sigma)


def test_predictive_var_es_match_the_exact_mixture_over_posterior_draws(posterior):
    # Simulating 100 returns per draw estimates the predictive (a mixture of t's over
    # the draws); its exact quantile and shortfall, found by root-finding, lie within 4 MCSE
    got = one_day_var_es(posterior, 0.99, np.random.default_rng(3))
    assert got.level == 0.99 and got.var_se > 0 and got.es_se > 0
    assert abs(got.var - predictive_var(posterior, 0.99)) < 4 * got.var_se
    assert abs(got.es - predictive_es(posterior, 0.99)) < 4 * got.es_se
    assert got.es > got.var


@pytest.mark.slow
def test_parameter_uncertainty_widens_var_with_few_days_and_fades_with_many(posterior):
    # 250 days from the same process: the predictive 99% VaR (exact, over the draws)
    # exceeds the plug-in VaR at the posterior medians, by more than it does with 2000 days.
    # Measured over five seeds each: +0.7% to +1.5% at 250 days, +0.06% to +0.38% at 2000.
    few = fit_nuts(simulate_garch_t(250, rng=np.random.default_rng(100), **TRUE), seed=1, **NUTS)
    gap = {
        days: predictive_var(post, 0.99) / plug_in_at_median(post, 0.99).var - 1
        for days, post in ((250, few), (2000, posterior))
    }
    assert gap[250] > 0
    assert gap[250] > gap[2000]
    # the simulated predictive agrees with the exact one
    simulated = one_day_var_es(few, 0.99, np.random.default_rng(4))
    assert abs(simulated.var - predictive_var(few, 0.99)) < 4 * simulated.var_se


# --- rolling one-day forecasts ---------------------------------------------------------------------


def test_rolling_ml_forecasts_each_day_from_the_days_before_it(returns):
    r = returns[:700]
    rolled = rolling_backtest(r, window=500, refit_every=50, level=0.99, engine="ml")
    np.testing.assert_array_equal(rolled.days, np.arange(500, 700))
    np.testing.assert_array_equal(rolled.losses, -r[500:])
    np.testing.assert_array_equal(rolled.refits, [500, 550, 600, 650])
    # day 500: arch fitted on days 0-499, its one-step forecast, the t closed form
    fit = fit_arch(r[:500])
    assert rolled.var[0] == pytest.approx(plug_in_var_es(fit.mu, fit.sigma_next, fit.nu, 0.99).var, rel=1e-9)
    # day 501: the same parameters, the variance rolled forward over day 500's return
    s2 = fit.omega + fit.alpha * (r[500] - fit.mu) ** 2 + fit.beta * fit.sigma_next**2
    assert rolled.var[1] == pytest.approx(plug_in_var_es(fit.mu, np.sqrt(s2), fit.nu, 0.99).var, rel=1e-9)
    # aligned for scoring by a VaR backtest
    scored = backtest(rolled.losses, rolled.var, 0.99)
    assert scored.n_days == 200 and scored.n_exceptions == int(np.sum(rolled.losses > rolled.var))


@pytest.mark.slow
def test_rolling_nuts_forecasts_are_predictive_and_track_the_ml_ones(returns):
    # 250-day windows, refitted every 25 days: two NUTS fits, 50 forecasts; each day's VaR
    # from the posterior draws rolled forward, close to arch's (the same data, a weak prior)
    r = returns[:300]
    bayes = rolling_backtest(r, window=250, refit_every=25, level=0.99, engine="nuts", **NUTS)
    ml = rolling_backtest(r, window=250, refit_every=25, level=0.99, engine="ml")
    np.testing.assert_array_equal(bayes.refits, [250, 275])
    assert bayes.divergences == 0 and bayes.fit_seconds > 0
    assert np.all(bayes.es > bayes.var)
    assert np.median(np.abs(bayes.var / ml.var - 1)) < 0.1


# --- bad input ---------------------------------------------------------------------------------------


def _returns(n: int = 300) -> np.ndarray:
    return simulate_garch_t(n, rng=np.random.default_rng(0), **TRUE)


def _with_nan() -> np.ndarray:
    r = _returns()
    r[17] = np.nan
    return r


@pytest.mark.parametrize(
    "call, field",
    [
        (lambda: build_model(_with_nan()), "returns"),
        (lambda: fit_arch(np.append(_returns(), np.inf)), "returns"),
        (lambda: rolling_backtest(_with_nan(), 200, 10, 0.99, "ml"), "returns"),
        (lambda: build_model(_returns(50)), "returns"),
        (lambda: fit_arch(_returns(99)), "returns"),
        (lambda: build_model(_returns() / 100), "returns"),  # fractions, not percent
        (lambda: build_model(_returns().reshape(100, 3)), "returns"),
        (lambda: plug_in_var_es(0.0, 1.0, 5.0, 1.5), "level"),
        (lambda: one_day_var_es({"mu": [0.0], "sigma_next": [1.0], "nu": [5.0]}, 1.5, np.random.default_rng(0)), "level"),
        (lambda: rolling_backtest(_returns(), 200, 10, 1.5, "ml"), "level"),
        (lambda: rolling_backtest(_returns(), 200, 10, 0.99, "mcmc"), "engine"),
        (lambda: rolling_backtest(_returns(), 300, 10, 0.99, "ml"), "window"),
        (lambda: rolling_backtest(_returns(), 200, 0, 0.99, "ml"), "refit_every"),
    ],
)
def test_bad_input_raises_spec_error_naming_the_field(call, field):
    with pytest.raises(SpecError) as raised:
        call()
    assert raised.value.field == field


def test_returns_far_beyond_percentages_are_refused_without_a_numpy_warning():
    r = _returns()
    r[5] = 1e200  # its square overflows a float
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(SpecError) as raised:
            build_model(r)
    assert raised.value.field == "returns"
    assert raised.value.rule.startswith("must be daily percentage returns (100 x log price changes), within +-1000")
    assert raised.value.rule.endswith("1 beyond it, the first at position 5 (1e+200)")


def test_returns_that_never_change_are_refused_as_constant_not_as_fractions():
    with pytest.raises(SpecError) as raised:
        build_model(np.zeros(300))
    assert raised.value.rule == "must vary: every return is 0 (sample sd 0), as when the prices never change"


def test_a_persistence_prior_that_leaves_zero_to_one_is_refused_at_its_own_field():
    # a negative persistence would make an invalid (non-stationary) GARCH model
    normal = {"family": "normal", "params": {"loc": 0.9, "scale": 1.0}, "why": "test", "source": "test"}
    spec = VarSpec(data={"sample": "sp500", "last": 500}, priors={"persistence": normal})
    with pytest.raises(SpecError) as raised:
        prepare(spec).model
    assert raised.value.field == "priors.persistence.family"
    assert raised.value.rule == "must keep persistence in (0, 1) as the default beta prior does; normal ranges over all reals"
