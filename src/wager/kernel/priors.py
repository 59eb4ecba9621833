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

``Prior.widened(factor)`` is the same prior made ``factor`` times wider
(``factor < 1``: narrower) about the same centre, for prior-sensitivity
analysis; its docstring gives the rule per family. ``Prior.log_density(x)`` is
the log density in NumPy (``scipy.special``), so reweighting draws never
imports JAX.
"""

from __future__ import annotations

import hashlib
import json
import math
from typing import Any, Mapping

import numpy as np
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

REAL, POSITIVE, UNIT = (-math.inf, math.inf), (0.0, math.inf), (0.0, 1.0)
SUPPORT: dict[str, tuple[tuple[float, float], ...]] = {
    "beta": (UNIT,),
    "gamma": (POSITIVE,),
    "normal": (REAL,),
    "half_normal": (POSITIVE,),
    "lognormal": (POSITIVE,),
    "student_t": (REAL,),
    "cauchy": (REAL,),
    "half_cauchy": (POSITIVE,),
    "exponential": (POSITIVE,),
    "inverse_gamma": (POSITIVE,),
    "normal_inverse_gamma": (REAL, POSITIVE),
}
"""family -> the interval ``(low, high)`` each of its variables ranges over (the table
above); a uniform's is its own ``(low, high)``. Whether an end is open does not matter
here: ``with_overrides`` compares supports, and a single point carries no mass."""


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

    def widened(self, factor: float, name: str | None = None) -> "Prior":
        """The same prior ``factor`` times wider about the same centre (``factor < 1``
        narrows it), for prior-sensitivity analysis.

        Scale families stretch their scale; conjugate families are read as
        pseudo-observations, and dividing the prior's sample size by ``factor**2``
        multiplies its standard error by ``factor`` while keeping its guess:

        ====================================  =============================================  ==========================
        family                                rule                                           kept
        ====================================  =============================================  ==========================
        normal, student_t, cauchy             scale * f                                      loc (mean, median)
        lognormal                             scale * f                                      median exp(loc)
        half_normal, half_cauchy              scale * f                                      the mode at 0
        exponential                           rate / f (its sd = mean = 1/rate times f)      the mode at 0
        gamma                                 shape / f^2, rate / f^2 (sd * f exactly)       mean shape/rate
        beta                                  alpha / f^2, beta / f^2                        mean alpha/(alpha+beta)
        inverse_gamma                         shape / f^2, scale / f^2                       guess scale/shape
        normal_inverse_gamma                  kappa, shape, scale / f^2                      loc; guess scale/shape
        uniform                               half-width * f about the centre                centre (low+high)/2
        ====================================  =============================================  ==========================

        Beta: ``alpha + beta`` pseudo-observations; the sd grows by
        ``sqrt((n + 1) / (n / f^2 + 1))`` with ``n = alpha + beta``, which is ``f``
        when ``n`` is large. Inverse-gamma: ``IG(nu/2, nu s^2/2)`` is ``nu``
        pseudo-observations of a variance ``s^2 = scale/shape``; dividing ``nu`` by
        ``f^2`` keeps ``s^2``. A widened uniform may reach outside the parameter's
        support (a widened Uniform(0, 1) rate covers -0.5 to 1.5). The returned
        prior's ``why`` says what was changed and from what; ``source`` is kept.
        """
        f = float(factor)
        if not (math.isfinite(f) and f > 0):
            raise ValueError(f"a widening factor must be a positive finite number, got {factor}")
        p = dict(self.params)
        f2 = f * f
        if self.family in ("normal", "lognormal", "student_t", "cauchy", "half_normal", "half_cauchy"):
            p["scale"] *= f
        elif self.family == "exponential":
            p["rate"] /= f
        elif self.family == "gamma":
            p = {"shape": p["shape"] / f2, "rate": p["rate"] / f2}
        elif self.family == "beta":
            p = {"alpha": p["alpha"] / f2, "beta": p["beta"] / f2}
        elif self.family == "inverse_gamma":
            p = {"shape": p["shape"] / f2, "scale": p["scale"] / f2}
        elif self.family == "normal_inverse_gamma":
            p = {"loc": p["loc"], "kappa": p["kappa"] / f2, "shape": p["shape"] / f2, "scale": p["scale"] / f2}
        elif self.family == "uniform":
            centre, half = (p["low"] + p["high"]) / 2, (p["high"] - p["low"]) / 2
            p = {"low": centre - half * f, "high": centre + half * f}
        else:  # pragma: no cover - FAMILIES and this rule table are kept in step
            raise ValueError(f"no widening rule for family {self.family!r}")
        return Prior(
            family=self.family,
            params=p,
            why=f"sensitivity alternative: {name or 'prior'} {widening_label(f)} from {self.describe()}",
            source=self.source,
        )

    def support(self) -> tuple[tuple[float, float], ...]:
        """The interval ``(low, high)`` each variable of the prior ranges over: ``((0, 1),)``
        for a beta, ``((-inf, inf), (0, inf))`` for a normal_inverse_gamma's mean and variance."""
        if self.family == "uniform":
            return ((self.params["low"], self.params["high"]),)
        return SUPPORT[self.family]

    def describe(self) -> str:
        """``beta(alpha=1, beta=1)``: the family and its parameters, for prose."""
        return f"{self.family}({', '.join(f'{k}={v:.6g}' for k, v in self.params.items())})"

    def log_density(self, x: Any) -> np.ndarray:
        """Log density at ``x`` (any shape), element-wise, in NumPy; ``-inf`` outside the support.

        ``normal_inverse_gamma`` takes ``x = (mean, variance)`` and returns
        ``log InvGamma(variance; shape, scale) + log Normal(mean; loc, sqrt(variance / kappa))``.
        """
        from scipy import special  # imported here: parsing a spec should not pay for SciPy

        p = self.params
        if self.family == "normal_inverse_gamma":
            mean, variance = (np.asarray(v, dtype=float) for v in x)
            ig = Prior(family="inverse_gamma", params={"shape": p["shape"], "scale": p["scale"]}, why="part", source="part")
            sd = np.sqrt(np.where(variance > 0, variance, np.nan) / p["kappa"])
            normal = _normal_log_density((mean - p["loc"]) / sd) - np.log(sd)
            return np.where(variance > 0, ig.log_density(variance) + normal, -np.inf)
        x = np.asarray(x, dtype=float)
        with np.errstate(divide="ignore", invalid="ignore"):
            if self.family == "beta":
                a, b = p["alpha"], p["beta"]
                inside = (x > 0) & (x < 1)
                xc = np.where(inside, x, 0.5)
                logp = special.xlogy(a - 1, xc) + special.xlog1py(b - 1, -xc) - special.betaln(a, b)
            elif self.family == "gamma":
                s, r = p["shape"], p["rate"]
                inside = x > 0
                xc = np.where(inside, x, 1.0)
                logp = s * np.log(r) + special.xlogy(s - 1, xc) - r * xc - special.gammaln(s)
            elif self.family == "normal":
                inside = np.ones(x.shape, dtype=bool)
                logp = _normal_log_density((x - p["loc"]) / p["scale"]) - np.log(p["scale"])
            elif self.family == "half_normal":
                inside = x >= 0
                logp = math.log(2.0) + _normal_log_density(x / p["scale"]) - np.log(p["scale"])
            elif self.family == "lognormal":
                inside = x > 0
                lx = np.log(np.where(inside, x, 1.0))
                logp = _normal_log_density((lx - p["loc"]) / p["scale"]) - np.log(p["scale"]) - lx
            elif self.family == "student_t":
                v, z = p["df"], (x - p["loc"]) / p["scale"]
                inside = np.ones(x.shape, dtype=bool)
                logp = (
                    special.gammaln((v + 1) / 2) - special.gammaln(v / 2) - 0.5 * np.log(v * np.pi)
                    - np.log(p["scale"]) - (v + 1) / 2 * np.log1p(z * z / v)
                )
            elif self.family == "cauchy":
                z = (x - p["loc"]) / p["scale"]
                inside = np.ones(x.shape, dtype=bool)
                logp = -np.log(np.pi * p["scale"]) - np.log1p(z * z)
            elif self.family == "half_cauchy":
                z = x / p["scale"]
                inside = x >= 0
                logp = np.log(2.0 / (np.pi * p["scale"])) - np.log1p(z * z)
            elif self.family == "exponential":
                inside = x >= 0
                logp = np.log(p["rate"]) - p["rate"] * x
            elif self.family == "inverse_gamma":
                a, b = p["shape"], p["scale"]
                inside = x > 0
                xc = np.where(inside, x, 1.0)
                logp = a * np.log(b) - special.gammaln(a) - (a + 1) * np.log(xc) - b / xc
            elif self.family == "uniform":
                inside = (x >= p["low"]) & (x <= p["high"])
                logp = np.full(x.shape, -np.log(p["high"] - p["low"]))
            else:  # pragma: no cover
                raise ValueError(f"no log density for family {self.family!r}")
        return np.where(inside, logp, -np.inf)

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


def widening_label(factor: float) -> str:
    """``2 -> "widened x2"``, ``0.5 -> "narrowed x2"``."""
    if factor >= 1:
        return f"widened x{factor:g}"
    return f"narrowed x{1 / factor:g}"


def _normal_log_density(z: np.ndarray) -> np.ndarray:
    return -0.5 * z * z - 0.5 * math.log(2 * math.pi)


def canonical_json(value: Any) -> str:
    """Canonical JSON for hashing: sorted keys, no whitespace, floats by ``repr``."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False)


def priors_digest(priors: Mapping[str, Prior]) -> str:
    """SHA-256 over a named set of priors, independent of insertion order."""
    payload = {name: prior.model_dump() for name, prior in priors.items()}
    return hashlib.sha256(canonical_json(payload).encode()).hexdigest()


def with_overrides(defaults: Mapping[str, Prior], overrides: Mapping[str, Prior]) -> dict[str, Prior]:
    """A model's documented default priors with a spec's ``priors`` replacing them by name.

    ``SpecError`` at ``priors.<name>`` for a name the model does not have, and for an
    override whose support is not inside its default's (``Prior.support``): a model
    relies on where its default keeps a parameter (a GARCH persistence in (0, 1) keeps
    the variance stationary, a scale in (0, inf) keeps a density), so an override may
    narrow that range but never leave it.
    """
    from wager.errors import SpecError

    unknown = sorted(set(overrides) - set(defaults))
    if unknown:
        raise SpecError(f"priors.{unknown[0]}", f"not a prior of this model; its priors: {', '.join(sorted(defaults))}")
    for name, prior in overrides.items():
        default = defaults[name]
        if not _within(prior.support(), default.support()):
            field = "params" if prior.family == "uniform" else "family"  # a uniform's own bounds overreach
            overreach = prior.describe() if prior.family == "uniform" else prior.family
            raise SpecError(
                f"priors.{name}.{field}",
                f"must keep {name} in {_span(default.support())} as the default {default.family} prior does; "
                f"{overreach} ranges over {_span(prior.support())}",
            )
    return {**defaults, **overrides}


def _within(inner: tuple[tuple[float, float], ...], outer: tuple[tuple[float, float], ...]) -> bool:
    """Whether every interval of ``inner`` lies inside the matching one of ``outer`` (as many variables)."""
    return len(inner) == len(outer) and all(o_low <= i_low and i_high <= o_high for (i_low, i_high), (o_low, o_high) in zip(inner, outer))


def _span(support: tuple[tuple[float, float], ...]) -> str:
    """``(0, 1)``, ``all reals``, ``all reals x (0, inf)``: a support in words."""
    return " x ".join("all reals" if interval == REAL else f"({interval[0]:g}, {interval[1]:g})" for interval in support)
