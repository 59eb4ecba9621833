"""Every shipped example spec validates; the exact ones decide as documented."""

from pathlib import Path

import pytest

from wager.workflow.pipeline import run
from wager.workflow.specs import load_spec

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.yaml")), ids=lambda p: p.name)
def test_example_specs_validate(path):
    load_spec(path)


def test_conversion_example_is_the_founding_example():
    result = run(load_spec(EXAMPLES / "ab_conversion.yaml"), base_dir=EXAMPLES)
    assert result.action == "keep testing"
    b = result.outcome.summary["arms"]["B"]
    assert round(b["prob_beats_control"], 3) == 0.984 and round(b["prob_lift_above_margin"], 2) == 0.50


def test_three_arm_count_example_ships_the_clear_winner():
    result = run(load_spec(EXAMPLES / "ab_three_arms_count.yaml"), base_dir=EXAMPLES)
    assert result.action == "ship grid"
