"""``--arm NAME=SUCCESSES/VISITORS`` flags -> a spec payload (validated by the caller)."""

from __future__ import annotations

from typing import Any, Sequence

from wager.errors import SpecError


def parse_arm(text: str) -> dict[str, str]:
    """``"A=1100/20000"`` -> ``{"name": "A", "successes": "1100", "visitors": "20000"}``.

    Numbers stay text here; the spec schema decides whether they are valid.
    """
    name, sep, counts = text.partition("=")
    if not sep or not name.strip():
        raise SpecError(f"--arm {text}", "must look like NAME=SUCCESSES/VISITORS, e.g. A=1100/20000")
    successes, slash, visitors = counts.partition("/")
    if not slash or not successes.strip() or not visitors.strip():
        raise SpecError(f"--arm {text}", "must look like NAME=SUCCESSES/VISITORS, e.g. A=1100/20000")
    return {"name": name.strip(), "successes": successes.strip(), "visitors": visitors.strip()}


def payload_from_arms(
    arms: Sequence[str],
    metric: str = "conversion",
    min_lift: float = 0.0,
    relative: bool = False,
    threshold: float | None = None,
    engine: str = "auto",
    seed: int | None = None,
) -> dict[str, Any]:
    if metric not in ("conversion", "count"):
        raise SpecError("--metric", f"must be conversion or count from the command line; got {metric!r} (revenue needs a spec with a per-visitor table)")
    key = "conversions" if metric == "conversion" else "events"
    parsed = [parse_arm(a) for a in arms]
    decision: dict[str, Any] = {"min_lift": min_lift, "lift": "relative" if relative else "absolute"}
    if threshold is not None:
        decision["threshold"] = threshold
    inference: dict[str, Any] = {"engine": engine}
    if seed is not None:
        inference["seed"] = seed
    payload = {
        "domain": "ab",
        "metric": metric,
        "arms": [{"name": p["name"], "visitors": _number(p["visitors"]), key: _number(p["successes"])} for p in parsed],
        "decision": decision,
        "inference": inference,
    }
    return payload


def _number(text: str) -> Any:
    """Whole numbers as int, anything else as float (so the schema can say what is wrong)."""
    try:
        return int(text)
    except ValueError:
        try:
            return float(text)
        except ValueError:
            return text
