"""The forecasting spec: a panel of series, the horizon, the likelihood, and
what a forecast is for (orders, capacity).

.. code-block:: yaml

    domain: forecast
    name: trips per region
    data:
      path: trips.csv          # long table, relative to the spec file's folder
      time: Quarter
      group: [State, Region, Purpose]
      value: Trips
      regressors: []           # columns with values at every time, forecast window included
      events: events.csv       # optional: time, event[, grouping columns]
    horizon: 8
    period: 4                  # optional: the seasonal period (default: from the frequency, 4 quarterly, 12 monthly, 52 weekly, 7 daily)
    seasonality: states        # states (a seasonal state per period) | {fourier: K} (K harmonics; a period may be fractional: 365.25, 52.18)
    likelihood: normal         # normal | student_t (transformed scale) | negbin | zinb (counts)
    transform: auto            # auto | log | log1p | identity
    common_levels: auto        # auto | on | off: a level and trend shared by each group's series (auto: on above 40 series)
    priors: {}                 # overrides of the documented defaults, by name
    decision:
      newsvendor: {under: 3, over: 1}
      capacity: {level: 0.95, unit_cost: 1, shortage_cost: 10}

Seasonality. ``states`` (the default) carries one seasonal state per period of
the cycle: right for quarters and months. ``{fourier: K}`` models the cycle as
``K`` sine-cosine pairs of the period instead (``1 <= K <= period / 2``), which
weekly and daily panels with a yearly cycle need (``period: 52.18`` weeks or
``365.25`` days); a fractional period is refused with ``states``.

Common levels. ``on`` adds, for each level of each grouping column (each state,
each purpose), a level and a damped trend its series share, moved each period by
the precision-weighted mean of its series' innovations: a movement seen across a
group is picked up from all of its series at once, not one noisy series at a time.
``auto`` (the default) turns them on for panels of more than 40 series (those
``engine: auto`` fits by SVI, whichever engine runs) with the normal or student_t
likelihood; see ``wager.forecast.problem``. A bare ``on`` or ``off``, which YAML
reads as true or false, means on or off.
"""

from __future__ import annotations

import math
from typing import Any, Literal, Mapping, Optional, Union

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator

from wager.errors import SpecError, from_pydantic

from wager.kernel.gates import GatePolicy
from wager.kernel.inference import InferenceConfig
from wager.kernel.priors import Prior
from wager.tables import comma_items


class PanelSource(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    path: Optional[str] = None
    time: str = Field(min_length=1)
    group: list[str] = Field(min_length=1)
    value: str = Field(min_length=1)
    regressors: list[str] = Field(default_factory=list)
    events: Optional[str] = None

    @field_validator("group", "regressors", mode="before")
    @classmethod
    def _comma_list(cls, value: object, info: ValidationInfo) -> object:
        return comma_items(value, f"data.{info.field_name}")


class NewsvendorPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    under: float = Field(gt=0, allow_inf_nan=False, description="cost per unit of demand not met")
    over: float = Field(gt=0, allow_inf_nan=False, description="cost per unit ordered and not sold")


class CapacitySpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    level: float = Field(ge=0.5, lt=1, allow_inf_nan=False)
    unit_cost: float = Field(default=0.0, ge=0, allow_inf_nan=False)
    shortage_cost: float = Field(default=0.0, ge=0, allow_inf_nan=False)


class ForecastDecision(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    newsvendor: Optional[NewsvendorPolicy] = None
    capacity: Optional[CapacitySpec] = None


def _a_number(value: Any) -> Any:
    """A number field's input, refused by name where pydantic would misread it: YAML 1.1
    reads ``true``, ``on`` and ``yes`` as booleans, which pydantic takes as 1 (``horizon:
    true`` a horizon of one period); NaN and infinities would fail a bound's rule instead
    of saying what is wrong."""
    if isinstance(value, bool):
        raise ValueError(f"must be a number, not {str(value).lower()}")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"must be a finite number; got {value}")
    return value


class FourierSeasonality(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    fourier: int = Field(ge=1, description="harmonics K of the seasonal cycle, 1 <= K <= period / 2")

    _number = field_validator("fourier", mode="before")(_a_number)


FORECAST_TARGET_ACCEPT = 0.99
"""The forecast model's default NUTS acceptance target. With a few short series the
posterior is mostly prior, and the hierarchy's spreads and effects leave funnels and
long tails where a step size adapted to the bulk diverges. With wager's defaults (4
chains x 1000 + 1000 draws, chains started at prior draws) on simulated panels
(``simulate_panel``, seeds 0-9; docs/benchmarks.md): 2 x 2 groups of 16 quarters
passed every gate in 10 of 10 fits at 0.99 and in none at 0.95 (1-4 divergences
each; 4 of 10 with uniform starts), at twice the leapfrog steps; 3 x 4 groups of 40
quarters passed 9 of 10 at either target (one fit short of tail ESS at 0.99, one
with 2 divergences at 0.95), at 1.75 times the steps. SVI ignores it."""
FORECAST_VI_STEPS = 2000
"""The forecast model's default number of Adam steps for SVI (the kernel's default is 3000).
On the 304-series tourism panel 2,000 steps scored as 3,000 and 6,000 did (scaled CRPS
0.1358-0.1359 over three origins, benchmarks/forecast.py) in two thirds of the time; with
the common levels that panel now gets, 2,000 and 3,000 steps both scored 0.1269."""


class ForecastSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    domain: Literal["forecast"] = "forecast"
    name: str = "forecast"
    data: PanelSource
    horizon: int = Field(gt=0, le=10_000)
    period: Optional[Union[int, float]] = Field(default=None, ge=2, le=10_000, allow_inf_nan=False)
    seasonality: Union[Literal["states"], FourierSeasonality] = "states"
    likelihood: Literal["normal", "student_t", "negbin", "zinb"] = "normal"
    transform: Literal["auto", "log", "log1p", "identity"] = "auto"
    common_levels: Literal["auto", "on", "off"] = "auto"
    priors: dict[str, Prior] = Field(default_factory=dict)
    batch: Optional[int] = Field(default=None, ge=1, description="SVI series per step (default: 256 above 1000 series, else all)")
    decision: ForecastDecision = Field(default_factory=ForecastDecision)
    inference: InferenceConfig = Field(
        default_factory=lambda: InferenceConfig(target_accept=FORECAST_TARGET_ACCEPT, vi_steps=FORECAST_VI_STEPS)
    )
    gates: GatePolicy = Field(default_factory=GatePolicy)

    _number = field_validator("horizon", "period", "batch", mode="before")(_a_number)

    @field_validator("common_levels", mode="before")
    @classmethod
    def _switch(cls, value: Any) -> Any:
        """YAML 1.1 reads ``on`` and ``off`` (the documented values) as true and false."""
        if isinstance(value, bool):
            return "on" if value else "off"
        return value

    @field_validator("inference", mode="before")
    @classmethod
    def _smaller_steps(cls, inference: Any) -> Any:
        """Unless the spec sets them, NUTS targets ``FORECAST_TARGET_ACCEPT`` and SVI takes
        ``FORECAST_VI_STEPS`` steps."""
        if isinstance(inference, Mapping):
            return {"target_accept": FORECAST_TARGET_ACCEPT, "vi_steps": FORECAST_VI_STEPS, **inference}
        return inference

    @field_validator("seasonality", mode="before")
    @classmethod
    def _seasonality(cls, value: Any) -> Any:
        # parsed here so a mistake names seasonality.fourier, not a branch of the union
        if value == "states" or isinstance(value, FourierSeasonality):
            return value
        if isinstance(value, Mapping):
            try:
                return FourierSeasonality.model_validate(dict(value))
            except ValidationError as exc:
                raise from_pydantic(exc, "seasonality") from None
        raise SpecError("seasonality", f"must be states or {{fourier: K}} (K Fourier harmonics); got {value!r}")

    @property
    def harmonics(self) -> int:
        """Fourier harmonics of the seasonal cycle; 0: seasonal states."""
        return 0 if self.seasonality == "states" else self.seasonality.fourier
