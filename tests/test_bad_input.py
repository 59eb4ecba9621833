"""Bad input: one clear line naming the field and the rule, exit code 2, nothing written."""

import subprocess
import sys
from pathlib import Path

import pytest

from cli_helpers import assert_refused, invoke


GOOD_PRIOR = "{family: beta, params: {alpha: 1, beta: 1}, why: uniform, source: Laplace}"


def assert_bad_input(result, *fragments, cwd: Path):
    assert_refused(result, fragments, cwd, _before[cwd])


_before: dict = {}


@pytest.fixture
def workdir(tmp_path):
    _before[tmp_path] = [p.name for p in tmp_path.iterdir()]
    return tmp_path


@pytest.mark.parametrize(
    "arms, fragments",
    [
        (["A=-5/100", "B=10/100"], ["arms.0.conversions", "greater than or equal to 0"]),
        (["A=5/100", "B=10.5/100"], ["arms.1.conversions", "integer"]),
        (["A=5/100.5", "B=10/100"], ["arms.0.visitors", "integer"]),
        (["A=120/100", "B=10/100"], ["arms[A].conversions", "must not exceed visitors (120 > 100)"]),
        (["A=0/0", "B=10/100"], ["arms.0.visitors", "greater than 0"]),
        (["A=10/100"], ["arms", "at least two arms; got 1"]),
        (["A=10/100", "A=12/100"], ["arms[A].name", "unique"]),
        (["A=nan/100", "B=10/100"], ["arms.0.conversions", "finite"]),
        (["A=10/inf", "B=10/100"], ["arms.0.visitors", "finite"]),
        (["A10/100", "B=10/100"], ["--arm A10/100", "NAME=SUCCESSES/VISITORS"]),
    ],
)
def test_bad_arms_on_the_command_line(arms, fragments, workdir):
    args = ["ab"] + [x for a in arms for x in ("--arm", a)]
    assert_bad_input(invoke(args, workdir), *fragments, cwd=workdir)


def spec_file(dir: Path, text: str) -> str:
    path = dir / "spec.yaml"
    path.write_text(text)
    _before[dir] = [p.name for p in dir.iterdir()]
    return str(path)


ARMS = """
arms:
  - {name: A, visitors: 1000, conversions: 50}
  - {name: B, visitors: 1000, conversions: 60}
"""


@pytest.mark.parametrize(
    "text, fragments",
    [
        (ARMS + "priors:\n  rate: {family: betta, params: {alpha: 1, beta: 1}, why: w, source: s}\n", ["priors.rate.family", "unknown prior family 'betta'"]),
        (ARMS + "priors:\n  rate: {family: beta, params: {alpha: 1, beta: 1}, source: s}\n", ["priors.rate.why", "is required"]),
        (ARMS + "priors:\n  rate: {family: beta, params: {alpha: 1, beta: 1}, why: '', source: s}\n", ["priors.rate.why", "justification"]),
        (ARMS + f"priors:\n  tau: {GOOD_PRIOR}\n", ["priors.tau", "unknown prior for the conversion metric"]),
        (ARMS + "priors:\n  rate: {family: normal, params: {loc: 0, scale: 1}, why: w, source: s}\n", ["priors.rate.family", "needs a beta prior"]),
        (ARMS + "colour: blue\n", ["colour", "unknown key"]),
        (ARMS + "decision: {min_lift: 0.01, margin: 2}\n", ["decision.margin", "unknown key"]),
        (ARMS + "decision: {min_lift: .nan}\n", ["decision.min_lift", "finite"]),
        (ARMS + "inference: {seed: -1}\n", ["inference.seed", "greater than or equal to 0"]),
        (ARMS + "inference: {seed: 1.5}\n", ["inference.seed", "integer"]),
        (ARMS + "inference: {engine: nuts, chains: 1}\n", ["inference.chains", "NUTS needs at least 2 chains", "so 1 could never pass"]),
        ("arms: [ {name: A, visitors: 10\n", ["spec", "malformed YAML at line"]),
        ("arms:\n  - {name: A, visitors: 100, conversions: 5}\n  - {name: B, visitors: .inf, conversions: 5}\n", ["arms.1.visitors", "finite"]),
        ("domain: astrology\n", ["domain", "unknown domain 'astrology'"]),
        ("domain: risk\n", ["task", "is required for domain risk", "reserve"]),
        ("domain: science\ntask: astrology\n", ["task", "unknown task 'astrology'", "sir"]),
        ("", ["spec", "empty"]),
        ("data: {path: missing.csv}\n", ["data.path", "no such file"]),
    ],
)
def test_bad_specs(text, fragments, workdir):
    path = spec_file(workdir, text)
    assert_bad_input(invoke(["run", path], workdir), *fragments, cwd=workdir)


def test_bad_per_visitor_table(workdir):
    (workdir / "visits.csv").write_text("arm,value\nA,1\nA,0\nB,1\nB,nan\n")
    path = spec_file(workdir, "data: {path: visits.csv}\n")
    assert_bad_input(invoke(["run", path], workdir), "data.value", "row 4 is nan", cwd=workdir)
    (workdir / "visits.csv").write_text("arm,value\nA,1\nA,0\nB,2\nB,0\n")
    _before[workdir] = [p.name for p in workdir.iterdir()]
    assert_bad_input(invoke(["run", path], workdir), "data.value", "a conversion is 0 or 1", cwd=workdir)


def test_bad_input_from_a_real_process_has_no_traceback(tmp_path):
    """The installed entry point, as a user runs it."""
    proc = subprocess.run(
        [sys.executable, "-m", "wager.cli", "ab", "--arm", "A=120/100", "--arm", "B=1/100"],
        capture_output=True, text=True, cwd=tmp_path,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip() == "error: arms[A].conversions: must not exceed visitors (120 > 100)"
    assert proc.stdout == "" and list(tmp_path.iterdir()) == []


def wager_process(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "wager.cli", *args], capture_output=True, text=True, cwd=cwd)


@pytest.mark.parametrize(
    "args, line",
    [
        (["runs", "list", "--limit", "0"], "error: --limit: Input should be greater than or equal to 1"),
        (["replay", "latest", "--k", "abc"], "error: --k: Input should be a valid number, unable to parse string as a number"),
        (["monitor", "latest"], "error: --data: is required"),
        (["runs", "show"], "error: RUN: is required"),
        (["runs", "list", "--limt", "3"], "error: --limt: no such option (did you mean --limit?)"),
        (["runs", "list", "--bogus"], "error: --bogus: no such option"),
        (["astrology"], "error: wager: No such command 'astrology'"),
    ],
)
def test_a_usage_error_is_one_line_naming_the_option(args, line, tmp_path):
    proc = wager_process(*args, cwd=tmp_path)
    assert (proc.returncode, proc.stderr, proc.stdout) == (2, line + "\n", "")
    assert list(tmp_path.iterdir()) == []


def test_help_and_exit_codes_survive_the_one_line_usage_errors(tmp_path):
    shown = wager_process("runs", "list", "--help", cwd=tmp_path)
    assert shown.returncode == 0 and "Usage: wager runs list" in shown.stdout
    assert wager_process(cwd=tmp_path).returncode == 2  # no command: the help, as a usage error
    assert wager_process("runs", "list", cwd=tmp_path).returncode == 0
    # typer.Exit's code comes through: 20,000 vs 26,000 visitors under a 50/50 design is a sample-ratio mismatch, blocked (3)
    blocked = wager_process("ab", "--arm", "A=1100/20000", "--arm", "B=1200/26000", "--no-record", "--quiet", cwd=tmp_path)
    assert blocked.returncode == 3, blocked.stderr
    refused = wager_process("runs", "show", "latest", cwd=tmp_path)
    assert (refused.returncode, refused.stderr) == (2, "error: RUN: 'latest' names no run: the registry has no runs yet\n")
