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
(CSV, parquet) replaces the path the spec's data were read from.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import numpy as np

from wager.errors import SpecError
from wager.workflow.netcdf import read_netcdf
from wager.workflow.predictive import MAX_DRAWS, DataCheck, check_new_data

DATA_KEYS = ("arms", "data")
TABLES = (".csv", ".parquet", ".pq")


def spec_with_new_data(payload: dict[str, Any], new: Path) -> dict[str, Any]:
    """The recorded spec payload with its data replaced by the file ``new``."""
    from wager.workflow.specs import read_spec_file

    payload = dict(payload)
    if new.suffix.lower() in TABLES:
        if not new.is_file():
            raise SpecError("--data", f"no such file: {new}")
        data = payload.get("data")
        if isinstance(data, dict):
            payload["data"] = {**data, "path": str(new.resolve())}
        else:
            payload["data"] = str(new.resolve())
        if "arms" in payload:
            payload["arms"] = None
        return payload
    replacement = read_spec_file(new)
    if not isinstance(replacement, dict) or not any(k in replacement for k in DATA_KEYS):
        raise SpecError("--data", f"{new.name} must be a table (CSV/parquet) or a YAML/JSON mapping with one of: {', '.join(DATA_KEYS)}")
    for key in DATA_KEYS:
        if key in payload:
            payload[key] = replacement.get(key)
    return payload


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
    spec = parse_spec(spec_with_new_data(manifest["spec"], Path(new_data)))
    problem = domain_prepare(spec)(spec, base_dir=Path(base_dir) if base_dir else None)
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
