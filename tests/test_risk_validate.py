"""``wager validate`` on the risk examples: every check runs or says why it does not,
and none ends in a traceback."""

from pathlib import Path

import pytest

from wager.risk.claims_problem import ClaimsProblem
from wager.risk.reserve_problem import ReserveProblem
from wager.risk.threshold_problem import ThresholdProblem
from wager.risk.var_problem import VarProblem

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
CHECKS = ("prior predictive", "predictive", "sbc")
pytestmark = pytest.mark.filterwarnings("ignore:Parsing integer or float values with a format")  # chainladder under pandas 3


@pytest.mark.parametrize("problem", [ReserveProblem, VarProblem, ThresholdProblem, ClaimsProblem])
def test_every_risk_task_checks_its_posterior_and_gives_a_reason_for_each_check_it_skips(problem):
    skipped = getattr(problem, "unsupported_checks", {})
    assert set(skipped) <= set(CHECKS)
    assert all(len(reason) > 80 for reason in skipped.values())  # a reason, not a label
    assert "predictive" not in skipped and callable(problem.posterior_check)


@pytest.mark.slow
@pytest.mark.parametrize("task", ["reserve", "var", "threshold", "claims"])
def test_validate_runs_every_check_on_each_risk_example(task):
    # the examples' own settings but two chains of 1000 draws (as tests/test_risk_cli.py), SBC off;
    # claims 2 x (1000 + 2000), as there: at 2 x 1000 its split R-hat was 1.011 on an AMD EPYC
    from wager.workflow.specs import load_spec
    from wager.workflow.validate import validate

    path = EXAMPLES / f"risk_{task}.yaml"
    spec = load_spec(path)
    lengths = {"warmup": 1000, "draws": 2000} if task == "claims" else {"warmup": 500, "draws": 1000}
    spec = spec.model_copy(update={"inference": spec.inference.model_copy(update={"chains": 2, **lengths})})
    checked = validate(spec=spec, base_dir=path.parent, sbc_simulations=0)
    status = {c.name: c for c in checked.checks}
    assert list(status) == ["gates", "replay", *CHECKS]
    assert checked.passed, "\n".join(checked.lines())
    assert status["predictive"].status == "passed" and status["replay"].status == "passed"
    for name, reason in getattr(checked_problem(task), "unsupported_checks", {}).items():
        assert status[name].status == "skipped" and status[name].lines == (reason,)


def checked_problem(task):
    return {"reserve": ReserveProblem, "var": VarProblem, "threshold": ThresholdProblem, "claims": ClaimsProblem}[task]
