"""`wager validate` (gates, replay, predictive checks, SBC; JUnit XML) and
`wager monitor` (a new window of data against a recorded posterior)."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from wager.cli import app
from wager.workflow.predictive import prior_predictive_check

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
runner = CliRunner()


def validate(*args: str):
    result = runner.invoke(app, ["validate", *args, "--quiet", "--executor", "serial"])
    return result.exit_code, result.stdout


def test_the_centered_funnel_fails_validation_and_says_which_gates(tmp_path):
    code, out = validate(str(EXAMPLES / "eight_schools_centered.yaml"), "--sbc", "0", "--json", "--junit", str(tmp_path / "v.xml"))
    assert code == 4
    checks = {c["name"]: c for c in json.loads(out)["checks"]}
    assert checks["gates"]["status"] == "failed" and "divergences" in checks["gates"]["data"]["failed"]
    assert checks["predictive"]["status"] == "skipped"
    suite = ET.parse(tmp_path / "v.xml").getroot().find("testsuite")
    assert suite.get("tests") == "5" and suite.get("failures") == "1" and suite.get("skipped") == "2"
    failed = [case.get("name") for case in suite.iter("testcase") if case.find("failure") is not None]
    assert failed == ["gates"]


def test_the_noncentered_model_passes_gates_replay_and_predictive_checks():
    code, out = validate(str(EXAMPLES / "eight_schools_noncentered.yaml"), "--sbc", "0", "--json")
    assert code == 0, out
    statuses = {c["name"]: c["status"] for c in json.loads(out)["checks"]}
    assert statuses == {"gates": "passed", "replay": "passed", "prior predictive": "passed", "predictive": "passed", "sbc": "skipped"}


def test_the_noncentered_model_passes_validation_with_calibration():
    code, out = validate(str(EXAMPLES / "eight_schools_noncentered.yaml"), "--sbc", "20", "--json")
    assert code == 0, out
    assert {c["name"]: c["status"] for c in json.loads(out)["checks"]}["sbc"] == "passed"


def test_calibration_runs_the_engine_the_run_used(tmp_path):
    """SBC checks the model and its engine: a variational run is calibrated with VI, not NUTS."""
    import shutil

    for name in ("eight_schools.py", "eight_schools.csv"):
        shutil.copy(EXAMPLES / name, tmp_path / name)
    raw = yaml.safe_load((EXAMPLES / "eight_schools_noncentered.yaml").read_text())
    raw["inference"] = {"engine": "vi", "seed": 1}
    (tmp_path / "vi.yaml").write_text(yaml.safe_dump(raw))
    _, out = validate(str(tmp_path / "vi.yaml"), "--sbc", "10", "--json")
    sbc = {c["name"]: c for c in json.loads(out)["checks"]}["sbc"]
    assert sbc["data"]["engine"] == "vi" and sbc["data"]["settings"]["engine"] == "vi"


def test_a_recorded_exact_run_validates_with_a_replay_and_a_small_calibration(tmp_path):
    run = runner.invoke(app, ["ab", "--arm", "A=1100/20000", "--arm", "B=1200/20000", "--json"])
    run_id = json.loads(run.stdout)["run_id"]
    code, out = validate(run_id[:8], "--sbc", "60", "--json")
    assert code == 0, out
    checks = {c["name"]: c for c in json.loads(out)["checks"]}
    assert checks["replay"]["data"]["verified"] == "bit-identical"
    assert checks["sbc"]["status"] == "passed"
    # the verdict is kept with the run, and its report shows it
    from wager.workflow.registry import Registry

    kept = Registry().validations(run_id)
    assert len(kept) == 1 and kept[0]["passed"] is True
    html = tmp_path / "report.html"
    assert runner.invoke(app, ["report", run_id, "--out", str(html)]).exit_code == 0
    page = html.read_text()
    assert 'id="validation"' in page and "Posterior predictive p-values" in page and "Simulation-based calibration" in page


UNIT_NORMAL_MODEL = """
import numpyro
import numpyro.distributions as dist


def model(y, priors):
    mu = numpyro.sample("mu", priors["mu"])
    numpyro.sample("y", dist.Normal(mu, 1.0), obs=y)
"""


def unit_normal_spec(tmp_path: Path, y: np.ndarray, prior_scale: float = 10.0) -> Path:
    """A model that says every observation is its mean plus unit noise."""
    (tmp_path / "unit_normal.py").write_text(UNIT_NORMAL_MODEL)
    spec = {
        "domain": "model",
        "name": "unit-variance normal",
        "model": "unit_normal.py:model",
        "data": {"y": [float(v) for v in y]},
        "priors": {"mu": {"family": "normal", "params": {"loc": 0, "scale": prior_scale}, "why": "test", "source": "test"}},
        "inference": {"engine": "nuts", "chains": 2, "warmup": 500, "draws": 1000, "seed": 1},
        "sensitivity": {"enabled": False},
    }
    path = tmp_path / "unit_normal.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def test_the_shipped_revenue_example_validates_its_purchases_and_passes_over_its_spend_factor():
    """Its spend enters as a factor (sufficient statistics): no data to replicate there, which is
    no reason to fail; the purchases are checked (the validation was an internal error)."""
    code, out = validate(str(EXAMPLES / "ab_revenue.yaml"), "--sbc", "0", "--json")
    assert code == 0, out
    checks = {c["name"]: c for c in json.loads(out)["checks"]}
    assert checks["predictive"]["status"] == "passed"
    assert {c["statistic"] for c in checks["predictive"]["data"]["checks"]} >= {"mean", "sd"}


@pytest.mark.parametrize(
    "body, skipped",
    [
        ('    numpyro.factor("penalty", -0.01 * mu**2)\n    numpyro.sample("y", dist.Normal(mu, 1.0), obs=y)\n', ()),
        ('    numpyro.deterministic("twice", 2 * mu)\n', ("prior predictive", "sbc")),
    ],
    ids=["a factor beside the likelihood", "no likelihood"],
)
def test_checks_that_cannot_apply_to_a_model_are_skipped_with_their_reason(tmp_path, body, skipped):
    (tmp_path / "m.py").write_text("import numpyro\nimport numpyro.distributions as dist\n\n\ndef model(y, priors):\n    mu = numpyro.sample(\"mu\", priors[\"mu\"])\n" + body)
    spec = {
        "domain": "model", "name": "m", "model": "m.py:model", "data": {"y": [0.1, -0.4, 0.8, 0.3]},
        "priors": {"mu": {"family": "normal", "params": {"loc": 0, "scale": 1}, "why": "test", "source": "test"}},
        "inference": {"engine": "nuts", "chains": 4, "warmup": 500, "draws": 1000, "seed": 1},
        "sensitivity": {"enabled": False},
    }
    (tmp_path / "m.yaml").write_text(yaml.safe_dump(spec))
    code, out = validate(str(tmp_path / "m.yaml"), "--sbc", "10", "--json")
    checks = {c["name"]: c for c in json.loads(out)["checks"]}
    assert code in (0, 4), out  # never an internal error
    for name in skipped:
        assert checks[name]["status"] == "skipped" and checks[name]["lines"][0] != "", checks[name]
    if not skipped:
        assert checks["predictive"]["status"] != "skipped" and checks["sbc"]["status"] == "skipped"
        assert "numpyro.factor" in checks["sbc"]["lines"][0]
        # the prior check draws without the penalty, and says so
        assert checks["prior predictive"]["data"]["unsimulated"] == ["penalty"]
        assert checks["prior predictive"]["lines"][-1].startswith("  Not simulated: the factor term penalty")


def test_a_simulated_dataset_the_model_cannot_fit_fails_calibration_not_the_users_data(tmp_path):
    """The model is undefined where mu > 2 (a square root of a negative scale), which its prior
    reaches: SBC's simulated data there cannot be fitted. That fails SBC (exit 4); it was reported
    as bad input in the user's data (exit 2), which fit fine."""
    (tmp_path / "m.py").write_text(
        "import jax.numpy as jnp\nimport numpyro\nimport numpyro.distributions as dist\n\n\n"
        "def model(y, priors):\n    mu = numpyro.sample(\"mu\", priors[\"mu\"])\n"
        "    numpyro.sample(\"y\", dist.Normal(mu, jnp.sqrt(2.0 - mu) + 0.5, validate_args=False), obs=y)\n"
    )
    spec = {
        "domain": "model", "name": "m", "model": "m.py:model", "data": {"y": [0.5, -0.2, 1.1, 0.3, 0.8]},
        "priors": {"mu": {"family": "normal", "params": {"loc": 0, "scale": 5}, "why": "test", "source": "test"}},
        "inference": {"engine": "vi", "seed": 1}, "sensitivity": {"enabled": False},
    }
    (tmp_path / "m.yaml").write_text(yaml.safe_dump(spec))
    code, out = validate(str(tmp_path / "m.yaml"), "--sbc", "10", "--json")
    sbc = {c["name"]: c for c in json.loads(out)["checks"]}["sbc"]
    assert code == 4 and sbc["status"] == "failed"
    assert sbc["lines"][0].startswith("a dataset simulated from the prior could not be fitted: model: its log density is NaN")


def test_a_posterior_predictive_check_flags_a_spread_the_model_cannot_produce(tmp_path):
    rng = np.random.default_rng(7)
    # sd 5 where the model allows sd 1: sd(y_rep) never reaches sd(y), ppp ~ 0
    code, out = validate(str(unit_normal_spec(tmp_path, rng.normal(0, 5, size=60))), "--sbc", "0", "--json")
    assert code == 4
    predictive = {c["name"]: c for c in json.loads(out)["checks"]}["predictive"]
    flagged = {c["statistic"] for c in predictive["data"]["checks"] if c["flagged"]}
    assert "sd" in flagged
    # too many observations fall in the predictive tails: LOO-PIT values pile up at 0 and 1
    assert predictive["data"]["loo_pit"]["passed"] is False
    # the same model on data it does describe passes
    code, out = validate(str(unit_normal_spec(tmp_path, rng.normal(0, 1, size=60))), "--sbc", "0", "--json")
    assert code == 0, out


def test_a_prior_predictive_check_flags_a_prior_that_rules_out_the_data(tmp_path):
    # mu ~ Normal(0, 0.1) says the mean is within +-0.3; the data's mean is 20
    y = np.random.default_rng(8).normal(20, 1, size=40)
    code, out = validate(str(unit_normal_spec(tmp_path, y, prior_scale=0.1)), "--sbc", "0", "--json")
    assert code == 4
    prior = {c["name"]: c for c in json.loads(out)["checks"]}["prior predictive"]
    assert prior["status"] == "failed"
    assert {c["statistic"] for c in prior["data"]["checks"] if c["flagged"]} >= {"mean"}


# --- monitor --------------------------------------------------------------------------


def window(tmp_path: Path, rate_a: float, rate_b: float, seed: int, visitors: int = 5000) -> Path:
    """A new week of traffic drawn from a known process (fixed seed)."""
    rng = np.random.default_rng(seed)
    arms = [{"name": n, "visitors": visitors, "conversions": int(rng.binomial(visitors, p))} for n, p in (("A", rate_a), ("B", rate_b))]
    path = tmp_path / f"window-{seed}.yaml"
    path.write_text(yaml.safe_dump({"arms": arms}))
    return path


@pytest.fixture
def founding_run() -> str:
    result = runner.invoke(app, ["ab", "--arm", "A=1100/20000", "--arm", "B=1200/20000", "--json"])
    return json.loads(result.stdout)["run_id"]


def test_monitor_stays_quiet_on_windows_from_the_fitted_process(founding_run, tmp_path):
    # the fitted process: conversion 0.055 (A) and 0.06 (B), the posterior means
    for seed in (1, 2, 3):
        result = runner.invoke(app, ["monitor", founding_run, "--data", str(window(tmp_path, 0.055, 0.06, seed)), "--json"])
        assert result.exit_code == 0, result.stdout
        assert json.loads(result.stdout)["alert"] is False


def test_monitor_alerts_on_a_window_from_a_shifted_process(founding_run, tmp_path):
    # A's conversion moved from 0.055 to 0.07: about 4.6 standard errors of a 5000-visitor week
    result = runner.invoke(app, ["monitor", founding_run, "--data", str(window(tmp_path, 0.07, 0.06, 1)), "--json"])
    assert result.exit_code == 4, result.stdout
    out = json.loads(result.stdout)
    assert out["alert"] is True and out["run_id"] == founding_run
    assert any("log predictive density" in reason for reason in out["reasons"])


def test_monitor_with_data_that_is_no_window_is_bad_input(founding_run, tmp_path):
    (tmp_path / "x.yaml").write_text("visitors: 3\n")
    result = runner.invoke(app, ["monitor", founding_run, "--data", str(tmp_path / "x.yaml")])
    assert result.exit_code == 2
    assert "--data" in result.stderr


def test_monitor_compares_the_loss_a_decision_realized_with_what_the_model_expected(tmp_path):
    # B clearly better (0.055 vs 0.07): the run ships B
    result = runner.invoke(app, ["ab", "--arm", "A=1100/20000", "--arm", "B=1400/20000", "--json"])
    run = json.loads(result.stdout)
    assert run["action"] == "ship B"
    fitted = runner.invoke(app, ["monitor", run["run_id"], "--data", str(window(tmp_path, 0.055, 0.07, 1)), "--json"])
    assert fitted.exit_code == 0, fitted.stdout
    assert json.loads(fitted.stdout)["realized_loss"]["action"] == "ship B"
    # after shipping, B turns out worse than A: the decision realized a loss the model said it would not
    reversed_ = runner.invoke(app, ["monitor", run["run_id"], "--data", str(window(tmp_path, 0.07, 0.055, 5)), "--json"])
    assert reversed_.exit_code == 4
    out = json.loads(reversed_.stdout)
    assert out["realized_loss"]["realized"] > out["realized_loss"]["reference_upper"]
    assert any("realized loss of 'ship B'" in reason for reason in out["reasons"])


def test_a_junit_path_that_cannot_be_written_is_refused_before_anything_is_recorded(founding_run, tmp_path):
    from wager.workflow.registry import Registry

    (tmp_path / "taken").write_text("a file, not a folder")
    for junit, rule in ((tmp_path, f"is a directory: {tmp_path}"), (tmp_path / "taken" / "junit.xml", "is not a folder")):
        result = runner.invoke(app, ["validate", founding_run, "--sbc", "0", "--junit", str(junit)])
        assert result.exit_code == 2, result.output
        assert result.stderr.startswith("error: --junit: ") and rule in result.stderr
    assert Registry().validations(founding_run) == []


@pytest.mark.parametrize("target", ["ABSOLUTE", "spec.yml", "sub/spec"])
def test_a_validate_target_that_looks_like_a_path_is_a_missing_file_not_a_run(target, tmp_path):
    if target == "ABSOLUTE":
        target = str(tmp_path / "no-such-folder" / "spec.txt")
    result = runner.invoke(app, ["validate", target])
    assert result.exit_code == 2
    assert result.stderr == f"error: spec: no such file: {target}\n"


def test_a_validate_target_with_a_dot_but_no_folder_or_spec_extension_is_a_run_reference():
    result = runner.invoke(app, ["validate", "v1.2"])  # a run id may hold dots
    assert result.exit_code == 2
    assert result.stderr == "error: RUN: no run has the id or id prefix 'v1.2'\n"


def test_monitor_matches_the_window_arms_by_name_in_any_order(founding_run, tmp_path):
    path = window(tmp_path, 0.055, 0.06, 1)
    arms = yaml.safe_load(path.read_text())["arms"]
    (tmp_path / "swapped.yaml").write_text(yaml.safe_dump({"arms": arms[::-1]}))
    in_order = runner.invoke(app, ["monitor", founding_run, "--data", str(path), "--json"])
    swapped = runner.invoke(app, ["monitor", founding_run, "--data", str(tmp_path / "swapped.yaml"), "--json"])
    assert in_order.exit_code == swapped.exit_code == 0
    assert json.loads(swapped.stdout) == json.loads(in_order.stdout)


def test_monitor_refuses_a_window_of_other_arms(founding_run, tmp_path):
    # arms X and Y at the rates A and B were fitted at: compared by position they would raise no alert
    arms = [{"name": "X", "visitors": 5000, "conversions": 275}, {"name": "Y", "visitors": 5000, "conversions": 300}]
    (tmp_path / "xy.yaml").write_text(yaml.safe_dump({"arms": arms}))
    result = runner.invoke(app, ["monitor", founding_run, "--data", str(tmp_path / "xy.yaml")])
    assert result.exit_code == 2
    assert result.stderr == "error: --data: arms: must be the recorded run's arms A, B (in any order); got X, Y\n"


def test_monitor_reads_a_per_visitor_table_for_a_run_on_arm_counts(founding_run, tmp_path):
    # the window of window(..., seed=1) as one row per visitor: the same counts, so the same verdict
    arms = yaml.safe_load(window(tmp_path, 0.055, 0.06, 1).read_text())["arms"]
    rows = [(arm["name"], int(i < arm["conversions"])) for arm in arms for i in range(arm["visitors"])]
    pd.DataFrame(rows, columns=["arm", "value"]).to_csv(tmp_path / "visitors.csv", index=False)
    from_table = runner.invoke(app, ["monitor", founding_run, "--data", str(tmp_path / "visitors.csv"), "--json"])
    from_counts = runner.invoke(app, ["monitor", founding_run, "--data", str(tmp_path / "window-1.yaml"), "--json"])
    assert from_table.exit_code == from_counts.exit_code == 0, from_table.output
    assert json.loads(from_table.stdout)["alert"] == json.loads(from_counts.stdout)["alert"] is False


def test_monitor_refuses_arms_that_are_not_mappings(founding_run, tmp_path):
    (tmp_path / "numbers.yaml").write_text("arms: [1, 2]\n")
    result = runner.invoke(app, ["monitor", founding_run, "--data", str(tmp_path / "numbers.yaml")])
    assert result.exit_code == 2
    assert result.stderr.startswith("error: --data: arms: item 1 is 1; each arm is a mapping")


def test_monitor_names_a_missing_or_empty_data_file_as_data(founding_run, tmp_path):
    (tmp_path / "empty.yaml").write_text("")
    for name, rule in (("missing.yaml", f"no such file: {tmp_path / 'missing.yaml'}"), ("empty.yaml", "empty.yaml is empty")):
        result = runner.invoke(app, ["monitor", founding_run, "--data", str(tmp_path / name)])
        assert result.exit_code == 2
        assert result.stderr == f"error: --data: {rule}\n"


def count_problem(priors: dict | None = None):
    from wager.ab.domain import prepare
    from wager.ab.spec import ABSpec

    arms = [{"name": "current", "visitors": 8000, "events": 2410}, {"name": "grid", "visitors": 8000, "events": 2570},
            {"name": "carousel", "visitors": 8000, "events": 2455}]  # examples/ab_three_arms_count.yaml
    return prepare(ABSpec.model_validate({"metric": "count", "arms": arms, **({"priors": priors} if priors else {})}))


def test_an_ab_prior_predictive_check_judges_each_arm_against_its_own_prior():
    """Arms have independent priors. Statistics across arms test that independence: three independent
    Jeffreys rates are rarely within 7% of each other, so the spread and mean of the arms' counts are
    flagged, though each arm's count is ordinary under its prior (P(rate < 0.3) = 0.19, closed form)."""
    from scipy import stats

    problem = count_problem()
    per_arm = prior_predictive_check(problem.model, seed=0, units=problem.prior_check_units)
    assert per_arm.passed and [c.site for c in per_arm.checks] == ["events[current]", "events[grid]", "events[carousel]"]
    prior = problem.priors["rate"].params
    exact = stats.gamma(prior["shape"], scale=1 / prior["rate"]).sf(2410 / 8000)  # P(events_rep > 2410) up to the Poisson's spread
    assert abs(per_arm.checks[0].ppp - exact) < 0.03
    across = prior_predictive_check(problem.model, seed=0)
    assert not across.passed and {c.statistic for c in across.checks if c.flagged} >= {"sd"}


def test_an_ab_prior_that_rules_out_the_arms_rates_is_flagged_arm_by_arm():
    # Gamma(100, 1000): rate 0.10 +- 0.01 events per visitor, against 0.30-0.32 in the data
    tight = {"rate": {"family": "gamma", "params": {"shape": 100, "rate": 1000}, "why": "last year's layouts", "source": "test"}}
    problem = count_problem(tight)
    check = prior_predictive_check(problem.model, seed=0, units=problem.prior_check_units)
    assert not check.passed and all(c.flagged for c in check.checks)
    assert "FLAGGED events[grid] = 2570: prior predictive p-value 0.000" in "\n".join(check.lines())


def test_the_shipped_count_example_validates():
    code, out = validate(str(EXAMPLES / "ab_three_arms_count.yaml"), "--sbc", "0", "--json")
    checks = {c["name"]: c for c in json.loads(out)["checks"]}
    assert code == 0 and checks["prior predictive"]["status"] == "passed", out


def test_prior_check_units_must_match_every_observed_site():
    problem = count_problem()
    with pytest.raises(ValueError, match="'events' has 3 elements, not one per unit \\(2\\)"):
        prior_predictive_check(problem.model, seed=0, units=("current", "grid"))
