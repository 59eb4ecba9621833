"""Prior sensitivity: alternative priors by importance reweighting, and power-scaling.

Two questions, both answered from the draws a run already has where that is valid:

* **Does the decision survive another defensible prior?** Draws from the
  posterior under prior ``p`` become draws under prior ``q`` by importance
  weights ``w_s propto q(theta_s) / p(theta_s)`` (the likelihood cancels).
  Pareto smoothing (PSIS; Vehtari et al. 2024) stabilises the weights and its
  shape estimate ``k_hat`` says whether they can be trusted: above
  ``max_pareto_k`` (0.7; lower with fewer than about 2,200 draws,
  ``wager.kernel.diagnostics.reliable_pareto_k``) the caller refits instead. ``resample`` turns weighted
  draws into an equally weighted ``Posterior`` so a domain's own ``decide`` runs
  on it unchanged.

* **How sensitive is each posterior quantity to the prior and to the
  likelihood?** Power-scaling (Kallioinen et al. 2023, "Detecting and diagnosing
  prior and likelihood sensitivity with power-scaling", Statistics and
  Computing 34:57): raise the prior (or the likelihood) to the power ``alpha``,
  whose weights are ``w_s propto exp((alpha - 1) log p(theta_s))``, and measure
  how far each quantity's distribution moves by the cumulative Jensen-Shannon
  distance ``D_CJS`` (Nguyen & Vreeken 2015). The diagnostic is its derivative
  with respect to ``log2 alpha`` at ``alpha = 1``, by a central difference over
  ``alpha in {1/(1+delta), 1+delta}``::

      sensitivity = (D(1/(1+delta)) + D(1+delta)) / (2 log2(1 + delta))

  with ``D`` the larger of ``D_CJS`` on ``theta`` and on ``-theta``. This is
  ArviZ's ``psens`` estimator, written here in NumPy so that an exact
  (conjugate) run can report it without importing ArviZ (three seconds); the
  test suite checks the two agree. Values above 0.05 (the paper's threshold)
  mark a quantity as sensitive: prior- *and* likelihood-sensitive suggests a
  prior-data conflict; prior-sensitive but not likelihood-sensitive suggests a
  strong prior or a weak likelihood.

Pure computation: no files, no printing. PSIS goes through
``wager.kernel.diagnostics`` (every ArviZ call lives there).
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from wager.kernel.diagnostics import RELIABLE_K
from wager.kernel.posterior import Posterior
from wager.kernel.priors import Prior

SENSITIVITY_THRESHOLD = 0.05
"""Power-scaling sensitivity above which a quantity is flagged (Kallioinen et al. 2023)."""

POWER_SCALING_DELTA = 0.01
"""Half-width of the finite difference in ``alpha`` (ArviZ's and priorsense's default)."""

Diagnosis = Literal["prior-data conflict", "strong prior / weak likelihood", "sensitive to the prior"]


class SensitivityPolicy(BaseModel):
    """How a run's decision is checked against alternative priors.

    Every prior the run uses is tried ``factor`` times wider and ``factor``
    times narrower (``Prior.widened``), plus the ``alternatives`` declared per
    prior name. Draws from a sampler are reweighted when the Pareto ``k_hat``
    of the weights is at most ``max_pareto_k``; otherwise the model is refitted.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    factor: float = Field(default=2.0, gt=1.0, le=1000.0, allow_inf_nan=False)
    alternatives: dict[str, list[Prior]] = Field(default_factory=dict)
    max_pareto_k: float = Field(default=RELIABLE_K, gt=0.0, le=1.0)


# --- importance weights --------------------------------------------------------


def importance_log_weights(log_ratios: np.ndarray, smooth: bool = True) -> tuple[np.ndarray, float | None]:
    """Normalised log weights (``logsumexp == 0``) from unnormalised log ratios.

    ``smooth``: Pareto-smoothed (PSIS), with ``k_hat``; otherwise the raw
    self-normalised weights and ``k_hat = None``. Non-finite ratios of ``-inf``
    (a draw outside the new prior's support) get weight 0.
    """
    x = np.asarray(log_ratios, dtype=float)
    if np.any(np.isnan(x)) or np.any(x == np.inf):
        raise ValueError("log importance ratios must be finite or -inf")
    if not np.any(np.isfinite(x)):
        raise ValueError("every draw lies outside the new distribution's support")
    if smooth:
        from wager.kernel.diagnostics import pareto_smoothed_log_weights

        return pareto_smoothed_log_weights(x)
    return x - _logsumexp(x), None


def effective_draws(log_weights: np.ndarray) -> float:
    """Kish's effective sample size of normalised weights: ``1 / sum(w^2)``."""
    w = np.exp(np.asarray(log_weights, dtype=float).reshape(-1))
    return float(1.0 / np.sum(w * w))


def resample(posterior: Posterior, log_weights: np.ndarray, seed: int, note: str) -> Posterior:
    """Equally weighted draws from weighted ones by systematic resampling.

    ``log_weights`` are normalised, shaped ``(chains, draws)``. One uniform
    offset from ``seed`` places ``n = chains * draws`` evenly spaced points on
    the weights' cumulative sum; the draw under each point is kept. The picked
    indices come out sorted, so each output chain holds (mostly) draws of the
    same input chain in their order: duplicates sit side by side and raise the
    autocorrelation, which keeps Monte Carlo errors honest. No sampler
    statistics carry over.
    """
    w = np.exp(np.asarray(log_weights, dtype=float).reshape(-1))
    n = w.size
    if n != posterior.chains * posterior.draws_per_chain:
        raise ValueError(f"need one weight per draw ({posterior.chains * posterior.draws_per_chain}), got {n}")
    u = np.random.default_rng(seed).random()
    cumulative = np.cumsum(w / w.sum())
    index = np.minimum(np.searchsorted(cumulative, (u + np.arange(n)) / n, side="right"), n - 1)
    shape = (posterior.chains, posterior.draws_per_chain)
    draws = {}
    for name, x in posterior.draws.items():
        x = np.asarray(x)
        draws[name] = x.reshape((n,) + x.shape[2:])[index].reshape(shape + x.shape[2:])
    return Posterior(
        draws=draws,
        engine=f"{posterior.engine}+importance-resampling",
        reason=note,
        seed=posterior.seed,
        chain_seeds=posterior.chain_seeds,
        sample_stats={},
        exact=None,
        settings={**posterior.settings, "resampling": "systematic", "resampling_seed": seed},
    )


# --- power-scaling sensitivity (Kallioinen et al. 2023) ------------------------


def power_scaling_weights(
    log_component: np.ndarray, smooth: bool, delta: float = POWER_SCALING_DELTA
) -> tuple[np.ndarray, np.ndarray, float | None]:
    """Weights of the draws under the component (log prior or log likelihood per
    draw, any shape) power-scaled by ``1/(1+delta)`` and by ``1+delta``, flattened,
    each summing to 1, and the larger ``k_hat`` of the two (``None`` unsmoothed)."""
    x = np.asarray(log_component, dtype=float).reshape(-1)
    out, ks = [], []
    for alpha in (1.0 / (1.0 + delta), 1.0 + delta):
        log_w, k = importance_log_weights((alpha - 1.0) * x, smooth)
        w = np.exp(log_w)
        out.append(w / w.sum())
        ks.append(k)
    k_hat = None if ks[0] is None else max(ks)  # type: ignore[type-var]
    return out[0], out[1], k_hat


def power_scaling_sensitivity(
    draws: np.ndarray, lower: np.ndarray, upper: np.ndarray, delta: float = POWER_SCALING_DELTA
) -> float:
    """The diagnostic for one scalar quantity: its draws (any shape, flattened in
    the same order as the weights) and the two weight vectors of
    ``power_scaling_weights``. See the module docstring for the formula."""
    x = np.asarray(draws, dtype=float).reshape(-1)
    lo = max(cjs_distance(x, lower), cjs_distance(-x, lower))
    hi = max(cjs_distance(x, upper), cjs_distance(-x, upper))
    return float((lo + hi) / (2.0 * math.log2(1.0 + delta)))


def cjs_distance(draws: np.ndarray, weights: np.ndarray) -> float:
    """Cumulative Jensen-Shannon distance between the equally weighted ECDF of
    ``draws`` and their ``weights``-weighted ECDF (Nguyen & Vreeken 2015),
    normalised by the sum of the two ECDFs' integrals, as in ArviZ and priorsense."""
    order = np.argsort(draws, kind="stable")
    x = np.asarray(draws, dtype=float)[order]
    w = np.asarray(weights, dtype=float)[order]
    n = x.size
    width = np.diff(x)
    cdf_p = np.linspace(1.0 / n, 1.0 - 1.0 / n, n - 1)
    cdf_q = np.cumsum(w / w.sum())[:-1]
    int_p, int_q = float(cdf_p @ width), float(cdf_q @ width)
    bound = int_p + int_q
    if bound <= 0:  # every draw equal: nothing can move
        return 0.0
    log_p = np.log2(cdf_p, out=np.zeros_like(cdf_p), where=cdf_p != 0)
    log_q = np.log2(cdf_q, out=np.zeros_like(cdf_q), where=cdf_q != 0)
    mid = 0.5 * (cdf_p + cdf_q)
    log_mid = np.log2(mid, out=np.zeros_like(mid), where=mid != 0)
    pq = float(np.sum(width * cdf_p * (log_p - log_mid))) + 0.5 / math.log(2) * (int_q - int_p)
    qp = float(np.sum(width * cdf_q * (log_q - log_mid))) + 0.5 / math.log(2) * (int_p - int_q)
    return math.sqrt((max(pq, 0.0) + max(qp, 0.0)) / bound)


def diagnose(prior: float, likelihood: float | None, threshold: float = SENSITIVITY_THRESHOLD) -> Diagnosis | None:
    """Kallioinen et al. (2023): sensitive to the prior and to the likelihood ->
    prior-data conflict; to the prior only -> strong prior / weak likelihood;
    otherwise nothing to flag. Without a likelihood sensitivity (``None``) only
    the prior sensitivity can be named."""
    if prior < threshold:
        return None
    if likelihood is None:
        return "sensitive to the prior"
    if likelihood >= threshold:
        return "prior-data conflict"
    return "strong prior / weak likelihood"


def _logsumexp(x: np.ndarray) -> float:
    finite = x[np.isfinite(x)]
    top = float(np.max(finite))
    return top + float(np.log(np.sum(np.exp(finite - top))))
