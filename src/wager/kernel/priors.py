"""Priors as documented decisions.

A prior is a family, its parameters, *why* it was chosen and *where* that
reasoning comes from. A prior without a justification is an error, not a
warning. Priors round-trip through JSON/YAML and hash canonically, so a changed
prior changes a run's identity.

Families and their parameters (the NumPyro parameterisation):

========================  ==================================  =====================
family                    parameters                          support
========================  ==================================  =====================
beta                      alpha > 0, beta > 0                 (0, 1)
gamma                     shape > 0, rate > 0                 (0, inf)
normal                    loc, scale > 0                      R
half_normal               scale > 0                           (0, inf)
lognormal                 loc, scale > 0                      (0, inf)
student_t                 df > 0, loc, scale > 0              R
cauchy                    loc, scale > 0                      R
half_cauchy               scale > 0                           (0, inf)
exponential               rate > 0                            (0, inf)
inverse_gamma             shape > 0, scale > 0                (0, inf)
uniform                   low < high                          (low, high)
normal_inverse_gamma      loc, kappa > 0, shape > 0, scale>0  R x (0, inf)
========================  ==================================  =====================

``normal_inverse_gamma`` is the joint conjugate prior of a Normal's mean and
variance: ``variance ~ InvGamma(shape, scale)``, ``mean | variance ~
Normal(loc, variance / kappa)``.
"""

from __future__ import annotations

import hashlib
import json
import math
from typing import Any, Mapping

from pydantic import BaseModel, ConfigDict, field_validator, model_validator

# family -> (required parameter names, parameters that must be > 0)
FAMILIES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "beta": (("alpha", "beta"), ("alpha", "beta")),
    "gamma": (("shape", "rate"), ("shape", "rate")),
    "normal": (("loc", "scale"), ("scale",)),
    "half_normal": (("scale",), ("scale",)),
    "lognormal": (("loc", "scale"), ("scale",)),
    "student_t": (("df", "loc", "scale"), ("df", "scale")),
    "cauchy": (("loc", "scale"), ("scale",)),
    "half_cauchy": (("scale",), ("scale",)),
    "exponential": (("rate",), ("rate",)),
    "inverse_gamma": (("shape", "scale"), ("shape", "scale")),
    "uniform": (("low", "high"), ()),
    "normal_inverse_gamma": (("loc", "kappa", "shape", "scale"), ("kappa", "shape", "scale")),
}


class Prior(BaseModel):
    """One documented prior: ``Prior(family="beta", params={"alpha": 1, "beta": 1},
    why="...", source="...")``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    family: str
    params: dict[str, float]
    why: str
    source: str

    @field_validator("family")
    @classmethod
    def _known_family(cls, family: str) -> str:
        if family not in FAMILIES:
            known = ", ".join(sorted(FAMILIES))
            raise ValueError(f"unknown prior family {family!r}; known families: {known}")
        return family

    @field_validator("why", "source")
    @classmethod
    def _not_blank(cls, text: str) -> str:
        if not text or not text.strip():
            raise ValueError("must be a non-empty justification: a prior is a decision to defend")
        return text.strip()

    @field_validator("params")
    @classmethod
    def _finite(cls, params: dict[str, float]) -> dict[str, float]:
        for name, value in params.items():
            if not math.isfinite(value):
                raise ValueError(f"parameter {name!r} must be finite, got {value}")
        return params

    @model_validator(mode="after")
    def _params_fit_family(self) -> "Prior":
        required, positive = FAMILIES[self.family]
        missing = [p for p in required if p not in self.params]
        extra = [p for p in self.params if p not in required]
        if missing or extra:
            raise ValueError(
                f"family {self.family!r} takes parameters {', '.join(required)}"
                + (f"; missing {', '.join(missing)}" if missing else "")
                + (f"; unknown {', '.join(extra)}" if extra else "")
            )
        for name in positive:
            if self.params[name] <= 0:
                raise ValueError(f"parameter {name!r} of {self.family!r} must be > 0")
        if self.family == "uniform" and not self.params["low"] < self.params["high"]:
            raise ValueError("uniform needs low < high")
        return self

    def __getitem__(self, name: str) -> float:
        return self.params[name]

    def canonical_json(self) -> str:
        """Key-sorted, whitespace-free JSON: the bytes the hash is taken over."""
        return canonical_json(self.model_dump())

    def digest(self) -> str:
        """SHA-256 of the canonical JSON."""
        return hashlib.sha256(self.canonical_json().encode()).hexdigest()

    def to_numpyro(self) -> Any:
        """The NumPyro distribution (imports NumPyro: only the sampling path calls this)."""
        import numpyro.distributions as dist

        p = self.params
        builders = {
            "beta": lambda: dist.Beta(p["alpha"], p["beta"]),
            "gamma": lambda: dist.Gamma(p["shape"], p["rate"]),
            "normal": lambda: dist.Normal(p["loc"], p["scale"]),
            "half_normal": lambda: dist.HalfNormal(p["scale"]),
            "lognormal": lambda: dist.LogNormal(p["loc"], p["scale"]),
            "student_t": lambda: dist.StudentT(p["df"], p["loc"], p["scale"]),
            "cauchy": lambda: dist.Cauchy(p["loc"], p["scale"]),
            "half_cauchy": lambda: dist.HalfCauchy(p["scale"]),
            "exponential": lambda: dist.Exponential(p["rate"]),
            "inverse_gamma": lambda: dist.InverseGamma(p["shape"], p["scale"]),
            "uniform": lambda: dist.Uniform(p["low"], p["high"]),
        }
        if self.family not in builders:
            raise ValueError(
                f"family {self.family!r} is a joint prior with no single NumPyro distribution"
            )
        return builders[self.family]()


def canonical_json(value: Any) -> str:
    """Canonical JSON for hashing: sorted keys, no whitespace, floats by ``repr``."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False)


def priors_digest(priors: Mapping[str, Prior]) -> str:
    """SHA-256 over a named set of priors, independent of insertion order."""
    payload = {name: prior.model_dump() for name, prior in priors.items()}
    return hashlib.sha256(canonical_json(payload).encode()).hexdigest()
