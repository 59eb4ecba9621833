"""The A/B spec: arms (as sufficient statistics or a per-visitor table), priors,
the decision policy, inference and gates. Validated once, here, at the edge.

Metrics and the statistics each arm needs:

==========  =========================================================================
conversion  ``visitors``, ``conversions`` (Beta-Binomial, exact)
count       ``visitors`` (exposure), ``events`` (Gamma-Poisson, exact)
revenue     ``visitors``, ``purchasers``, ``revenue``, ``revenue_sq``, ``log_revenue``,
            ``log_revenue_sq`` (sums over purchasers; zero-inflated lognormal, NUTS)
mean        ``visitors``, ``mean``, ``sd`` (sample mean and standard deviation of a
            roughly Normal per-visitor value; Normal-Inverse-Gamma, exact)
==========  =========================================================================

A per-visitor table (CSV, parquet or a pandas DataFrame) with one row per
visitor, an arm column and a value column (converted 0/1, event count, or
spend) is reduced to those statistics by ``wager.ab.data``.
"""

from __future__ import annotations

import math
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from wager.errors import SpecError
from wager.kernel.gates import GatePolicy
from wager.kernel.inference import InferenceConfig
from wager.kernel.priors import Prior
from wager.kernel.sensitivity import SensitivityPolicy

Metric = Literal["conversion", "count", "revenue", "mean"]

NEEDS: dict[str, tuple[str, ...]] = {
    "conversion": ("conversions",),
    "count": ("events",),
    "revenue": ("purchasers", "revenue", "revenue_sq", "log_revenue", "log_revenue_sq"),
    "mean": ("mean", "sd"),
}


class Arm(BaseModel):
    """One arm's sufficient statistics."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    visitors: int = Field(gt=0)
    conversions: int | None = Field(default=None, ge=0)
    events: int | None = Field(default=None, ge=0)
    purchasers: int | None = Field(default=None, ge=0)
    revenue: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    revenue_sq: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    log_revenue: float | None = Field(default=None, allow_inf_nan=False)
    log_revenue_sq: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    mean: float | None = Field(default=None, allow_inf_nan=False)
    sd: float | None = Field(default=None, ge=0, allow_inf_nan=False)


class TableSource(BaseModel):
    """A per-visitor table: one row per visitor. ``path`` may be left out when the
    table is handed over in memory as a pandas DataFrame."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    path: str | None = None
    arm: str = "arm"
    value: str = "value"


class ABPolicy(BaseModel):
    """What is at stake. Part of the run's identity; fix it before the data.

    ``min_lift`` is the margin a challenger must clear over the control to be
    worth shipping (absolute: in the metric's units; relative: a fraction of the
    control). ``threshold`` is the threshold of caring: the expected loss below
    which a choice is safe to make (relative to the control's mean unless
    ``threshold_units`` is ``absolute``).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    min_lift: float = Field(default=0.0, ge=0, allow_inf_nan=False)
    lift: Literal["absolute", "relative"] = "absolute"
    threshold: float = Field(default=0.01, gt=0, allow_inf_nan=False)
    threshold_units: Literal["relative", "absolute"] = "relative"
    credible_mass: float = Field(default=0.95, gt=0, lt=1)
    srm_alpha: float = Field(default=0.001, gt=0, lt=1)


class ABSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    domain: Literal["ab"] = "ab"
    name: str = "A/B test"
    metric: Metric = "conversion"
    arms: list[Arm] | None = None
    data: TableSource | None = None
    control: str | None = None
    expected_split: list[float] | None = None
    priors: dict[str, Prior] = Field(default_factory=dict)
    decision: ABPolicy = Field(default_factory=ABPolicy)
    inference: InferenceConfig = Field(default_factory=InferenceConfig)
    gates: GatePolicy = Field(default_factory=GatePolicy)
    sensitivity: SensitivityPolicy = Field(default_factory=SensitivityPolicy)

    @model_validator(mode="after")
    def _consistent(self) -> "ABSpec":
        if (self.arms is None) == (self.data is None):
            raise SpecError("arms", "give either arms (sufficient statistics) or data (a per-visitor table), not both or neither")
        if self.arms is not None:
            check_arms(self.arms, self.metric)
            if self.control is not None and self.control not in {a.name for a in self.arms}:
                raise SpecError("control", f"must name one of the arms ({', '.join(a.name for a in self.arms)}); got {self.control!r}")
            if self.expected_split is not None:
                check_split(self.expected_split, len(self.arms))
        from wager.ab.models import DEFAULT_PRIORS

        for name in self.priors:
            if name not in DEFAULT_PRIORS[self.metric]:
                known = ", ".join(DEFAULT_PRIORS[self.metric])
                raise SpecError(f"priors.{name}", f"unknown prior for the {self.metric} metric; its priors are {known}")
        for name, alternatives in self.sensitivity.alternatives.items():
            where = f"sensitivity.alternatives.{name}"
            if name not in DEFAULT_PRIORS[self.metric]:
                known = ", ".join(DEFAULT_PRIORS[self.metric])
                raise SpecError(where, f"unknown prior for the {self.metric} metric; its priors are {known}")
            family = DEFAULT_PRIORS[self.metric][name].family
            for i, alternative in enumerate(alternatives):
                if self.metric != "revenue" and alternative.family != family:
                    raise SpecError(f"{where}[{i}].family", f"the {self.metric} metric needs a {family} prior; got {alternative.family}")
        return self

    @property
    def control_name(self) -> str:
        assert self.arms is not None
        return self.control or self.arms[0].name


def check_arms(arms: list[Arm], metric: str) -> None:
    """The rules every arm list obeys, with the field that broke one."""
    if len(arms) < 2:
        raise SpecError("arms", f"an A/B test needs at least two arms; got {len(arms)}")
    seen: set[str] = set()
    for arm in arms:
        where = f"arms[{arm.name}]"
        if arm.name in seen:
            raise SpecError(where + ".name", f"arm names must be unique; {arm.name!r} appears twice")
        seen.add(arm.name)
        for field in NEEDS[metric]:
            if getattr(arm, field) is None:
                raise SpecError(f"{where}.{field}", f"is required for the {metric} metric")
        for field in {f for fs in NEEDS.values() for f in fs} - set(NEEDS[metric]):
            if getattr(arm, field) is not None:
                raise SpecError(f"{where}.{field}", f"does not belong to the {metric} metric (it takes {', '.join(('visitors',) + NEEDS[metric])})")
        if metric == "conversion" and arm.conversions > arm.visitors:  # type: ignore[operator]
            raise SpecError(f"{where}.conversions", f"must not exceed visitors ({arm.conversions} > {arm.visitors})")
        if metric == "revenue":
            _check_revenue(arm, where)
        if metric == "mean" and arm.visitors < 2:
            raise SpecError(f"{where}.visitors", "the mean metric needs at least 2 visitors per arm to estimate a spread")


def _check_revenue(arm: Arm, where: str) -> None:
    k = arm.purchasers or 0
    if k > arm.visitors:
        raise SpecError(f"{where}.purchasers", f"must not exceed visitors ({k} > {arm.visitors})")
    if k < 2:
        raise SpecError(f"{where}.purchasers", "needs at least 2 purchasers to describe the spend distribution")
    # Cauchy-Schwarz: (sum x)^2 <= k * sum x^2 for any real numbers
    if arm.log_revenue**2 > k * arm.log_revenue_sq * (1 + 1e-9) + 1e-12:  # type: ignore[operator]
        raise SpecError(f"{where}.log_revenue_sq", "is too small for log_revenue: (sum of logs)^2 must be <= purchasers * (sum of squared logs)")
    if arm.revenue**2 > k * arm.revenue_sq * (1 + 1e-9) + 1e-12:  # type: ignore[operator]
        raise SpecError(f"{where}.revenue_sq", "is too small for revenue: (sum)^2 must be <= purchasers * (sum of squares)")


def check_split(split: list[float], k: int) -> None:
    if len(split) != k:
        raise SpecError("expected_split", f"needs one share per arm ({k}); got {len(split)}")
    if any(not math.isfinite(s) or s <= 0 for s in split):
        raise SpecError("expected_split", "every share must be a positive finite number")
