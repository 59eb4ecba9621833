"""What changed between two runs (or between a plan and a run), in the user's words.

``diff_manifests`` compares the parts of two manifests that explain different
numbers: data, priors, decision policy, gates, inference config and seeds,
model version, package versions and numerics flags. Each change names its
section and the dotted path of the field, e.g. ``priors.rate.params.alpha``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

MISSING = "(absent)"


@dataclass(frozen=True)
class Change:
    section: str
    path: str
    old: Any
    new: Any

    def describe(self) -> str:
        return f"{self.path}: {_show(self.old)} -> {_show(self.new)}"

    def to_json(self) -> dict[str, Any]:
        return {"section": self.section, "path": self.path, "old": self.old, "new": self.new}


def changes(old: Any, new: Any, path: str = "", section: str = "") -> list[Change]:
    """Leaf-level differences between two JSON values, paths dotted (lists by index)."""
    if isinstance(old, Mapping) and isinstance(new, Mapping):
        out: list[Change] = []
        for key in sorted(set(old) | set(new), key=str):
            sub = f"{path}.{key}" if path else str(key)
            out += changes(old.get(key, MISSING), new.get(key, MISSING), sub, section)
        return out
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        out = []
        for i, (a, b) in enumerate(zip(old, new)):
            out += changes(a, b, f"{path}[{i}]", section)
        return out
    return [] if old == new else [Change(section, path, old, new)]


# section name -> where it lives in a manifest
SECTIONS: dict[str, tuple[str, ...]] = {
    "data": ("identity", "data"),
    "priors": ("identity", "priors"),
    "policy": ("identity", "policy"),
    "gates": ("identity", "gates"),
    "inference": ("identity", "inference"),
    "seed": ("identity", "chain_seeds"),
    "engine": ("identity", "engine"),
    "model": ("identity", "model"),
    "versions": ("environment", "versions"),
    "numerics": ("environment", "numerics"),
    "platform": ("environment", "platform"),
}


def diff_manifests(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, list[Change]]:
    """Section -> its changes, only the sections that changed.

    The data section reports the canonical data hash and, when it differs,
    which columns changed (not their bytes).
    """
    out: dict[str, list[Change]] = {}
    for section, where in SECTIONS.items():
        a, b = _get(old, where), _get(new, where)
        if section == "data":
            found = _data_changes(a or {}, b or {})
        else:
            found = changes(a, b, where[-1], section)
        if found:
            out[section] = found
    return out


def _data_changes(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[Change]:
    if old.get("sha256") == new.get("sha256"):
        return []
    found = [Change("data", "data.sha256", old.get("sha256"), new.get("sha256"))]
    a, b = old.get("columns", {}), new.get("columns", {})
    for name in sorted(set(a) | set(b)):
        ca, cb = a.get(name, {}), b.get(name, {})
        if ca == cb:
            continue
        if ca.get("shape") != cb.get("shape") or ca.get("dtype") != cb.get("dtype"):
            found.append(Change("data", f"data.columns.{name}", _column(ca), _column(cb)))
        else:
            found.append(Change("data", f"data.columns.{name}", "values", "different values"))
    return found


def _column(column: Mapping[str, Any]) -> str:
    if not column:
        return MISSING
    return f"{column.get('dtype')} {tuple(column.get('shape', ()))}"


def _get(mapping: Mapping[str, Any], where: tuple[str, ...]) -> Any:
    value: Any = mapping
    for key in where:
        if not isinstance(value, Mapping):
            return None
        value = value.get(key)
    return value


def _show(value: Any) -> str:
    if isinstance(value, str):
        return value if value == MISSING else repr(value)
    return str(value)
