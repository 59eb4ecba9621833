"""Backtesting Value-at-Risk forecasts against the losses that followed.

Day ``t`` is an exception (a hit, ``I_t = 1``) when its realised loss exceeds
that day's VaR forecast at coverage ``level``; an accurate forecast is
exceeded on a fraction ``p = 1 - level`` of days, independently from day to
day. Losses are positive when bad (pass ``-returns`` for returns). ``n`` days,
``x`` exceptions.

Unconditional coverage, Kupiec (1995) proportion of failures::

    LR_pof = -2 ln[(1 - p)^(n - x) p^x] + 2 ln[(1 - x/n)^(n - x) (x/n)^x]  ~ chi2(1)

Independence, Christoffersen (1998). ``n_ij`` counts days in state ``j``
after a day in state ``i``; ``pi_01 = n01 / (n00 + n01)``,
``pi_11 = n11 / (n10 + n11)``, ``pi = (n01 + n11) / (n - 1)``::

    LR_ind = -2 ln[(1 - pi)^(n00 + n10) pi^(n01 + n11)]
             + 2 ln[(1 - pi_01)^n00 pi_01^n01 (1 - pi_11)^n10 pi_11^n11]  ~ chi2(1)

Conditional coverage ``LR_cc = LR_pof + LR_ind ~ chi2(2)`` (Christoffersen
1998, in the additive form of Jorion's *Value at Risk*, which conditions on
the first day). Throughout ``0 ln 0 = 0``, so no exceptions, all exceptions
and no day after an exception give finite statistics. Chi-square p-values are
asymptotic: with a few hundred days at 99% they are rough.

Basel traffic light (Basel Committee on Banking Supervision 1996,
"Supervisory framework for the use of 'backtesting' in conjunction with the
internal models approach to market risk capital requirements"): with
``X ~ Binomial(n, 1 - level)``, ``x`` exceptions are green when
``P(X <= x) < 0.95``, yellow when ``< 0.9999``, red otherwise; at 250 days and
99% that is green 0-4, yellow 5-9, red 10 or more.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, NamedTuple

import numpy as np
from numpy.typing import ArrayLike
from scipy import stats
from scipy.special import xlogy

from wager.errors import SpecError

Zone = Literal["green", "yellow", "red"]


class LikelihoodRatio(NamedTuple):
    """A likelihood-ratio test: ``statistic``, its chi-square ``p_value`` with ``df`` degrees of freedom."""

    statistic: float
    p_value: float
    df: int


@dataclass(frozen=True)
class BacktestResult:
    """One backtest: counts, the three likelihood-ratio tests and the Basel zone."""

    level: float
    n_days: int
    n_exceptions: int
    expected_exceptions: float
    pof: float
    pof_p_value: float
    independence: float
    independence_p_value: float
    conditional_coverage: float
    conditional_coverage_p_value: float
    zone: Zone


def exceptions(losses: ArrayLike, var_forecasts: ArrayLike) -> np.ndarray:
    """Boolean hits, shape ``(n,)``: ``losses[t] > var_forecasts[t]``."""
    loss = _series(losses, "losses")
    v = _series(var_forecasts, "var")
    if loss.shape != v.shape:
        raise SpecError("var", f"need one VaR forecast per day: {v.size} forecasts for {loss.size} losses")
    return loss > v


def kupiec(hits: ArrayLike, level: float) -> LikelihoodRatio:
    """Kupiec's proportion-of-failures test of ``x / n`` against ``1 - level``."""
    p = 1 - _level(level)
    h = _hits(hits)
    n, x = h.size, int(h.sum())
    stat = -2 * _bernoulli_loglik(x, n, p) + 2 * _bernoulli_loglik(x, n, x / n)
    return _lr(stat, df=1)


def christoffersen(hits: ArrayLike) -> LikelihoodRatio:
    """Christoffersen's test that an exception today does not change tomorrow's odds."""
    h = _hits(hits)
    if h.size < 2:
        raise SpecError("hits", "need at least two days to count transitions")
    n00, n01, n10, n11 = transition_counts(h)
    markov = _bernoulli_loglik(n01, n00 + n01) + _bernoulli_loglik(n11, n10 + n11)
    iid = _bernoulli_loglik(n01 + n11, n00 + n01 + n10 + n11)
    return _lr(2 * (markov - iid), df=1)


def conditional_coverage(hits: ArrayLike, level: float) -> LikelihoodRatio:
    """Christoffersen's joint test of coverage and independence, ``LR_pof + LR_ind``."""
    stat = kupiec(hits, level).statistic + christoffersen(hits).statistic
    return _lr(stat, df=2)


def transition_counts(hits: ArrayLike) -> tuple[int, int, int, int]:
    """``(n00, n01, n10, n11)``: days in state ``j`` after a day in state ``i``."""
    h = _hits(hits).astype(int)
    pair = 2 * h[:-1] + h[1:]  # 0: 0->0, 1: 0->1, 2: 1->0, 3: 1->1
    n00, n01, n10, n11 = np.bincount(pair, minlength=4).tolist()
    return n00, n01, n10, n11


def basel_zone(n_exceptions: int, n_days: int = 250, level: float = 0.99) -> Zone:
    """The Basel traffic-light zone of ``n_exceptions`` in ``n_days`` at coverage ``level``."""
    level = _level(level)
    if not (isinstance(n_days, (int, np.integer)) and n_days > 0):
        raise SpecError("n_days", f"must be a whole number of days > 0; got {n_days!r}")
    if not (isinstance(n_exceptions, (int, np.integer)) and 0 <= n_exceptions <= n_days):
        raise SpecError("n_exceptions", f"must be a whole number between 0 and n_days = {n_days}; got {n_exceptions!r}")
    cumulative = stats.binom.cdf(n_exceptions, n_days, 1 - level)
    if cumulative < 0.95:
        return "green"
    if cumulative < 0.9999:
        return "yellow"
    return "red"


def backtest(losses: ArrayLike, var_forecasts: ArrayLike, level: float) -> BacktestResult:
    """Exceptions of ``var_forecasts`` by ``losses``, the three tests and the zone."""
    level = _level(level)
    hits = exceptions(losses, var_forecasts)
    pof, ind, cc = kupiec(hits, level), christoffersen(hits), conditional_coverage(hits, level)
    n, x = hits.size, int(hits.sum())
    return BacktestResult(
        level=level,
        n_days=n,
        n_exceptions=x,
        expected_exceptions=n * (1 - level),
        pof=pof.statistic,
        pof_p_value=pof.p_value,
        independence=ind.statistic,
        independence_p_value=ind.p_value,
        conditional_coverage=cc.statistic,
        conditional_coverage_p_value=cc.p_value,
        zone=basel_zone(x, n, level),
    )


def _bernoulli_loglik(k: int, n: int, q: float | None = None) -> float:
    """``k ln q + (n - k) ln(1 - q)``, ``q = k / n`` by default, ``0 ln 0 = 0`` (and 0 when ``n = 0``)."""
    if n == 0:
        return 0.0
    q = k / n if q is None else q
    return float(xlogy(k, q) + xlogy(n - k, 1 - q))


def _lr(stat: float, df: int) -> LikelihoodRatio:
    stat = max(float(stat), 0.0)  # a fitted likelihood never loses to the null; below 0 is rounding
    return LikelihoodRatio(statistic=stat, p_value=float(stats.chi2.sf(stat, df)), df=df)


def _level(level: float) -> float:
    if not (isinstance(level, (int, float, np.floating)) and 0 < level < 1):
        raise SpecError("level", f"must be a coverage probability strictly between 0 and 1; got {level!r}")
    return float(level)


def _series(values: ArrayLike, field: str) -> np.ndarray:
    x = np.asarray(values, dtype=float)
    if x.ndim != 1 or x.size == 0:
        raise SpecError(field, f"must be a non-empty one-dimensional series of days; got shape {x.shape}")
    bad = np.flatnonzero(~np.isfinite(x))
    if bad.size:
        raise SpecError(field, f"must not contain NaN or infinite values; {bad.size} found, the first on day {int(bad[0])}")
    return x


def _hits(hits: ArrayLike) -> np.ndarray:
    h = np.asarray(hits)
    if h.ndim != 1 or h.size == 0:
        raise SpecError("hits", f"must be a non-empty one-dimensional series of days; got shape {h.shape}")
    if h.dtype != bool:
        if not np.isin(h, (0, 1)).all():
            raise SpecError("hits", "must be booleans or 0/1 (1 = the loss exceeded the VaR)")
        h = h.astype(bool)
    return h
