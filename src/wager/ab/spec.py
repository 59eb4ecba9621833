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
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

from wager.errors import SpecError
from wager.kernel.gates import GatePolicy
from wager.kernel.inference import InferenceConfig, not_a_boolean
from wager.kernel.priors import Prior
from wager.kernel.sensitivity import SensitivityPolicy

Metric = Literal["conversion", "count", "revenue", "mean"]

NEEDS: dict[str, tuple[str, ...]] = {
    "conversion": ("conversions",),
    "count": ("events",),
    "revenue": ("purchasers", "revenue", "revenue_sq", "log_revenue", "log_revenue_sq"),
    "mean": ("mean", "sd"),
}


MAX_COUNT = 2**53
"""The largest count a float64 holds exactly, every smaller whole number with it:
the models compute in float64, so a larger count would be silently rounded."""


def _count_input(value: Any) -> Any:
    """Refuses what pydantic would otherwise turn into a wrong count: a boolean
    (read as 1 or 0) and a number too large for float64 (``1e20`` would not even
    reach the bound as an integer)."""
    not_a_boolean(value)
    if isinstance(value, (int, float)) and math.isfinite(value):  # pydantic names inf and NaN itself
        _exact_in_float64(value)
    return value


def _exact_in_float64(value: float) -> float:
    if value > MAX_COUNT:
        raise ValueError(f"must be at most 2**53 = {MAX_COUNT}, the largest count float64 arithmetic holds exactly; got {value:g}")
    return value


Count = Annotated[int, BeforeValidator(_count_input), AfterValidator(_exact_in_float64), Field(ge=0)]
"""A whole number of visitors, conversions, events or purchasers, at most ``MAX_COUNT``."""


class Arm(BaseModel):
    """One arm's sufficient statistics."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    visitors: Count = Field(gt=0)
    conversions: Count | None = None
    events: Count | None = None
    purchasers: Count | None = None
    revenue: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    revenue_sq: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    log_revenue: float | None = Field(default=None, allow_inf_nan=False)
    log_revenue_sq: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    mean: float | None = Field(default=None, allow_inf_nan=False)
    sd: float | None = Field(default=None, ge=0, allow_inf_nan=False)

    @field_validator("name")
    @classmethod
    def _visible_name(cls, name: str) -> str:
        if not name.strip():
            raise ValueError("must not be blank (an arm's name is how the report tells arms apart)")
        return name


class TableSource(BaseModel):
    """A per-visitor table: one row per visitor. ``path`` may be left out when the
    table is handed over in memory as a pandas DataFrame."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    path: str | None = None
    arm: str = "arm"
    value: str = "value"


MAX_RELATIVE_MARGIN = 1e6
"""The largest relative margin: the challenger must beat a million times the
control. Relative lifts are resolved up to this (``wager.ab.decide``), and a
margin beyond it would only print the control's mean times a huge number."""


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

    @model_validator(mode="after")
    def _resolvable_relative_margin(self) -> "ABPolicy":
        if self.lift == "relative" and self.min_lift > MAX_RELATIVE_MARGIN:
            raise SpecError("decision.min_lift", f"a relative margin (a fraction of the control's mean) must be at most {MAX_RELATIVE_MARGIN:g}; got {self.min_lift:g}")
        return self


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
        if self.metric == "conversion" and self.decision.lift == "absolute" and self.decision.min_lift >= 1:
            raise SpecError("decision.min_lift", f"an absolute margin on conversion rates must be below 1 (a rate lies in 0..1); got {self.decision.min_lift:g}")
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
        if metric == "mean":
            _check_mean(arm, where)


def _check_mean(arm: Arm, where: str) -> None:
    if arm.visitors < 2:
        raise SpecError(f"{where}.visitors", "the mean metric needs at least 2 visitors per arm to estimate a spread")
    if not square_sum_is_finite(arm.mean, arm.visitors):  # type: ignore[arg-type]
        raise SpecError(f"{where}.mean", f"is too large for float64 arithmetic: visitors * mean**2 overflows ({arm.visitors} * {arm.mean:g}**2)")
    if not square_sum_is_finite(arm.sd, arm.visitors - 1):  # type: ignore[arg-type]
        raise SpecError(f"{where}.sd", f"is too large for float64 arithmetic: the sum of squared deviations (visitors - 1) * sd**2 overflows ({arm.visitors - 1} * {arm.sd:g}**2)")


def square_sum_is_finite(x: float, n: int) -> bool:
    """Whether ``n * x**2`` is a finite float64. The Normal-Inverse-Gamma update of
    the mean metric works with ``n * mean**2`` and ``(n - 1) * sd**2``."""
    return n == 0 or math.isfinite(n * x * x)  # Python floats overflow to inf here, without an exception


def _check_revenue(arm: Arm, where: str) -> None:
    """The sums over purchasers must be those of positive spends ``x_1 .. x_k``
    (``k >= 2``): each relation below holds for any such spends, so a sum that
    breaks one was not computed from them. Compared in square-root form, so no
    square overflows."""
    k = arm.purchasers or 0
    if k > arm.visitors:
        raise SpecError(f"{where}.purchasers", f"must not exceed visitors ({k} > {arm.visitors})")
    if k < 2:
        raise SpecError(f"{where}.purchasers", "needs at least 2 purchasers to describe the spend distribution")
    total, squares, logs, log_squares = arm.revenue, arm.revenue_sq, arm.log_revenue, arm.log_revenue_sq
    if total <= 0:  # type: ignore[operator]
        raise SpecError(f"{where}.revenue", f"must be > 0 with {k} purchasers: every purchase is a positive spend")
    # Cauchy-Schwarz: (sum x)^2 <= k * sum x^2, for the spends and for their logs
    if _exceeds(total, math.sqrt(k * squares)):  # type: ignore[operator]
        raise SpecError(f"{where}.revenue_sq", "is too small for revenue: (sum)^2 must be <= purchasers * (sum of squares)")
    if _exceeds(abs(logs), math.sqrt(k * log_squares)):  # type: ignore[operator,arg-type]
        raise SpecError(f"{where}.log_revenue_sq", "is too small for log_revenue: (sum of logs)^2 must be <= purchasers * (sum of squared logs)")
    # positive terms: sum x^2 <= (sum x)^2
    if _exceeds(math.sqrt(squares), total):  # type: ignore[arg-type]
        raise SpecError(f"{where}.revenue_sq", "is too large for revenue: the sum of squares of positive spends must be <= (their sum)^2")
    # AM-GM: the mean log spend is at most the log of the mean spend
    if _exceeds(logs / k, math.log(total) - math.log(k)):  # type: ignore[operator,arg-type]
        raise SpecError(f"{where}.log_revenue", "is too large for revenue: log_revenue / purchasers must be <= log(revenue / purchasers) (geometric mean <= arithmetic mean)")


def _exceeds(x: float, bound: float) -> bool:
    """``x > bound`` by more than float rounding (sums read from a table carry ~1e-16 relative error)."""
    return x > bound + 1e-9 * abs(bound) + 1e-12


def check_split(split: list[float], k: int) -> None:
    if len(split) != k:
        raise SpecError("expected_split", f"needs one share per arm ({k}); got {len(split)}")
    if any(not math.isfinite(s) or s <= 0 for s in split):
        raise SpecError("expected_split", "every share must be a positive finite number")
