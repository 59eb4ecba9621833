"""The A/B domain: the founding example, the expected-loss rule, k arms, counts,
revenue, sample-ratio mismatch, and per-visitor tables."""

import numpy as np
import pandas as pd
import pytest
from scipy import special, stats

from wager.ab.examples import FOUNDING_EXAMPLE
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
    # Gamma(1 + 480, 0.001 + 1000) vs Gamma(1 + 540, 0.001 + 1000): P(B > A) = I_{r_a/(r_a+r_b)}(a_a, a_b)
    ra = rb = 1000.001
    assert out["arms"]["B"]["prob_beats_control"] == pytest.approx(special.betainc(481, 541, ra / (ra + rb)), abs=1e-10)
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
