"""Forecasts into orders and capacity.

Newsvendor. Ordering ``q`` against demand ``D`` costs ``under`` per unit short
and ``over`` per unit left over: ``C(q, D) = under (D - q)+ + over (q - D)+``.
``E[C(q, D)]`` is convex in ``q`` with derivative ``over F(q) - under (1 -
F(q))``, so the order that minimises it is the critical-fractile quantile
``F^-1(under / (under + over))`` (Arrow, Harris & Marschak 1951). Over the
predictive sample paths ``F`` is their empirical distribution, whose exact
minimiser is the order statistic ``inverted_cdf`` picks (interpolating between
two order statistics would leave the minimum).

Capacity. Capacity ``c`` at tail level ``p`` is the predictive ``p``-quantile:
demand exceeds it with probability at most ``1 - p``. Its expected cost is
``unit_cost * c + shortage_cost * E[(D - c)+]``, and the expected unmet demand
and the probability of exceeding it are reported beside it.

Both work on paths shaped ``(draws, ...)`` and return one answer per trailing
index (series x horizon), with the Monte Carlo standard error of each expected
cost (draws treated as independent: forecast paths come one per posterior
draw, after thinning to roughly independent draws).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from wager.errors import SpecError
from wager.kernel.diagnostics import chain_mean_se


@dataclass(frozen=True)
class Orders:
    """Newsvendor orders: ``quantity``, ``expected_cost`` and its ``cost_se``
    per trailing index; ``fractile`` the critical fractile used."""

    quantity: np.ndarray
    expected_cost: np.ndarray
    cost_se: np.ndarray
    fractile: float


@dataclass(frozen=True)
class Capacity:
    level: float
    capacity: np.ndarray
    expected_cost: np.ndarray
    cost_se: np.ndarray
    expected_shortfall: np.ndarray
    exceed_probability: np.ndarray


def critical_fractile(under: float, over: float) -> float:
    """``under / (under + over)``, after checking both costs are positive and finite."""
    for name, cost in (("under", under), ("over", over)):
        if not (np.isfinite(cost) and cost > 0):
            raise SpecError(f"decision.{name}", f"cost per unit must be a finite number > 0; got {cost!r}")
    return under / (under + over)


def newsvendor_cost(q: np.ndarray, demand: np.ndarray, under: float, over: float) -> np.ndarray:
    """Cost of ordering ``q`` for each demand draw, shape of ``demand``."""
    return under * np.maximum(demand - q, 0.0) + over * np.maximum(q - demand, 0.0)


def newsvendor(paths: np.ndarray, under: float, over: float, chains: int | None = None) -> Orders:
    """The order minimising expected cost for each trailing index of ``paths``
    (``chains``: the paths come from that many Markov chains, chain after chain)."""
    fractile = critical_fractile(under, over)
    demand = _draws(paths)
    quantity = np.quantile(demand, fractile, axis=0, method="inverted_cdf")
    cost = newsvendor_cost(quantity[None], demand, under, over)
    return Orders(quantity=quantity, expected_cost=cost.mean(axis=0), cost_se=_se(cost, chains), fractile=fractile)


def capacity(paths: np.ndarray, level: float, unit_cost: float = 0.0, shortage_cost: float = 0.0, chains: int | None = None) -> Capacity:
    """Capacity at the ``level`` quantile of demand, with its expected cost (``chains``
    as in ``newsvendor``)."""
    if not (0.5 <= level < 1):
        raise SpecError("decision.level", f"capacity is set at a tail quantile in [0.5, 1); got {level!r}")
    for name, cost in (("unit_cost", unit_cost), ("shortage_cost", shortage_cost)):
        if not (np.isfinite(cost) and cost >= 0):
            raise SpecError(f"decision.{name}", f"must be a finite number >= 0; got {cost!r}")
    demand = _draws(paths)
    c = np.quantile(demand, level, axis=0, method="inverted_cdf")
    short = np.maximum(demand - c[None], 0.0)
    cost = unit_cost * c[None] + shortage_cost * short
    return Capacity(
        level=level,
        capacity=c,
        expected_cost=cost.mean(axis=0),
        cost_se=_se(cost, chains),
        expected_shortfall=short.mean(axis=0),
        exceed_probability=(demand > c[None]).mean(axis=0),
    )


def _draws(paths: np.ndarray) -> np.ndarray:
    demand = np.asarray(paths, dtype=float)
    if demand.ndim < 1 or demand.shape[0] < 2:
        raise SpecError("paths", "need at least two predictive draws")
    if not np.isfinite(demand).all():
        raise SpecError("paths", "predictive draws hold a non-finite value")
    return demand


def _se(cost: np.ndarray, chains: int | None) -> np.ndarray:
    """The Monte Carlo error of the mean cost: independent draws, or ``chains`` Markov
    chains through their effective sample size (0 where the cost is constant)."""
    independent = cost.std(axis=0, ddof=1) / np.sqrt(cost.shape[0])
    if chains is None:
        return independent
    se = chain_mean_se(cost, chains)
    return np.where(np.isfinite(se), se, independent)
