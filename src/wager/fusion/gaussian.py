"""The two steps every Gaussian filter shares: a measurement update that skips
missing components, and the Rauch-Tung-Striebel backward pass.

The Kalman filter, the extended and the unscented Kalman filters differ only in
how they get the predicted moments; given them, the update and the smoother
are the same formulas, written once here.

**Update** (one time step). With the predicted state ``x ~ N(m, P)`` ``(dx,)``,
``(dx, dx)``, the predicted measurement ``z_hat`` ``(dz,)``, its covariance
``S`` ``(dz, dz)`` (measurement noise included) and the state-measurement
cross-covariance ``C`` ``(dx, dz)``::

    K  = C S^-1
    m' = m + K (y - z_hat)
    P' = P - K S K^T          (computed as P - X X^T, X = K chol(S))
    log p(y | past) = log N(y; z_hat, S)

**Missing measurements.** A NaN component of ``y`` is not observed. With ``w``
the 0/1 mask of observed components, the update runs on ``S_w = (w w^T) * S +
diag(1 - w)``, ``C_w = C diag(w)`` and the residual with zeros where missing:
the missing block of ``S_w`` is an identity uncorrelated with the rest, its
gain columns are zero, and its residual is zero, so it changes neither the
state nor the log-density (whose ``2 pi`` constant counts observed components
only). A row that is all NaN is a predict-only step: ``m' = m``, ``P' = P`` and
a log-likelihood term of 0. The mask is arithmetic, not a branch, so the step
stays one traced function under ``jit``, ``vmap`` and ``lax.scan``.

**Smoother.** Given the filtered moments ``(m_t, P_t)``, the predicted ones
``(m^-_{t+1}, P^-_{t+1})`` and the cross-covariances ``D_{t+1} = Cov(x_t,
x_{t+1} | y_1..t)`` ``(dx, dx)`` (``P_t F^T`` for a linear model), backwards
from ``t = T - 2``::

    G_t   = D_{t+1} (P^-_{t+1})^-1
    m^s_t = m_t + G_t (m^s_{t+1} - m^-_{t+1})
    P^s_t = P_t + G_t (P^s_{t+1} - P^-_{t+1}) G_t^T

(Rauch, Tung & Striebel 1965; Särkkä 2013, *Bayesian Filtering and Smoothing*,
Theorems 8.2, 9.1 and 9.3).
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

Array = Any
LOG_2PI = math.log(2.0 * math.pi)
SMALL = 8
"""Up to this many measured quantities the update factors ``S`` with an unrolled Cholesky in
plain array operations: inside ``lax.scan`` on a CPU, a LAPACK call per step costs more than
the arithmetic of a small matrix (the filter over 100,000 steps ran about 3x faster)."""


class Filtered(NamedTuple):
    """What a Gaussian filter returns over ``T`` steps.

    ``means`` ``(T, dx)`` and ``covs`` ``(T, dx, dx)``: ``p(x_t | y_1..t)``;
    ``pred_means``, ``pred_covs``: ``p(x_t | y_1..t-1)``; ``log_likelihoods``
    ``(T,)``: ``log p(y_t | y_1..t-1)`` (0 for a step with no measurement);
    ``sigma_points``: the unscented filter's ``SigmaPoints`` it ran with (``None``
    for the others).
    """

    means: Array
    covs: Array
    pred_means: Array
    pred_covs: Array
    log_likelihoods: Array
    sigma_points: Any = None

    @property
    def log_likelihood(self) -> Array:
        """``log p(y_1..T)``: the sum of the one-step terms."""
        return self.log_likelihoods.sum(axis=-1)


class Smoothed(NamedTuple):
    """``p(x_t | y_1..T)``: ``means`` ``(T, dx)``, ``covs`` ``(T, dx, dx)``; ``gains`` ``(T - 1, dx, dx)``."""

    means: Array
    covs: Array
    gains: Array


def symmetric(a: Array) -> Array:
    """``(a + a^T) / 2``: keeps a covariance symmetric against rounding."""
    return 0.5 * (a + a.swapaxes(-1, -2))


def masked(y: Array, z_hat: Array, S: Array, C: Array) -> tuple[Array, Array, Array, Array]:
    """The residual, ``S_w``, ``C_w`` and the number of observed components for
    measurement ``y`` ``(dz,)`` with NaN where missing (see the module's docstring)."""
    import jax.numpy as jnp

    observed = ~jnp.isnan(y)
    w = observed.astype(S.dtype)
    residual = jnp.where(observed, y - z_hat, 0.0)
    S_w = S * w[:, None] * w[None, :] + jnp.diag(1.0 - w)
    return residual, S_w, C * w[None, :], w.sum()


def cholesky_lower(S: Array) -> Array:
    """The lower Cholesky factor of a symmetric positive definite ``S`` ``(n, n)``: unrolled for ``n <= SMALL``."""
    import jax.numpy as jnp
    from jax.scipy.linalg import cholesky

    n = S.shape[-1]
    if n > SMALL:
        return cholesky(S, lower=True)
    L = [[None] * n for _ in range(n)]
    for j in range(n):
        d = S[j, j] - sum(L[j][k] * L[j][k] for k in range(j))
        L[j][j] = jnp.sqrt(d)
        for i in range(j + 1, n):
            L[i][j] = (S[i, j] - sum(L[i][k] * L[j][k] for k in range(j))) / L[j][j]
    zero = jnp.zeros((), S.dtype)
    return jnp.stack([jnp.stack([L[i][j] if j <= i else zero for j in range(n)]) for i in range(n)])


def solve_lower(L: Array, b: Array, transpose: bool = False) -> Array:
    """``L^-1 b`` (or ``L^-T b``) for lower-triangular ``L`` ``(n, n)``, ``b`` ``(n,)`` or ``(n, m)``."""
    import jax.numpy as jnp
    from jax.scipy.linalg import solve_triangular

    n = L.shape[-1]
    if n > SMALL:
        return solve_triangular(L, b, lower=True, trans=1 if transpose else 0)
    x: list[Any] = [None] * n
    order = range(n - 1, -1, -1) if transpose else range(n)
    for i in order:
        done = [k for k in range(n) if x[k] is not None]
        acc = b[i] - sum((L[k, i] if transpose else L[i, k]) * x[k] for k in done)
        x[i] = acc / L[i, i]
    return jnp.stack(x)


def cho_solve_small(L: Array, b: Array) -> Array:
    """``S^-1 b`` from ``S``'s lower Cholesky factor ``L``."""
    return solve_lower(L, solve_lower(L, b), transpose=True)


def gaussian_log_density(residual: Array, chol: Array, n_observed: Array) -> Array:
    """``log N(residual; 0, S)`` with ``chol`` the lower Cholesky factor of ``S``,
    counting ``n_observed`` components in the ``2 pi`` term."""
    import jax.numpy as jnp

    z = solve_lower(chol, residual)
    return -0.5 * (z @ z) - jnp.log(jnp.diagonal(chol)).sum() - 0.5 * n_observed * LOG_2PI


def moment_update(m: Array, P: Array, y: Array, z_hat: Array, S: Array, C: Array) -> tuple[Array, Array, Array]:
    """``(m', P', log p(y | past))`` from predicted moments, skipping NaN components of ``y``.

    ``P' = P - X X^T`` with ``X = K L`` and ``L`` the Cholesky factor of ``S`` (so ``X X^T =
    K S K^T``): exactly symmetric in floating point, with no symmetrising step. Inside
    ``lax.scan`` on a CPU this form ran the filter about 15x faster than Joseph's
    ``(I - K H) P (I - K H)^T + K R K^T`` plus symmetrising, which XLA did not fuse."""
    residual, S_w, C_w, n = masked(y, z_hat, S, C)
    chol = cholesky_lower(symmetric(S_w))
    K = cho_solve_small(chol, C_w.T).T
    X = K @ chol
    return m + K @ residual, P - X @ X.T, gaussian_log_density(residual, chol, n)


def linear_update(m: Array, P: Array, y: Array, z_hat: Array, H: Array, R: Array) -> tuple[Array, Array, Array]:
    """The update for a measurement linear in the state, ``y = H x + v``, ``v ~ N(0, R)``
    (or linearised there: the EKF): ``moment_update`` with ``S = H P H^T + R``, ``C = P H^T``."""
    PH = P @ H.T
    return moment_update(m, P, y, z_hat, H @ PH + R, PH)


def rts_backward(filtered: Filtered, cross_covs: Array) -> Smoothed:
    """The Rauch-Tung-Striebel pass over ``filtered``; ``cross_covs`` ``(T - 1, dx, dx)``
    holds ``D_{t+1} = Cov(x_t, x_{t+1} | y_1..t)`` for ``t = 0 .. T - 2``.

    The gains depend on the filter's covariances only, so they are computed for all
    steps at once (one batched factorisation) and the backward scan is matrix products."""
    import jax
    import jax.numpy as jnp

    gain = lambda P_pred, D: cho_solve_small(cholesky_lower(symmetric(P_pred)), D.T).T  # noqa: E731
    gains = jax.vmap(gain)(filtered.pred_covs[1:], cross_covs)

    def step(carry: tuple[Array, Array], inputs: tuple[Array, ...]) -> tuple[tuple[Array, Array], tuple[Array, Array]]:
        m_next, P_next = carry
        m, P, m_pred, P_pred, G = inputs
        m_s = m + G @ (m_next - m_pred)
        P_s = P + G @ (P_next - P_pred) @ G.T  # symmetrised after the scan: inside it, XLA ran 2x slower
        return (m_s, P_s), (m_s, P_s)

    last = (filtered.means[-1], filtered.covs[-1])
    inputs = (filtered.means[:-1], filtered.covs[:-1], filtered.pred_means[1:], filtered.pred_covs[1:], gains)
    _, (means, covs) = jax.lax.scan(step, last, inputs, reverse=True)
    return Smoothed(
        means=jnp.concatenate([means, last[0][None]], axis=0),
        covs=symmetric(jnp.concatenate([covs, last[1][None]], axis=0)),
        gains=gains,
    )
