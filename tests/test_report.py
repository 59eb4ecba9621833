"""Reports from a run record: plain language with only the digits the Monte Carlo
error supports, JSON for machines, and one self-contained HTML file that a real
headless browser (Debian's chromium) renders without a console error, on a desktop
and on a 375-px phone."""

from __future__ import annotations

import copy
import html
import json
import re
import shutil
import time
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
import yaml

from wager.ab.examples import FOUNDING_EXAMPLE
from wager.kernel.digits import fmt
from wager.kernel.gates import REMEDIES
from wager.workflow.pipeline import result_json, run
from wager.workflow.record import assemble
from wager.workflow.report import html_report, json_report, plain_report, write_html_report
from wager.workflow.sensitivity import prior_sensitivity
from wager.workflow.specs import parse_spec

from browser import INSTALL_HINT, Browser, find_chromium

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@dataclass(frozen=True)
class Recorded:
    """A run record as the registry hands it out (``RunRecord``'s public shape)."""

    run_id: str
    created_at: str
    manifest: dict
    result: dict
    posterior: bytes

    def netcdf(self) -> bytes:
        return self.posterior


def record_of(payload: dict, run_id: str = "r-test", base_dir: Path | None = None, spec_path: Path | None = None) -> Recorded:
    """Run ``payload`` through the shared path and keep what the registry would store,
    prior sensitivity and the (absent) plan check included, as the CLI records them."""
    result = run(parse_spec(payload), base_dir=base_dir)
    body = result_json(result)
    body["plan"] = None
    body["sensitivity"] = prior_sensitivity(result, base_dir).to_json()
    manifest, body, netcdf = assemble(result, body, spec_path, base_dir, {"plan": body["plan"], "sensitivity": body["sensitivity"]})
    return Recorded(run_id, "2026-11-25T09:30:56+00:00", manifest, {"run_id": run_id, **body}, netcdf)


@pytest.fixture(scope="module")
def founding() -> Recorded:
    return record_of(FOUNDING_EXAMPLE, "r-founding")


@pytest.fixture(scope="module")
def gate_blocked(founding) -> Recorded:
    """A NUTS run whose gates failed (the numbers of the centered eight schools, seed
    20240101): built by hand so the test needs no sampler; the draws are the founding's."""
    result = {
        "run_id": "r-blocked",
        "status": "blocked",
        "action": None,
        "domain": "model",
        "name": "eight schools (centered)",
        "blocked_by": ["r_hat", "divergences"],
        "inference": {"engine": "nuts", "reason": "requested: NUTS", "seed": 20240101, "chains": 4, "draws": 1000},
        "gates": {
            "passed": False,
            "applicable": True,
            "note": "",
            "checks": [
                {"name": "r_hat", "value": 1.1925859820898679, "threshold": 1.01, "rule": "<", "passed": False, "where": "tau"},
                {"name": "divergences", "value": 146.0, "threshold": 0.0, "rule": "<=", "passed": False, "where": "after warmup",
                 "remedy": REMEDIES["divergences"]},
                {"name": "e_bfmi", "value": 0.86, "threshold": 0.3, "rule": ">=", "passed": True, "where": "chain 1"},
            ],
        },
        "priors": founding.result["priors"],
        "plan": None,
        "sensitivity": {"assessed": False, "headline": "Prior sensitivity not assessed: no action was recommended, so there is no decision to test."},
    }
    return replace(founding, run_id="r-blocked", result=result)


def text_of(record: Recorded) -> str:
    return "\n".join(plain_report(record))


# --- plain language ---------------------------------------------------------------------


def test_plain_report_of_the_founding_example_leads_with_the_decision_and_prices_each_action(founding):
    lines = plain_report(founding)
    arms = founding.result["arms"]
    text = "\n".join(lines)
    assert lines[0].startswith("Decision: keep testing")
    # exact (closed-form) expected losses: three significant digits, in the metric's units
    loss_a, loss_b = fmt(arms["A"]["expected_loss"]), fmt(arms["B"]["expected_loss"])
    assert (loss_a, loss_b) == ("0.000929", "0.000929")
    loss_line = next(line for line in lines if line.startswith("Expected loss"))
    assert f"keep A {loss_a}" in loss_line and f"ship B {loss_b}" in loss_line
    assert "conversions per visitor" in loss_line and "9.29 per 10,000 visitors" in loss_line
    assert "threshold of caring is 0.000550" in loss_line  # 1% of A's posterior mean 0.05504
    # P(B beats A) 0.984 (Evan Miller's exact sum), P(lift > margin) 0.500, the 95% interval of the lift
    assert "B beats A with probability 98.4%" in text and "with probability 50.0%" in text
    assert "95% credible interval +0.00044 to +0.00957" in text
    assert "keep A 50.0%, ship B 50.0%" in text  # neither choice is clearly best: that is why we keep testing
    assert "What would change the decision:" in text and "threshold of caring" in text
    assert "Prior sensitivity: Decision unchanged under 2 of 2 alternative priors." in lines
    assert "Convergence checks do not apply" in text
    assert "No decision plan was recorded before the data" in text


def test_digits_follow_the_monte_carlo_error(founding):
    """The same number loses digits when it carries Monte Carlo error: NUTS on the founding
    example (4 x 1000 draws, seed 11) gives expected-loss MCSEs near 2.5e-5 and a
    chance-to-be-best MCSE near 0.008, so 0.000929 reads 0.00093 and 50.0% reads 50%."""
    sampled = copy.deepcopy(founding.result)
    for arm in sampled["arms"].values():
        arm.update(expected_loss_mcse=2.5e-5, prob_best_mcse=0.008)
    lines = plain_report(replace(founding, result=sampled))
    loss_line = next(line for line in lines if line.startswith("Expected loss"))
    assert "keep A 0.00093 (9.3 per 10,000 visitors); ship B 0.00093 (9.3 per 10,000 visitors)" in loss_line
    assert "keep A 50%, ship B 50%" in "\n".join(lines)
    assert "keep A 0.000929" in text_of(founding)  # the exact run keeps its three digits
    # the rule itself: the last digit shown is that of 2 x MCSE
    assert fmt(0.0009286, 2.5e-5) == "0.00093" and fmt(0.0009286, 0.0) == "0.000929" and fmt(0.0009286, 2e-4) == "0.0009" and fmt(0.0009286, 5e-4) == "0.001"


def test_a_run_blocked_by_its_gates_recommends_no_action_and_names_the_failed_checks(gate_blocked):
    lines = plain_report(gate_blocked)
    assert lines[0] == "No action is recommended: the posterior failed 2 of 3 convergence checks, so its numbers cannot be trusted to decide."
    assert "Failed: R-hat 1.193 (tau), must be < 1.01." in lines
    assert f"Failed: divergent transitions 146 (after warmup), must be <= 0. What to do: {REMEDIES['divergences']}." in lines  # recorded with the run
    assert not any(line.startswith(("Decision:", "Expected loss", "What would change")) for line in lines)


def test_a_run_blocked_by_a_sample_ratio_mismatch_says_no_action_and_why():
    payload = {"arms": [{"name": "A", "visitors": 20000, "conversions": 1100}, {"name": "B", "visitors": 18000, "conversions": 1200}]}
    lines = plain_report(record_of(payload))
    assert lines[0].startswith("No action is recommended")
    assert any(line.startswith("Sample-ratio mismatch") for line in lines)


# --- JSON ---------------------------------------------------------------------------------


def test_json_report_is_strict_json_with_the_decision_identity_sensitivity_and_plan(founding):
    result = copy.deepcopy(founding.result)
    result["gap"] = float("nan")  # a NaN anywhere must come out as null, never as NaN
    report = json_report(replace(founding, result=result))
    text = json.dumps(report, allow_nan=False)
    assert json.loads(text)["result"]["gap"] is None
    assert report["run_id"] == "r-founding" and report["created_at"] == founding.created_at
    assert report["identity_hash"] == founding.manifest["identity_hash"]
    assert report["action"] == "keep testing" and report["decision"]["sentence"].startswith("Decision: keep testing")
    assert [a["action"] for a in report["decision"]["actions"]] == ["keep A", "ship B"]
    assert report["sensitivity"]["headline"] == "Decision unchanged under 2 of 2 alternative priors."
    assert report["plan"] is None and report["summary"] == plain_report(founding)


# --- HTML ---------------------------------------------------------------------------------


def test_html_is_one_self_contained_file_with_every_user_string_escaped(founding):
    payload = {**FOUNDING_EXAMPLE, "name": "checkout <script>alert(1)</script> & 'co'"}
    record = record_of(payload, "r-escape")
    page = html_report(record)
    assert re.search(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", page, re.I) is None
    assert "http://" not in page and "https://" not in page
    assert "<script" not in page.lower() and 'rel="stylesheet"' not in page and "@import" not in page
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in page
    assert html.escape(payload["name"]) in page and payload["name"] not in page
    assert 'id="decision"' in page and "keep testing" in page
    for prior in record.result["priors"].values():
        assert html.escape(prior["why"]) in page and html.escape(prior["source"]) in page
    assert record.manifest["identity_hash"] in page
    for digest in record.manifest["outputs"]["draws"].values():
        assert digest in page
    images = re.findall(r'<img src="([^"]+)"', page)
    assert len(images) >= 3 and all(src.startswith("data:image/svg+xml;base64,") for src in images)


def test_write_html_report_makes_its_folder_and_is_deterministic(founding, tmp_path):
    path = write_html_report(founding, tmp_path / "reports" / "run.html")
    again = write_html_report(founding, tmp_path / "again.html")
    assert path.read_text() == again.read_text() == html_report(founding)
    assert [p.name for p in (tmp_path / "reports").iterdir()] == ["run.html"]  # no partial file left


def test_wager_report_writes_the_html_of_a_recorded_run(tmp_path):
    from typer.testing import CliRunner

    from wager.cli import app

    runner = CliRunner()
    done = runner.invoke(app, ["ab", "--arm", "A=1100/20000", "--arm", "B=1200/20000", "--json", "--quiet"])
    assert done.exit_code == 0, done.output
    run_id = json.loads(done.stdout)["run_id"]
    out = tmp_path / "report.html"
    done = runner.invoke(app, ["report", run_id, "--out", str(out)])
    assert done.exit_code == 0, done.output
    page = out.read_text()
    assert 'id="decision"' in page and run_id in page


def test_html_report_renders_in_a_real_headless_browser(founding, gate_blocked, tmp_path):
    """chromium --headless loads each report from file://, shows the decision, loads every
    plot, logs no console error, and on a 375-px phone nothing overflows the page
    sideways (wide tables scroll inside their own box)."""
    chromium = find_chromium()
    if chromium is None:
        pytest.skip(INSTALL_HINT)
    start = time.monotonic()
    with Browser(chromium, timeout=10) as browser:
        for record in (founding, gate_blocked):
            path = write_html_report(record, tmp_path / f"{record.run_id}.html")
            browser.events.clear()
            browser.open(path, width=1200, height=900)
            decision = browser.evaluate("document.getElementById('decision').textContent")
            expected = record.result["action"] or "No action is recommended"
            assert expected in decision
            images = browser.evaluate("Array.from(document.images).map(i => [i.complete, i.naturalWidth])")
            plots = 3 if record.result["status"] == "decided" else 1  # losses, lift, posterior; a blocked run: posteriors only
            assert len(images) >= plots and all(done and width > 0 for done, width in images), images
            shot = browser.screenshot(tmp_path / f"{record.run_id}-desktop.png")
            browser.resize(375, 812, mobile=True)
            widths = browser.evaluate("[document.documentElement.scrollWidth, document.body.scrollWidth, window.innerWidth]")
            assert widths[0] <= 375 + 1 and widths[1] <= 375 + 1, widths
            phone = browser.screenshot(tmp_path / f"{record.run_id}-phone.png")
            assert shot.stat().st_size > 10_000 and phone.stat().st_size > 10_000
            assert browser.errors() == []
    assert time.monotonic() - start < 30


# --- the same reports from sampled runs (NUTS: slow) ---------------------------------------


@pytest.mark.slow
def test_a_nuts_run_of_the_founding_example_shows_fewer_digits_than_the_exact_run(founding):
    sampled = record_of({**FOUNDING_EXAMPLE, "inference": {"engine": "nuts", "seed": 11}}, "r-nuts")
    arm = sampled.result["arms"]["A"]
    assert 0 < arm["expected_loss_mcse"] < 1e-4
    shown = fmt(arm["expected_loss"], arm["expected_loss_mcse"])
    assert len(shown) < len(fmt(founding.result["arms"]["A"]["expected_loss"]))  # e.g. 0.00091 against 0.000929
    assert f"keep A {shown}" in text_of(sampled)
    assert "All 6 convergence checks passed" in text_of(sampled)


@pytest.mark.slow
def test_a_custom_model_report_prices_its_actions_and_plots_its_vectors(tmp_path):
    for name in ("eight_schools.py", "eight_schools.csv"):
        shutil.copy(EXAMPLES / name, tmp_path / name)
    spec = yaml.safe_load((EXAMPLES / "eight_schools_noncentered.yaml").read_text())
    spec["inference"].update(chains=2, warmup=300, draws=300)
    spec["gates"] = {"min_ess_bulk": 100, "min_ess_tail": 100, "max_rhat": 1.05, "max_divergences": 5}
    spec["sensitivity"] = {"enabled": False}
    record = record_of(spec, "r-schools", base_dir=tmp_path)
    lines = plain_report(record)
    assert lines[0].startswith(f"Decision: {record.result['action']}")
    assert any(line.startswith("Expected loss of each action") and "do_not_fund" in line for line in lines)
    assert any(line.startswith("theta[0] is") and "94% credible interval" in line for line in lines)
    page = html_report(record)
    assert html.escape(spec["priors"]["tau"]["why"]) in page and 'alt="Posterior of theta"' in page


def test_wager_report_refuses_an_out_that_is_a_directory_before_reading_the_run(tmp_path):
    from typer.testing import CliRunner

    from wager.cli import app

    (tmp_path / "reports").mkdir()
    done = CliRunner().invoke(app, ["report", "latest", "--out", str(tmp_path / "reports")])
    assert done.exit_code == 2
    assert done.stderr == f"error: --out: is a directory: {tmp_path / 'reports'}\n"
    assert list((tmp_path / "reports").iterdir()) == []


def test_a_failed_html_write_leaves_no_partial_file(founding, tmp_path):
    (tmp_path / "run.html").mkdir()  # the rename onto a folder fails
    with pytest.raises(OSError):
        write_html_report(founding, tmp_path / "run.html")
    assert [p.name for p in tmp_path.iterdir()] == ["run.html"]


def test_the_validation_section_plots_each_loo_pit_of_a_domain_check(founding):
    """A risk model checks itself (``wager.risk.checks``): one LOO-PIT, or several beside a held-out
    calibration. The report shows each PIT's plot, named, and no statistics table it does not have."""
    import numpy as np
    from scipy import stats

    from wager.risk.checks import AllOf, binned_calibration, loo_pit

    rng = np.random.default_rng(1)
    y = rng.normal(2.0, 1.0, size=200)
    theta = rng.normal(y.mean(), 1 / np.sqrt(y.size), size=(500, 1))
    counts = loo_pit(stats.norm.logpdf(y, theta), stats.norm.cdf(y, theta), "claim counts")
    amounts = loo_pit(stats.norm.logpdf(y, theta), stats.norm.cdf(y, theta), "claim amounts")
    held_out = binned_calibration(np.full((500, 1000), 0.1), rng.random(1000) < 0.1, rng, "outcomes")

    def page(check) -> str:
        document = {"checks": [{"name": "predictive", "status": "passed", "seconds": 1.0, "lines": check.lines(), "data": check.to_json()}]}
        return html_report(founding, [{"document": document, "passed": True, "created_at": "2026-12-01T21:00:00+00:00"}])

    one = page(counts)
    assert one.count('alt="LOO-PIT ECDF difference') == 1 and "LOO-PIT of 200 claim counts" in one
    both = page(AllOf((counts, amounts, held_out)))
    assert both.count('alt="LOO-PIT ECDF difference') == 2 and "claim amounts" in both
    assert "Posterior predictive p-values" not in both


def test_the_html_of_an_ab_run_shows_its_threshold_of_caring(founding):
    """The A/B result's ``threshold`` (1% of the control's posterior mean, 0.000550 for the founding
    example) is a KPI card and the dashed line of the loss plot; other domains' ``threshold`` is not."""
    page = html_report(founding)
    assert "Threshold of caring" in page and "The dashed line is the threshold of caring" in page
    assert abs(founding.result["threshold"] - 0.01 * 0.05504) < 1e-6 and "0.00055" in page
