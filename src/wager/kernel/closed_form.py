"""Closed-form one-dimensional distributions that exact (conjugate) updates return.

Each is a small frozen dataclass with ``mean``, ``sd``, vectorised ``pdf``,
``cdf``, ``ppf`` (built on ``scipy.special``, not ``scipy.stats``, whose import
alone costs most of a second) and ``sample(rng, size)`` from a NumPy
``Generator``. ``shifted(c)`` and ``scaled(c)`` give the distribution of
``X + c`` and ``c * X`` so that decisions can compare arms net of a margin.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
from scipy import special


class Distribution1D(Protocol):
    mean: float
    sd: float

    def pdf(self, x: np.ndarray) -> np.ndarray: ...
    def cdf(self, x: np.ndarray) -> np.ndarray: ...
    def ppf(self, q: np.ndarray) -> np.ndarray: ...
    def sample(self, rng: np.random.Generator, size: tuple[int, ...]) -> np.ndarray: ...


@dataclass(frozen=True)
class Beta:
    """Beta(alpha, beta) on (0, 1)."""

    alpha: float
    beta: float

    @property
    def mean(self) -> float:
        return self.alpha / (self.alpha + self.beta)

    @property
    def sd(self) -> float:
        a, b = self.alpha, self.beta
        return float(np.sqrt(a * b / ((a + b) ** 2 * (a + b + 1))))

    def pdf(self, x):
        x = np.asarray(x, dtype=float)
        inside = (x > 0) & (x < 1)
        xc = np.clip(x, 1e-300, 1 - 1e-16)
        logp = (
            special.xlog1py(self.beta - 1, -xc)
            + special.xlogy(self.alpha - 1, xc)
            - special.betaln(self.alpha, self.beta)
        )
        return np.where(inside, np.exp(logp), 0.0)

    def cdf(self, x):
        return special.betainc(self.alpha, self.beta, np.clip(np.asarray(x, dtype=float), 0, 1))

    def ppf(self, q):
        return special.betaincinv(self.alpha, self.beta, np.asarray(q, dtype=float))

    def sample(self, rng, size):
        return rng.beta(self.alpha, self.beta, size=size)


@dataclass(frozen=True)
class Gamma:
    """Gamma(shape, rate) on (0, inf); mean shape / rate."""

    shape: float
    rate: float

    @property
    def mean(self) -> float:
        return self.shape / self.rate

    @property
    def sd(self) -> float:
        return float(np.sqrt(self.shape) / self.rate)

    def pdf(self, x):
        x = np.asarray(x, dtype=float)
        xc = np.clip(x, 1e-300, None)
        logp = (
            self.shape * np.log(self.rate)
            + special.xlogy(self.shape - 1, xc)
            - self.rate * xc
            - special.gammaln(self.shape)
        )
        return np.where(x > 0, np.exp(logp), 0.0)

    def cdf(self, x):
        return special.gammainc(self.shape, self.rate * np.clip(np.asarray(x, dtype=float), 0, None))

    def ppf(self, q):
        return special.gammaincinv(self.shape, np.asarray(q, dtype=float)) / self.rate

    def sample(self, rng, size):
        return rng.gamma(self.shape, 1.0 / self.rate, size=size)


@dataclass(frozen=True)
class Normal:
    """Normal(loc, scale)."""

    loc: float
    scale: float

    @property
    def mean(self) -> float:
        return self.loc

    @property
    def sd(self) -> float:
        return self.scale

    def pdf(self, x):
        z = (np.asarray(x, dtype=float) - self.loc) / self.scale
        return np.exp(-0.5 * z * z) / (self.scale * np.sqrt(2 * np.pi))

    def cdf(self, x):
        return special.ndtr((np.asarray(x, dtype=float) - self.loc) / self.scale)

    def ppf(self, q):
        return self.loc + self.scale * special.ndtri(np.asarray(q, dtype=float))

    def sample(self, rng, size):
        return rng.normal(self.loc, self.scale, size=size)


@dataclass(frozen=True)
class StudentT:
    """Location-scale Student t with ``df`` degrees of freedom."""

    df: float
    loc: float
    scale: float

    @property
    def mean(self) -> float:
        return self.loc if self.df > 1 else float("nan")

    @property
    def sd(self) -> float:
        return float(self.scale * np.sqrt(self.df / (self.df - 2))) if self.df > 2 else float("inf")

    def pdf(self, x):
        z = (np.asarray(x, dtype=float) - self.loc) / self.scale
        v = self.df
        logp = (
            special.gammaln((v + 1) / 2)
            - special.gammaln(v / 2)
            - 0.5 * np.log(v * np.pi)
            - (v + 1) / 2 * np.log1p(z * z / v)
        )
        return np.exp(logp) / self.scale

    def cdf(self, x):
        return special.stdtr(self.df, (np.asarray(x, dtype=float) - self.loc) / self.scale)

    def ppf(self, q):
        return self.loc + self.scale * special.stdtrit(self.df, np.asarray(q, dtype=float))

    def sample(self, rng, size):
        return self.loc + self.scale * rng.standard_t(self.df, size=size)


@dataclass(frozen=True)
class InverseGamma:
    """InverseGamma(shape, scale): ``1 / X`` for ``X ~ Gamma(shape, rate=scale)``."""

    shape: float
    scale: float

    @property
    def mean(self) -> float:
        return self.scale / (self.shape - 1) if self.shape > 1 else float("inf")

    @property
    def sd(self) -> float:
        a = self.shape
        return float(self.scale / ((a - 1) * np.sqrt(a - 2))) if a > 2 else float("inf")

    def pdf(self, x):
        x = np.asarray(x, dtype=float)
        xc = np.clip(x, 1e-300, None)
        logp = (
            self.shape * np.log(self.scale)
            - special.gammaln(self.shape)
            - (self.shape + 1) * np.log(xc)
            - self.scale / xc
        )
        return np.where(x > 0, np.exp(logp), 0.0)

    def cdf(self, x):
        x = np.clip(np.asarray(x, dtype=float), 1e-300, None)
        return special.gammaincc(self.shape, self.scale / x)

    def ppf(self, q):
        return self.scale / special.gammainccinv(self.shape, np.asarray(q, dtype=float))

    def sample(self, rng, size):
        return 1.0 / rng.gamma(self.shape, 1.0 / self.scale, size=size)


@dataclass(frozen=True)
class Affine:
    """The distribution of ``scale * X + shift`` for ``X ~ base`` (``scale > 0``)."""

    base: Distribution1D
    scale: float = 1.0
    shift: float = 0.0

    @property
    def mean(self) -> float:
        return self.scale * self.base.mean + self.shift

    @property
    def sd(self) -> float:
        return self.scale * self.base.sd

    def pdf(self, x):
        return self.base.pdf((np.asarray(x, dtype=float) - self.shift) / self.scale) / self.scale

    def cdf(self, x):
        return self.base.cdf((np.asarray(x, dtype=float) - self.shift) / self.scale)

    def ppf(self, q):
        return self.scale * self.base.ppf(q) + self.shift

    def sample(self, rng, size):
        return self.scale * self.base.sample(rng, size) + self.shift
