"""Value-at-Risk and Tail Value-at-Risk of a loss distribution, from its draws.

Losses are positive when bad (pass ``-returns`` for returns), in the units of
the draws. ``losses`` is shaped ``(draws, ...)``; every result is shaped
``losses.shape[1:]`` (a NumPy scalar for one-dimensional losses).

VaR. ``VaR_p`` is the ``p``-quantile of the loss, read as the order statistic
``inverted_cdf`` picks: the smallest draw ``x`` with ``F_S(x) >= p``, ``F_S``
the empirical distribution of the ``S`` draws. Its Monte Carlo standard error
is half the distance between the quantiles ``sqrt(p (1 - p) / S)`` either side
of ``p`` in probability: the binomial spread of the empirical CDF at the
quantile, carried through the quantile function.

TVaR (expected shortfall). ``TVaR_p = VaR_p + E[(L - VaR_p)+] / (1 - p)``
(Rockafellar & Uryasev 2002), the mean loss beyond ``VaR_p`` for a continuous
loss. Evaluated at the sample VaR it is the mean over the draws of
``z = VaR_p + (L - VaR_p)+ / (1 - p)``, which equals the expected shortfall of
the empirical distribution, ``(1 / (1 - p)) * integral_p^1 Q_S(u) du``
(Acerbi & Tasche 2002); with ``S p`` whole it is the mean of the largest
``S (1 - p)`` draws. Its Monte Carlo standard error is the standard error of
the mean of ``z``, ``sd(z) / sqrt(S)``, whose square is
``[Var(L | L > VaR) + p (TVaR - VaR)^2] / (S (1 - p))``. The VaR's own error
does not add to it at first order: the Rockafellar-Uryasev objective is
stationary at the VaR, so adding the VaR's standard error would double count.

``tail_summary`` treats the draws as independent. Losses simulated from Markov
chain (NUTS) draws are not: successive posterior draws are autocorrelated, and
the ``per_draw`` losses simulated from one draw share its parameters.
``chain_tail_summary`` takes them shaped ``(chains, draws, per_draw)`` and
carries the dependence through the chains' effective sample size (ArviZ's,
``wager.kernel.diagnostics.mcse_mean``) of two per-draw means: the share ``g``
of a draw's losses at or below the VaR, whose MCSE is the standard error of
the empirical CDF at the VaR (the ``d`` of the VaR rule above, in place of
``sqrt(p (1 - p) / S)``); and the mean of ``z`` over a draw's losses, whose
MCSE is the TVaR's. For a chain whose lag-``k`` autocorrelation is ``rho^k``,
both errors are ``sqrt((1 + rho) / (1 - rho))`` times the independent ones.

The estimates need ``S (1 - p)`` well above one draw in the tail; fewer than
one is refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from wager.errors import SpecError
from wager.kernel.diagnostics import mcse_mean, quantile_se


@dataclass(frozen=True)
class TailSummary:
    """VaR and TVaR at ``level`` with their Monte Carlo standard errors, in
    loss units, each shaped ``losses.shape[1:]``."""

    level: float
    var: np.ndarray
    var_se: np.ndarray
    tvar: np.ndarray
    tvar_se: np.ndarray


def var(losses: ArrayLike, level: float) -> tuple[np.ndarray, np.ndarray]:
    """``(VaR_level, its MCSE)`` along axis 0 of ``losses``."""
    x = _losses(losses, level)
    return _var(x, level), quantile_se(x, level)


def tvar(losses: ArrayLike, level: float) -> tuple[np.ndarray, np.ndarray]:
    """``(TVaR_level, its MCSE)`` along axis 0 of ``losses``."""
    x = _losses(losses, level)
    return _tvar(x, level, _var(x, level))


def tail_summary(losses: ArrayLike, level: float) -> TailSummary:
    """VaR and TVaR at ``level`` with their standard errors, one quantile pass."""
    x = _losses(losses, level)
    v = _var(x, level)
    t, t_se = _tvar(x, level, v)
    return TailSummary(level=level, var=v, var_se=quantile_se(x, level), tvar=t, tvar_se=t_se)


def chain_tail_summary(losses: ArrayLike, level: float) -> TailSummary:
    """VaR and TVaR at ``level`` of losses simulated from Markov chain draws, with
    standard errors through the chains' effective sample size.

    ``losses`` is ``(chains, draws)`` (one loss per posterior draw) or ``(chains,
    draws, per_draw)`` (``per_draw`` losses simulated from each draw), chains in
    order; the estimates are ``tail_summary``'s over all of them, scalars. Where a
    per-draw mean is constant (no MCSE to estimate), its error falls back to the
    independent one.
    """
    x = np.asarray(losses, dtype=float)
    if x.ndim not in (2, 3):
        raise SpecError("losses", f"must be shaped (chains, draws) or (chains, draws, per_draw), got {x.shape}")
    per = x.reshape(x.shape[0], x.shape[1], -1)
    flat = _losses(per.ravel(), level)
    v = _var(flat, level)
    t, t_se = _tvar(flat, level, v)
    cdf_se = mcse_mean((per <= v).mean(axis=-1), independent=False)
    z_se = mcse_mean((v + np.maximum(per - v, 0.0) / (1 - level)).mean(axis=-1), independent=False)
    return TailSummary(
        level=level,
        var=v,
        var_se=quantile_se(flat, level, cdf_se) if cdf_se > 0 else quantile_se(flat, level),
        tvar=t,
        tvar_se=np.asarray(z_se) if z_se > 0 else t_se,
    )


def check_level(level: Any) -> float:
    """A tail level in (0, 1) as a float (a number or numeric text), e.g. 0.99 or 0.995,
    or ``SpecError("level", ...)``."""
    try:
        value = float(level)
    except (TypeError, ValueError):
        raise SpecError("level", f"must be a number in (0, 1), got {level!r}") from None
    if not 0.0 < value < 1.0:
        raise SpecError("level", f"must be in (0, 1) (e.g. 0.99 or 0.995), got {level}")
    return value


def _var(x: np.ndarray, level: float) -> np.ndarray:
    return np.quantile(x, level, axis=0, method="inverted_cdf")


def _tvar(x: np.ndarray, level: float, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    z = v + np.maximum(x - v, 0.0) / (1 - level)
    return z.mean(axis=0), z.std(axis=0, ddof=1) / np.sqrt(x.shape[0])


def _losses(losses: ArrayLike, level: float) -> np.ndarray:
    if not (isinstance(level, (int, float, np.floating)) and 0 < level < 1):
        raise SpecError("level", f"must be a probability strictly between 0 and 1; got {level!r}")
    x = np.asarray(losses, dtype=float)
    if x.ndim < 1 or x.shape[0] < 2:
        raise SpecError("losses", "need at least two draws along axis 0")
    if not np.isfinite(x).all():
        raise SpecError("losses", f"must be finite; {int((~np.isfinite(x)).sum())} draw(s) are NaN or infinite")
    if x.shape[0] * (1 - level) < 1:
        raise SpecError(
            "losses",
            f"{x.shape[0]} draws leave less than one draw beyond the {level:g} quantile; "
            f"need at least {int(np.ceil(1 / (1 - level)))}",
        )
    return x
