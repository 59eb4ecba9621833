"""Calibration, the computation: ranks, thinning, a uniformity test by ECDF
simultaneous confidence bands, and leave-one-out PIT values tested by it.

SBC (Talts et al. 2018; Modrák et al. 2023): if ``theta ~ p(theta)``,
``y ~ p(y | theta)`` and ``theta_1..L`` are independent draws from a correct
posterior ``p(theta | y)``, then the rank ``r = #{l : theta_l < theta}`` of the
true value among the draws is discrete-uniform on ``0..L``, for every scalar
function of ``(theta, y)`` (a parameter element, or the log-likelihood
``log p(y | theta)``).

Uniformity is tested on the ECDF of ``u = (r + 1) / (L + 1)`` at the grid
``z_j = j / (L + 1)``, ``j = 1..L``. Under uniform ranks the ECDF count at
``z_j`` is ``Binomial(N, z_j)`` exactly, and the counts at all grid points are
distributed as those of ``N`` continuous Uniform(0, 1) draws, so the
simultaneous band of Säilynoja, Bürkner & Vehtari (2022, "Graphical test for
discrete uniformity and its applications in goodness-of-fit evaluation and
multiple sample comparison", Statistics and Computing 32:32), calibrated by
simulating uniform samples, applies without approximation. The band's
pointwise level is chosen so that a fraction ``1 - alpha`` of simulated
uniform ECDFs lies inside it everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Mapping

import numpy as np

from wager.kernel.inference import Model

BAND_TRIALS = 4000
"""Uniform ECDFs simulated to calibrate a band (the band's own Monte Carlo error
on its coverage is about ``sqrt(alpha (1 - alpha) / trials)``)."""
BAND_SEED = 20220302
"""Fixed seed of the band's calibration: the same ``(N, L, alpha)`` always gives the same band."""


def rank_of(truth: np.ndarray, draws: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Rank of ``truth`` among ``draws``: ``#{l : draws[l] < truth}``, ties broken at random.

    ``draws`` has shape ``(L, *shape)``, ``truth`` shape ``shape``; the result
    (integers in ``0..L``, shape ``shape``) is discrete-uniform when ``truth``
    and the draws are exchangeable. A tie adds a uniform draw from
    ``0..#{draws == truth}`` so discrete quantities keep that property.
    """
    truth = np.asarray(truth, dtype=float)
    draws = np.asarray(draws, dtype=float)
    below = np.sum(draws < truth, axis=0)
    ties = np.sum(draws == truth, axis=0)
    if np.any(ties):
        below = below + rng.integers(0, ties + 1)
    return np.asarray(below, dtype=np.int64)


def thin(draws: np.ndarray, keep: int) -> np.ndarray:
    """``keep`` draws evenly spaced along the first axis (``keep`` <= its length).

    Evenly spaced draws of a well-mixing chain are close to independent once the
    spacing exceeds the autocorrelation time; SBC needs near-independence, or
    the ranks pile up and a correct posterior looks miscalibrated.
    """
    n = draws.shape[0]
    if keep > n:
        raise ValueError(f"cannot thin {n} draws to {keep}")
    return draws[(np.arange(keep) * n) // keep]


@dataclass(frozen=True)
class ECDFBand:
    """Simultaneous band for the ECDF of ``N`` fractional ranks at ``z_j = j / (L + 1)``.

    ``lower`` and ``upper`` are ECDF values (fractions), shape ``(L,)``;
    ``pointwise`` is the per-point two-sided tail probability the band uses.
    """

    simulations: int
    max_rank: int
    alpha: float
    eval_points: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    pointwise: float


@lru_cache(maxsize=64)
def ecdf_band(simulations: int, max_rank: int, alpha: float, trials: int = BAND_TRIALS, seed: int = BAND_SEED) -> ECDFBand:
    """The ``1 - alpha`` simultaneous band for ``simulations`` ranks in ``0..max_rank``.

    For each of ``trials`` simulated uniform samples, the smallest two-sided
    pointwise tail probability ``2 min(F(c_j), 1 - F(c_j - 1))`` over the grid
    (``F`` the ``Binomial(N, z_j)`` CDF, ``c_j`` the ECDF count); the band's
    pointwise level is the ``alpha`` quantile of those minima, and its limits
    the Binomial quantiles at that level.
    """
    from scipy import stats

    if simulations < 1 or max_rank < 1 or not 0 < alpha < 1:
        raise ValueError("ecdf_band needs simulations >= 1, max_rank >= 1 and 0 < alpha < 1")
    bins = max_rank + 1
    z = np.arange(1, bins) / bins
    rng = np.random.default_rng(seed)
    minima = []
    for start in range(0, trials, 1000):
        size = min(1000, trials - start)
        which = rng.integers(0, bins, size=(size, simulations))  # the bin of a uniform draw
        flat = (which + bins * np.arange(size)[:, None]).reshape(-1)
        per_bin = np.bincount(flat, minlength=size * bins).reshape(size, bins)
        counts = np.cumsum(per_bin, axis=1)[:, :-1]
        tails = np.minimum(stats.binom.cdf(counts, simulations, z), stats.binom.sf(counts - 1, simulations, z))
        minima.append(np.min(2 * tails, axis=1))
    pointwise = float(np.quantile(np.concatenate(minima), alpha))
    lower = stats.binom.ppf(pointwise / 2, simulations, z) / simulations
    upper = stats.binom.ppf(1 - pointwise / 2, simulations, z) / simulations
    return ECDFBand(simulations, max_rank, alpha, z, lower, upper, pointwise)


@dataclass(frozen=True)
class Uniformity:
    """One quantity's test: inside the band or not, and two secondary numbers.

    ``max_ecdf_difference``: ``max_j |ECDF(z_j) - z_j|`` (Kolmogorov-style
    distance on the rank grid). ``chi2_p_value``: Pearson's test on the ranks
    in ``bins`` equal bins (a coarse second opinion; not used for ``passed``).
    """

    passed: bool
    max_ecdf_difference: float
    chi2_p_value: float
    bins: int
    ecdf: np.ndarray
    band: ECDFBand


def rank_uniformity(ranks: np.ndarray, max_rank: int, alpha: float = 0.05) -> Uniformity:
    """Test ranks in ``0..max_rank`` for discrete uniformity at level ``alpha``."""
    from scipy import stats

    ranks = np.asarray(ranks, dtype=np.int64).reshape(-1)
    if ranks.size == 0 or ranks.min() < 0 or ranks.max() > max_rank:
        raise ValueError(f"ranks must be integers in 0..{max_rank}")
    n = ranks.size
    band = ecdf_band(n, max_rank, alpha)
    ecdf = np.array([np.sum(ranks + 1 <= j) for j in range(1, max_rank + 1)]) / n
    inside = bool(np.all((ecdf >= band.lower - 1e-12) & (ecdf <= band.upper + 1e-12)))
    bins = chi2_bins(n, max_rank + 1)
    observed = np.bincount(ranks // ((max_rank + 1) // bins), minlength=bins)
    p_value = float(stats.chisquare(observed).pvalue) if bins > 1 else float("nan")
    return Uniformity(
        passed=inside,
        max_ecdf_difference=float(np.max(np.abs(ecdf - band.eval_points))),
        chi2_p_value=p_value,
        bins=bins,
        ecdf=ecdf,
        band=band,
    )


PIT_BINS = 100
"""LOO-PIT values are tested as ranks in ``0..PIT_BINS - 1`` (their hundredths)."""


@dataclass(frozen=True)
class LooPit:
    """Leave-one-out PIT values ``(n,)`` and whether they pass the ECDF simultaneous-band test of
    uniformity at level ``alpha``; ``reliable_k``: PSIS's bound for the number of draws
    (``wager.kernel.diagnostics.reliable_pareto_k``), above which an observation's LOO value is unreliable."""

    values: np.ndarray
    passed: bool
    max_ecdf_difference: float
    max_pareto_k: float
    alpha: float
    reliable_k: float

    def line(self, what: str) -> str:
        """One sentence on the PIT values of ``what`` (e.g. "observations")."""
        verdict = "uniform within the simultaneous band" if self.passed else "FLAGGED: not uniform (the band is left)"
        unreliable = f" (above {self.reliable_k:.2g}: some LOO values are unreliable)" if self.max_pareto_k > self.reliable_k else ""
        return (f"LOO-PIT of {self.values.size} {what}: {verdict} at level {self.alpha:g}; "
                f"max |ECDF - uniform| {self.max_ecdf_difference:.3f}, max Pareto k {self.max_pareto_k:.2f}{unreliable}")

    def to_json(self) -> dict[str, Any]:
        return {"values": [float(v) for v in self.values], "passed": self.passed, "alpha": self.alpha,
                "max_ecdf_difference": self.max_ecdf_difference, "max_pareto_k": self.max_pareto_k, "reliable_k": self.reliable_k}


def loo_pit(log_lik: np.ndarray, cdf: np.ndarray, alpha: float) -> LooPit:
    """``PIT_i = sum_s w_is F_s(y_i)`` from ``log_lik`` and ``cdf``, both ``(draws, n)``: each
    observation's log-likelihood ``log p(y_i | theta_s)`` and predictive CDF ``F_s(y_i)`` at every
    posterior draw, with Pareto-smoothed importance weights ``w_is propto 1 / p(y_i | theta_s)``
    (Vehtari, Gelman & Gabry 2017). A discrete ``y`` takes ``F_s(y_i-) + U_i (F_s(y_i) - F_s(y_i-))``
    with ``U_i`` uniform (the randomised PIT), so that a right model's values are uniform too.
    Leave-one-out, not in-sample: in-sample PIT values bunch in the middle because each
    observation pulled the fit toward itself."""
    from wager.kernel.diagnostics import pareto_smoothed_log_weights, reliable_pareto_k

    log_lik, cdf = np.asarray(log_lik, dtype=float), np.asarray(cdf, dtype=float)
    if log_lik.shape != cdf.shape or log_lik.ndim != 2 or log_lik.shape[1] == 0:
        raise ValueError(f"log_lik and cdf must both be (draws, n) with n >= 1; got {log_lik.shape} and {cdf.shape}")
    values, ks = np.empty(log_lik.shape[1]), np.empty(log_lik.shape[1])
    for i in range(log_lik.shape[1]):
        log_w, ks[i] = pareto_smoothed_log_weights(-log_lik[:, i])
        values[i] = np.sum(np.exp(log_w) * cdf[:, i])
    pit = np.clip(values, 0.0, 1.0)
    test = rank_uniformity(np.minimum((pit * PIT_BINS).astype(np.int64), PIT_BINS - 1), PIT_BINS - 1, alpha)
    return LooPit(values=pit, passed=test.passed, max_ecdf_difference=test.max_ecdf_difference,
                  max_pareto_k=float(np.max(ks)), alpha=alpha, reliable_k=reliable_pareto_k(log_lik.shape[0]))


def chi2_bins(simulations: int, values: int, most: int = 20) -> int:
    """Equal bins for the chi-square test: the largest divisor of ``values`` that
    is at most ``most`` and keeps at least 5 expected ranks per bin."""
    limit = max(1, min(most, simulations // 5))
    return max(b for b in range(1, limit + 1) if values % b == 0)


@dataclass(frozen=True)
class Simulation:
    """One draw from the prior predictive: the true values and the model on the simulated data
    (what a problem's ``simulate(seed)`` hook gives ``wager.workflow.sbc``)."""

    truth: Mapping[str, np.ndarray]
    model: Model
