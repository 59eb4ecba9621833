"""The A/B domain: the founding example, the expected-loss rule, k arms, counts,
revenue, sample-ratio mismatch, and per-visitor tables."""

import numpy as np
import pandas as pd
import pytest
from scipy import special, stats

from wager.ab.examples import FOUNDING_EXAMPLE
from wager.ab.models import DEFAULT_PRIORS
from wager.workflow.pipeline import result_json, run
from wager.workflow.specs import parse_spec


def decide(payload):
    return result_json(run(parse_spec(payload)))


def two_arms(a, b, **decision):
    return {
        "arms": [{"name": "A", "visitors": a[1], "conversions": a[0]}, {"name": "B", "visitors": b[1], "conversions": b[0]}],
        "decision": decision,
    }


def test_founding_example_gives_the_documented_answers():
    out = decide(FOUNDING_EXAMPLE)
    b = out["arms"]["B"]
    assert round(b["prob_beats_control"], 3) == 0.984
    assert round(b["prob_lift_above_margin"], 2) == 0.50
    # P(B beats A) is high but the lift clears the margin only half the time: keep testing
    assert out["status"] == "decided" and out["action"] == "keep testing"
    assert out["method"] == "closed form" and out["inference"]["engine"] == "exact"


def test_founding_example_text_shows_the_digits():
    result = run(parse_spec(FOUNDING_EXAMPLE))
    text = "\n".join(result.outcome.lines)
    assert "98.4%" in text and "50.0%" in text and "keep testing" in text


def test_two_arm_prob_best_is_the_chance_to_clear_the_margin():
    b = decide(two_arms((1100, 20000), (1200, 20000), min_lift=0.003))["arms"]["B"]
    assert b["prob_best"] == pytest.approx(b["prob_lift_above_margin"], abs=1e-9)


def test_lift_interval_tells_the_same_story_as_the_chance_to_win():
    b = decide(two_arms((1100, 20000), (1200, 20000)))["arms"]["B"]
    lo, hi = b["lift_absolute"]["interval"]
    assert b["prob_beats_control"] > 0.975 and lo > 0
    rlo, _ = b["lift_relative"]["interval"]
    assert rlo > 0  # same event (B > A) on the relative scale
    b2 = decide(two_arms((1100, 20000), (1140, 20000)))["arms"]["B"]
    assert b2["prob_beats_control"] < 0.975 and b2["lift_absolute"]["interval"][0] < 0


def test_clear_winner_ships_clear_loser_keeps_control():
    assert decide(two_arms((1000, 20000), (1400, 20000)))["action"] == "ship B"
    assert decide(two_arms((1400, 20000), (1000, 20000)))["action"] == "keep A"


def test_expected_losses_match_monte_carlo_from_a_peer_sampler():
    """Closed-form expected loss vs NumPy Beta draws, within 4 Monte Carlo standard errors."""
    out = decide(two_arms((1100, 20000), (1200, 20000), min_lift=0.005))
    rng = np.random.default_rng(2024)
    a = rng.beta(1101, 18901, size=400_000)
    b = rng.beta(1201, 18801, size=400_000)
    ship_b = np.maximum(a + 0.005 - b, 0)
    keep_a = np.maximum(b - a - 0.005, 0)
    for arm, loss in (("B", ship_b), ("A", keep_a)):
        mcse = loss.std() / np.sqrt(loss.size)
        assert abs(out["arms"][arm]["expected_loss"] - loss.mean()) < 4 * mcse


def test_k_arms_prob_best_and_expected_loss_match_monte_carlo():
    payload = {
        "arms": [
            {"name": "control", "visitors": 5000, "conversions": 250},
            {"name": "red", "visitors": 5000, "conversions": 270},
            {"name": "blue", "visitors": 5000, "conversions": 262},
        ]
    }
    out = decide(payload)
    rng = np.random.default_rng(7)
    draws = np.stack([rng.beta(1 + c, 1 + 5000 - c, size=400_000) for c in (250, 270, 262)], axis=-1)
    best = np.argmax(draws, axis=-1)
    regret = draws.max(axis=-1, keepdims=True) - draws
    for i, name in enumerate(("control", "red", "blue")):
        p = np.mean(best == i)
        assert abs(out["arms"][name]["prob_best"] - p) < 4 * np.sqrt(p * (1 - p) / best.size)
        mcse = regret[:, i].std() / np.sqrt(best.size)
        assert abs(out["arms"][name]["expected_loss"] - regret[:, i].mean()) < 4 * mcse
    assert sum(a["prob_best"] for a in out["arms"].values()) == pytest.approx(1, abs=1e-9)


def test_relative_margin_is_a_fraction_of_the_control():
    out = decide(two_arms((1100, 20000), (1200, 20000), min_lift=0.05, lift="relative"))
    rng = np.random.default_rng(3)
    a = rng.beta(1101, 18901, size=400_000)
    b = rng.beta(1201, 18801, size=400_000)
    p = np.mean(b / a - 1 > 0.05)
    assert abs(out["arms"]["B"]["prob_lift_above_margin"] - p) < 4 * np.sqrt(p * (1 - p) / a.size)


def test_count_metric_is_gamma_poisson_with_a_closed_form_chance_to_win():
    payload = {
        "metric": "count",
        "arms": [{"name": "A", "visitors": 1000, "events": 480}, {"name": "B", "visitors": 1000, "events": 540}],
    }
    out = decide(payload)
    # the default Gamma(shape, rate) prior: Gamma(shape + 480, rate + 1000) vs Gamma(shape + 540, rate + 1000),
    # P(B > A) = I_{r_a/(r_a+r_b)}(a_a, a_b)
    prior = DEFAULT_PRIORS["count"]["rate"].params
    ra = rb = prior["rate"] + 1000
    assert out["arms"]["B"]["prob_beats_control"] == pytest.approx(special.betainc(prior["shape"] + 480, prior["shape"] + 540, ra / (ra + rb)), abs=1e-10)
    assert out["inference"]["engine"] == "exact"


def test_sample_ratio_mismatch_matches_pearson_and_blocks():
    arms = [{"name": "A", "visitors": 10000, "conversions": 500}, {"name": "B", "visitors": 10600, "conversions": 530}]
    out = decide({"arms": arms})
    chi2, p = stats.chisquare([10000, 10600])
    assert out["srm"]["chi2"] == pytest.approx(chi2) and out["srm"]["p_value"] == pytest.approx(p)
    assert out["srm"]["flagged"] and out["status"] == "blocked" and out["action"] is None
    # a designed 1:2 split is not a mismatch
    ok = decide({"arms": [{**arms[0], "visitors": 10000}, {**arms[1], "visitors": 20100}], "expected_split": [1, 2]})
    assert not ok["srm"]["flagged"] and ok["status"] == "decided"


def visitor_table(seed=0):
    rng = np.random.default_rng(seed)
    arm = np.repeat(["A", "B"], [3000, 3100])
    converted = np.concatenate([rng.random(3000) < 0.05, rng.random(3100) < 0.06]).astype(int)
    return pd.DataFrame({"arm": arm, "converted": converted})


@pytest.mark.parametrize("fmt", ["csv", "parquet", "frame"])
def test_per_visitor_table_equals_its_sufficient_statistics(tmp_path, fmt):
    frame = visitor_table()
    stats_payload = {
        "arms": [
            {"name": n, "visitors": int((frame.arm == n).sum()), "conversions": int(frame.converted[frame.arm == n].sum())}
            for n in ("A", "B")
        ]
    }
    expected = decide(stats_payload)["arms"]
    table = {"data": {"path": f"visits.{fmt}", "arm": "arm", "value": "converted"}}
    if fmt == "csv":
        frame.to_csv(tmp_path / "visits.csv", index=False)
    elif fmt == "parquet":
        frame.to_parquet(tmp_path / "visits.parquet")
    if fmt == "frame":
        spec = parse_spec({"data": {"arm": "arm", "value": "converted"}})
        got = result_json(run(spec, frame=frame))["arms"]
    else:
        got = result_json(run(parse_spec(table), base_dir=tmp_path))["arms"]
    assert got == expected


def test_nuts_agrees_with_the_exact_engine_within_4_mcse():
    exact = decide(two_arms((1100, 20000), (1200, 20000), min_lift=0.005))
    payload = two_arms((1100, 20000), (1200, 20000), min_lift=0.005)
    sampled = decide({**payload, "inference": {"engine": "nuts", "seed": 11}})
    assert sampled["status"] == "decided" and sampled["inference"]["engine"] == "nuts"
    assert sampled["gates"]["passed"]
    for arm in ("A", "B"):
        for key in ("mean", "expected_loss", "prob_best"):
            e, s = exact["arms"][arm][key], sampled["arms"][arm]
            assert abs(s[key] - e) < 4 * s[f"{key}_mcse"], (arm, key, s[key], e)
    b = sampled["arms"]["B"]
    for key in ("prob_beats_control", "prob_lift_above_margin"):
        assert abs(b[key] - exact["arms"]["B"][key]) < 4 * b[f"{key}_mcse"]


def test_revenue_model_recovers_revenue_per_visitor_and_shows_the_normal_approximation():
    rng = np.random.default_rng(5)
    rows = []
    for name, n, p, mu in (("A", 4000, 0.05, 3.0), ("B", 4000, 0.05, 3.2)):
        buy = rng.random(n) < p
        spend = np.where(buy, rng.lognormal(mu, 1.2, size=n), 0.0)
        rows.append(pd.DataFrame({"arm": name, "value": spend}))
    frame = pd.concat(rows, ignore_index=True)
    spec = parse_spec({"metric": "revenue", "data": {}, "inference": {"seed": 3}})
    result = run(spec, frame=frame)
    out = result_json(result)
    assert out["inference"]["engine"] == "nuts" and out["gates"]["passed"], out["gates"]
    normal = out["normal_approximation"]
    for name in ("A", "B"):
        sample_mean = frame.value[frame.arm == name].mean()
        assert normal["arms"][name]["mean"] == pytest.approx(sample_mean)
        # the model's posterior mean sits within a few standard errors of the sample mean
        assert abs(out["arms"][name]["mean"] - sample_mean) < 3 * normal["arms"][name]["se"]
    assert 0 <= out["arms"]["B"]["prob_beats_control"] <= 1


def test_mean_metric_is_normal_inverse_gamma_and_matches_the_t_closed_form():
    """With a vague NIG prior the difference of means is a difference of Student t's; for
    large samples it tends to Welch's Normal: P(B > A) ~ Phi(diff / se)."""
    arms = [{"name": "A", "visitors": 400, "mean": 12.0, "sd": 4.0}, {"name": "B", "visitors": 420, "mean": 12.6, "sd": 4.2}]
    out = decide({"metric": "mean", "arms": arms, "decision": {"threshold": 0.01}})
    assert out["inference"]["engine"] == "exact"
    se = np.hypot(4.0 / np.sqrt(400), 4.2 / np.sqrt(420))
    assert out["arms"]["B"]["prob_beats_control"] == pytest.approx(stats.norm.cdf(0.6 / se), abs=2e-3)
    # Monte Carlo from the t marginals as a peer check
    rng = np.random.default_rng(0)
    a = 12.0 + 4.0 * np.sqrt(399 / 400) / np.sqrt(400) * rng.standard_t(400, size=400_000)
    b = 12.6 + 4.2 * np.sqrt(419 / 420) / np.sqrt(420) * rng.standard_t(420, size=400_000)
    p = np.mean(b > a)
    assert abs(out["arms"]["B"]["prob_beats_control"] - p) < 4 * np.sqrt(p * (1 - p) / a.size)


def test_relative_lift_of_a_mean_that_may_be_negative_is_refused():
    arms = [{"name": "A", "visitors": 50, "mean": 0.1, "sd": 4.0}, {"name": "B", "visitors": 50, "mean": 0.6, "sd": 4.2}]
    from wager.errors import SpecError

    with pytest.raises(SpecError, match="decision.lift"):
        decide({"metric": "mean", "arms": arms, "decision": {"lift": "relative", "threshold_units": "absolute"}})
    out = decide({"metric": "mean", "arms": arms, "decision": {"threshold_units": "absolute", "threshold": 0.05}})
    assert out["arms"]["B"]["lift_relative"] is None


# --- bad input: what a float64 model cannot hold, and sums no data could give ----


def refusal(payload) -> str:
    """``field: rule`` of the ``SpecError`` a spec payload is refused with."""
    from wager.errors import SpecError

    with pytest.raises(SpecError) as caught:
        parse_spec(payload)
    return str(caught.value)


def test_counts_up_to_2_53_are_exact_and_larger_ones_are_refused_from_a_spec_or_the_command_line():
    from wager.ab.cli_args import payload_from_arms
    from wager.ab.spec import MAX_COUNT

    assert float(MAX_COUNT) == MAX_COUNT and float(MAX_COUNT + 1) == MAX_COUNT  # 2**53 + 1 rounds in float64
    parse_spec(two_arms((1, MAX_COUNT), (2, MAX_COUNT)))
    assert refusal(two_arms((1, MAX_COUNT + 1), (2, 10))).startswith("arms.0.visitors: must be at most 2**53 = 9007199254740992")
    for text in ("1/100000000000000000000", "1/1e20"):
        message = refusal(payload_from_arms([f"A={text}", "B=2/10"]))
        assert message.startswith("arms.0.visitors: must be at most 2**53"), message


def test_a_count_written_as_a_boolean_is_refused_not_read_as_1_or_0():
    message = refusal({"arms": [{"name": "A", "visitors": True, "conversions": False}, {"name": "B", "visitors": 10, "conversions": 1}]})
    assert message.startswith("arms.0.visitors: must be a whole number, not true")
    message = refusal({"metric": "count", "arms": [{"name": "A", "visitors": 10, "events": True}, {"name": "B", "visitors": 10, "events": 1}]})
    assert message.startswith("arms.0.events: must be a whole number, not true")


def test_a_blank_arm_name_is_refused():
    message = refusal({"arms": [{"name": "  ", "visitors": 10, "conversions": 1}, {"name": "B", "visitors": 10, "conversions": 1}]})
    assert message.startswith("arms.0.name: must not be blank")


def test_mean_statistics_whose_squares_overflow_float64_are_refused_naming_the_field():
    def arms(mean, sd):
        return {"metric": "mean", "arms": [{"name": "A", "visitors": 10, "mean": mean, "sd": sd}, {"name": "B", "visitors": 10, "mean": 0.0, "sd": 1.0}]}

    # 10 * (1e300)**2 is beyond float64's 1.8e308; before, an internal OverflowError
    assert refusal(arms(1e300, 1.0)).startswith("arms[A].mean: is too large for float64 arithmetic")
    assert refusal(arms(1.0, 1e300)).startswith("arms[A].sd: is too large for float64 arithmetic")
    parse_spec(arms(1e150, 1e150))  # 10 * 1e300 still fits


def test_a_table_of_huge_mean_values_is_refused_as_data_without_warnings():
    import warnings

    from wager.errors import SpecError

    frame = pd.DataFrame({"arm": ["A", "A", "B", "B"], "value": [1e200, 2e200, 1e200, 3e200]})
    spec = parse_spec({"metric": "mean", "data": {}})
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # before: a numpy RuntimeWarning, then an error at arms.0.sd
        with pytest.raises(SpecError, match="^data.value: arm A's values are too large for float64"):
            run(spec, frame=frame)


def revenue_arm(**change):
    """Sums over the spends 2, 3 and 5 of three purchasers among 100 visitors, then ``change``."""
    spends = np.array([2.0, 3.0, 5.0])
    arm = {
        "name": "A", "visitors": 100, "purchasers": 3, "revenue": spends.sum(), "revenue_sq": np.sum(spends**2),
        "log_revenue": np.log(spends).sum(), "log_revenue_sq": np.sum(np.log(spends) ** 2),
    }
    return {"metric": "revenue", "arms": [{**arm, **change}, {**arm, "name": "B"}]}


@pytest.mark.parametrize(
    "change, message",
    [
        ({"revenue": 0, "revenue_sq": 0, "log_revenue": 0, "log_revenue_sq": 0}, "arms[A].revenue: must be > 0 with 3 purchasers"),
        ({"revenue_sq": 30.0}, "arms[A].revenue_sq: is too small for revenue"),  # 10**2 > 3 * 30
        ({"revenue_sq": 101.0}, "arms[A].revenue_sq: is too large for revenue"),  # 101 > 10**2
        ({"log_revenue_sq": 1.0}, "arms[A].log_revenue_sq: is too small for log_revenue"),
        ({"log_revenue": 3.7, "log_revenue_sq": 5.0}, "arms[A].log_revenue: is too large for revenue"),  # 3.7 / 3 > log(10 / 3)
    ],
    ids=["no revenue", "Cauchy-Schwarz", "squares above the squared sum", "Cauchy-Schwarz on logs", "AM-GM"],
)
def test_revenue_sums_no_positive_spends_could_give_are_refused(change, message):
    parse_spec(revenue_arm())  # the true sums pass
    assert refusal(revenue_arm(**change)).startswith(message)


def test_revenue_sums_of_equal_spends_sit_on_every_bound_and_pass():
    spends = np.full(4, 7.3)
    arm = {
        "visitors": 50, "purchasers": 4, "revenue": spends.sum(), "revenue_sq": np.sum(spends**2),
        "log_revenue": np.log(spends).sum(), "log_revenue_sq": np.sum(np.log(spends) ** 2),
    }
    parse_spec({"metric": "revenue", "arms": [{"name": "A", **arm}, {"name": "B", **arm}]})


def test_a_relative_margin_beyond_a_million_times_the_control_is_refused():
    assert refusal(two_arms((1100, 20000), (1200, 20000), min_lift=1e300, lift="relative")).startswith("decision.min_lift: a relative margin")
    decide(two_arms((1100, 20000), (1200, 20000), min_lift=1e6, lift="relative"))


def test_an_absolute_margin_a_conversion_rate_cannot_clear_is_refused():
    # no rate in 0..1 beats another by 1 or more; a margin of 1e12 gave losses of 1e12 by cancellation
    for margin in (1.0, 1e12):
        assert refusal(two_arms((1100, 20000), (1200, 20000), min_lift=margin)).startswith("decision.min_lift: an absolute margin on conversion rates")
    decide(two_arms((1100, 20000), (1200, 20000), min_lift=0.99))


def test_arms_with_no_conversions_decide_without_warnings():
    """``wager ab --arm A=0/1 --arm B=0/1``: its prior-sensitivity refit with Beta(0.25, 0.25)
    puts the relative lift's lower bracket at exactly -1, where the ratio's scale ``1 + t`` is 0."""
    import warnings

    payload = two_arms((0, 1), (0, 1))
    payload["priors"] = {"rate": {"family": "beta", "params": {"alpha": 0.25, "beta": 0.25}, "why": "the widened prior", "source": "sensitivity"}}
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # before: divide-by-zero RuntimeWarnings
        b = decide(payload)["arms"]["B"]
    # identical arms: 1/2, up to the quadrature's error on a density singular at 0 (~1e-4)
    assert b["prob_beats_control"] == pytest.approx(0.5, abs=1e-3)
    assert all(np.isfinite(b["lift_relative"]["interval"])) and b["lift_relative"]["interval"][0] > -1


def test_the_chance_of_a_relative_lift_above_minus_one_is_the_chance_the_challenger_is_positive():
    """``P(X_b / X_a - 1 > -1) = P(X_b > 0) = 1`` exactly, even where a quadrature of
    ``X_a``'s mass would miss its singular density at 0 (Beta(0.25, 1.25))."""
    from wager.kernel import compare
    from wager.kernel.closed_form import Beta

    a = b = Beta(0.25, 1.25)
    with np.errstate(all="raise"):
        p = compare.prob_ratio_above(a, b, [-1.0])
    assert p[0] == 1.0
