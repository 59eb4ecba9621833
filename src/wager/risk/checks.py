"""Posterior checks of the risk models, the ``predictive`` step of ``wager validate``.

The shared check replicates a model's observed sites; the risk models write
their likelihoods as factors (GARCH's variance recursion) or over masked
cells (the triangle), or are judged on data they were not fitted to (the
held-out applicants), so each task checks itself with one of these:

* ``loo_pit``: leave-one-out probability integral transforms from each
  observation's log-likelihood ``log p(y_i | theta_s)`` and predictive CDF
  ``F_s(y_i)`` at every posterior draw (``wager.kernel.calibration.loo_pit``,
  which the shared check uses too). When the model's conditional distributions
  are right the ``PIT_i`` are uniform on (0, 1); the ECDF simultaneous band
  tests that at level ``alpha``.
* ``binned_calibration``: binary outcomes not used in the fit, grouped by the
  posterior mean probability into equal-count bins; each bin's count of
  events against its posterior predictive distribution (events simulated from
  every draw's probabilities), ``ppp = P(O_rep > O) + P(O_rep = O) / 2``,
  flagged in the outer ``alpha / 2`` tails, Bonferroni over the bins.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from wager.kernel import calibration
from wager.kernel.calibration import LooPit
from wager.kernel.posterior import Posterior

ALPHA = 0.01
"""Family-wise level of each check (as the shared posterior predictive check)."""
MAX_DRAWS = 1000
"""Posterior draws a check reads (evenly thinned): ppp-values to within about 0.016."""


def thinned(draws: int, limit: int = MAX_DRAWS) -> np.ndarray:
    """Indices of at most ``limit`` of ``draws`` pooled draws, evenly spaced."""
    return np.unique(np.linspace(0, draws - 1, min(limit, draws)).round().astype(int))


def thinned_draws(posterior: Posterior, names: Sequence[str] | None = None, limit: int = MAX_DRAWS) -> dict[str, np.ndarray]:
    """``names`` (default: every variable) with chains pooled, thinned evenly to at most ``limit`` draws."""
    keep = thinned(posterior.chains * posterior.draws_per_chain, limit)
    return {name: posterior.flat(name)[keep] for name in (names if names is not None else posterior.draws)}


@dataclass(frozen=True)
class PitCheck:
    """The LOO-PIT values of ``what`` and their uniformity test (``pit``)."""

    what: str
    pit: LooPit

    @property
    def passed(self) -> bool:
        return self.pit.passed

    def lines(self) -> list[str]:
        return [f"Posterior predictive check: {'the model reproduces' if self.passed else 'the model does NOT reproduce'} {self.what}.",
                "  " + self.pit.line(self.what)]

    def to_json(self) -> dict[str, Any]:
        """``loo_pit`` as the shared check records it (the HTML report plots its values)."""
        return {"kind": "loo_pit", "what": self.what, "passed": self.passed, "loo_pit": self.pit.to_json()}


def loo_pit(log_lik: np.ndarray, cdf: np.ndarray, what: str, alpha: float = ALPHA) -> PitCheck:
    """LOO-PIT of ``n`` observations (``what``) from ``log_lik`` and ``cdf``, both ``(draws, n)``:
    each observation's log-likelihood and predictive CDF at it, per posterior draw."""
    return PitCheck(what=what, pit=calibration.loo_pit(log_lik, cdf, alpha))


@dataclass(frozen=True)
class CalibrationBin:
    """Outcomes whose posterior mean probability lies in ``[low, high]``: how many, how
    many events happened, how many the model expects, and the predictive p-value."""

    low: float
    high: float
    size: int
    observed: int
    expected: float
    ppp: float
    flagged: bool

    def to_json(self) -> dict[str, Any]:
        return {"low": self.low, "high": self.high, "size": self.size, "observed": self.observed, "expected": self.expected,
                "ppp": self.ppp, "flagged": self.flagged}


@dataclass(frozen=True)
class CalibrationCheck:
    """``binned_calibration``'s verdict on ``what``."""

    what: str
    bins: tuple[CalibrationBin, ...]
    draws: int
    alpha: float

    @property
    def passed(self) -> bool:
        return not any(b.flagged for b in self.bins)

    def lines(self) -> list[str]:
        head = "the model's probabilities are calibrated on" if self.passed else "the model's probabilities are NOT calibrated on"
        out = [f"Held-out calibration: {head} {self.what} ({len(self.bins)} bins by predicted probability, {self.draws} posterior draws)."]
        for b in self.bins:
            mark = "FLAGGED " if b.flagged else ""
            out.append(f"  {mark}p in [{b.low:.3g}, {b.high:.3g}]: {b.observed} of {b.size} against {b.expected:.3g} expected; "
                       f"predictive p-value {b.ppp:.3f}")
        return out

    def to_json(self) -> dict[str, Any]:
        return {"kind": "calibration", "what": self.what, "passed": self.passed, "draws": self.draws, "alpha": self.alpha,
                "bins": [b.to_json() for b in self.bins]}


def binned_calibration(
    p_draws: np.ndarray, outcome: np.ndarray, rng: np.random.Generator, what: str, bins: int = 10, alpha: float = ALPHA
) -> CalibrationCheck:
    """Events ``outcome`` ``(n,)`` (0/1) against the posterior predictive of the
    probabilities ``p_draws`` ``(draws, n)``, in ``bins`` equal-count bins of the
    posterior mean probability (fewer when ``n`` is small)."""
    p = np.asarray(p_draws, dtype=float)
    y = np.asarray(outcome).astype(bool)
    p = p[thinned(p.shape[0])]
    p_mean = p.mean(axis=0)
    order = np.argsort(p_mean, kind="stable")
    groups = [g for g in np.array_split(order, min(bins, y.size)) if g.size]
    per_test = alpha / len(groups)
    out = []
    for g in groups:
        replicated = (rng.random((p.shape[0], g.size)) < p[:, g]).sum(axis=1)
        observed = int(y[g].sum())
        ppp = float(np.mean(replicated > observed) + 0.5 * np.mean(replicated == observed))
        out.append(CalibrationBin(
            low=float(p_mean[g].min()), high=float(p_mean[g].max()), size=int(g.size), observed=observed,
            expected=float(p_mean[g].sum()), ppp=ppp, flagged=min(ppp, 1 - ppp) < per_test / 2,
        ))
    return CalibrationCheck(what=what, bins=tuple(out), draws=int(p.shape[0]), alpha=alpha)


@dataclass(frozen=True)
class AllOf:
    """Several checks of one posterior: passed when every one is."""

    checks: tuple[Any, ...]

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks)

    def lines(self) -> list[str]:
        return [line for c in self.checks for line in c.lines()]

    def to_json(self) -> dict[str, Any]:
        return {"kind": "all_of", "passed": self.passed, "checks": [c.to_json() for c in self.checks]}
