"""Monte Carlo errors of quantiles: independent draws and Markov chains."""

from __future__ import annotations

import numpy as np

from wager.kernel.diagnostics import chain_quantile_se, quantile_se


def ar1_chains(rng: np.random.Generator, rho: float, chains: int, draws: int, trailing: tuple[int, ...] = ()) -> np.ndarray:
    """Stationary Gaussian AR(1) chains ``(chains, draws, *trailing)`` with lag-1 correlation ``rho``."""
    z = np.empty((chains, draws, *trailing))
    z[:, 0] = rng.normal(size=(chains, *trailing))
    noise = rng.normal(size=(chains, draws, *trailing)) * np.sqrt(1 - rho**2)
    for t in range(1, draws):
        z[:, t] = rho * z[:, t - 1] + noise[:, t]
    return z


def test_chain_quantile_error_of_independent_draws_is_the_binomial_one():
    x = np.random.default_rng(0).normal(size=(4000, 5))
    ratio = chain_quantile_se(x, 0.5, chains=4) / quantile_se(x, 0.5)
    assert np.all(np.abs(ratio - 1) < 0.2), ratio


def test_chain_quantile_error_grows_by_the_indicators_integrated_autocorrelation():
    """For a Gaussian AR(1) the indicator ``z <= 0`` has lag-k autocorrelation
    ``(2 / pi) arcsin(rho^k)`` (Sheppard's formula), so the median's error is the
    independent one times ``sqrt(1 + 2 sum_k (2 / pi) arcsin(rho^k))``: 2.58 at rho = 0.8."""
    rho = 0.8
    expected = np.sqrt(1 + 2 * sum(2 / np.pi * np.arcsin(rho**k) for k in range(1, 200)))
    z = ar1_chains(np.random.default_rng(1), rho, chains=4, draws=2000, trailing=(30,))
    flat = z.reshape(-1, 30)
    ratio = chain_quantile_se(flat, 0.5, chains=4) / quantile_se(flat, 0.5)
    assert abs(ratio.mean() - expected) < 0.15 * expected, (ratio.mean(), expected)
    # and the errors are right: the spread of the 30 columns' medians (each 8,000 draws)
    assert abs(np.median(flat, axis=0).std(ddof=1) / chain_quantile_se(flat, 0.5, chains=4).mean() - 1) < 0.35


def test_newsvendor_cost_error_counts_the_chains_autocorrelation():
    """The same demand draws read as four AR(1) chains (rho 0.8) or as independent: the
    expected cost is the same number, its Monte Carlo error larger for chains, by about
    the cost's integrated autocorrelation (between 1.5x and the mean's 3x)."""
    from wager.forecast.decide import newsvendor

    demand = 100 + 10 * ar1_chains(np.random.default_rng(2), 0.8, chains=4, draws=1000, trailing=(3,)).reshape(-1, 3)
    independent, chained = newsvendor(demand, 3.0, 1.0), newsvendor(demand, 3.0, 1.0, chains=4)
    np.testing.assert_array_equal(independent.expected_cost, chained.expected_cost)
    ratio = chained.cost_se / independent.cost_se
    assert np.all((ratio > 1.5) & (ratio < 3.3)), ratio
