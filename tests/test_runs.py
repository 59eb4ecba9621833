"""Runs that regenerate: every run is recorded with a run id, listed, shown,
diffed, replayed bit for bit, and checked against a plan fixed before the data."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml
from typer.testing import CliRunner

from wager.cli import app
from wager.workflow.registry import Registry
from wager.workflow.replay import replay

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
runner = CliRunner()
FOUNDING_ARMS = ["--arm", "A=1100/20000", "--arm", "B=1200/20000"]


def wager(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout


def wager_json(*args: str) -> tuple[int, dict]:
    code, out = wager(*args, "--json")
    return code, json.loads(out)


@pytest.fixture
def schools(tmp_path) -> Path:
    """The non-centered eight schools in a folder of its own, short chains so a test is quick."""
    for name in ("eight_schools.py", "eight_schools.csv"):
        shutil.copy(EXAMPLES / name, tmp_path / name)
    spec = yaml.safe_load((EXAMPLES / "eight_schools_noncentered.yaml").read_text())
    spec["inference"].update(chains=2, warmup=300, draws=300)
    spec["gates"] = {"min_ess_bulk": 100, "min_ess_tail": 100, "max_rhat": 1.05, "max_divergences": 5}
    spec["sensitivity"] = {"enabled": False}
    path = tmp_path / "schools.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def test_every_json_output_carries_its_run_id_and_the_run_is_listed_and_shown():
    code, out = wager_json("ab", *FOUNDING_ARMS, "--quiet")
    assert code == 0
    run_id = out["run_id"]
    code, listed = wager_json("runs", "list")
    assert code == 0 and [row["run_id"] for row in listed] == [run_id]
    code, shown = wager_json("runs", "show", run_id[:6])
    assert code == 0 and shown["run_id"] == run_id
    assert shown["manifest"]["identity"]["seed"] == out["inference"]["seed"]
    code, text = wager("runs", "show", "latest")
    assert code == 0 and run_id in text and "Identity hash" in text


def test_no_record_records_nothing(isolated_registry):
    code, out = wager_json("ab", *FOUNDING_ARMS, "--no-record")
    assert code == 0 and "run_id" not in out
    assert Registry().count() == 0


def test_replay_of_an_exact_run_reproduces_identical_draw_hashes():
    _, out = wager_json("ab", *FOUNDING_ARMS)
    code, replayed = wager_json("replay", out["run_id"])
    assert code == 0, replayed
    assert replayed["agrees"] and replayed["verified"] == "bit-identical"
    assert replayed["decision"]["replayed"]["action"] == out["action"]


def test_replay_of_a_nuts_run_in_a_fresh_process_reproduces_identical_draw_hashes(schools):
    code, out = wager_json("run", str(schools), "--quiet")
    assert code == 0, out
    assert out["inference"]["engine"] == "nuts"
    # another interpreter (its own hash seed, its own JAX start-up) must draw the same bits
    done = subprocess.run(
        [sys.executable, "-m", "wager.cli", "replay", out["run_id"], "--json"],
        capture_output=True, text=True, timeout=300, env={**os.environ, "PYTHONHASHSEED": "12345"},
    )
    assert done.returncode == 0, done.stdout + done.stderr
    replayed = json.loads(done.stdout)
    assert replayed["verified"] == "bit-identical"
    record = Registry().load(out["run_id"])
    assert set(record.manifest["outputs"]["draws"]) >= {"mu", "tau", "theta"}


def test_replay_names_changed_data_and_exits_4(schools):
    _, out = wager_json("run", str(schools), "--quiet")
    csv = schools.parent / "eight_schools.csv"
    csv.write_text(csv.read_text().replace("28", "29", 1))
    code, replayed = wager_json("replay", out["run_id"], "--quiet")
    assert code == 4
    assert not replayed["agrees"] and not replayed["identity_matches"]
    assert any(c["section"] == "data" for c in replayed["input_changes"])


def test_replay_on_other_numerics_checks_agreement_within_k_monte_carlo_errors():
    recorded = Registry().load(wager_json("ab", *FOUNDING_ARMS, "--seed", "5")[1]["run_id"])
    other_seed = Registry().load(wager_json("ab", *FOUNDING_ARMS, "--seed", "6")[1]["run_id"])
    manifest = json.loads(json.dumps(recorded.manifest))
    manifest["environment"]["numerics_fingerprint"] = "another machine"
    # Stand in for another machine: draws equal in distribution, different in every bit.
    elsewhere = SimpleNamespace(run_id=recorded.run_id, manifest=manifest, netcdf=other_seed.netcdf)
    outcome = replay(elsewhere)
    assert outcome.agrees and outcome.verified == "within k MCSE", outcome.lines()
    assert not replay(elsewhere, k=1e-6).agrees, "a tolerance of ~0 standard errors must reject other draws"


def test_runs_diff_names_the_changed_prior_when_only_a_prior_changed(tmp_path):
    spec = yaml.safe_load((EXAMPLES / "ab_conversion.yaml").read_text())
    first = tmp_path / "first.yaml"
    first.write_text(yaml.safe_dump(spec))
    spec.setdefault("priors", {})["rate"] = {
        "family": "beta", "params": {"alpha": 2, "beta": 40}, "why": "last quarter's rate, 5%, worth 40 visitors", "source": "dashboard"
    }
    second = tmp_path / "second.yaml"
    second.write_text(yaml.safe_dump(spec))
    a = wager_json("run", str(first))[1]["run_id"]
    b = wager_json("run", str(second))[1]["run_id"]
    code, diff = wager_json("runs", "diff", a, b)
    assert code == 0
    assert set(diff["changes"]) == {"priors"}
    assert {c["path"] for c in diff["changes"]["priors"]} >= {"priors.rate.params.alpha", "priors.rate.params.beta"}
    code, text = wager("runs", "diff", a, b)
    assert "priors.rate.params.alpha" in text and "data" not in text.split("decision")[0]


def test_a_plan_fixed_before_the_data_is_checked_by_every_later_run(tmp_path):
    spec = yaml.safe_load((EXAMPLES / "ab_conversion.yaml").read_text())
    plan_only = {k: v for k, v in spec.items() if k not in ("arms", "data")}
    (tmp_path / "plan.yaml").write_text(yaml.safe_dump(plan_only))
    code, plan = wager_json("plan", str(tmp_path / "plan.yaml"))
    assert code == 0 and plan["plan_id"]
    (tmp_path / "run.yaml").write_text(yaml.safe_dump(spec))
    _, out = wager_json("run", str(tmp_path / "run.yaml"))
    assert out["plan"]["plan_id"] == plan["plan_id"] and out["plan"]["matches"] is True
    moved = dict(spec, decision={**spec.get("decision", {}), "min_lift": 0.02})
    (tmp_path / "moved.yaml").write_text(yaml.safe_dump(moved))
    _, out = wager_json("run", str(tmp_path / "moved.yaml"))
    assert out["plan"]["matches"] is False
    assert [c["path"] for c in out["plan"]["changes"]] == ["decision.min_lift"]


def test_a_bad_plan_is_bad_input_and_records_nothing(tmp_path, isolated_registry):
    (tmp_path / "plan.yaml").write_text("domain: ab\nname: x\ndecision: {min_lift: -1, bogus: 2}\n")
    result = runner.invoke(app, ["plan", str(tmp_path / "plan.yaml")])
    assert result.exit_code == 2
    assert "decision." in result.stderr
    assert not (isolated_registry / "registry.sqlite").exists()


def test_bad_input_opens_no_registry(isolated_registry):
    result = runner.invoke(app, ["ab", "--arm", "A=5/4", "--arm", "B=1/4"])
    assert result.exit_code == 2
    assert not (isolated_registry / "registry.sqlite").exists()


def test_unknown_run_is_a_clear_error():
    wager_json("ab", *FOUNDING_ARMS)
    result = runner.invoke(app, ["runs", "show", "zzzz"])
    assert result.exit_code == 1
    assert "zzzz" in result.stderr and "Traceback" not in result.output
