"""The cost-optimal threshold for declining applicants from their probabilities
of default (or fraud).

An applicant with default probability ``p`` is flagged (declined) when
``p > t``. "Positive" is a predicted default: declining a good applicant is a
false positive and costs ``c_fp``; approving one who defaults is a false
negative and costs ``c_fn`` (both in money per applicant, both > 0). Flagging
costs ``(1 - p) c_fp`` in expectation and approving ``p c_fn``, so for
calibrated probabilities the Bayes rule flags when ``p > c_fp / (c_fp + c_fn)``
and its expected cost per applicant is ``mean(min(p c_fn, (1 - p) c_fp))``
(Elkan 2001).

Two costs per applicant at a threshold ``t``, over ``n`` applicants:

- realised, on labelled data ``y`` (1 = defaulted)::

      C(t) = (1/n) sum_i [c_fp (1 - y_i) 1{p_i > t} + c_fn y_i 1{p_i <= t}]

- model-expected, trusting ``p`` to be calibrated::

      E(t) = (1/n) sum_i [c_fn p_i 1{p_i <= t} + c_fp (1 - p_i) 1{p_i > t}]

``optimal_threshold`` takes posterior draws of the probabilities, shaped
``(draws, applicants)``, and reads everything from the realised cost ``C_s(t)``
of draw ``s`` on the labelled data; see its docstring.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from wager.errors import SpecError
from wager.kernel.diagnostics import mcse_mean


@dataclass(frozen=True)
class ThresholdChoice:
    """What ``optimal_threshold`` found; costs are per applicant, in the costs' units.

    ``thresholds``: the realised-cost-minimising grid threshold of each draw,
    shape ``(draws,)``; ``threshold_mean`` and ``threshold_interval`` (5% and
    95% quantiles) summarise them. ``cost_at_bayes`` and ``cost_at_half`` are
    the posterior mean realised costs at ``bayes_threshold`` and at 0.5, with
    Monte Carlo standard errors; ``saving = cost_at_half - cost_at_bayes`` is
    their paired difference, with its own standard error.
    """

    bayes_threshold: float
    thresholds: np.ndarray
    threshold_mean: float
    threshold_interval: tuple[float, float]
    cost_at_bayes: float
    cost_at_bayes_se: float
    cost_at_half: float
    cost_at_half_se: float
    saving: float
    saving_se: float


def bayes_threshold(c_fp: float, c_fn: float) -> float:
    """``c_fp / (c_fp + c_fn)``: flag applicants whose default probability exceeds it."""
    _costs(c_fp, c_fn)
    return c_fp / (c_fp + c_fn)


def expected_cost(p: ArrayLike, y: ArrayLike, threshold: float, c_fp: float, c_fn: float) -> float:
    """Realised cost per applicant ``C(t)`` of flagging ``p > threshold`` on labels ``y``."""
    _costs(c_fp, c_fn)
    prob = _probabilities(p, "p")
    if prob.ndim != 1:
        raise SpecError("p", f"must be one probability per applicant; got shape {prob.shape}")
    label = _labels(y, prob.size)
    t = _threshold(threshold)
    flag = prob > t
    return float(np.mean(c_fp * (flag & ~label) + c_fn * (~flag & label)))


def expected_cost_model(p: ArrayLike, threshold: float, c_fp: float, c_fn: float) -> float:
    """Model-expected cost per applicant ``E(t)`` of flagging ``p > threshold``."""
    _costs(c_fp, c_fn)
    prob = _probabilities(p, "p")
    t = _threshold(threshold)
    flag = prob > t
    return float(np.mean(np.where(flag, c_fp * (1 - prob), c_fn * prob)))


def optimal_threshold(
    p_draws: ArrayLike,
    y: ArrayLike,
    c_fp: float,
    c_fn: float,
    grid: ArrayLike | None = None,
    chains: int | None = None,
) -> ThresholdChoice:
    """The posterior distribution of the empirically optimal threshold, and what
    the Bayes threshold saves over 0.5.

    For each posterior draw ``s`` of the probabilities (row of ``p_draws``,
    shape ``(draws, applicants)``; a one-dimensional array is a single draw,
    i.e. plug-in probabilities) the realised cost ``C_s(t)`` on the labels
    ``y`` is computed at every point of ``grid`` (default 0, 0.001, ..., 1);
    ``t*_s`` is its minimiser, the lowest grid point where several tie
    (``C_s`` is a step function). The ``t*_s`` are the posterior draws of the
    threshold that would have been best on these applicants.

    ``C_s`` at the Bayes threshold and at 0.5 are averaged over draws; their
    Monte Carlo standard errors are ``sd_s / sqrt(S)`` for independent draws (0
    for a single draw, i.e. plug-in probabilities); with ``chains`` given, the
    rows are that many Markov chains in order and the errors go through their
    effective sample size (``wager.kernel.diagnostics.mcse_mean``). They cover
    the posterior's Monte Carlo error only: the applicants and labels are held
    fixed, so they say nothing of how the cost would vary on new applicants.
    """
    bayes = bayes_threshold(c_fp, c_fn)
    prob = _probabilities(p_draws, "p_draws")
    if prob.ndim == 1:
        prob = prob[None]
    if prob.ndim != 2:
        raise SpecError("p_draws", f"must be shaped (draws, applicants); got shape {prob.shape}")
    if chains is not None and not (isinstance(chains, (int, np.integer)) and chains >= 1 and prob.shape[0] % chains == 0):
        raise SpecError("chains", f"must be a positive integer dividing the {prob.shape[0]} draws; got {chains!r}")
    label = _labels(y, prob.shape[1])
    points = _grid(grid)
    curves = _realised_costs(prob, label, points, c_fp, c_fn)  # (draws, grid)
    best = points[np.argmin(curves, axis=1)]
    at_bayes = _realised_costs(prob, label, np.array([bayes]), c_fp, c_fn)[:, 0]
    at_half = _realised_costs(prob, label, np.array([0.5]), c_fp, c_fn)[:, 0]
    lo, hi = np.quantile(best, [0.05, 0.95])
    return ThresholdChoice(
        bayes_threshold=bayes,
        thresholds=best,
        threshold_mean=float(best.mean()),
        threshold_interval=(float(lo), float(hi)),
        cost_at_bayes=float(at_bayes.mean()),
        cost_at_bayes_se=_se(at_bayes, chains),
        cost_at_half=float(at_half.mean()),
        cost_at_half_se=_se(at_half, chains),
        saving=float((at_half - at_bayes).mean()),
        saving_se=_se(at_half - at_bayes, chains),
    )


def _realised_costs(prob: np.ndarray, label: np.ndarray, points: np.ndarray, c_fp: float, c_fn: float) -> np.ndarray:
    """``C_s(t)`` for every draw and sorted grid point, shape ``(draws, grid)``.

    Counting instead of comparing every probability with every grid point: with
    ``j`` the number of grid points below ``p``, ``p > points[k]`` iff ``k < j``.
    """
    draws, n = prob.shape
    g = points.size
    j = np.searchsorted(points, prob, side="left") + (g + 1) * np.arange(draws)[:, None]

    def per_slot(mask: np.ndarray) -> np.ndarray:
        return np.bincount(j[:, mask].ravel(), minlength=draws * (g + 1)).reshape(draws, g + 1)

    below_good, below_bad = np.cumsum(per_slot(~label), axis=1), np.cumsum(per_slot(label), axis=1)
    declined_good = below_good[:, -1:] - below_good[:, :g]  # good applicants with p > t
    approved_bad = below_bad[:, :g]  # defaulters with p <= t
    return (c_fp * declined_good + c_fn * approved_bad) / n


def _se(values: np.ndarray, chains: int | None) -> float:
    if values.size < 2:
        return 0.0
    if chains is None:
        return float(values.std(ddof=1) / np.sqrt(values.size))
    return mcse_mean(values.reshape(chains, -1), independent=False)


def _costs(c_fp: float, c_fn: float) -> None:
    for field, cost in (("costs.false_positive", c_fp), ("costs.false_negative", c_fn)):
        if not (isinstance(cost, (int, float, np.integer, np.floating)) and np.isfinite(cost) and cost > 0):
            raise SpecError(field, f"must be a finite cost > 0 per applicant; got {cost!r}")


def _probabilities(p: ArrayLike, field: str) -> np.ndarray:
    prob = np.asarray(p, dtype=float)
    if prob.ndim < 1 or prob.size == 0:
        raise SpecError(field, f"must hold at least one applicant's probability; got shape {prob.shape}")
    if not ((prob >= 0) & (prob <= 1)).all():
        raise SpecError(field, "must be probabilities in [0, 1] (no NaN)")
    return prob


def _labels(y: ArrayLike, n: int) -> np.ndarray:
    label = np.asarray(y)
    if label.shape != (n,):
        raise SpecError("y", f"need one label per applicant: shape {label.shape} for {n} applicants")
    if not np.isin(label, (0, 1)).all():
        raise SpecError("y", "labels must be 0 (repaid) or 1 (defaulted)")
    return label.astype(bool)


def _threshold(threshold: float) -> float:
    if not (isinstance(threshold, (int, float, np.integer, np.floating)) and 0 <= threshold <= 1):
        raise SpecError("threshold", f"must be a probability in [0, 1]; got {threshold!r}")
    return float(threshold)


def _grid(grid: ArrayLike | None) -> np.ndarray:
    if grid is None:
        return np.linspace(0.0, 1.0, 1001)
    points = np.unique(np.asarray(grid, dtype=float))  # sorted: the counting needs it
    if points.size == 0 or not ((points >= 0) & (points <= 1)).all():
        raise SpecError("grid", "must be one or more thresholds in [0, 1]")
    return points
