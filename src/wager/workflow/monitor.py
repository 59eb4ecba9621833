"""``wager monitor RUN --data NEW``: does a recorded model still reproduce reality?

The recorded run's spec is prepared again with the new window of data in the
place its data had, and the window is checked against the recorded posterior
draws (``wager.workflow.predictive.check_new_data``): PIT values, coverage of
the 50/80/95% predictive intervals against a binomial tolerance, the log
predictive density against windows simulated from the fitted process, and,
where the window holds the outcomes of the recorded decision (a domain that
can read them: ``problem.realized_loss(action, data)``), the loss the decision
realized against the loss windows from the fitted process would realize.

Where the new data go: a YAML or JSON file of keys (``arms: [...]`` for an A/B
test, ``data: {...}`` for a model) replaces the spec's own data keys; a table
(CSV, parquet) replaces the path the spec's data were read from. An A/B window
must hold the recorded run's arms, matched by name: the recorded draws are
per arm, in the recorded order.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from wager.errors import SpecError
from wager.workflow.netcdf import read_netcdf
from wager.workflow.predictive import MAX_DRAWS, DataCheck, check_new_data

DATA_KEYS = ("arms", "data")
TABLES = (".csv", ".parquet", ".pq")


def spec_with_new_data(payload: dict[str, Any], new: Path, arms: Sequence[str] = ()) -> dict[str, Any]:
    """The recorded spec payload with its data replaced by the file ``new``; an
    ``arms:`` list is put in the order of the recorded ``arms`` (names)."""
    payload = dict(payload)
    if new.suffix.lower() in TABLES:
        if not new.is_file():
            raise SpecError("--data", f"no such file: {new}")
        data = payload.get("data")
        if isinstance(data, dict):
            payload["data"] = {**data, "path": str(new.resolve())}
        elif payload.get("domain", "ab") == "ab":  # an A/B test run on its arms' counts: a per-visitor table now
            payload["data"] = {"path": str(new.resolve())}
        else:
            payload["data"] = str(new.resolve())
        if "arms" in payload:
            payload["arms"] = None
        return payload
    replacement = _read_window(new)
    if not isinstance(replacement, dict) or not any(k in replacement for k in DATA_KEYS):
        raise SpecError("--data", f"{new.name} must be a table (CSV/parquet) or a YAML/JSON mapping with one of: {', '.join(DATA_KEYS)}")
    if arms and isinstance(replacement.get("arms"), list):
        replacement = {**replacement, "arms": in_recorded_order(replacement["arms"], arms)}
    for key in DATA_KEYS:
        if key in payload:
            payload[key] = replacement.get(key)
    return payload


def _read_window(new: Path) -> Any:
    """The YAML/JSON mapping in ``new``; a missing, empty or malformed file is named ``--data``."""
    from wager.workflow.specs import read_spec_file

    try:
        return read_spec_file(new)
    except SpecError as error:
        raise SpecError("--data", error.rule) from None


def in_recorded_order(window: list[Any], recorded: Sequence[str]) -> list[Any]:
    """The window's arms in the recorded order; their names must be the recorded ones."""
    for i, arm in enumerate(window):
        if not isinstance(arm, Mapping):
            raise SpecError("--data", f"arms: item {i + 1} is {arm!r}; each arm is a mapping of its name and counts, e.g. {{name: A, visitors: 100, conversions: 5}}")
    names = [str(arm.get("name")) for arm in window]
    if sorted(names) != sorted(recorded):
        raise other_arms(names, recorded, "in any order")
    return sorted(window, key=lambda arm: list(recorded).index(arm["name"]))


def recorded_arms(result: Mapping[str, Any]) -> list[str]:
    """The arms of a recorded A/B run, in its order (empty for other domains)."""
    arms = result.get("arms")
    return [str(name) for name in arms] if isinstance(arms, Mapping) else []


def other_arms(names: Sequence[str], recorded: Sequence[str], order: str) -> SpecError:
    """The window's arms are not the recorded ones: comparing them by position would
    judge arm X by arm A's draws."""
    return SpecError("--data", f"arms: must be the recorded run's arms {', '.join(recorded)} ({order}); got {', '.join(names) or 'none'}")


def pooled_draws(netcdf: bytes, limit: int = MAX_DRAWS) -> dict[str, np.ndarray]:
    """The recorded posterior draws, chains pooled and evenly thinned to at most ``limit``."""
    posterior = read_netcdf(netcdf)["posterior"]
    flat = {name: x.reshape((-1,) + x.shape[2:]) for name, x in posterior.items()}
    total = next(iter(flat.values())).shape[0]
    keep = np.unique(np.linspace(0, total - 1, min(limit, total)).round().astype(int))
    return {name: x[keep] for name, x in flat.items()}


def monitor(record: Any, new_data: Path, seed: int = 0, alpha: float = 0.01) -> DataCheck:
    """Check a new window of data against ``record`` (a ``RunRecord``)."""
    from wager.workflow.pipeline import domain_prepare
    from wager.workflow.specs import parse_spec

    manifest = record.manifest
    base_dir = manifest["source"].get("base_dir")
    arms = recorded_arms(record.result)
    spec = parse_spec(spec_with_new_data(manifest["spec"], Path(new_data), arms))
    problem = domain_prepare(spec)(spec, base_dir=Path(base_dir) if base_dir else None)
    window_arms = [arm.name for arm in getattr(problem.spec, "arms", None) or []] if arms else []
    if window_arms != arms:  # a table's arms come in the table's order
        raise other_arms(window_arms, arms, "in this order")
    if problem.model.numpyro_model is None:
        raise SpecError("run", f"model {problem.model.name!r} has no NumPyro model to predict new data with")
    action = record.result.get("action")
    return check_new_data(
        problem.model, pooled_draws(record.netcdf()), seed=seed, alpha=alpha,
        realized_loss=getattr(problem, "realized_loss", None), action=action, expected_loss=expected_loss_of(record.result, action),
    )


def expected_loss_of(result: Mapping[str, Any], action: str | None) -> float | None:
    """The recorded expected loss of ``action``: an A/B arm's, or a declared action's."""
    if not action:
        return None
    arm = action.partition(" ")[2]
    if arm and arm in (result.get("arms") or {}):
        return result["arms"][arm].get("expected_loss")
    decision = result.get("decision") or {}
    for row in decision.get("actions", []) if isinstance(decision, Mapping) else []:
        if row.get("name") == action:
            return row.get("expected_loss")
    return None
