"""Value-at-Risk and Tail VaR from loss draws, with honest Monte Carlo errors."""

import numpy as np
import pytest
from scipy import stats

from wager.errors import SpecError
from wager.risk.tail import TailSummary, chain_tail_summary, tail_summary, tvar, var


def exponential_losses(rate, shape, seed):
    return np.random.default_rng(seed).exponential(1 / rate, size=shape)


def test_var_and_tvar_of_exponential_losses_match_the_closed_forms():
    # Exp(rate): VaR_p = -ln(1 - p) / rate; memorylessness gives TVaR_p = VaR_p + 1 / rate
    rate, level = 2.0, 0.99
    losses = exponential_losses(rate, 200_000, seed=1)
    v, v_se = var(losses, level)
    t, t_se = tvar(losses, level)
    assert abs(v - (-np.log(1 - level) / rate)) < 4 * v_se
    assert abs(t - (-np.log(1 - level) / rate + 1 / rate)) < 4 * t_se


def test_var_and_tvar_of_normal_losses_match_the_closed_forms():
    # N(mu, sigma): VaR_p = mu + sigma z_p, TVaR_p = mu + sigma phi(z_p) / (1 - p)
    mu, sigma, level = 1.0, 3.0, 0.975
    losses = np.random.default_rng(2).normal(mu, sigma, size=200_000)
    summary = tail_summary(losses, level)
    z = stats.norm.ppf(level)
    assert isinstance(summary, TailSummary) and summary.level == level
    assert abs(summary.var - (mu + sigma * z)) < 4 * summary.var_se
    assert abs(summary.tvar - (mu + sigma * stats.norm.pdf(z) / (1 - level))) < 4 * summary.tvar_se


def test_standard_errors_match_the_spread_over_repeated_samples():
    # 200 independent samples of 10,000 draws each, one per column: the spread of
    # the estimates across samples is what the reported MCSE claims to be.
    # With 200 replicates the sample sd itself is uncertain by ~1/sqrt(2 * 199) = 5%.
    rate, level = 1.0, 0.99
    losses = exponential_losses(rate, (10_000, 200), seed=3)
    summary = tail_summary(losses, level)
    for estimate, se in ((summary.var, summary.var_se), (summary.tvar, summary.tvar_se)):
        ratio = estimate.std(ddof=1) / se.mean()
        assert 1 / 1.3 < ratio < 1.3, ratio


def test_tvar_is_the_mean_of_the_largest_draws_when_the_tail_is_whole():
    # S p whole: the empirical expected shortfall is the mean of the S (1 - p) largest draws
    losses = np.random.default_rng(4).standard_t(df=4, size=1000)
    t, _ = tvar(losses, 0.95)
    assert t == pytest.approx(np.sort(losses)[-50:].mean(), rel=1e-12)


def test_tvar_integrates_the_empirical_quantile_function_when_the_tail_is_fractional():
    # S = 7, p = 0.8: Q(u) = x_(ceil(7u)); integral_0.8^1 Q(u) du = (6/7 - 0.8) x_(6) + x_(7) / 7
    x = np.array([3.0, -1.0, 10.0, 4.0, 0.5, 7.0, 2.0])
    s = np.sort(x)
    expected = ((6 / 7 - 0.8) * s[5] + s[6] / 7) / 0.2
    v, _ = var(x, 0.8)
    t, _ = tvar(x, 0.8)
    assert v == s[5]  # inverted CDF: smallest draw with F_S(x) >= 0.8 is the 6th of 7
    assert t == pytest.approx(expected, rel=1e-12)


def test_each_trailing_column_is_its_own_loss_distribution():
    losses = exponential_losses(1.0, (5000, 3), seed=5) * np.array([1.0, 2.0, 4.0])
    summary = tail_summary(losses, 0.9)
    assert summary.var.shape == summary.tvar_se.shape == (3,)
    for k in range(3):
        column = tail_summary(losses[:, k], 0.9)
        assert summary.var[k] == column.var and summary.tvar[k] == pytest.approx(column.tvar)


@pytest.mark.parametrize("level", [0.0, 1.0, -0.5, 1.5, float("nan"), "0.99"])
def test_a_level_outside_the_open_unit_interval_is_refused(level):
    with pytest.raises(SpecError) as err:
        var(np.arange(1000.0), level)
    assert err.value.field == "level"


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_losses_are_refused(bad):
    losses = np.arange(1000.0)
    losses[10] = bad
    with pytest.raises(SpecError) as err:
        tvar(losses, 0.99)
    assert err.value.field == "losses" and "finite" in err.value.rule


def test_too_few_draws_for_the_tail_are_refused():
    # 50 draws put half a draw beyond the 99% quantile
    with pytest.raises(SpecError) as err:
        tail_summary(np.arange(50.0), 0.99)
    assert err.value.field == "losses" and "100" in err.value.rule


# --- draws from Markov chains ---------------------------------------------------------------


def sticky_chains(rho, chains, draws, rng):
    """Standard normal draws, each repeating the one before with probability ``rho`` (as a
    Metropolis sampler that rejects): for every function ``f``, ``f(x_t)`` has lag-``k``
    autocorrelation ``rho^k``, so the variance of any average grows by ``(1 + rho) / (1 - rho)``."""
    fresh = rng.standard_normal((chains, draws))
    moves = rng.random((chains, draws)) >= rho
    moves[:, 0] = True
    last_move = np.maximum.accumulate(np.where(moves, np.arange(draws), 0), axis=1)
    return np.take_along_axis(fresh, last_move, axis=1)


def test_errors_of_autocorrelated_draws_are_sqrt_1_plus_rho_over_1_minus_rho_times_the_independent_ones():
    # rho = 0.8: the factor is sqrt(1.8 / 0.2) = 3. Over 200 replicate runs (4 chains of 2,500
    # draws each) the ESS-based errors match the estimates' real spread (its sd known to ~5%,
    # the ESS to a few %), and the independent-draws errors understate it threefold.
    rho, level, replicates = 0.8, 0.9, 200
    factor = np.sqrt((1 + rho) / (1 - rho))
    rng = np.random.default_rng(11)
    rows = []
    for _ in range(replicates):
        x = sticky_chains(rho, 4, 2500, rng)
        chained, independent = chain_tail_summary(x, level), tail_summary(x.ravel(), level)
        assert chained.var == independent.var and chained.tvar == pytest.approx(independent.tvar)
        rows.append((chained.var, chained.tvar, chained.var_se, chained.tvar_se, independent.var_se, independent.tvar_se))
    var_, tvar_, var_se, tvar_se, var_se_iid, tvar_se_iid = np.array(rows, dtype=float).T
    for estimates, se, se_iid in ((var_, var_se, var_se_iid), (tvar_, tvar_se, tvar_se_iid)):
        spread = estimates.std(ddof=1)
        assert 1 / 1.2 < se.mean() / spread < 1.2, (se.mean(), spread)
        assert se.mean() / se_iid.mean() == pytest.approx(factor, rel=0.1)
        assert spread / se_iid.mean() == pytest.approx(factor, rel=0.2)


def test_losses_simulated_from_one_draw_share_its_parameters():
    # independent draws theta_s ~ N(0, 1), 20 losses theta_s + N(0, 1) each: the 20 are
    # correlated (0.5), so the errors exceed tail_summary's and match the spread over replicates
    level, replicates = 0.95, 200
    rng = np.random.default_rng(12)
    rows = []
    for _ in range(replicates):
        losses = rng.standard_normal((2, 500, 1)) + rng.standard_normal((2, 500, 20))
        chained, independent = chain_tail_summary(losses, level), tail_summary(losses.ravel(), level)
        rows.append((chained.var, chained.tvar, chained.var_se, chained.tvar_se, independent.var_se))
    var_, tvar_, var_se, tvar_se, var_se_iid = np.array(rows, dtype=float).T
    assert 1 / 1.2 < var_se.mean() / var_.std(ddof=1) < 1.2
    assert 1 / 1.2 < tvar_se.mean() / tvar_.std(ddof=1) < 1.2
    assert var_se.mean() > 2 * var_se_iid.mean()


def test_independent_chains_give_the_independent_errors():
    x = np.random.default_rng(13).exponential(size=(4, 25_000))
    chained, independent = chain_tail_summary(x, 0.99), tail_summary(x.ravel(), 0.99)
    assert chained.var_se == pytest.approx(independent.var_se, rel=0.25)
    assert chained.tvar_se == pytest.approx(independent.tvar_se, rel=0.1)


def test_chain_losses_need_a_chain_and_a_draw_axis():
    with pytest.raises(SpecError) as err:
        chain_tail_summary(np.arange(1000.0), 0.9)
    assert err.value.field == "losses" and "(chains, draws" in err.value.rule
