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


def test_unknown_run_is_bad_input_naming_the_run_argument():
    wager_json("ab", *FOUNDING_ARMS)
    result = runner.invoke(app, ["runs", "show", "zzzz"])
    assert result.exit_code == 2
    assert result.stderr == "error: RUN: no run has the id or id prefix 'zzzz'\n"


def record_fake_runs(*run_ids: str) -> None:
    """Runs recorded straight into the test's registry, with ids chosen to share a prefix."""
    with Registry() as registry:
        for run_id in run_ids:
            registry.record({"identity_hash": run_id, "identity": {"domain": "ab"}}, {"status": "decided"}, b"posterior", run_id=run_id)


RUN = "<RUN>"
RUN_COMMANDS = [
    ["runs", "show", RUN], ["runs", "diff", RUN, "latest"], ["replay", RUN], ["report", RUN], ["validate", RUN],
    ["monitor", RUN, "--data", "window.yaml"],
]


@pytest.mark.parametrize("command", RUN_COMMANDS, ids=lambda c: " ".join(c[:2]))
def test_a_run_reference_naming_no_run_or_several_is_bad_input_in_every_command(command, isolated_registry):
    def refused(ref: str) -> str:
        result = runner.invoke(app, [ref if arg == RUN else arg for arg in command])
        assert result.exit_code == 2, result.output
        assert result.stderr.count("\n") == 1 and "Traceback" not in result.output
        return result.stderr

    assert refused("latest") == "error: RUN: 'latest' names no run: the registry has no runs yet\n"
    assert not (isolated_registry / "registry.sqlite").exists()  # reading created nothing
    record_fake_runs("aa0001", "aa0002")
    assert refused("aa") == "error: RUN: 'aa' is a prefix of several runs (aa0001, aa0002); give more characters\n"
    assert refused("zz") == "error: RUN: no run has the id or id prefix 'zz'\n"
    assert refused("") == "error: RUN: must be a full id, a unique prefix or 'latest', got an empty string\n"


def test_read_commands_on_a_registry_that_does_not_exist_yet_create_nothing(tmp_path, isolated_registry):
    code, out = wager("runs", "list")
    assert code == 0 and out == "No runs recorded yet.\n"
    elsewhere = tmp_path / "nope" / "sub" / "r.sqlite"
    code, out = wager("runs", "list", "--db", str(elsewhere))
    assert code == 0 and out == "No runs recorded yet.\n"
    assert wager("runs", "show", "latest")[0] == 2
    assert list(isolated_registry.iterdir()) == [] and list(tmp_path.iterdir()) == []
    # the first recorded run creates the folders and the file
    code, out = wager_json("ab", *FOUNDING_ARMS, "--db", str(elsewhere))
    assert code == 0 and elsewhere.is_file()


def test_a_run_refused_after_inference_leaves_no_registry_file(monkeypatch, isolated_registry):
    """The registry is opened before inference (an unreachable server is reported
    first), but a file is only created by the write, so bad input found by the run
    itself (a decision loss that is not finite on the posterior) leaves nothing."""
    from wager.errors import SpecError
    from wager.workflow import pipeline

    def refuse_after_sampling(*args, **kwargs):
        raise SpecError("decision.loss", "is not finite on the posterior")

    monkeypatch.setattr(pipeline, "run", refuse_after_sampling)
    result = runner.invoke(app, ["ab", *FOUNDING_ARMS])
    assert result.exit_code == 2 and result.stderr == "error: decision.loss: is not finite on the posterior\n"
    assert list(isolated_registry.iterdir()) == []


@pytest.mark.parametrize(
    "db, rule",
    [
        ("", "must be a database URL or a file path, got an empty string"),
        ("postgresql+psycopg://nobody@[::1/x", "not a database URL"),
        ("://", "not a database URL"),
        ("foo://bar", "unknown database kind 'foo'"),
    ],
)
def test_an_empty_or_malformed_db_is_bad_input_naming_db(db, rule, isolated_registry):
    for command in (["runs", "list"], ["ab", *FOUNDING_ARMS]):
        result = runner.invoke(app, [*command, "--db", db])
        assert result.exit_code == 2, result.output
        assert result.stderr.startswith(f"error: --db: {rule}") and result.stderr.count("\n") == 1
    assert list(isolated_registry.iterdir()) == []


def test_runs_list_refuses_a_status_no_run_has():
    result = runner.invoke(app, ["runs", "list", "--status", "bogus"])
    assert result.exit_code == 2
    assert result.stderr == "error: --status: must be decided or blocked, got 'bogus'\n"
    assert runner.invoke(app, ["runs", "list", "--status", "blocked"]).exit_code == 0


def test_json_output_writes_a_non_finite_number_as_null(monkeypatch):
    """JSON has no infinity: R-hat of one chain (inf) or NaN is null, in the run's
    --json and in `runs show --json` of the recorded run alike."""
    from wager.workflow import pipeline

    real = pipeline.result_json
    monkeypatch.setattr(pipeline, "result_json", lambda result: {**real(result), "rhat": float("inf"), "ess": float("nan")})
    code, out = wager_json("ab", *FOUNDING_ARMS)
    assert code == 0 and out["rhat"] is None and out["ess"] is None
    code, shown = wager_json("runs", "show", out["run_id"])
    assert code == 0 and shown["result"]["rhat"] is None


def bad_input_line(result) -> str:
    """The one stderr line of a refused command (exit 2, no traceback)."""
    assert result.exit_code == 2, result.output
    assert len(result.stderr.splitlines()) == 1 and "Traceback" not in result.output
    return result.stderr


@pytest.mark.parametrize("command", ["run", "plan"])
def test_a_spec_file_that_is_not_text_is_bad_input(tmp_path, isolated_registry, command):
    path = tmp_path / "spec.yaml"
    path.write_bytes(bytes([0x9D, 0x37, 0x9E, 0xC9, 0x8E, 0xEF, 0x10, 0xC8]) * 64)  # junk, not UTF-8
    line = bad_input_line(runner.invoke(app, [command, str(path)]))
    assert line.startswith("error: spec: spec.yaml is not UTF-8 text")
    assert not (isolated_registry / "registry.sqlite").exists()


@pytest.mark.parametrize("command", ["run", "plan"])
def test_a_domain_that_is_not_a_name_is_refused_naming_domain(tmp_path, command):
    (tmp_path / "spec.yaml").write_text("domain: [ab]\nname: t\n")
    line = bad_input_line(runner.invoke(app, [command, str(tmp_path / "spec.yaml")]))
    assert line.startswith("error: domain: unknown domain ['ab']")


def test_a_key_repeated_in_a_mapping_is_refused_not_overwritten(tmp_path):
    # PyYAML alone keeps the last value: this arm would run on 5 conversions
    (tmp_path / "spec.yaml").write_text(
        "domain: ab\nname: t\narms:\n"
        "  - {name: A, visitors: 20000, conversions: 1100, conversions: 5}\n"
        "  - {name: B, visitors: 20000, conversions: 1200}\n"
    )
    line = bad_input_line(runner.invoke(app, ["run", str(tmp_path / "spec.yaml")]))
    assert line.startswith("error: spec: malformed YAML at line 4") and "duplicate key 'conversions'" in line


def test_a_key_merged_in_with_an_anchor_may_still_be_overridden(tmp_path):
    from wager.workflow.specs import read_spec_file

    (tmp_path / "spec.yaml").write_text("base: &base {visitors: 10, conversions: 1}\narm: {<<: *base, conversions: 2}\n")
    assert read_spec_file(tmp_path / "spec.yaml")["arm"] == {"visitors": 10, "conversions": 2}


@pytest.mark.parametrize("name", ["12", "[1, 2]", "{a: 1}"])
def test_a_plan_refuses_a_name_a_run_would_refuse_and_records_nothing(tmp_path, isolated_registry, name):
    (tmp_path / "plan.yaml").write_text(f"domain: ab\nname: {name}\ndecision: {{min_lift: 0.01}}\n")
    line = bad_input_line(runner.invoke(app, ["plan", str(tmp_path / "plan.yaml")]))
    assert line.startswith("error: name: Input should be a valid string")
    assert not (isolated_registry / "registry.sqlite").exists()


def test_demo_decides_the_founding_example_and_writes_its_report_where_asked(tmp_path, isolated_registry):
    report = tmp_path / "founding.html"
    result = runner.invoke(app, ["demo", "--json", "--report", str(report)])
    assert result.exit_code == 0, result.output
    # the README's founding example: B's lift is a coin flip to clear the 0.005 margin, so keep testing
    assert json.loads(result.stdout)["action"] == "keep testing"
    assert report.is_file() and (isolated_registry / "registry.sqlite").is_file()


def test_demo_refuses_a_report_path_that_is_a_folder_before_any_work(tmp_path, isolated_registry):
    result = runner.invoke(app, ["demo", "--report", str(tmp_path)])
    assert result.exit_code == 2
    assert result.stderr == f"error: --report: is a directory: {tmp_path}\n"
    assert list(isolated_registry.iterdir()) == []


# --- the second sweep: outputs, environment, plans, bounds ---------------------------


def test_a_report_is_written_through_a_link_and_never_over_a_device(tmp_path):
    _, run = wager_json("ab", *FOUNDING_ARMS)
    target = tmp_path / "real.html"
    target.write_text("old")
    (tmp_path / "link.html").symlink_to(target)
    code, out = wager("report", run["run_id"], "--out", str(tmp_path / "link.html"))
    assert code == 0 and (tmp_path / "link.html").is_symlink() and target.read_text().startswith("<!DOCTYPE html>")
    for device in ("/dev/null",):  # was replaced by a regular file
        result = runner.invoke(app, ["report", run["run_id"], "--out", device])
        assert result.exit_code == 2 and result.stderr == f"error: --out: is not a regular file: {device}\n"
        assert Path(device).is_char_device()


def test_a_report_folder_that_refuses_new_files_is_bad_input_before_anything_is_written():
    """Permissions alone say /proc is writable to root: creating a file there is what tells."""
    _, run = wager_json("ab", *FOUNDING_ARMS)
    result = runner.invoke(app, ["report", run["run_id"], "--out", "/proc/wager-report.html"])
    assert result.exit_code == 2 and result.stderr.startswith("error: --out: cannot create /proc/wager-report.html")


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_a_text_or_json_report_goes_to_the_out_file_when_one_is_given(tmp_path, fmt):
    _, run = wager_json("ab", *FOUNDING_ARMS)
    code, out = wager("report", run["run_id"], "--format", fmt, "--out", str(tmp_path / f"r.{fmt}"))
    assert code == 0 and out == f"Report: {tmp_path / f'r.{fmt}'}\n"
    written = (tmp_path / f"r.{fmt}").read_text()
    assert json.loads(written)["run_id"] == run["run_id"] if fmt == "json" else written.startswith("Decision: ")


@pytest.mark.parametrize("value, rule", [("   ", "is empty"), ("FILE", "cannot create the folder")])
def test_a_bad_reports_folder_is_refused_before_the_demo_records_anything(tmp_path, monkeypatch, isolated_registry, value, rule):
    (tmp_path / "file").write_text("not a folder")
    monkeypatch.setenv("WAGER_REPORTS", str(tmp_path / "file") if value == "FILE" else value)
    result = runner.invoke(app, ["demo", "--quiet"])
    assert result.exit_code == 2 and result.stderr.startswith("error: WAGER_REPORTS: ") and rule in result.stderr
    assert not (isolated_registry / "registry.sqlite").exists()


@pytest.mark.parametrize("value, rule", [("   ", "must be a database URL or a file path, got an empty string"), ("FOLDER", "is a folder, not an SQLite file")])
def test_a_blank_or_folder_wager_db_is_bad_input_not_the_default_registry(tmp_path, monkeypatch, value, rule):
    monkeypatch.setenv("WAGER_DB", str(tmp_path) if value == "FOLDER" else value)
    result = runner.invoke(app, ["runs", "list"])
    assert result.exit_code == 2 and result.stderr.startswith(f"error: WAGER_DB: {rule}")


@pytest.mark.parametrize(
    "args, field",
    [
        (["runs", "list", "-n", str(10**23)], "--limit"),
        (["runs", "list", "--domain", "bogus"], "--domain"),
        (["validate", "latest", "--sbc", "5"], "--sbc"),
        (["validate", "latest", "--sbc", str(10**23)], "--sbc"),
        (["validate", "latest", "--seed", str(10**20), "--sbc", "0"], "--seed"),
        (["replay", "latest", "--k", "inf"], "--k"),
    ],
)
def test_out_of_range_options_are_bad_input_naming_the_option(args, field):
    wager("ab", *FOUNDING_ARMS)
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert field in result.stderr  # Click's usage errors: one line under `wager` itself (cli.main)


def test_a_plan_recorded_after_runs_of_its_name_says_it_is_not_before_the_data(tmp_path):
    spec = yaml.safe_load((EXAMPLES / "ab_conversion.yaml").read_text())
    (tmp_path / "run.yaml").write_text(yaml.safe_dump(spec))
    wager("run", str(tmp_path / "run.yaml"))
    plan_only = {k: v for k, v in spec.items() if k not in ("arms", "data")}
    (tmp_path / "plan.yaml").write_text(yaml.safe_dump(plan_only))
    code, out = wager("plan", str(tmp_path / "plan.yaml"))
    assert code == 0 and "1 run of this name was recorded before it" in out
    _, again = wager("plan", str(tmp_path / "plan.yaml"))
    assert "It replaces plan" in again
    _, run = wager_json("run", str(tmp_path / "run.yaml"))
    assert run["plan"]["matches"] is True and run["plan"]["runs_before"] == 1
    _, prose = wager("run", str(tmp_path / "run.yaml"), "--quiet")
    assert "after 1 run of this name, so not before the data" in prose
    # --no-record still reads the plan
    _, unrecorded = wager_json("run", str(tmp_path / "run.yaml"), "--no-record")
    assert unrecorded["plan"]["matches"] is True


def test_a_plan_with_a_blank_name_or_a_folder_for_a_spec_is_bad_input(tmp_path):
    (tmp_path / "plan.yaml").write_text("domain: ab\nname: '  '\ndecision: {min_lift: 0.01}\n")
    result = runner.invoke(app, ["plan", str(tmp_path / "plan.yaml")])
    assert result.exit_code == 2 and result.stderr.startswith("error: name: is blank")
    result = runner.invoke(app, ["plan", str(tmp_path)])
    assert result.exit_code == 2 and result.stderr.startswith("error: spec: is a folder, not a spec file")


def test_replaying_a_blocked_run_names_its_status_not_none(tmp_path):
    spec = yaml.safe_load((EXAMPLES / "ab_conversion.yaml").read_text())
    spec["gates"] = {"max_rhat": 1.0000001}
    spec["inference"] = {"engine": "nuts", "seed": 1, "chains": 2, "warmup": 100, "draws": 100}
    (tmp_path / "blocked.yaml").write_text(yaml.safe_dump(spec))
    code, out = wager_json("run", str(tmp_path / "blocked.yaml"))
    assert code == 3
    code, text = wager("replay", out["run_id"], "--quiet")
    assert code == 0 and "same decision (blocked)" in text
    _, diff = wager("runs", "diff", out["run_id"], out["run_id"])
    assert "None" not in diff


def test_a_ray_address_nothing_answers_at_is_bad_input_at_once():
    wager("ab", *FOUNDING_ARMS)
    result = runner.invoke(app, ["validate", "latest", "--sbc", "10", "--executor", "ray", "--address", "127.0.0.1:1", "--quiet"])
    assert result.exit_code == 2 and result.stderr.startswith("error: --address: nothing answers at 127.0.0.1:1")


def test_numbers_written_with_an_exponent_are_numbers_in_a_spec(tmp_path):
    """YAML 1.2 reads 1e39 and 2.5e2 as numbers; PyYAML's YAML 1.1 read them as text."""
    from wager.workflow.specs import read_spec_file

    (tmp_path / "s.yaml").write_text("domain: model\ndata: {y: [1e39, 2.5e2, -1.5E-3, 7, '1e3']}\n")
    assert read_spec_file(tmp_path / "s.yaml")["data"]["y"] == [1e39, 250.0, -0.0015, 7, "1e3"]


def test_an_sqlite_url_naming_a_folder_is_bad_input_naming_db(tmp_path):
    result = runner.invoke(app, ["runs", "list", "--db", f"sqlite:///{tmp_path}"])
    assert result.exit_code == 2 and result.stderr.startswith("error: --db: is a folder, not an SQLite file")
