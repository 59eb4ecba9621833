"""VaR backtests: exceptions, Kupiec, Christoffersen and the Basel traffic light."""

import numpy as np
import pytest
from scipy import stats

from wager.errors import SpecError
from wager.risk.backtest import (
    BacktestResult, backtest, basel_zone, christoffersen, conditional_coverage, exceptions, kupiec,
    transition_counts,
)


def clustered_hits(n, seed, p_enter=0.02, p_stay=0.3):
    """A Markov chain of exceptions: after a hit, another comes with probability ``p_stay``."""
    rng = np.random.default_rng(seed)
    hits = np.zeros(n, dtype=bool)
    for t in range(1, n):
        hits[t] = rng.random() < (p_stay if hits[t - 1] else p_enter)
    return hits


def markov_loglik(hits):
    """Sum over days 2..n of ln P(I_t | I_{t-1}) at the fitted transition probabilities, day by day."""
    counts = {(0, 0): 0, (0, 1): 0, (1, 0): 0, (1, 1): 0}
    for before, after in zip(hits[:-1].astype(int), hits[1:].astype(int)):
        counts[before, after] += 1
    prob_hit_after = {
        i: counts[i, 1] / (counts[i, 0] + counts[i, 1]) if counts[i, 0] + counts[i, 1] else 0.0 for i in (0, 1)
    }
    return sum(stats.bernoulli.logpmf(after, prob_hit_after[before]) for before, after in zip(hits[:-1].astype(int), hits[1:].astype(int)))


def test_an_exception_is_a_loss_strictly_beyond_the_forecast():
    losses = np.array([1.0, 2.5, 2.0, -3.0, 5.0])
    forecasts = np.array([2.0, 2.0, 2.0, 2.0, 6.0])
    assert exceptions(losses, forecasts).tolist() == [False, True, False, False, False]


def test_kupiec_matches_the_binomial_likelihood_ratio():
    # the binomial coefficient cancels: LR_pof = 2 [ln Bin(x; n, x/n) - ln Bin(x; n, p)]
    hits = clustered_hits(1000, seed=1)
    n, x, level = hits.size, int(hits.sum()), 0.99
    expected = 2 * (stats.binom.logpmf(x, n, x / n) - stats.binom.logpmf(x, n, 1 - level))
    test = kupiec(hits, level)
    assert test.statistic == pytest.approx(expected, rel=1e-10)
    assert test.p_value == pytest.approx(stats.chi2.sf(expected, 1), rel=1e-8)
    assert test.df == 1


def test_christoffersen_matches_a_day_by_day_markov_likelihood():
    hits = clustered_hits(1000, seed=2)
    pi = hits[1:].mean()  # the null: one exception probability for days 2..n, whatever came before
    iid = stats.bernoulli.logpmf(hits[1:].astype(int), pi).sum()
    expected = 2 * (markov_loglik(hits) - iid)
    test = christoffersen(hits)
    assert test.statistic == pytest.approx(expected, rel=1e-10)
    assert test.p_value == pytest.approx(stats.chi2.sf(expected, 1), rel=1e-8)


def test_conditional_coverage_adds_the_two_statistics_on_two_degrees_of_freedom():
    hits = clustered_hits(1000, seed=3)
    level = 0.99
    expected = kupiec(hits, level).statistic + christoffersen(hits).statistic
    test = conditional_coverage(hits, level)
    assert test.statistic == pytest.approx(expected) and test.df == 2
    assert test.p_value == pytest.approx(stats.chi2.sf(expected, 2))


def test_transition_counts_count_consecutive_pairs():
    assert transition_counts([0, 1, 1, 0, 0, 1]) == (1, 2, 1, 1)


def test_clustered_exceptions_pass_coverage_and_fail_independence():
    # 10 exceptions in 1000 days at 99% is exactly the expected count, but all in a row
    hits = np.zeros(1000, dtype=bool)
    hits[500:510] = True
    assert kupiec(hits, 0.99).p_value == pytest.approx(1.0)
    assert christoffersen(hits).p_value < 1e-10
    assert conditional_coverage(hits, 0.99).p_value < 1e-8


def test_no_exceptions_and_no_repeated_exceptions_give_finite_statistics():
    none = np.zeros(250, dtype=bool)
    # x = 0: LR_pof = -2 n ln(1 - p); no exceptions cannot be dependent
    assert kupiec(none, 0.99).statistic == pytest.approx(-2 * 250 * np.log(0.99))
    assert christoffersen(none).statistic == 0.0 and christoffersen(none).p_value == 1.0
    isolated = np.zeros(250, dtype=bool)
    isolated[[10, 100, 200]] = True  # n11 = 0
    assert transition_counts(isolated)[3] == 0
    for test in (kupiec(isolated, 0.99), christoffersen(isolated), conditional_coverage(isolated, 0.99)):
        assert np.isfinite(test.statistic) and 0 <= test.p_value <= 1
    every_day = np.ones(250, dtype=bool)  # x = n
    assert kupiec(every_day, 0.99).statistic == pytest.approx(-2 * 250 * np.log(0.01))
    assert np.isfinite(christoffersen(every_day).statistic)


# Basel Committee on Banking Supervision (1996), "Supervisory framework for the use
# of 'backtesting' in conjunction with the internal models approach to market risk
# capital requirements", Table 2: 250 observations, 99% coverage, cumulative
# probability of at most x exceptions (percent) for an accurate model.
BASEL_1996_CUMULATIVE = [8.11, 28.58, 54.32, 75.81, 89.22, 95.88, 98.63, 99.60, 99.89, 99.97, 99.99]


def test_basel_traffic_light_at_250_days_and_99_percent_matches_the_1996_table():
    assert [basel_zone(x) for x in range(5)] == ["green"] * 5
    assert [basel_zone(x) for x in range(5, 10)] == ["yellow"] * 5
    assert [basel_zone(x) for x in (10, 11, 15, 250)] == ["red"] * 4
    published = np.array(BASEL_1996_CUMULATIVE)
    assert np.allclose(100 * stats.binom.cdf(np.arange(11), 250, 0.01), published, atol=0.005)


def test_basel_zone_boundaries_move_with_days_and_level():
    # 750 days at 99.5%: yellow from 7 and red from 13 exceptions (cfrm17.github.io, "Backtesting KPI's")
    assert [basel_zone(x, 750, 0.995) for x in (6, 7, 12, 13)] == ["green", "yellow", "yellow", "red"]


def test_backtest_collects_the_counts_tests_and_zone():
    rng = np.random.default_rng(7)
    losses = rng.normal(size=250)
    forecasts = np.full(250, stats.norm.ppf(0.99))  # the true 99% quantile every day
    result = backtest(losses, forecasts, 0.99)
    hits = losses > forecasts
    assert isinstance(result, BacktestResult)
    assert (result.n_days, result.n_exceptions, result.expected_exceptions) == (250, int(hits.sum()), pytest.approx(2.5))
    assert result.pof == pytest.approx(kupiec(hits, 0.99).statistic)
    assert result.independence_p_value == pytest.approx(christoffersen(hits).p_value)
    assert result.conditional_coverage_p_value == pytest.approx(conditional_coverage(hits, 0.99).p_value)
    assert result.zone == basel_zone(int(hits.sum()), 250, 0.99)


@pytest.mark.parametrize("field", ["losses", "var"])
def test_nan_in_losses_or_forecasts_is_refused(field):
    series = {"losses": np.zeros(250), "var": np.ones(250)}
    series[field][17] = np.nan
    with pytest.raises(SpecError) as err:
        backtest(series["losses"], series["var"], 0.99)
    assert err.value.field == field and "NaN" in err.value.rule


def test_one_forecast_per_day_is_required():
    with pytest.raises(SpecError) as err:
        backtest(np.zeros(250), np.ones(249), 0.99)
    assert err.value.field == "var"


@pytest.mark.parametrize("level", [0.0, 1.0, 99.0, float("nan")])
def test_a_coverage_level_outside_the_open_unit_interval_is_refused(level):
    with pytest.raises(SpecError) as err:
        backtest(np.zeros(250), np.ones(250), level)
    assert err.value.field == "level"
    with pytest.raises(SpecError):
        basel_zone(3, 250, level)


def test_more_exceptions_than_days_is_refused():
    with pytest.raises(SpecError) as err:
        basel_zone(251, 250)
    assert err.value.field == "n_exceptions"
