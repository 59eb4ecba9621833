"""The fusion domain's part of the shared path: spec -> problem.

``wager.fusion.problem.prepare`` builds the GPS and accelerometer problem; its
model learns the noise levels by NUTS through the Kalman filter, its decision
acts when the position is within tolerance with enough probability.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from wager.fusion.spec import FusionSpec


def prepare(spec: FusionSpec, base_dir: Path | None = None, **data: Any) -> Any:
    """The problem of ``spec``; ``frame=`` passes the accelerometer and GPS table in memory."""
    from wager.fusion.problem import prepare as fusion

    return fusion(spec, base_dir, **data)
