"""Every ArviZ call in wager lives here, so the ArviZ version is one file's concern.

ArviZ 0.2x: ``rhat(method="rank")`` is the rank-normalised split R-hat and
``ess(method="bulk"|"tail")`` the bulk and tail effective sample sizes of
Vehtari et al. (2021); ``bfmi`` is the energy Bayesian fraction of missing
information (Betancourt 2016). Results are raw floats, never formatted text.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

from wager.kernel.posterior import Posterior


def _arviz() -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        import arviz

    return arviz


def to_inference_data(posterior: Posterior) -> Any:
    """ArviZ ``InferenceData`` with a ``posterior`` group and, for samplers, ``sample_stats``."""
    az = _arviz()
    stats = dict(posterior.sample_stats) or None
    return az.from_dict(
        posterior={k: np.asarray(v) for k, v in posterior.draws.items()},
        sample_stats=stats,
        attrs={"engine": posterior.engine, "seed": posterior.seed},
    )


@dataclass(frozen=True)
class VariableDiagnostics:
    """Worst case over a variable's elements (a vector parameter reports its worst entry)."""

    rhat: float
    ess_bulk: float
    ess_tail: float


@dataclass(frozen=True)
class Diagnostics:
    variables: Mapping[str, VariableDiagnostics]
    divergences: int
    bfmi: tuple[float, ...]
    tree_depth_hits: int
    draws: int

    @property
    def max_rhat(self) -> float:
        return max(v.rhat for v in self.variables.values())

    @property
    def min_ess_bulk(self) -> float:
        return min(v.ess_bulk for v in self.variables.values())

    @property
    def min_ess_tail(self) -> float:
        return min(v.ess_tail for v in self.variables.values())

    @property
    def min_bfmi(self) -> float:
        return min(self.bfmi) if self.bfmi else float("nan")


def diagnose(posterior: Posterior, max_tree_depth: int | None = None) -> Diagnostics:
    """Convergence diagnostics of every posterior variable, as raw floats."""
    az = _arviz()
    idata = to_inference_data(posterior)
    rhat = az.rhat(idata, method="rank")
    ess_bulk = az.ess(idata, method="bulk")
    ess_tail = az.ess(idata, method="tail")
    variables = {}
    for name in posterior.draws:
        variables[name] = VariableDiagnostics(
            rhat=_worst(rhat[name].values, np.nanmax, bad=np.inf),
            ess_bulk=_worst(ess_bulk[name].values, np.nanmin, bad=0.0),
            ess_tail=_worst(ess_tail[name].values, np.nanmin, bad=0.0),
        )
    stats = posterior.sample_stats
    divergences = int(np.sum(stats["diverging"])) if "diverging" in stats else 0
    bfmi = tuple(float(x) for x in az.bfmi(idata)) if "energy" in stats else ()
    hits = 0
    if "tree_depth" in stats and max_tree_depth is not None:
        hits = int(np.sum(stats["tree_depth"] >= max_tree_depth))
    return Diagnostics(
        variables=variables,
        divergences=divergences,
        bfmi=bfmi,
        tree_depth_hits=hits,
        draws=posterior.chains * posterior.draws_per_chain,
    )


def _worst(values: np.ndarray, reduce, bad: float) -> float:
    values = np.asarray(values, dtype=float)
    if values.size == 0 or np.all(np.isnan(values)):
        # a constant variable (e.g. a fixed deterministic) has undefined R-hat: treat as failed
        return float(bad)
    return float(reduce(values))


def mcse_mean(x: np.ndarray, independent: bool) -> float:
    """Monte Carlo standard error of the mean of ``x`` shaped ``(chains, draws)``.

    Independent draws: ``sd / sqrt(n)``. Markov chains: ArviZ's ESS-based MCSE.
    """
    x = np.asarray(x, dtype=float)
    if independent:
        return float(np.std(x, ddof=1) / np.sqrt(x.size))
    if np.ptp(x) == 0:
        return 0.0
    az = _arviz()
    return float(np.squeeze(az.mcse(x, method="mean")))  # ArviZ 0.23 returns a one-element array


def ess_mean(x: np.ndarray, independent: bool) -> float:
    """Effective sample size of the mean of ``x`` shaped ``(chains, draws)``."""
    x = np.asarray(x, dtype=float)
    if independent or np.ptp(x) == 0:
        return float(x.size)
    return float(_arviz().ess(x, method="mean"))


def pareto_smoothed_log_weights(log_ratios: np.ndarray) -> tuple[np.ndarray, float]:
    """Pareto-smoothed importance sampling (Vehtari et al. 2024) of one set of draws.

    ``log_ratios`` are ``log p_new(theta_s) - log p_old(theta_s)`` up to a constant,
    one per draw (any shape; flattened in C order). Returns the smoothed,
    normalised log weights (same shape, ``logsumexp == 0``) and the Pareto shape
    ``k_hat`` of the weights' tail: below 0.7 the weighted estimates are reliable;
    above it, refit. ``k_hat`` is ``inf`` when the tail is too short to fit.

    When the largest ratios are tied, all of the ``M`` that PSIS would fit its tail to
    (``M = ceil(min(S / 5, 3 sqrt(S)))``) and the one below them, the weights are bounded:
    none exceeds ``1 / (M + 1)`` of their sum. There is no tail to smooth (ArviZ reports
    ``inf``: too few values above the cutoff); the raw weights are returned with ``k_hat``
    0, an upper bound on a bounded tail's shape. Constant ratios are the common case: an
    observation whose likelihood no parameter moves (a reading censored where every draw
    puts it), a prior changed only by a constant over the draws.
    """
    az = _arviz()
    x = np.asarray(log_ratios, dtype=float)
    if _largest_tied(x.reshape(-1)):
        top = np.max(x)
        return x - top - np.log(np.sum(np.exp(x - top))), 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ArviZ warns on k_hat > 0.7; the caller reads k_hat itself
        log_w, k_hat = az.psislw(x.reshape(-1).copy())
    return np.asarray(log_w).reshape(x.shape), float(k_hat)


def _largest_tied(flat: np.ndarray) -> bool:
    """Whether the ``M + 1`` largest of ``flat`` are equal, ``M = ceil(min(S / 5, 3 sqrt(S)))``: the
    length of the tail PSIS fits (ArviZ's ``psislw`` with a relative efficiency of 1)."""
    tail = int(math.ceil(min(0.2 * flat.size, 3.0 * math.sqrt(flat.size))))
    if flat.size <= tail or np.isnan(flat).any() or not np.isfinite(flat.max()):
        return False
    return bool(np.partition(flat, -tail - 1)[-tail - 1] == flat.max())


RELIABLE_K = 0.7
"""The Pareto shape below which PSIS's weighted estimates are reliable given enough draws (Vehtari et al. 2024):
the default of every check of importance weights in wager (the ``pareto_k`` gate, prior reweighting, LOO)."""


def reliable_pareto_k(draws: int) -> float:
    """The Pareto shape below which PSIS estimates from ``draws`` draws are reliable: ``min(1 - 1/log10(S),
    0.7)`` (Vehtari, Simpson, Gelman, Yao & Gabry 2024, section 3.2.4; ArviZ's ``loo`` calls it ``good_k``).
    Above ``1 - 1/log10(S)`` the error of a weighted estimate shrinks too slowly in ``S`` to be trusted: 0.5
    at 100 draws, 0.7 from about 2,200. Ten draws or fewer trust no shape (0)."""
    if draws <= 10:
        return 0.0
    return min(1.0 - 1.0 / math.log10(draws), RELIABLE_K)


def pareto_k_limit(limit: float, draws: int) -> float:
    """The Pareto k a check of ``draws`` importance weights holds them to, given a configured ``limit``:
    up to 0.7 it is lowered to PSIS's sample-size bound where that is lower (``reliable_pareto_k``); a
    limit above 0.7 already accepts weights PSIS does not vouch for, and is taken as given."""
    return limit if limit > RELIABLE_K else min(limit, reliable_pareto_k(draws))


def chain_mean_se(draws: np.ndarray, chains: int) -> np.ndarray:
    """Monte Carlo standard error of the mean of draws from ``chains`` Markov chains
    stacked chain after chain on the first axis (``chains * m``, ...), per trailing
    index: ArviZ's ESS-based MCSE (NaN where the draws are constant within chains)."""
    x = np.asarray(draws, dtype=float)
    if x.shape[0] % chains:
        raise ValueError(f"{x.shape[0]} draws do not split into {chains} chains")
    by_chain = x.reshape(chains, -1, *x.shape[1:])
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.asarray(_arviz().mcse(_arviz().convert_to_dataset(by_chain), method="mean")["x"], dtype=float)


def chain_quantile_se(draws: np.ndarray, p: float, chains: int) -> np.ndarray:
    """``quantile_se`` of draws from ``chains`` Markov chains stacked chain after chain on
    the first axis (``chains * m``, ...), per trailing index: the empirical CDF's error at
    the quantile is the MCSE of the indicator ``draw <= quantile`` through the chains'
    effective sample size (ArviZ), the independent-draws error where that is undefined
    (an indicator constant within the chains)."""
    x = np.asarray(draws, dtype=float)
    cdf_se = chain_mean_se((x <= np.quantile(x, p, axis=0)).astype(float), chains)
    d = np.where(np.isfinite(cdf_se) & (cdf_se > 0), cdf_se, np.sqrt(p * (1 - p) / x.shape[0]))
    ordered = np.sort(x, axis=0)
    return (_quantile_at(ordered, np.minimum(p + d, 1.0)) - _quantile_at(ordered, np.maximum(p - d, 0.0))) / 2


def _quantile_at(ordered: np.ndarray, q: np.ndarray) -> np.ndarray:
    """The ``q``-quantile per trailing index of sorted draws (``q`` shaped like one
    draw), interpolated linearly as ``np.quantile``'s default."""
    position = q * (ordered.shape[0] - 1)
    low = np.floor(position).astype(int)
    high = np.minimum(low + 1, ordered.shape[0] - 1)
    a = np.take_along_axis(ordered, low[None], axis=0)[0]
    b = np.take_along_axis(ordered, high[None], axis=0)[0]
    return a + (position - low) * (b - a)


def quantile_se(draws: np.ndarray, p: float, cdf_se: float | None = None) -> np.ndarray:
    """Monte Carlo standard error of the ``p``-quantile of ``draws`` (first axis),
    per trailing index: half the distance between the quantiles ``d`` either side
    of ``p`` in probability, ``d`` the standard error of the empirical CDF at the
    quantile. For independent draws ``d = sqrt(p (1 - p) / S)`` (binomial); for
    draws that are not (Markov chains), pass ``cdf_se``, the MCSE of the share of
    draws at or below the quantile (``mcse_mean`` of the indicator)."""
    x = np.asarray(draws, dtype=float)
    d = np.sqrt(p * (1 - p) / x.shape[0]) if cdf_se is None else float(cdf_se)
    lo, hi = np.quantile(x, [max(p - d, 0.0), min(p + d, 1.0)], axis=0)
    return (hi - lo) / 2
