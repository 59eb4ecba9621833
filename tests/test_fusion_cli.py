"""``wager fusion track`` and ``domain: fusion`` specs: GPS and accelerometer fused
through the shared path (gates, record, report), with "where am I, plus or minus
how much" answered and the act/wait rule applied; bad input exits 2 and writes nothing."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cli_helpers import invoke

SMALL = ["--chains", "2", "--warmup", "500", "--draws", "1000", "--seed", "1"]
DRIVE = ["--simulate", "20", "--dropout", "14-20", "--tolerance", "5", "--threshold", "0.9"]


@pytest.fixture(scope="module")
def tracked(tmp_path_factory):
    folder = tmp_path_factory.mktemp("fusion")
    db = str(folder / "registry.sqlite")
    result = invoke(["fusion", "track", *DRIVE, "--allow-missing", *SMALL, "--json", "--db", db], folder)
    assert result.exit_code == 0, (result.exit_code, result.output[-3000:])
    return folder, db, json.loads(result.stdout)


def test_wager_fusion_track_says_where_i_am_plus_or_minus_how_much_and_whether_to_act(tracked):
    _, _, payload = tracked
    assert payload["status"] == "decided" and payload["domain"] == "fusion" and payload["gates"]["passed"]
    pos, tol = payload["position"], payload["within_tolerance"]
    assert pos["lo"] < pos["mean"] < pos["hi"] and pos["plus_minus"] == pytest.approx((pos["hi"] - pos["lo"]) / 2)
    # the rule: act exactly when P(|error| <= 5 m) exceeds 0.9
    assert payload["action"] == ("act" if tol["probability"] > 0.9 else "wait")
    # calibrated on the simulation: the truth inside the 95% interval, the learned GPS noise near its true 3 m
    assert pos["lo"] < payload["truth"]["position"] < pos["hi"]
    gps = payload["noise"]["gps_sd"]
    assert gps["lo"] < 3.0 < gps["hi"]
    # 20 s at 100 Hz, fixes at 1 Hz, the last 6 lost
    assert payload["data"] == {"samples": 2000, "rate": 100.0, "gps_every": 100, "fixes": 20, "fixes_observed": 14}
    band = payload["trajectory"]
    assert len(band["time"]) == len(band["position"]["mean"]) and all(lo <= hi for lo, hi in zip(band["position"]["lo"], band["position"]["hi"]))
    # the band widens through the dropout: dead reckoning only
    width = np.subtract(band["position"]["hi"], band["position"]["lo"])
    assert width[-1] > 2 * width[len(width) // 2]


def test_the_report_of_a_fusion_run_draws_the_trajectory_with_credible_bands(tracked):
    folder, db, payload = tracked
    html = folder / "report.html"
    shown = invoke(["report", payload["run_id"], "--out", str(html), "--db", db], folder)
    assert shown.exit_code == 0, shown.output
    page = html.read_text()
    fusion = page[page.index('id="fusion"') :]
    assert 'alt="Position with its 95% credible band"' in fusion and 'alt="Velocity with its 95% credible band"' in fusion
    assert fusion.index('<img src="data:image/svg+xml;base64,') < fusion.index("</section>")
    assert "Position now" in fusion and "GPS noise sd" in fusion


def test_a_fusion_run_replays_bit_identically(tracked):
    folder, db, payload = tracked
    replayed = invoke(["replay", payload["run_id"], "--db", db], folder)
    assert replayed.exit_code == 0, replayed.output
    assert "AGREES" in replayed.output and "bit-identical" in replayed.output


def nothing_recorded(folder: Path, isolated_registry: Path, before: list[str]) -> bool:
    from wager.workflow.registry import Registry

    with Registry(str(isolated_registry / "registry.sqlite")) as registry:
        runs = registry.count()
    return runs == 0 and sorted(p.name for p in folder.iterdir()) == before and not (isolated_registry / "reports").exists()


def test_missing_gps_fixes_not_declared_allowed_exit_2_and_write_nothing(tmp_path, isolated_registry):
    result = invoke(["fusion", "track", *DRIVE, *SMALL, "--json"], tmp_path)
    assert result.exit_code == 2
    assert "data.gps" in result.output and "does not allow missing measurements" in result.output
    assert "Traceback" not in result.output and nothing_recorded(tmp_path, isolated_registry, [])


def drive_table(rows: int = 400, every: int = 100) -> pd.DataFrame:
    gps = np.full(rows, np.nan)
    gps[every - 1 :: every] = np.arange(rows // every) * 10.0
    return pd.DataFrame({"accel": np.zeros(rows), "gps": gps})


@pytest.mark.parametrize(
    "change, field, fragment",
    [
        # a fix off the 1 Hz grid, in the table's sixth data row (rows are counted from 1)
        (lambda f: f.assign(gps=np.where(np.arange(len(f)) == 5, 1.0, f["gps"])), "data.gps", "row 6 has a fix between fix rows"),
        (lambda f: f.iloc[:350], "data.gps_every", "whole number"),  # not a whole number of stretches
        (lambda f: f.assign(accel=np.where(np.arange(len(f)) == 7, np.nan, f["accel"])), "data.accel", "row 8 is not"),  # a control is never missing
        (lambda f: f.assign(gps=np.where(np.arange(len(f)) == 199, np.nan, f["gps"])), "data.gps", "the first at row 200,"),  # a missing fix, not declared
        (lambda f: f.rename(columns={"gps": "position"}), "data.gps", "gps"),
    ],
    ids=["fix-off-grid", "ragged-length", "nan-accelerometer", "undeclared-missing-fix", "no-gps-column"],
)
def test_bad_drive_tables_exit_2_naming_the_field(tmp_path, isolated_registry, change, field, fragment):
    change(drive_table()).to_csv(tmp_path / "drive.csv", index=False)
    result = invoke(["fusion", "track", "--data", "drive.csv", "--tolerance", "5", "--threshold", "0.9", *SMALL], tmp_path)
    assert result.exit_code == 2, result.output
    assert f"error: {field}:" in result.output and fragment in result.output, result.output
    assert nothing_recorded(tmp_path, isolated_registry, ["drive.csv"])


@pytest.mark.parametrize(
    "option, field", [(["--dropout", "14-20"], "data.simulate.dropouts"), (["--sim-seed", "3"], "data.simulate.seed")], ids=["dropout", "sim-seed"]
)
def test_simulation_options_beside_a_table_are_refused_not_ignored(tmp_path, isolated_registry, option, field):
    drive_table().to_csv(tmp_path / "drive.csv", index=False)
    result = invoke(["fusion", "track", "--data", "drive.csv", "--tolerance", "5", "--threshold", "0.9", *option, *SMALL], tmp_path)
    assert result.exit_code == 2, result.output
    assert f"error: {field}: {option[0]} applies only to a simulated drive" in result.output
    assert nothing_recorded(tmp_path, isolated_registry, ["drive.csv"])


def test_a_fusion_spec_with_an_unknown_prior_or_a_non_normal_initial_state_is_bad_input(tmp_path):
    from wager.errors import SpecError
    from wager.workflow.pipeline import domain_prepare
    from wager.workflow.specs import parse_spec

    base = {"domain": "fusion", "data": {"simulate": {"seconds": 5}}, "decision": {"tolerance": 5, "threshold": 0.9}}
    why = {"why": "a test", "source": "a test"}
    for priors, field in [
        ({"wind_sd": {"family": "half_normal", "params": {"scale": 1.0}, **why}}, "priors.wind_sd"),
        ({"initial_bias": {"family": "half_normal", "params": {"scale": 1.0}, **why}}, "priors.initial_bias"),
    ]:
        spec = parse_spec({**base, "priors": priors})
        with pytest.raises(SpecError) as bad:
            domain_prepare(spec)(spec)
        assert bad.value.field == field
