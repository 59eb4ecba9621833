"""Record a run: its manifest, its JSON result and its draws, in one registry write.

``record_run`` is the ``record`` step of the shared path. It reads only the
``RunResult`` (plus the sensitivity report and plan check computed beside it)
and writes nothing until everything is computed, so bad input or a crash
before the write leaves no trace, and the registry write itself is atomic.
"""

from __future__ import annotations

import math
from dataclasses import asdict
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from wager.workflow.manifest import build_manifest
from wager.workflow.netcdf import posterior_netcdf


def jsonable(value: Any) -> Any:
    """Plain JSON types; NaN and infinities become ``None`` (JSON has no NaN)."""
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    if hasattr(value, "to_json"):
        return jsonable(value.to_json())
    return value


def diagnostics_json(diagnostics: Any) -> dict[str, Any] | None:
    """The convergence diagnostics as raw numbers (``None`` for an exact run)."""
    if diagnostics is None:
        return None
    return jsonable(asdict(diagnostics))


def assemble(
    result: Any,
    payload: dict[str, Any],
    spec_path: Path | None = None,
    base_dir: Path | None = None,
    extra: Mapping[str, Any] | None = None,
) -> tuple[dict[str, Any], dict[str, Any], bytes]:
    """What a registry stores for ``result``: (manifest, JSON result, NetCDF draws).

    ``payload`` is the run's JSON result (what ``--json`` prints, without the
    run id, which the registry assigns); ``extra`` adds manifest sections
    outside the identity (plan check, prior sensitivity).
    """
    manifest = build_manifest(result, spec_path, base_dir, diagnostics_json(result.diagnostics), jsonable(extra or {}))
    return manifest, jsonable(payload), posterior_netcdf(result.posterior)


def record_run(
    result: Any,
    registry: Any,
    payload: dict[str, Any],
    spec_path: Path | None = None,
    base_dir: Path | None = None,
    extra: Mapping[str, Any] | None = None,
) -> Any:
    """Write ``result`` to ``registry`` in one atomic write; returns the ``RunRecord``."""
    return registry.record(*assemble(result, payload, spec_path, base_dir, extra))
