"""Exact conjugate updates against textbook formulas and brute-force grids."""

import numpy as np
import pytest
from scipy import integrate, stats

from wager.kernel.conjugate import beta_binomial, gamma_poisson, normal_inverse_gamma, normal_known_variance
from wager.kernel.inference import InferenceConfig, Model, choose_engine, infer
from wager.kernel.conjugate import ExactPosterior
from wager.kernel.priors import Prior


def prior(family, **params):
    return Prior(family=family, params=params, why="test", source="test")


def test_beta_binomial_adds_successes_and_failures():
    post = beta_binomial(prior("beta", alpha=2, beta=3), successes=7, trials=10)
    assert (post.alpha, post.beta) == (9, 6)


def test_gamma_poisson_adds_events_and_exposure():
    post = gamma_poisson(prior("gamma", shape=2, rate=1), events=30, exposure=12.5)
    assert (post.shape, post.rate) == (32, 13.5)


def test_normal_known_variance_matches_a_grid_posterior():
    rng = np.random.default_rng(0)
    y, sigma = rng.normal(3.0, 2.0, size=15), 2.0
    post = normal_known_variance(prior("normal", loc=0, scale=5), n=y.size, mean=y.mean(), sigma=sigma)
    grid = np.linspace(-5, 10, 20001)
    log = stats.norm.logpdf(grid, 0, 5) + stats.norm.logpdf(y[:, None], grid, sigma).sum(0)
    w = np.exp(log - log.max())
    w /= integrate.trapezoid(w, grid)
    mean = integrate.trapezoid(grid * w, grid)
    sd = np.sqrt(integrate.trapezoid((grid - mean) ** 2 * w, grid))
    assert post.mean == pytest.approx(mean, abs=1e-6)
    assert post.sd == pytest.approx(sd, abs=1e-6)


def test_normal_inverse_gamma_matches_a_two_dimensional_grid():
    rng = np.random.default_rng(1)
    y = rng.normal(1.0, 0.7, size=12)
    nig = prior("normal_inverse_gamma", loc=0.0, kappa=1.0, shape=2.0, scale=1.0)
    post = normal_inverse_gamma(nig, n=y.size, mean=y.mean(), sum_sq_dev=float(np.sum((y - y.mean()) ** 2)))
    mu = np.linspace(-2, 4, 1201)
    var = np.linspace(1e-3, 4, 1200)
    M, V = np.meshgrid(mu, var, indexing="ij")
    log = (
        stats.invgamma.logpdf(V, a=2.0, scale=1.0)
        + stats.norm.logpdf(M, 0.0, np.sqrt(V / 1.0))
        + stats.norm.logpdf(y[:, None, None], M, np.sqrt(V)).sum(0)
    )
    w = np.exp(log - log.max())
    w /= w.sum()
    assert post.mean_marginal.mean == pytest.approx((w * M).sum(), abs=2e-4)
    assert post.variance_marginal.mean == pytest.approx((w * V).sum(), abs=2e-3)
    # the marginal of the mean is Student t: compare a central probability
    inside = (w * ((M > 0.5) & (M < 1.5))).sum()
    t = post.mean_marginal
    assert float(t.cdf(1.5) - t.cdf(0.5)) == pytest.approx(inside, abs=2e-3)


def test_exact_engine_draws_depend_only_on_seed_and_chain():
    post = beta_binomial(prior("beta", alpha=1, beta=1), 30, 100)
    model = Model(name="m", exact=lambda: ExactPosterior(marginals={"p": post}))
    four = infer(model, InferenceConfig(seed=7, chains=4, draws=500))
    two = infer(model, InferenceConfig(seed=7, chains=2, draws=500))
    np.testing.assert_array_equal(four["p"][:2], two["p"])
    assert four["p"].shape == (4, 500)
    assert four.engine == "exact" and "conjugate" in four.reason
    other = infer(model, InferenceConfig(seed=8, chains=2, draws=500))
    assert not np.array_equal(other["p"], two["p"])


def test_auto_picks_exact_when_the_model_admits_it_and_says_why():
    exact = Model(name="m", numpyro_model=lambda: None, exact=lambda: None)
    sampled = Model(name="m", numpyro_model=lambda: None)
    assert choose_engine(exact, "auto")[0] == "exact"
    engine, reason = choose_engine(sampled, "auto")
    assert engine == "nuts" and "no conjugate" in reason
