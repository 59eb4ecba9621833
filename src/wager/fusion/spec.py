"""The fusion domain's spec: GPS fixes and an accelerometer fused into position and velocity.

.. code-block:: yaml

    domain: fusion
    name: where am I
    data:
      simulate: {seconds: 60, seed: 11, dropouts: [[48, 60]]}   # or path: drive.csv
      accel: accel            # the accelerometer column (m/s^2), one row per sample
      gps: gps                # the GPS column (m), NaN (empty) between fixes and in dropouts
      rate: 100               # accelerometer samples per second
      gps_every: 100          # a GPS fix every 100th sample (1 Hz)
      allow_missing: true     # GPS dropouts declared: skipped, not an error
    model: {bias_walk: 0.001} # the bias's random walk, m/s^2 per sqrt(s)
    decision: {tolerance: 5.0, threshold: 0.9}
    inference: {seed: 1, chains: 4}

``decision``: act only when the posterior probability that the position error at
the last sample is within ``tolerance`` metres exceeds ``threshold``; otherwise
wait. The same rule as acting when the expected loss of acting (``c_out`` times
the probability of being out of tolerance) is below that of waiting (``c_wait``),
with ``threshold = 1 - c_wait / c_out``. ``priors`` overrides the defaults of
``wager.fusion.tracking.default_priors`` by name.
"""

from __future__ import annotations

from typing import Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, model_validator

from wager.errors import SpecError
from wager.kernel.gates import GatePolicy
from wager.kernel.inference import InferenceConfig, Whole
from wager.kernel.priors import Prior
from wager.kernel.seeds import MAX_SEED


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Simulation(_Strict):
    """A simulated drive (``wager.fusion.tracking.simulate_drive``): the true noise levels,
    the accelerometer's bias, the starting speed, GPS dropouts ``[start, end]`` in seconds."""

    seconds: float = Field(default=60.0, gt=0, le=3600, allow_inf_nan=False)
    seed: Whole = Field(default=11, ge=0, le=MAX_SEED)
    accel_sd: float = Field(default=0.02, gt=0, allow_inf_nan=False)
    gps_sd: float = Field(default=3.0, gt=0, allow_inf_nan=False)
    bias: float = Field(default=0.05, allow_inf_nan=False)
    speed: float = Field(default=12.0, allow_inf_nan=False)
    dropouts: list[tuple[float, float]] = Field(default_factory=list)

    @model_validator(mode="after")
    def _ordered(self) -> "Simulation":
        for i, (start, end) in enumerate(self.dropouts):
            if not 0 <= start < end:
                raise SpecError(f"data.simulate.dropouts.{i}", f"must be [start, end] seconds with 0 <= start < end; got [{start}, {end}]")
        return self


class DriveSource(_Strict):
    """Accelerometer samples and GPS fixes: simulated, or a table at ``path`` with one
    row per accelerometer sample."""

    simulate: Optional[Simulation] = None
    path: Optional[str] = None
    accel: str = Field(default="accel", min_length=1)
    gps: str = Field(default="gps", min_length=1)
    rate: float = Field(default=100.0, gt=0, le=10_000, allow_inf_nan=False, description="accelerometer samples per second")
    gps_every: int = Field(default=100, ge=1, le=100_000, description="a GPS fix every N accelerometer samples")
    allow_missing: bool = Field(default=False, description="GPS fixes may be missing (NaN): skipped by the filter")

    @model_validator(mode="after")
    def _either(self) -> "DriveSource":
        if (self.simulate is None) == (self.path is None):
            raise SpecError("data", "give either simulate (a simulated drive) or path (a .csv or .parquet table), not both or neither")
        return self


class TrackModel(_Strict):
    """What the model fixes rather than learns: the accelerometer bias's random walk."""

    bias_walk: float = Field(default=0.001, ge=0, allow_inf_nan=False, description="m/s^2 per sqrt(s)")


class PositionPolicy(_Strict):
    """Act when ``P(|position error| <= tolerance) > threshold`` at the last sample."""

    tolerance: float = Field(gt=0, allow_inf_nan=False, description="metres")
    threshold: float = Field(gt=0, lt=1, allow_inf_nan=False)
    level: float = Field(default=0.95, gt=0, lt=1, allow_inf_nan=False, description="the credible interval reported")


class FusionSpec(_Strict):
    """GPS and accelerometer fusion; the decision is whether the position is good enough to act on."""

    domain: Literal["fusion"] = "fusion"
    name: str = "where am I"
    data: DriveSource
    model: TrackModel = Field(default_factory=TrackModel)
    priors: dict[str, Prior] = Field(default_factory=dict)
    decision: PositionPolicy
    trajectory_draws: int = Field(default=50, ge=1, le=1000, description="posterior draws smoothed for the report's bands")
    inference: InferenceConfig = Field(default_factory=InferenceConfig)
    gates: GatePolicy = Field(default_factory=GatePolicy)
