"""Cost-optimal approve/decline thresholds from probabilities of default."""

import numpy as np
import pytest
from scipy import special, stats

from wager.errors import SpecError
from wager.risk.threshold import (
    ThresholdChoice, bayes_threshold, expected_cost, expected_cost_model, optimal_threshold,
)


def calibrated_applicants(n, seed, a=2.0, b=5.0):
    """Default probabilities p ~ Beta(a, b) and outcomes y ~ Bernoulli(p): calibrated by construction."""
    rng = np.random.default_rng(seed)
    p = rng.beta(a, b, size=n)
    return p, (rng.random(n) < p).astype(int)


def test_the_bayes_threshold_is_the_cost_ratio():
    # flag when (1 - p) c_fp < p c_fn, i.e. p > c_fp / (c_fp + c_fn)
    assert bayes_threshold(1.0, 10.0) == pytest.approx(1 / 11)
    assert bayes_threshold(3.0, 3.0) == pytest.approx(0.5)


def test_the_bayes_threshold_attains_the_pointwise_minimum_model_cost():
    # each applicant costs min(p c_fn, (1 - p) c_fp) under the Bayes rule, and no threshold does better
    p, _ = calibrated_applicants(10_000, seed=1)
    c_fp, c_fn = 1.0, 10.0
    best = expected_cost_model(p, bayes_threshold(c_fp, c_fn), c_fp, c_fn)
    assert best == pytest.approx(np.minimum(p * c_fn, (1 - p) * c_fp).mean(), rel=1e-12)
    assert all(expected_cost_model(p, t, c_fp, c_fn) >= best for t in np.linspace(0, 1, 101))


def test_realised_cost_of_calibrated_probabilities_averages_to_the_model_cost():
    # E[C(t) | p] = E(t); each applicant's realised cost has variance c^2 p (1 - p),
    # c = c_fp if flagged else c_fn
    p, y = calibrated_applicants(100_000, seed=2)
    c_fp, c_fn, t = 1.0, 10.0, 0.2
    per_applicant_cost = np.where(p > t, c_fp, c_fn)
    se = np.sqrt((per_applicant_cost**2 * p * (1 - p)).sum()) / p.size
    assert abs(expected_cost(p, y, t, c_fp, c_fn) - expected_cost_model(p, t, c_fp, c_fn)) < 4 * se


def test_the_realised_cost_minimiser_of_calibrated_probabilities_is_near_the_bayes_threshold():
    p, y = calibrated_applicants(200_000, seed=3)
    c_fp, c_fn = 1.0, 10.0
    t_star = c_fp / (c_fp + c_fn)
    choice = optimal_threshold(p, y, c_fp, c_fn, grid=np.linspace(0, 1, 1001))
    # Tolerance: near t* the realised cost is n f a h^2 / 2 (drift) plus a a sqrt(n f t*(1 - t*)) W(h)
    # (f the Beta density at t*, a = c_fp + c_fn, W two-sided Brownian motion), so the minimiser
    # sits c Z from t*, c = (4 t*(1 - t*) / (n f))^(1/3) and Z Chernoff-distributed with sd 0.51
    # (Groeneboom & Wellner 2001). 3c is about 6 sd of Z; here c is about 0.01.
    f = stats.beta.pdf(t_star, 2, 5)
    c = (4 * t_star * (1 - t_star) / (p.size * f)) ** (1 / 3)
    assert choice.thresholds.shape == (1,)
    assert abs(choice.threshold_mean - t_star) < 3 * c


def test_the_bayes_threshold_costs_far_less_than_one_half_when_missing_a_default_costs_ten_times_more():
    p, y = calibrated_applicants(20_000, seed=4)
    c_fp, c_fn = 1.0, 10.0
    # posterior draws: the true probabilities blurred on the logit scale, 200 draws
    rng = np.random.default_rng(5)
    p_draws = special.expit(special.logit(p) + 0.3 * rng.normal(size=(200, p.size)))
    choice = optimal_threshold(p_draws, y, c_fp, c_fn)
    assert isinstance(choice, ThresholdChoice)
    assert choice.saving > 10 * choice.saving_se > 0
    assert choice.cost_at_bayes < choice.cost_at_half
    # the reported costs are the per-draw realised costs averaged over draws
    at_half = [expected_cost(row, y, 0.5, c_fp, c_fn) for row in p_draws]
    assert choice.cost_at_half == pytest.approx(np.mean(at_half))
    assert choice.cost_at_half_se == pytest.approx(np.std(at_half, ddof=1) / np.sqrt(len(at_half)))
    lo, hi = choice.threshold_interval
    assert lo <= choice.threshold_mean <= hi and 0 < lo and hi < 0.5


def test_each_draws_threshold_minimises_its_realised_cost_on_the_grid():
    # brute force: evaluate expected_cost at every grid point of every draw
    p, y = calibrated_applicants(300, seed=6)
    rng = np.random.default_rng(7)
    p_draws = special.expit(special.logit(p) + 0.5 * rng.normal(size=(5, p.size)))
    grid = np.linspace(0, 1, 101)
    c_fp, c_fn = 2.0, 7.0
    choice = optimal_threshold(p_draws, y, c_fp, c_fn, grid)
    for row, chosen in zip(p_draws, choice.thresholds):
        curve = np.array([expected_cost(row, y, t, c_fp, c_fn) for t in grid])
        assert expected_cost(row, y, chosen, c_fp, c_fn) == pytest.approx(curve.min())
        assert chosen == grid[np.flatnonzero(np.isclose(curve, curve.min()))[0]]  # lowest of ties


@pytest.mark.parametrize("c_fp, c_fn, field", [
    (0.0, 10.0, "costs.false_positive"),
    (-1.0, 10.0, "costs.false_positive"),
    (float("nan"), 10.0, "costs.false_positive"),
    (1.0, 0.0, "costs.false_negative"),
    (1.0, float("inf"), "costs.false_negative"),
])
def test_costs_must_be_positive_and_finite(c_fp, c_fn, field):
    p, y = calibrated_applicants(100, seed=8)
    for call in (
        lambda: bayes_threshold(c_fp, c_fn),
        lambda: expected_cost(p, y, 0.5, c_fp, c_fn),
        lambda: optimal_threshold(p[None], y, c_fp, c_fn),
    ):
        with pytest.raises(SpecError) as err:
            call()
        assert err.value.field == field and "> 0" in err.value.rule


@pytest.mark.parametrize("bad", [-0.1, 1.2, float("nan")])
def test_probabilities_must_lie_in_the_unit_interval(bad):
    p, y = calibrated_applicants(100, seed=9)
    p[3] = bad
    with pytest.raises(SpecError) as err:
        expected_cost(p, y, 0.5, 1.0, 10.0)
    assert err.value.field == "p"
    with pytest.raises(SpecError) as err:
        optimal_threshold(np.tile(p, (4, 1)), y, 1.0, 10.0)
    assert err.value.field == "p_draws"


def test_one_label_per_applicant_is_required():
    p, y = calibrated_applicants(100, seed=10)
    with pytest.raises(SpecError) as err:
        expected_cost(p, y[:-1], 0.5, 1.0, 10.0)
    assert err.value.field == "y"
    with pytest.raises(SpecError) as err:
        optimal_threshold(np.tile(p, (4, 1)), np.append(y, 1), 1.0, 10.0)
    assert err.value.field == "y"
    with pytest.raises(SpecError) as err:
        expected_cost(p, y * 2, 0.5, 1.0, 10.0)
    assert err.value.field == "y"


def test_draws_from_markov_chains_give_errors_through_their_effective_sample_size():
    # 2 chains of 400 draws, each draw held for 10 steps (as a sampler that moves every
    # 10th iteration): about 80 independent draws, so the errors are about sqrt(10) ~ 3.2
    # times those that read the 800 as independent
    p, y = calibrated_applicants(2000, seed=8)
    rng = np.random.default_rng(9)
    moves = special.expit(special.logit(p) + 0.3 * rng.normal(size=(80, p.size)))
    p_draws = np.repeat(moves, 10, axis=0)
    independent = optimal_threshold(p_draws, y, 1.0, 10.0)
    chained = optimal_threshold(p_draws, y, 1.0, 10.0, chains=2)
    assert chained.cost_at_bayes == independent.cost_at_bayes
    assert 2 < chained.cost_at_bayes_se / independent.cost_at_bayes_se < 5
    with pytest.raises(SpecError) as err:
        optimal_threshold(p_draws, y, 1.0, 10.0, chains=3)  # 800 draws do not split into 3 chains
    assert err.value.field == "chains"
