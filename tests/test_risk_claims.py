"""Claim frequency and severity pooled by class: NUTS recovers simulated parameters,
the aggregate-loss simulator has the compound mean it should, and the predictive
99.5% VaR carries parameter uncertainty that the plug-in misses and that fades with data."""

import numpy as np
import pytest
from scipy import stats

from wager.errors import SpecError
from wager.risk.aggregate import ClaimParameters, aggregate_plug_in, aggregate_predictive, posterior_medians, simulate_aggregate
from wager.risk.claims import fit_nuts, log_likelihood, simulate_portfolio
from wager.risk.portfolio import check_portfolio

# Six rating classes: 0.05 to 0.12 claims per policy-year, median claims 2000 to 4500,
# year-to-year overdispersion phi = 20, lognormal log-sd 1.2 (a mean claim 2.05x the median).
TRUE = {
    "rate": np.array([0.05, 0.07, 0.08, 0.09, 0.10, 0.12]),
    "severity_loc": np.log([2000.0, 2500.0, 3000.0, 3000.0, 3600.0, 4500.0]),
    "concentration": 20.0,
    "severity_sigma": 1.2,
}
PERIODS = 4  # frequency-table rows per class
FEW, MANY = 25.0, 250.0  # policy-years per class and period: about 8 and 80 claims per class in all
NEXT = np.full(6, 100.0)  # next period's policy-years per class (about 50 claims in all)
SEEDS = (1, 2, 3)
NUTS = {"chains": 2, "warmup": 500, "draws": 500}


def book(exposure: float, seed: int):
    """Both sizes have the same table shapes, so every fit reuses one compiled sampler."""
    return simulate_portfolio(exposure=np.full((6, PERIODS), exposure), rng=np.random.default_rng(seed), **TRUE)


@pytest.fixture(scope="module")
def fits():
    out = {}
    for size in (FEW, MANY):
        for seed in SEEDS:
            data = book(size, seed)
            out[size, seed] = (data, fit_nuts(data, seed=seed, **NUTS))
    return out


def true_parameters(sets: int = 1) -> ClaimParameters:
    return ClaimParameters(
        rate=np.tile(TRUE["rate"], (sets, 1)),
        concentration=np.full(sets, TRUE["concentration"]),
        severity_loc=np.tile(TRUE["severity_loc"], (sets, 1)),
        severity_sigma=np.full(sets, TRUE["severity_sigma"]),
    )


# --- the model recovers what generated the data ------------------------------------------


def test_nuts_recovers_the_class_rates_severities_and_dispersion(fits):
    # 24 class-years with 250 policy-years each (about 480 claims), 2 chains x (500 + 500):
    # every class's rate and lognormal location, phi and sigma within 3 posterior sds
    data, posterior = fits[MANY, 1]
    assert data.counts.sum() == data.amounts.size  # one amount per simulated claim
    for name in ("rate", "severity_loc", "concentration", "severity_sigma"):
        draws = posterior.flat(name)
        z = (draws.mean(axis=0) - TRUE[name]) / draws.std(axis=0)
        assert np.all(np.abs(z) < 3), (name, draws.mean(axis=0), draws.std(axis=0))
    assert posterior.sample_stats["diverging"].sum() == 0
    # the recorded pure premium is rate x lognormal mean exp(m + s^2 / 2)
    expected = posterior.flat("rate") * np.exp(posterior.flat("severity_loc") + posterior.flat("severity_sigma")[:, None] ** 2 / 2)
    np.testing.assert_allclose(posterior.flat("pure_premium"), expected, rtol=1e-10)


def test_log_likelihood_is_the_negative_binomial_and_lognormal_densities_claim_by_claim():
    # the severity term from three statistics per class equals scipy's lognormal
    # density summed over the claims one by one; the frequency term scipy's nbinom
    data = book(FEW, 1)
    at = {"rate": TRUE["rate"] * 1.1, "concentration": 7.0, "severity_loc": TRUE["severity_loc"] - 0.2, "severity_sigma": 1.4}
    mean = data.exposure * at["rate"][data.row_class]
    frequency = stats.nbinom.logpmf(data.counts, 7.0, 7.0 / (7.0 + mean)).sum()
    severity = stats.lognorm.logpdf(data.amounts, 1.4, scale=np.exp(at["severity_loc"][data.claim_class])).sum()
    assert log_likelihood(data, at) == pytest.approx(frequency + severity, rel=1e-12)


# --- the simulator ---------------------------------------------------------------------------


def test_simulated_total_has_the_compound_negative_binomial_lognormal_mean():
    # E[S] = sum_c E_c rate_c exp(m_c + s^2 / 2) = 100 x (0.05 x 2000 + ... + 0.12 x 4500) x exp(0.72)
    closed_form = float(np.sum(NEXT * TRUE["rate"] * np.exp(TRUE["severity_loc"] + TRUE["severity_sigma"] ** 2 / 2)))
    assert closed_form == pytest.approx(100 * (100 + 175 + 240 + 270 + 360 + 540) * np.exp(0.72))
    by_class = simulate_aggregate(true_parameters(200_000), NEXT, np.random.default_rng(11))
    total = by_class.sum(axis=1)
    mcse = total.std(ddof=1) / np.sqrt(total.size)
    assert abs(total.mean() - closed_form) < 4 * mcse, (total.mean(), closed_form, mcse)
    # and class by class
    per_class = NEXT * TRUE["rate"] * np.exp(TRUE["severity_loc"] + TRUE["severity_sigma"] ** 2 / 2)
    per_class_se = by_class.std(axis=0, ddof=1) / np.sqrt(total.size)
    assert np.all(np.abs(by_class.mean(axis=0) - per_class) < 4 * per_class_se)


def test_simulating_in_small_blocks_bounds_memory_without_changing_the_draws():
    # the amounts are one stream of Normals however the periods are blocked
    params = true_parameters(2_000)
    whole = simulate_aggregate(params, NEXT, np.random.default_rng(5))
    blocked = simulate_aggregate(params, NEXT, np.random.default_rng(5), max_claims=500)
    np.testing.assert_allclose(blocked, whole, rtol=1e-12)


# --- parameter uncertainty in the aggregate loss ------------------------------------------------


def test_predictive_var_exceeds_the_plug_in_with_few_claims_and_the_gap_shrinks_with_ten_times_the_exposure(fits):
    # For each of three data seeds (1, 2, 3, not chosen: the first three) and both sizes,
    # next year's total for 100 policy-years per class: the predictive simulates 50 years
    # per posterior draw (50,000 in all), the plug-in 100,000 years at the posterior medians.
    # Relative gap = predictive VaR / plug-in VaR - 1, averaged over the seeds; its Monte
    # Carlo error from both VaRs' MCSEs. Measured: gaps 0.46, 0.50, 0.61 with ~8 claims per
    # class (average 0.53, MCSE 0.026) and 0.066, 0.066, 0.063 with ~80 (0.065, MCSE 0.007).
    level = 0.995
    gap, gap_se, tvar_gap = {}, {}, {}
    for size in (FEW, MANY):
        gaps, variances, tvar_gaps = [], [], []
        for seed in SEEDS:
            data, posterior = fits[size, seed]
            predictive = aggregate_predictive(posterior, data, np.random.default_rng(100 + seed), exposure=NEXT, level=level, per_draw=50)
            plug_in = aggregate_plug_in(posterior_medians(posterior), data, np.random.default_rng(200 + seed), exposure=NEXT, level=level)
            assert predictive.total.shape == (50_000,) and predictive.by_class.shape == (50_000, 6)
            assert np.allclose(predictive.by_class.sum(axis=1), predictive.total)
            ratio = predictive.var / plug_in.var
            gaps.append(ratio - 1)
            variances.append((predictive.var_se / plug_in.var) ** 2 + (ratio * plug_in.var_se / plug_in.var) ** 2)
            tvar_gaps.append(predictive.tvar / plug_in.tvar - 1)
        gap[size], gap_se[size] = np.mean(gaps), np.sqrt(np.sum(variances)) / len(SEEDS)
        tvar_gap[size] = np.mean(tvar_gaps)
    assert gap[FEW] > 3 * gap_se[FEW], (gap, gap_se)
    assert gap[FEW] - gap[MANY] > 3 * np.hypot(gap_se[FEW], gap_se[MANY]), (gap, gap_se)
    # the honest tail is wider in TVaR too, and by more with few data
    assert tvar_gap[FEW] > tvar_gap[MANY] > 0, tvar_gap


# --- bad input -----------------------------------------------------------------------------------


GOOD = {
    "classes": ["motor", "motor", "home"],
    "exposure": [120.0, 130.0, 80.0],
    "counts": [9, 11, 3],
    "claim_classes": ["motor", "home", "motor"],
    "amounts": [1200.0, 5400.0, 800.0],
}


def test_a_good_portfolio_is_accepted_with_classes_in_order_of_appearance():
    data = check_portfolio(**GOOD)
    assert data.classes == ("motor", "home")
    np.testing.assert_array_equal(data.row_class, [0, 0, 1])
    np.testing.assert_array_equal(data.claim_class, [0, 1, 0])
    np.testing.assert_allclose(data.class_exposure(), [250.0, 80.0])


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"amounts": [1200.0, 0.0, 800.0]}, "claims.amount"),
        ({"amounts": [1200.0, -5.0, 800.0]}, "claims.amount"),
        ({"exposure": [120.0, 0.0, 80.0]}, "exposure"),
        ({"exposure": [120.0, -1.0, 80.0]}, "exposure"),
        ({"counts": [9, -1, 3]}, "counts"),
        ({"counts": [9, 2.5, 3]}, "counts"),
        ({"claim_classes": ["motor", "travel", "motor"]}, "claims.class"),
    ],
)
def test_bad_tables_raise_a_spec_error_naming_the_field(change, field):
    with pytest.raises(SpecError) as error:
        check_portfolio(**{**GOOD, **change})
    assert error.value.field == field


@pytest.mark.parametrize(
    ("change", "field", "rule"),
    [
        ({"classes": ["motor", np.nan, "home"]}, "classes", "must name each row's class: row 2 is empty"),
        ({"claim_classes": ["motor", "home", None]}, "claims.class", "must name each row's class: row 3 is empty"),
        ({"classes": ["motor", " ", "home"]}, "classes", "must name each row's class: row 2 is empty"),
        ({"exposure": [120.0, "ten", 80.0]}, "exposure", "must be numbers: row 2 has 'ten'"),
    ],
)
def test_an_empty_class_or_a_text_number_is_refused_naming_its_row(change, field, rule):
    with pytest.raises(SpecError) as error:
        check_portfolio(**{**GOOD, **change})
    assert (error.value.field, error.value.rule) == (field, rule)


def test_whole_number_classes_read_as_floats_are_the_integers_the_table_shows():
    data = check_portfolio(**{**GOOD, "classes": [1.0, 1.0, 2.0], "claim_classes": [1, 2, 1]})
    assert [str(c) for c in data.classes] == ["1", "2"]  # not 1.0 and 2.0
    np.testing.assert_array_equal(data.claim_class, [0, 1, 0])


def test_bad_next_period_exposure_and_level_raise_spec_errors():
    data = check_portfolio(**GOOD)
    point = ClaimParameters(np.array([[0.08, 0.04]]), np.array([10.0]), np.log([[1000.0, 4000.0]]), np.array([1.0]))
    rng = np.random.default_rng(0)
    with pytest.raises(SpecError) as error:
        aggregate_plug_in(point, data, rng, exposure={"motor": 100.0})
    assert error.value.field == "exposure"
    with pytest.raises(SpecError) as error:
        aggregate_plug_in(point, data, rng, exposure=[100.0, 0.0])
    assert error.value.field == "exposure"
    with pytest.raises(SpecError) as error:
        aggregate_plug_in(point, data, rng, level=99.5)
    assert error.value.field == "level"


def test_a_claims_spec_takes_smaller_nuts_steps_unless_it_sets_its_own():
    from wager.risk.spec import CLAIMS_TARGET_ACCEPT
    from wager.workflow.specs import parse_spec

    base = {"domain": "risk", "task": "claims", "data": {"frequency": "f.csv", "claims": "c.csv"}}
    assert CLAIMS_TARGET_ACCEPT == 0.95
    assert parse_spec(base).inference.target_accept == 0.95
    assert parse_spec({**base, "inference": {"seed": 3}}).inference.target_accept == 0.95
    assert parse_spec({**base, "inference": {"target_accept": 0.85}}).inference.target_accept == 0.85
    assert parse_spec({**base, "task": "reserve", "data": {"sample": "raa"}}).inference.target_accept == 0.8  # other tasks keep the default
