"""``wager.ab.batch.compare_conversions``: the vectorised two-arm comparison.

The Normal method's error bounds below are the ones measured by
``benchmarks/throughput.py`` against the exact method over 1,000..100,000
visitors and 1%..50% rates, and stated in the module docstring.
"""

from __future__ import annotations

import numpy as np
import pytest

from wager.ab.batch import compare_conversions
from wager.errors import SpecError
from wager.kernel import compare
from wager.kernel.closed_form import Beta

# Measured maxima (docs/benchmarks.md), rounded up.
WIN_ERROR = 0.0066
LOSS_ERROR = 2.1e-5
INTERVAL_ERROR = 8.0e-4


def _grid(visitors, rates, offsets):
    """A's conversions at each rate; B's placed ``offset`` sd of the difference away."""
    n, p, z = np.meshgrid(visitors, rates, offsets, indexing="ij")
    ka = np.round(n * p)
    kb = np.clip(np.round(ka + z * np.sqrt(2 * n * p * (1 - p))), 0, n)
    return ka.ravel().astype(int), n.ravel().astype(int), kb.ravel().astype(int)


def test_founding_example_chance_to_win_is_the_exact_0_984_within_the_bound():
    out = compare_conversions(1100, 20000, 1200, 20000)
    exact = compare.prob_beta_greater(Beta(1101, 18901), Beta(1201, 18801))
    assert exact == pytest.approx(0.98413, abs=5e-5)
    assert abs(float(out["prob_b_beats_a"]) - exact) < WIN_ERROR
    assert out["prob_b_beats_a"].shape == ()


def test_normal_chance_to_win_agrees_with_evan_millers_exact_sum_on_a_grid():
    ka, n, kb = _grid([1000, 3000, 10000, 30000, 100000], [0.01, 0.03, 0.1, 0.3, 0.5], np.arange(-3, 3.01, 1.0))
    out = compare_conversions(ka, n, kb, n)
    exact = np.array([compare.prob_beta_greater(Beta(1 + a, 1 + m - a), Beta(1 + b, 1 + m - b)) for a, m, b in zip(ka, n, kb)])
    error = np.abs(out["prob_b_beats_a"] - exact)
    assert error.max() < WIN_ERROR
    # and the error shrinks with the counts as the docstring says: below 0.07 / A's conversions
    assert np.all(error < 0.07 / ka)


def test_normal_losses_and_interval_agree_with_the_exact_method_on_a_small_grid():
    ka, n, kb = _grid([1000, 20000], [0.01, 0.2], [-2.0, 0.0, 2.0])
    normal = compare_conversions(ka, n, kb, n, method="normal")
    exact = compare_conversions(ka, n, kb, n, method="exact")
    assert np.abs(normal["prob_b_beats_a"] - exact["prob_b_beats_a"]).max() < WIN_ERROR
    for key in ("expected_loss_ship_b", "expected_loss_keep_a"):
        assert np.abs(normal[key] - exact[key]).max() < LOSS_ERROR
    for key in ("lift_low", "lift_high"):
        assert np.abs(normal[key] - exact[key]).max() < INTERVAL_ERROR
    # the lift's mean and sd are exact in both methods
    np.testing.assert_allclose(normal["lift_mean"], exact["lift_mean"], rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(normal["lift_sd"], exact["lift_sd"], rtol=1e-12)


def test_exact_method_keeps_the_loss_identity_keep_minus_ship_equals_the_mean_lift():
    out = compare_conversions([1100, 40], [20000, 1000], [1200, 55], [20000, 1000], method="exact")
    np.testing.assert_allclose(out["expected_loss_keep_a"] - out["expected_loss_ship_b"], out["lift_mean"], atol=1e-10)


@pytest.mark.parametrize("d, s", [(0.005, 0.0023), (-0.01, 0.004), (0.0, 0.01), (0.03, 0.01)])
def test_expected_loss_closed_form_matches_monte_carlo_on_normal_draws_within_4_mcse(d, s):
    # Counts whose moment-matched lift has mean d-ish and sd s-ish; the check
    # uses the returned (lift_mean, lift_sd), so any counts would do.
    n = int(0.25 / s**2)
    ka = int(0.3 * n)
    kb = int(np.clip(ka + d * n, 0, n))
    out = compare_conversions(ka, n, kb, n)
    mean, sd = float(out["lift_mean"]), float(out["lift_sd"])
    draws = np.random.default_rng(20240101).normal(mean, sd, size=1_000_000)
    for key, loss in (("expected_loss_ship_b", np.maximum(-draws, 0)), ("expected_loss_keep_a", np.maximum(draws, 0))):
        mcse = loss.std(ddof=1) / np.sqrt(loss.size)
        assert abs(float(out[key]) - loss.mean()) < 4 * mcse, key
    assert abs(float(out["prob_b_beats_a"]) - np.mean(draws > 0)) < 4 * np.sqrt(0.25 / draws.size)


def test_interval_is_the_equal_tailed_normal_interval_of_the_lift():
    out = compare_conversions(1100, 20000, 1200, 20000, credible_mass=0.9)
    d, s = float(out["lift_mean"]), float(out["lift_sd"])
    assert float(out["lift_low"]) == pytest.approx(d - 1.6448536269514722 * s, rel=1e-12)
    assert float(out["lift_high"]) == pytest.approx(d + 1.6448536269514722 * s, rel=1e-12)


def test_counts_broadcast_and_shapes_follow_them():
    out = compare_conversions(np.array([[10], [20]]), 1000, np.array([12, 15, 30]), 1000)
    assert all(v.shape == (2, 3) and v.dtype == np.float64 for v in out.values())


def test_identical_arms_have_even_chance_and_equal_losses():
    out = compare_conversions([0, 500, 1000], 1000, [0, 500, 1000], 1000)
    np.testing.assert_allclose(out["prob_b_beats_a"], 0.5)
    np.testing.assert_allclose(out["expected_loss_ship_b"], out["expected_loss_keep_a"])


@pytest.mark.parametrize(
    "args, kwargs, field",
    [
        ((1100, 0, 1200, 20000), {}, "a_visitors"),
        ((1100, 20000, 1200, -5), {}, "b_visitors"),
        ((-1, 20000, 1200, 20000), {}, "a_conversions"),
        ((1100, 20000, 20001, 20000), {}, "b_conversions"),
        ((1100.5, 20000, 1200, 20000), {}, "a_conversions"),
        ((1100, 20000, 1200, np.nan), {}, "b_visitors"),
        ((["x"], 20000, 1200, 20000), {}, "a_conversions"),
        (([1, 2], 20000, [1, 2, 3], 20000), {}, "a_conversions, a_visitors, b_conversions, b_visitors"),
        ((1100, 20000, 1200, 20000), {"prior_alpha": 0}, "prior_alpha"),
        ((1100, 20000, 1200, 20000), {"prior_beta": float("inf")}, "prior_beta"),
        ((1100, 20000, 1200, 20000), {"credible_mass": 1.0}, "credible_mass"),
        ((1100, 20000, 1200, 20000), {"method": "mcmc"}, "method"),
    ],
)
def test_bad_input_raises_spec_error_naming_the_field(args, kwargs, field):
    with pytest.raises(SpecError) as info:
        compare_conversions(*args, **kwargs)
    assert info.value.field == field
    assert info.value.rule
