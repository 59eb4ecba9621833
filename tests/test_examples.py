"""Every shipped example spec validates; the exact ones decide as documented."""

import pickle
from pathlib import Path

import pytest

from wager.workflow.pipeline import run
from wager.workflow.specs import load_spec

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.yaml")), ids=lambda p: p.name)
def test_example_specs_validate(path):
    load_spec(path)


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.yaml")), ids=lambda p: p.name)
def test_example_problems_reach_worker_processes(path):
    # SBC sends the prepared problem, its model included, to spawned workers: a lambda in it (a domain's
    # log-likelihood bound to its data) made `wager validate --sbc` fail on every risk and science example
    from wager.workflow.pipeline import domain_prepare

    spec = load_spec(path)
    problem = domain_prepare(spec)(spec, base_dir=EXAMPLES)
    problem.model  # built (and cached) as SBC builds it
    pickle.loads(pickle.dumps(problem))


def test_conversion_example_is_the_founding_example():
    result = run(load_spec(EXAMPLES / "ab_conversion.yaml"), base_dir=EXAMPLES)
    assert result.action == "keep testing"
    b = result.outcome.summary["arms"]["B"]
    assert round(b["prob_beats_control"], 3) == 0.984 and round(b["prob_lift_above_margin"], 2) == 0.50


def test_three_arm_count_example_ships_the_clear_winner():
    result = run(load_spec(EXAMPLES / "ab_three_arms_count.yaml"), base_dir=EXAMPLES)
    assert result.action == "ship grid"


def test_fusion_example_says_where_the_car_is_within_its_credible_interval():
    spec = load_spec(EXAMPLES / "fusion_gps.yaml")
    small = spec.model_copy(update={"inference": spec.inference.model_copy(update={"chains": 2, "warmup": 500, "draws": 1000})})
    result = run(small, base_dir=EXAMPLES)
    assert result.decided, result.messages
    position, truth = result.outcome.summary["position"], result.outcome.summary["truth"]
    assert result.decided and result.action in ("act", "wait")
    assert position["lo"] < truth["position"] < position["hi"]


def test_the_pk_example_doses_the_lowest_candidate_meeting_its_target():
    result = run(load_spec(EXAMPLES / "science_pk.yaml"), base_dir=EXAMPLES)
    assert result.decided, result.messages
    rows = result.outcome.summary["doses"]
    chosen = next(i for i, r in enumerate(rows) if r["chosen"])
    assert result.action == f"dose {rows[chosen]['dose']:g}"
    assert rows[chosen]["probability"] >= 0.55 > rows[chosen - 1]["probability"]


@pytest.mark.slow  # the diffrax ODE inside NUTS: 30-60 s on two cores
def test_the_sir_example_opens_beds_for_the_boarding_school_peak():
    result = run(load_spec(EXAMPLES / "science_sir.yaml"), base_dir=EXAMPLES)
    assert result.decided, result.messages
    assert result.action == "open extra beds" and result.outcome.summary["risk"] > 0.1
