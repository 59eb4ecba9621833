"""Many two-arm conversion tests at once: chance to win, expected loss, lift interval.

Each test has a control A and a challenger B with ``k`` conversions out of
``n`` visitors, and independent ``Beta(prior_alpha, prior_beta)`` priors, so
each rate's posterior is ``Beta(alpha, beta)`` with ``alpha = prior_alpha + k``
and ``beta = prior_beta + n - k``. For every test ``compare_conversions``
returns, as float64 arrays of the broadcast shape of the counts:

* ``prob_b_beats_a``       P(pB > pA), the chance to win;
* ``expected_loss_ship_b`` E[max(pA - pB, 0)], what shipping B costs when A was better;
* ``expected_loss_keep_a`` E[max(pB - pA, 0)], what keeping A costs when B was better;
* ``lift_mean``, ``lift_sd`` the mean and sd of the absolute lift ``D = pB - pA``
  (exact in both methods: the moments of a difference of independent Betas);
* ``lift_low``, ``lift_high`` the equal-tailed ``credible_mass`` interval of ``D``.

Losses and lifts are in conversion rate (share of visitors).

``method="normal"`` (the fast path: about 10^7 tests a second on one core)
matches each posterior's mean and variance,

    mu = alpha / (alpha + beta),   v = mu (1 - mu) / (alpha + beta + 1),

and treats ``D`` as ``Normal(d, s)`` with ``d = muB - muA`` and
``s = sqrt(vA + vB)``. With ``z = d / s``, ``Phi`` and ``phi`` the standard
Normal CDF and density,

    P(D > 0)       = Phi(z)
    E[max(-D, 0)]  = s phi(z) - d Phi(-z)
    E[max(D, 0)]   = s phi(z) + d Phi(z)
    interval       = d -/+ Phi^{-1}((1 + credible_mass) / 2) s

Accuracy of the approximation, measured against the exact method
(``benchmarks/throughput.py``; flat prior, equal visitors per arm: 7 visitor
counts 1,000..100,000 x 7 rates of A 1%..50% x 13 counts of B placing B's
rate -3..+3 sd of the difference away from A's; 637 tests):

* chance to win: max abs error 0.0065, at 1,000 visitors and a 1% rate (ten
  conversions leave the Betas skewed); 0.0013 from 5,000 visitors on and
  6e-4 from 10,000. Across the grid the error stays below
  ``0.07 / (A's conversions)``.
* expected losses: max abs error 2.0e-5 (0.5% of the lift's sd), 6.7e-7
  from 10,000 visitors on.
* interval ends: max abs error 7.9e-4 (0.23 of the lift's sd) at 1,000
  visitors and a 1% rate, 2.7e-5 (0.02 sd) from 10,000 visitors on.

Use ``method="exact"`` when conversions are few (tens).

``method="exact"`` loops over tests with ``wager.kernel.compare``: Evan
Miller's exact sum for P(B > A), deterministic quadrature for the expected
losses and for the interval (safeguarded Newton on its CDF). It is slow
(about 50 tests a second) and exists to check the fast path.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import special

from wager.errors import SpecError

_COUNT_FIELDS = ("a_conversions", "a_visitors", "b_conversions", "b_visitors")
_INV_SQRT_2PI = 1.0 / np.sqrt(2.0 * np.pi)
_WIDE = 1e-12  # tail mass outside the bracket searched for exact lift quantiles


def compare_conversions(
    a_conversions: Any,
    a_visitors: Any,
    b_conversions: Any,
    b_visitors: Any,
    prior_alpha: float = 1.0,
    prior_beta: float = 1.0,
    credible_mass: float = 0.95,
    method: str = "normal",
) -> dict[str, np.ndarray]:
    """Compare challenger B with control A in every test at once (see the module docstring).

    The four count arguments are integers (or integral floats) that broadcast
    together, shape ``batch``; every returned array has shape ``batch``.
    Raises ``SpecError`` naming the argument and the rule it broke.
    """
    ka, na, kb, nb = _validated_counts(a_conversions, a_visitors, b_conversions, b_visitors)
    _check_positive_finite("prior_alpha", prior_alpha)
    _check_positive_finite("prior_beta", prior_beta)
    if not (isinstance(credible_mass, (int, float, np.floating)) and 0 < float(credible_mass) < 1):
        raise SpecError("credible_mass", f"must be a number strictly between 0 and 1; got {credible_mass!r}")
    if method == "normal":
        return _normal(ka, na, kb, nb, float(prior_alpha), float(prior_beta), float(credible_mass))
    if method == "exact":
        return _exact(ka, na, kb, nb, float(prior_alpha), float(prior_beta), float(credible_mass))
    raise SpecError("method", f"must be 'normal' or 'exact'; got {method!r}")


def _normal(ka, na, kb, nb, prior_alpha, prior_beta, credible_mass) -> dict[str, np.ndarray]:
    mu_a, var_a = _beta_moments(ka + prior_alpha, na - ka + prior_beta)
    mu_b, var_b = _beta_moments(kb + prior_alpha, nb - kb + prior_beta)
    d = mu_b - mu_a
    s = np.sqrt(var_a + var_b)
    z = d / s
    win = special.ndtr(z)
    lose = special.ndtr(-z)  # not 1 - win: that cancels when B almost surely wins
    density = s * _INV_SQRT_2PI * np.exp(-0.5 * z * z)
    half_width = special.ndtri(0.5 + credible_mass / 2) * s
    return {
        "prob_b_beats_a": win,
        "expected_loss_ship_b": np.maximum(density - d * lose, 0.0),
        "expected_loss_keep_a": np.maximum(density + d * win, 0.0),
        "lift_mean": d,
        "lift_sd": s,
        "lift_low": d - half_width,
        "lift_high": d + half_width,
    }


def _beta_moments(alpha: np.ndarray, beta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and variance of Beta(alpha, beta)."""
    total = alpha + beta
    mean = alpha / total
    return mean, mean * (1.0 - mean) / (total + 1.0)


def _exact(ka, na, kb, nb, prior_alpha, prior_beta, credible_mass) -> dict[str, np.ndarray]:
    # Imported here: the fast path needs none of the quadrature machinery.
    from wager.kernel import compare
    from wager.kernel.closed_form import Beta

    tail = (1 - credible_mass) / 2
    levels = [tail, 1 - tail]
    shape = ka.shape
    keys = ("prob_b_beats_a", "expected_loss_ship_b", "expected_loss_keep_a", "lift_mean", "lift_sd", "lift_low", "lift_high")
    out = {k: np.empty(shape) for k in keys}
    for idx in np.ndindex(shape):
        a = Beta(prior_alpha + ka[idx], prior_beta + na[idx] - ka[idx])
        b = Beta(prior_alpha + kb[idx], prior_beta + nb[idx] - kb[idx])
        keep_a, ship_b = compare.expected_regret([a, b])
        lo, hi = b.ppf(_WIDE) - a.ppf(1 - _WIDE), b.ppf(1 - _WIDE) - a.ppf(_WIDE)
        low, high = compare.quantiles_of(
            lambda t, a=a, b=b: compare.prob_difference_above(a, b, t),
            lambda t, a=a, b=b: compare.density_of_difference(a, b, t),
            levels,
            lo,
            hi,
        )
        out["prob_b_beats_a"][idx] = compare.prob_beta_greater(a, b)
        out["expected_loss_ship_b"][idx] = ship_b
        out["expected_loss_keep_a"][idx] = keep_a
        out["lift_mean"][idx] = b.mean - a.mean
        out["lift_sd"][idx] = np.hypot(a.sd, b.sd)
        out["lift_low"][idx] = low
        out["lift_high"][idx] = high
    return out


def _validated_counts(*counts: Any) -> list[np.ndarray]:
    arrays = [_as_counts(name, value) for name, value in zip(_COUNT_FIELDS, counts)]
    try:
        arrays = np.broadcast_arrays(*arrays)
    except ValueError:
        shapes = ", ".join(f"{n} {a.shape}" for n, a in zip(_COUNT_FIELDS, arrays))
        raise SpecError(", ".join(_COUNT_FIELDS), f"shapes must broadcast together; got {shapes}") from None
    ka, na, kb, nb = arrays
    for name, visitors in (("a_visitors", na), ("b_visitors", nb)):
        if not np.all(visitors > 0):
            raise SpecError(name, f"must be > 0 (first offending index {_first(visitors <= 0)})")
    for name, conversions, visitors in (("a_conversions", ka, na), ("b_conversions", kb, nb)):
        if not np.all(conversions >= 0):
            raise SpecError(name, f"must be >= 0 (first offending index {_first(conversions < 0)})")
        if not np.all(conversions <= visitors):
            where = _first(conversions > visitors)
            raise SpecError(name, f"must be <= the visitors of the same arm (first offending index {where})")
    return arrays


def _as_counts(name: str, value: Any) -> np.ndarray:
    """A float64 array of whole numbers, or a ``SpecError`` naming ``name``."""
    try:
        array = np.asarray(value)
    except (ValueError, TypeError):
        raise SpecError(name, "must be an array of integer counts") from None
    if array.dtype.kind in "iu":
        return array.astype(np.float64)
    if array.dtype.kind == "f":
        array = array.astype(np.float64, copy=False)
        if not np.all(np.isfinite(array) & (array == np.floor(array))):
            raise SpecError(name, "must be whole numbers (integer counts)")
        return array
    raise SpecError(name, f"must be an array of integer counts; got dtype {array.dtype}")


def _check_positive_finite(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise SpecError(name, f"must be a positive number; got {value!r}")
    if not (np.isfinite(value) and value > 0):
        raise SpecError(name, f"must be a finite number > 0; got {value!r}")


def _first(mask: np.ndarray) -> tuple[int, ...] | int:
    where = np.argwhere(mask)[0]
    return int(where[0]) if where.size == 1 else tuple(int(i) for i in where)
