"""Shared test fixtures."""

from __future__ import annotations

import os

import pytest

# Keep JAX on the CPU.
os.environ.setdefault("JAX_PLATFORMS", "cpu")


@pytest.fixture(autouse=True)
def isolated_registry(tmp_path_factory, monkeypatch):
    """Every test records into its own registry and report folder, never the user's."""
    home = tmp_path_factory.mktemp("wager-data")
    monkeypatch.setenv("WAGER_DB", str(home / "registry.sqlite"))
    monkeypatch.setenv("WAGER_REPORTS", str(home / "reports"))
    return home
