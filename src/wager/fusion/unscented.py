"""The unscented Kalman filter and its Rauch-Tung-Striebel smoother.

The model is ``wager.fusion.extended.NonlinearGaussian``. Instead of
linearising, the filter pushes ``2n + 1`` sigma points through ``f`` and ``h``
(Julier & Uhlmann 1997; the scaled points of Wan & van der Merwe 2000). For a
Gaussian ``N(m, P)`` in ``n`` dimensions, with ``L`` the lower Cholesky factor
of ``P`` and ``lambda = alpha^2 (n + kappa) - n``::

    X_0 = m,    X_i = m + sqrt(n + lambda) L_i,    X_{n+i} = m - sqrt(n + lambda) L_i
    Wm_0 = lambda / (n + lambda),   Wc_0 = Wm_0 + 1 - alpha^2 + beta,   Wm_i = Wc_i = 1 / (2 (n + lambda))

and the transform of ``Y_i = g(X_i)`` is ``mean = sum_i Wm_i Y_i``, ``cov = sum_i
Wc_i (Y_i - mean)(Y_i - mean)^T``, ``cross = sum_i Wc_i (X_i - m)(Y_i - mean)^T``.
The mean is computed as ``Y_0 + sum_{i>0} Wm_i (Y_i - Y_0)`` (the weights sum to
one): with a small ``alpha``, ``Wm_0`` is of order ``-1/alpha^2`` and the plain
sum would lose about ``log10(1/alpha^2)`` digits to cancellation.

Predict: the transform of ``f(., u_t)`` of ``N(m_{t-1}, P_{t-1})``, plus ``Q``.
Update: the transform of ``h`` of ``N(m^-_t, P^-_t)`` gives ``z_hat``, ``S``
(plus ``R``) and ``C``, then ``wager.fusion.gaussian.moment_update`` (NaN
components skipped). The smoother's cross-covariance ``D_{t+1}`` is the
predict transform's ``cross`` (Särkkä 2008, *Unscented Rauch-Tung-Striebel
smoother*). The transform is exact for linear ``f`` and ``h``, so on a linear
model both give the Kalman filter's numbers for any ``alpha, beta, kappa``.

Defaults ``alpha = 1, beta = 2, kappa = 0``: every weight but ``Wc_0 = 2`` is
``1 / (2n)``, none negative, so the covariances stay positive definite however
nonlinear the model; ``beta = 2`` is optimal for a Gaussian prior. The filter
returns the parameters it ran with (``Filtered.sigma_points``).
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple, Optional

from wager.fusion.extended import NonlinearGaussian, _inputs
from wager.fusion.gaussian import Filtered, Smoothed, moment_update, rts_backward, symmetric
from wager.fusion.kalman import controls

Array = Any


class SigmaPoints(NamedTuple):
    """The scaled sigma points' parameters: spread ``alpha`` (> 0), prior knowledge
    ``beta`` (2 for a Gaussian), secondary scaling ``kappa`` (``n + kappa > 0``)."""

    alpha: float = 1.0
    beta: float = 2.0
    kappa: float = 0.0


def weights(n: int, sigma: SigmaPoints) -> tuple[Array, Array, Array]:
    """``(Wm, Wc, sqrt(n + lambda))`` for ``n`` dimensions: ``Wm``, ``Wc`` ``(2n + 1,)``."""
    import jax.numpy as jnp

    lam = sigma.alpha**2 * (n + sigma.kappa) - n
    w = jnp.full(2 * n + 1, 1.0 / (2.0 * (n + lam)))
    wm = w.at[0].set(lam / (n + lam))
    wc = w.at[0].set(lam / (n + lam) + 1.0 - sigma.alpha**2 + sigma.beta)
    return wm, wc, jnp.sqrt(n + lam)


def unscented_transform(
    g: Callable[[Array], Array], m: Array, P: Array, sigma: SigmaPoints
) -> tuple[Array, Array, Array]:
    """``(mean, cov, cross)`` of ``g(x)``, ``x ~ N(m, P)``, by sigma points (no noise added)."""
    import jax
    import jax.numpy as jnp
    from jax.scipy.linalg import cholesky

    n = m.shape[-1]
    wm, wc, spread = weights(n, sigma)
    L = cholesky(symmetric(P), lower=True) * spread
    X = jnp.concatenate([m[None], m + L.T, m - L.T], axis=0)
    Y = jax.vmap(g)(X)
    mean = Y[0] + wm[1:] @ (Y[1:] - Y[0])
    dY, dX = Y - mean, X - m
    cov = symmetric((dY * wc[:, None]).T @ dY)
    cross = (dX * wc[:, None]).T @ dY
    return mean, cov, cross


def unscented_kalman_filter(
    model: NonlinearGaussian, ys: Array, us: Optional[Array] = None, sigma: SigmaPoints = SigmaPoints()
) -> Filtered:
    """Filter ``ys`` ``(T, dz)`` (NaN: not measured) with controls ``us`` ``(T, du)`` or ``None``."""
    import jax
    import jax.numpy as jnp

    ys, us, dtype = _inputs(model, ys, us)
    Q, R = jnp.asarray(model.Q, dtype), jnp.asarray(model.R, dtype)

    def step(carry: tuple[Array, Array], inputs: tuple[Array, Array]) -> tuple[tuple[Array, Array], tuple[Array, ...]]:
        m, P = carry
        y, u = inputs
        m_pred, P_pred, _ = unscented_transform(lambda x: model.f(x, u), m, P, sigma)
        P_pred = symmetric(P_pred + Q)
        z_hat, S, C = unscented_transform(model.h, m_pred, P_pred, sigma)
        m_new, P_new, ll = moment_update(m_pred, P_pred, y, z_hat, S + R, C)
        return (m_new, P_new), (m_new, P_new, m_pred, P_pred, ll)

    start = (jnp.asarray(model.m0, dtype), jnp.asarray(model.P0, dtype))
    _, out = jax.lax.scan(step, start, (ys, us))
    return Filtered(*out, sigma_points=SigmaPoints(*(jnp.asarray(v, dtype) for v in sigma)))


def unscented_rts_smoother(
    model: NonlinearGaussian, filtered: Filtered, us: Optional[Array] = None, sigma: Optional[SigmaPoints] = None
) -> Smoothed:
    """The unscented RTS smoother over ``unscented_kalman_filter``'s output (same ``us``);
    ``sigma`` defaults to the parameters the filter recorded."""
    import jax

    sigma = sigma if sigma is not None else (filtered.sigma_points or SigmaPoints())
    T = filtered.means.shape[0]
    _, us = controls(None, filtered.means.shape[-1], us, T, filtered.means.dtype)

    def cross(m: Array, P: Array, u: Array) -> Array:
        return unscented_transform(lambda x: model.f(x, u), m, P, sigma)[2]

    D = jax.vmap(cross)(filtered.means[:-1], filtered.covs[:-1], us[1:])
    return rts_backward(filtered, D)
