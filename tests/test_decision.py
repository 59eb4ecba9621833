"""The decision layer: expected loss, Bayes action, probability best, indifference."""

import numpy as np
import pytest
from scipy import stats

from wager.kernel.decision import (
    Action, asymmetric_linear, bayes_point, decide, decide_closed_form, opportunity_losses, zero_one,
)


def normal_draws(loc, scale, seed, shape=(4, 50_000)):
    return np.random.default_rng(seed).normal(loc, scale, size=shape)


def test_opportunity_loss_matches_the_normal_closed_form():
    a, b = normal_draws(1.0, 0.3, 1), normal_draws(1.2, 0.4, 2)
    decision = decide(opportunity_losses({"a": lambda d: d["a"], "b": lambda d: d["b"]}), {"a": a, "b": b}, independent=True)
    d, s = 0.2, 0.5  # b - a ~ N(0.2, 0.5)
    keep_a = s * stats.norm.pdf(d / s) + d * stats.norm.cdf(d / s)
    assert abs(decision["a"].expected_loss - keep_a) < 4 * decision["a"].mcse
    assert abs(decision["b"].expected_loss - (keep_a - d)) < 4 * decision["b"].mcse
    assert decision.best == "b" and not decision.indifferent
    assert abs(decision["b"].prob_best - stats.norm.cdf(d / s)) < 4 * np.sqrt(0.5 * 0.5 / a.size)


def test_actions_equal_in_expectation_are_indifferent():
    # x ~ N(0, 1): E[x] = E[-x] = 0, so the gap is Monte Carlo noise
    x = normal_draws(0, 1, 3)
    twins = [Action("left", lambda d: d["x"]), Action("right", lambda d: -d["x"])]
    assert decide(twins, {"x": x}, independent=True).indifferent


def test_a_certain_difference_is_not_indifference():
    # paired losses that always differ by 1e-9 differ for sure: the gap has no Monte Carlo error
    x = normal_draws(0, 1, 3)
    pair = [Action("left", lambda d: np.abs(d["x"])), Action("right", lambda d: np.abs(d["x"]) + 1e-9)]
    decision = decide(pair, {"x": x}, independent=True)
    assert decision.best == "left" and not decision.indifferent


def test_asymmetric_linear_bayes_point_is_the_quantile():
    x = normal_draws(10, 2, 4, shape=(1, 200_000))
    under, over = 3.0, 1.0  # running short costs 3x: hold the 75% quantile
    point = bayes_point(x, under, over)
    assert point == pytest.approx(stats.norm.ppf(0.75, 10, 2), abs=0.03)
    candidates = [point - 0.5, point, point + 0.5]
    losses = [asymmetric_linear(lambda d: d["x"], c, under, over)({"x": x}).mean() for c in candidates]
    assert np.argmin(losses) == 1


def test_zero_one_costs_give_the_posterior_threshold_rule():
    # act costs c_fp = 1 when the event fails; wait costs c_fn = 4 when it holds:
    # act iff P(event) > 1 / (1 + 4) = 0.2
    for p_event, expected in ((0.15, "wait"), (0.3, "act")):
        event = np.random.default_rng(5).random((4, 100_000)) < p_event
        actions = [
            Action("act", zero_one(lambda d: ~d["e"], cost_if_event=1.0)),
            Action("wait", zero_one(lambda d: d["e"], cost_if_event=4.0)),
        ]
        assert decide(actions, {"e": event}, independent=True).best == expected


def test_loss_must_be_finite_per_draw():
    bad = [Action("x", lambda d: np.full(d["x"].shape, np.nan)), Action("y", lambda d: d["x"])]
    with pytest.raises(ValueError, match="not finite"):
        decide(bad, {"x": normal_draws(0, 1, 6)}, independent=True)


def test_closed_form_decisions_have_no_monte_carlo_error():
    d = decide_closed_form({"ship": 0.001, "keep": 0.003}, {"ship": 0.8, "keep": 0.2})
    assert d.best == "ship" and d.gap == pytest.approx(0.002) and d.gap_mcse == 0 and not d.indifferent
