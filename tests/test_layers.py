"""The design's layers: imports point down only, surfaces -> workflow -> domains -> kernel.
The kernel imports no domain, a domain neither the workflow nor another domain, and nothing
imports a surface. Every import counts, the lazy ones inside functions too."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "wager"
DOMAINS = ("ab", "forecast", "risk", "science", "fusion", "custom")
RANK = {"kernel": 0, "domain": 1, "workflow": 2, "surface": 3}


def layer(module: str) -> tuple[str, str]:
    """(layer, part) of a ``wager`` module: part names the domain, or the module for the others."""
    top = module.split(".")[1] if "." in module else ""
    if top in ("kernel", "errors", "tables"):  # errors and tables: the shared base the kernel uses
        return "kernel", top
    if top in DOMAINS:
        return "domain", top
    if top == "workflow":
        return "workflow", top
    if top.startswith("cli") or top == "executors":
        return "surface", top
    return "package", top  # ``wager`` itself (its version)


def wager_imports(path: Path) -> list[str]:
    names: list[str] = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.append(node.module)
        elif isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
    return [n for n in names if n == "wager" or n.startswith("wager.")]


def violations() -> list[str]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        module = ".".join(("wager", *path.relative_to(PACKAGE).with_suffix("").parts)).removesuffix(".__init__")
        (src, src_part) = layer(module)
        for name in wager_imports(path):
            dst, dst_part = layer(name)
            upward = dst != "package" and src in RANK and RANK[dst] > RANK[src]
            sideways = src == dst == "domain" and src_part != dst_part
            if upward or sideways:
                found.append(f"{module} imports {name}")
    return found


def test_imports_point_down_only():
    assert violations() == []


def test_the_check_sees_an_upward_import(tmp_path, monkeypatch):
    """The test above can fail: a domain module importing the workflow, lazily, is caught."""
    fake = tmp_path / "wager"
    (fake / "ab").mkdir(parents=True)
    (fake / "ab" / "domain.py").write_text("def check():\n    from wager.workflow.predictive import prior_predictive_check\n")
    (fake / "forecast").mkdir()
    (fake / "forecast" / "model.py").write_text("import wager.ab.models\n")
    monkeypatch.setattr(sys.modules[__name__], "PACKAGE", fake)
    assert violations() == ["wager.ab.domain imports wager.workflow.predictive", "wager.forecast.model imports wager.ab.models"]
