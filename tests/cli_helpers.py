"""What the CLI tests share: running ``wager`` in a folder, and checking a refusal."""

from __future__ import annotations

import os
from pathlib import Path

from typer.testing import CliRunner, Result

from wager.cli import app

runner = CliRunner()


def invoke(args: list[str], cwd: Path) -> Result:
    """``wager ARGS`` run from ``cwd`` (relative paths in specs and options resolve there)."""
    old = os.getcwd()
    os.chdir(cwd)
    try:
        return runner.invoke(app, args)
    finally:
        os.chdir(old)


def assert_refused(result: Result, fragments: tuple[str, ...] | list[str], cwd: Path, before: list[str]) -> None:
    """Bad input: exit code 2, one ``error: ...`` message holding every fragment (the field
    and the rule), no traceback, ``cwd`` holding exactly the names it held ``before``, and
    no run registry written (the test's own, ``WAGER_DB``, is created by its first write)."""
    assert result.exit_code == 2, (result.exit_code, result.output)
    message = result.stderr or result.output
    assert message.startswith("error: "), message
    for fragment in fragments:
        assert fragment in message, (fragment, message)
    assert "Traceback" not in result.output
    assert sorted(p.name for p in cwd.iterdir()) == sorted(before), "bad input must write nothing"
    assert not Path(os.environ["WAGER_DB"]).exists(), "bad input must not write the run registry"
