"""Exact conjugate updates: prior + sufficient statistics -> closed-form posterior.

=========================  =======================  ==========================================
likelihood                 prior                    posterior
=========================  =======================  ==========================================
Binomial(n, p), k succ.    p ~ Beta(a, b)           Beta(a + k, b + n - k)
Poisson(exposure * l)      l ~ Gamma(s, r)          Gamma(s + events, r + exposure)
Normal(mu, sigma known)    mu ~ Normal(m0, s0)      Normal(m_n, s_n), 1/s_n^2 = 1/s0^2 + n/sigma^2
Normal(mu, sigma^2)        (mu, sigma^2) ~ NIG      NIG(m_n, k_n, a_n, b_n) (Murphy 2007, eq. 85-89)
=========================  =======================  ==========================================
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Mapping

import numpy as np

from wager.kernel.closed_form import Beta, Distribution1D, Gamma, InverseGamma, Normal, StudentT
from wager.kernel.priors import Prior


def _expect(prior: Prior, family: str, what: str) -> None:
    if prior.family != family:
        raise ValueError(f"{what} needs a {family} prior, got {prior.family}")


def beta_binomial(prior: Prior, successes: int, trials: int) -> Beta:
    """Posterior of a success probability after ``successes`` of ``trials``."""
    _expect(prior, "beta", "the Beta-Binomial update")
    return Beta(prior["alpha"] + successes, prior["beta"] + trials - successes)


def gamma_poisson(prior: Prior, events: float, exposure: float) -> Gamma:
    """Posterior of a Poisson rate per unit exposure after ``events`` in ``exposure``."""
    _expect(prior, "gamma", "the Gamma-Poisson update")
    return Gamma(prior["shape"] + events, prior["rate"] + exposure)


def normal_known_variance(prior: Prior, n: int, mean: float, sigma: float) -> Normal:
    """Posterior of a Normal mean from ``n`` observations with sample ``mean``, known ``sigma``."""
    _expect(prior, "normal", "the Normal known-variance update")
    precision = 1.0 / prior["scale"] ** 2 + n / sigma**2
    loc = (prior["loc"] / prior["scale"] ** 2 + n * mean / sigma**2) / precision
    return Normal(loc, float(np.sqrt(1.0 / precision)))


@dataclass(frozen=True)
class NormalInverseGamma:
    """Joint posterior of (mean, variance): variance ~ IG(shape, scale),
    mean | variance ~ Normal(loc, variance / kappa)."""

    loc: float
    kappa: float
    shape: float
    scale: float

    @property
    def mean_marginal(self) -> StudentT:
        return StudentT(2 * self.shape, self.loc, float(np.sqrt(self.scale / (self.shape * self.kappa))))

    @property
    def variance_marginal(self) -> InverseGamma:
        return InverseGamma(self.shape, self.scale)

    def sample(self, rng: np.random.Generator, size: tuple[int, ...]) -> dict[str, np.ndarray]:
        variance = self.variance_marginal.sample(rng, size)
        mean = rng.normal(self.loc, np.sqrt(variance / self.kappa))
        return {"mean": mean, "variance": variance}


def normal_inverse_gamma(prior: Prior, n: int, mean: float, sum_sq_dev: float) -> NormalInverseGamma:
    """Posterior of a Normal's mean and variance from ``n`` observations with sample
    ``mean`` and ``sum_sq_dev`` = sum of squared deviations from that mean."""
    _expect(prior, "normal_inverse_gamma", "the Normal-Inverse-Gamma update")
    m0, k0, a0, b0 = prior["loc"], prior["kappa"], prior["shape"], prior["scale"]
    kn = k0 + n
    return NormalInverseGamma(
        loc=(k0 * m0 + n * mean) / kn,
        kappa=kn,
        shape=a0 + n / 2,
        scale=b0 + 0.5 * sum_sq_dev + k0 * n * (mean - m0) ** 2 / (2 * kn),
    )


@dataclass(frozen=True)
class ExactPosterior:
    """What an exact update hands the exact engine.

    ``marginals`` are the closed-form marginal of each named quantity, for
    closed-form decisions. ``joint`` samples all quantities together where they
    are dependent; otherwise each marginal is sampled independently, in name
    order, so draws depend only on the seed.
    """

    marginals: Mapping[str, Distribution1D]
    joint: Callable[[np.random.Generator, tuple[int, ...]], dict[str, np.ndarray]] | None = None
    deterministic: Mapping[str, Callable[[Mapping[str, np.ndarray]], np.ndarray]] = field(
        default_factory=dict
    )

    def sample(self, rng: np.random.Generator, size: tuple[int, ...]) -> dict[str, np.ndarray]:
        if self.joint is not None:
            draws = self.joint(rng, size)
        else:
            draws = {name: self.marginals[name].sample(rng, size) for name in sorted(self.marginals)}
        for name, fn in self.deterministic.items():
            draws[name] = fn(draws)
        return draws
