"""The aggregate loss of an insurance book's next period, simulated with the
parameters' uncertainty carried in (``aggregate_predictive``) or with them
fixed at point estimates (``aggregate_plug_in``); the model is
``wager.risk.claims``.

For each posterior draw ``s`` and each of ``per_draw``
simulated periods, with next-period class exposures ``E_c``::

    N_c ~ NB2(E_c rate_c^(s), phi^(s)),   S_c = sum_{i <= N_c} exp(m_c^(s) + sigma^(s) eps_i),   S = sum_c S_c

``aggregate_predictive`` returns the draws of ``S`` and ``S_c`` and the VaR and
TVaR of ``S`` (``wager.risk.tail.chain_tail_summary``; level 0.995, Solvency
II's one-year standard, by default). ``aggregate_plug_in`` runs the same simulation
with the parameters fixed at point estimates (``posterior_medians``): what a
fitted-then-frozen model reports, and narrower in the tail when data are few.

Simulation cost. The counts of all draws and classes are drawn at once; the
claim amounts are then drawn for blocks of periods holding at most
``max_claims`` claims together (one claim's location and scale repeated by its
cell's count, ``exp`` of a Normal, summed per cell by ``np.bincount``), so
memory stays near ``5 * 8 * max_claims`` bytes however many claims the
periods hold; the time is linear in the total number of claims simulated.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Hashable, Mapping

import numpy as np

from wager.errors import SpecError
from wager.kernel.posterior import Posterior
from wager.risk.claims import PARAMETERS
from wager.risk.portfolio import Portfolio
from wager.tables import finite_numbers
from wager.risk.tail import TailSummary, chain_tail_summary, check_level, tail_summary

MAX_CLAIMS = 2_000_000
"""Claim amounts simulated at once (about 80 MB of work arrays): bounds the simulation's memory."""


@dataclass(frozen=True)
class ClaimParameters:
    """What the aggregate simulation needs, with a leading axis of ``S`` parameter sets:
    ``rate``, ``severity_loc`` ``(S, C)``; ``concentration``, ``severity_sigma`` ``(S,)``."""

    rate: np.ndarray
    concentration: np.ndarray
    severity_loc: np.ndarray
    severity_sigma: np.ndarray

    @classmethod
    def from_draws(cls, draws: Posterior | Mapping[str, Any]) -> "ClaimParameters":
        """All posterior draws, chains pooled (draw ``d`` of chain ``k`` at ``k * draws + d``)."""
        rate, phi, loc, sigma = (np.asarray(draws[k], dtype=float) for k in PARAMETERS)
        classes = rate.shape[-1]
        return cls(rate.reshape(-1, classes), phi.reshape(-1), loc.reshape(-1, classes), sigma.reshape(-1))

    def repeat(self, times: int) -> "ClaimParameters":
        """Each parameter set ``times`` times in a row."""
        return ClaimParameters(*(np.repeat(getattr(self, k), times, axis=0) for k in PARAMETERS))


def posterior_medians(posterior: Posterior | Mapping[str, Any]) -> ClaimParameters:
    """Point estimates: each parameter's (each class's) posterior median, as one parameter set."""
    p = ClaimParameters.from_draws(posterior)
    return ClaimParameters(*(np.median(getattr(p, k), axis=0, keepdims=True) for k in PARAMETERS))


@dataclass(frozen=True)
class AggregateLoss:
    """Simulated total claims of the next period and their tail, in currency units.

    ``total`` ``(n,)`` and ``by_class`` ``(n, C)``, one row per simulated period
    (the predictive's periods grouped by posterior draw, ``per_draw`` in a row);
    ``var``, ``tvar`` of ``total`` at ``level`` with Monte Carlo standard errors.
    """

    classes: tuple[Hashable, ...]
    exposure: np.ndarray
    total: np.ndarray
    by_class: np.ndarray
    level: float
    var: float
    var_se: float
    tvar: float
    tvar_se: float
    method: str

    @classmethod
    def of(cls, portfolio: Portfolio, exposure: np.ndarray, by_class: np.ndarray, tail: TailSummary, method: str) -> "AggregateLoss":
        """The simulated ``by_class`` totals with the tail measures of their sum."""
        return cls(
            classes=portfolio.classes, exposure=exposure, total=by_class.sum(axis=1), by_class=by_class, level=tail.level,
            var=float(tail.var), var_se=float(tail.var_se), tvar=float(tail.tvar), tvar_se=float(tail.tvar_se), method=method,
        )


def aggregate_predictive(
    posterior: Posterior,
    portfolio: Portfolio,
    rng: np.random.Generator,
    *,
    exposure: Any = None,
    level: float = 0.995,
    per_draw: int = 20,
    max_claims: int = MAX_CLAIMS,
) -> AggregateLoss:
    """The posterior predictive of next period's total claims: ``per_draw`` periods
    simulated from each posterior draw, so parameter uncertainty is in the tail.

    ``exposure``: next period's exposure per class, ``(C,)`` in ``portfolio.classes``
    order or ``{label: exposure}``; by default each class's typical period
    (``Portfolio.typical_exposure``). VaR and TVaR of all simulated periods by
    ``wager.risk.tail.chain_tail_summary``: their standard errors allow for the
    periods of one posterior draw sharing its parameters and for the draws coming
    from Markov chains.
    """
    level = check_level(level)
    if not isinstance(per_draw, (int, np.integer)) or per_draw < 1:
        raise SpecError("per_draw", f"must be a positive integer, got {per_draw!r}")
    e = next_exposure(portfolio, exposure)
    params = ClaimParameters.from_draws(posterior)
    by_class = simulate_aggregate(params.repeat(per_draw), e, rng, max_claims=max_claims)
    total = by_class.sum(axis=1)
    phi = np.asarray(posterior["concentration"])
    summary = chain_tail_summary(total.reshape(phi.shape[0] if phi.ndim > 1 else 1, -1, per_draw), level)  # (chains, draws, periods)
    method = f"predictive: {per_draw} simulated periods per posterior draw ({params.concentration.size} draws)"
    return AggregateLoss.of(portfolio, e, by_class, summary, method)


def aggregate_plug_in(
    point: ClaimParameters,
    portfolio: Portfolio,
    rng: np.random.Generator,
    *,
    exposure: Any = None,
    level: float = 0.995,
    periods: int = 100_000,
    max_claims: int = MAX_CLAIMS,
) -> AggregateLoss:
    """Next period's total claims with the parameters fixed at ``point`` (one set,
    e.g. ``posterior_medians``): ``periods`` independent periods; VaR and TVaR and
    their standard errors from ``tail_summary``."""
    level = check_level(level)
    if point.concentration.size != 1:
        raise SpecError("point", f"must be one parameter set, got {point.concentration.size}")
    if not isinstance(periods, (int, np.integer)) or periods < 2:
        raise SpecError("periods", f"must be an integer >= 2, got {periods!r}")
    e = next_exposure(portfolio, exposure)
    by_class = simulate_aggregate(point.repeat(periods), e, rng, max_claims=max_claims)
    total = by_class.sum(axis=1)
    return AggregateLoss.of(portfolio, e, by_class, tail_summary(total, level), f"plug-in: {periods} simulated periods at fixed parameters")


def simulate_aggregate(
    params: ClaimParameters, exposure: np.ndarray, rng: np.random.Generator, *, max_claims: int = MAX_CLAIMS
) -> np.ndarray:
    """Total claim amount per period and class ``(S, C)``, one period per parameter set.

    ``N_sc ~ NB2(exposure_c rate_sc, phi_s)`` (NumPy's ``negative_binomial(phi,
    phi / (phi + mean))``), then ``N_sc`` amounts ``exp(m_sc + sigma_s eps)`` summed,
    in blocks of periods holding at most ``max_claims`` claims (a single period with
    more is simulated alone).
    """
    if not isinstance(max_claims, (int, np.integer)) or max_claims < 1:
        raise SpecError("max_claims", f"must be a positive integer, got {max_claims!r}")
    mean = exposure * params.rate
    phi = params.concentration[:, None]
    counts = rng.negative_binomial(phi, phi / (phi + mean))
    n_classes = mean.shape[1]
    totals = np.zeros(mean.shape)
    cumulative = np.cumsum(counts.sum(axis=1))
    start = 0
    while start < counts.shape[0]:
        before = cumulative[start - 1] if start else 0
        stop = max(start + 1, int(np.searchsorted(cumulative, before + max_claims, side="right")))
        n = counts[start:stop].ravel()
        cell = np.repeat(np.arange(n.size), n)
        loc = params.severity_loc[start:stop].ravel()[cell]
        scale = np.repeat(params.severity_sigma[start:stop], n_classes)[cell]
        amounts = np.exp(loc + scale * rng.standard_normal(cell.size))
        totals[start:stop] = np.bincount(cell, weights=amounts, minlength=n.size).reshape(-1, n_classes)
        start = stop
    return totals


def next_exposure(portfolio: Portfolio, exposure: Any = None) -> np.ndarray:
    """Next period's exposure per class ``(C,)``: ``None`` (each class's typical period),
    an array in ``portfolio.classes`` order, or ``{label: exposure}`` naming every class."""
    if exposure is None:
        return portfolio.typical_exposure()
    if isinstance(exposure, Mapping):
        missing = [c for c in portfolio.classes if c not in exposure]
        extra = [c for c in exposure if c not in portfolio.classes]
        if missing or extra:
            raise SpecError("exposure", f"must name every class once; missing {missing!r}, unknown {extra!r}")
        exposure = [exposure[c] for c in portfolio.classes]
    e = finite_numbers(exposure, "exposure")
    if e.size != portfolio.n_classes:
        raise SpecError("exposure", f"needs one value per class ({portfolio.n_classes}), got {e.size}")
    if np.any(e <= 0):
        raise SpecError("exposure", "next period's exposure must be > 0 for every class")
    return e
