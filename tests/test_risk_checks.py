"""The risk models' posterior checks (``wager validate``'s predictive step): LOO-PIT is
uniform when the data come from the model and flags data with heavier tails; the
held-out calibration passes true probabilities and flags probabilities half too low."""

import numpy as np
from scipy import stats

from wager.risk.checks import AllOf, binned_calibration, loo_pit


def normal_mean_posterior(y, draws, rng):
    # y_i ~ N(theta, 1), flat prior: theta | y ~ N(mean(y), 1 / n)
    return rng.normal(y.mean(), 1 / np.sqrt(y.size), size=(draws, 1))


def test_loo_pit_is_uniform_when_the_data_come_from_the_model():
    rng = np.random.default_rng(1)
    y = rng.normal(2.0, 1.0, size=400)
    theta = normal_mean_posterior(y, 1000, rng)
    check = loo_pit(stats.norm.logpdf(y, theta), stats.norm.cdf(y, theta), "draws")
    assert check.passed and check.pit.values.shape == (400,) and check.pit.max_pareto_k < 0.7
    assert "reproduces" in check.lines()[0] and check.to_json()["passed"]


def test_loo_pit_names_psis_bound_for_its_number_of_draws():
    """With 100 draws LOO values are reliable only below k = 1 - 1/log10(100) = 0.5 (Vehtari et al.
    2024), not 0.7: an outlier whose k is 0.59 is flagged as unreliable."""
    rng = np.random.default_rng(1)
    y = np.append(rng.normal(2.0, 1.0, size=9), 5.0)
    theta = normal_mean_posterior(y, 100, rng)
    check = loo_pit(stats.norm.logpdf(y, theta), stats.norm.cdf(y, theta), "draws")
    assert check.pit.reliable_k == 0.5 and check.to_json()["loo_pit"]["reliable_k"] == 0.5
    assert 0.5 < check.pit.max_pareto_k < 0.7 and "(above 0.5: some LOO values are unreliable)" in check.lines()[1]


def test_loo_pit_flags_data_with_heavier_tails_than_the_model():
    # Student-t with 2 degrees of freedom under a unit Normal: PIT values pile up at 0 and 1
    rng = np.random.default_rng(2)
    y = stats.t(2).rvs(size=400, random_state=rng)
    theta = normal_mean_posterior(y, 1000, rng)
    check = loo_pit(stats.norm.logpdf(y, theta), stats.norm.cdf(y, theta), "draws")
    assert not check.passed and "NOT" in check.lines()[0]


def test_held_out_calibration_passes_the_true_probabilities_and_flags_halved_ones():
    rng = np.random.default_rng(3)
    p = rng.beta(1, 9, size=3000)  # mean 0.1
    y = rng.random(3000) < p
    wobble = rng.normal(0, 0.05, size=(500, 1))  # posterior uncertainty in the overall level
    true = np.clip(p * np.exp(wobble), 0, 1)
    good = binned_calibration(true, y, np.random.default_rng(4), "outcomes")
    assert good.passed and len(good.bins) == 10 and sum(b.size for b in good.bins) == 3000
    assert sum(b.observed for b in good.bins) == int(y.sum())
    halved = binned_calibration(true / 2, y, np.random.default_rng(4), "outcomes")
    assert not halved.passed and any(b.flagged and b.observed > b.expected for b in halved.bins)


def test_all_of_passes_only_when_every_check_does():
    rng = np.random.default_rng(5)
    y = rng.normal(size=200)
    theta = normal_mean_posterior(y, 500, rng)
    fine = loo_pit(stats.norm.logpdf(y, theta), stats.norm.cdf(y, theta), "draws")
    p = np.full((500, 2000), 0.1)
    bad = binned_calibration(p / 4, rng.random(2000) < 0.1, rng, "outcomes")
    both = AllOf((fine, bad))
    assert fine.passed and not bad.passed and not both.passed
    assert both.lines() == fine.lines() + bad.lines() and len(both.to_json()["checks"]) == 2


def test_randomised_loo_pit_of_counts_is_uniform_and_the_plain_cdf_is_not():
    """For discrete data ``F(y_i)`` alone is not uniform (its values sit on the tops of the CDF's steps,
    pushed towards 1); ``F(y_i - 1) + U (F(y_i) - F(y_i - 1))`` is, under the right model. Poisson counts,
    Gamma(1, 1) prior on the rate: the posterior is Gamma(1 + sum y, 1 + n) (conjugate)."""
    from wager.kernel.calibration import loo_pit as kernel_loo_pit

    rng = np.random.default_rng(6)
    y = rng.poisson(3.0, size=400)
    rate = rng.gamma(1 + y.sum(), 1 / (1 + y.size), size=(1000, 1))
    below, at = stats.poisson.cdf(y - 1, rate), stats.poisson.cdf(y, rate)
    randomised = kernel_loo_pit(stats.poisson.logpmf(y, rate), below + rng.random(y.size) * (at - below), 0.01)
    plain = kernel_loo_pit(stats.poisson.logpmf(y, rate), at, 0.01)
    assert randomised.passed and not plain.passed
