"""The extended Kalman filter and its Rauch-Tung-Striebel smoother.

The model, for ``t = 1 .. T``::

    x_t = f(x_{t-1}, u_t) + q_t,        q_t ~ N(0, Q)
    y_t = h(x_t) + r_t,                 r_t ~ N(0, R)
    x_0 ~ N(m0, P0)

with ``f: (dx,), (du,) -> (dx,)`` and ``h: (dx,) -> (dz,)`` JAX-traceable
functions. The filter linearises both at the current mean, with Jacobians by
forward-mode differentiation (``jax.jacfwd``)::

    m^-_t = f(m_{t-1}, u_t),     F_t = df/dx (m_{t-1}, u_t),     P^-_t = F_t P_{t-1} F_t^T + Q
    H_t   = dh/dx (m^-_t),       then the Kalman update with y_t - h(m^-_t) and H_t

and the smoother uses ``G_t = P_t F_{t+1}^T (P^-_{t+1})^-1`` (Särkkä 2013,
Algorithms 5.4 and 9.3). On a linear model the Jacobians are ``F`` and ``H``
and both give the Kalman filter's numbers. NaN measurements are skipped as in
``wager.fusion.kalman``; ``m0, P0`` describe the state one step before the
first measurement.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple, Optional

from wager.fusion.gaussian import Filtered, Smoothed, linear_update, rts_backward, symmetric
from wager.fusion.kalman import controls

Array = Any


class NonlinearGaussian(NamedTuple):
    """``f(x, u) -> x'``, ``h(x) -> y`` (JAX-traceable), ``Q`` ``(dx, dx)``, ``R`` ``(dz, dz)``,
    ``m0`` ``(dx,)``, ``P0`` ``(dx, dx)``. With no control, ``f`` receives ``u`` of shape ``(0,)``."""

    f: Callable[[Array, Array], Array]
    h: Callable[[Array], Array]
    Q: Array
    R: Array
    m0: Array
    P0: Array


def _inputs(model: NonlinearGaussian, ys: Array, us: Optional[Array]) -> tuple[Array, Array, Any]:
    import jax.numpy as jnp

    ys = jnp.asarray(ys)
    ys = ys[:, None] if ys.ndim == 1 else ys
    dtype = jnp.result_type(ys.dtype, jnp.asarray(model.P0).dtype)
    _, us = controls(None, jnp.shape(model.m0)[0], us, ys.shape[0], dtype)
    return ys.astype(dtype), us, dtype


def extended_kalman_filter(model: NonlinearGaussian, ys: Array, us: Optional[Array] = None) -> Filtered:
    """Filter ``ys`` ``(T, dz)`` (NaN: not measured) with controls ``us`` ``(T, du)`` or ``None``."""
    import jax
    import jax.numpy as jnp

    ys, us, dtype = _inputs(model, ys, us)
    Q, R = jnp.asarray(model.Q, dtype), jnp.asarray(model.R, dtype)
    jac_f, jac_h = jax.jacfwd(model.f, argnums=0), jax.jacfwd(model.h)

    def step(carry: tuple[Array, Array], inputs: tuple[Array, Array]) -> tuple[tuple[Array, Array], tuple[Array, ...]]:
        m, P = carry
        y, u = inputs
        F = jac_f(m, u)
        m_pred = model.f(m, u)
        P_pred = symmetric(F @ P @ F.T + Q)
        m_new, P_new, ll = linear_update(m_pred, P_pred, y, model.h(m_pred), jac_h(m_pred), R)
        return (m_new, P_new), (m_new, P_new, m_pred, P_pred, ll)

    start = (jnp.asarray(model.m0, dtype), jnp.asarray(model.P0, dtype))
    _, out = jax.lax.scan(step, start, (ys, us))
    return Filtered(*out)


def extended_rts_smoother(model: NonlinearGaussian, filtered: Filtered, us: Optional[Array] = None) -> Smoothed:
    """The extended RTS smoother over ``extended_kalman_filter``'s output (same ``us``):
    ``D_{t+1} = P_t F_{t+1}^T`` with ``F_{t+1} = df/dx (m_t, u_{t+1})``."""
    import jax

    T = filtered.means.shape[0]
    _, us = controls(None, filtered.means.shape[-1], us, T, filtered.means.dtype)
    F = jax.vmap(jax.jacfwd(model.f, argnums=0))(filtered.means[:-1], us[1:])
    cross = filtered.covs[:-1] @ F.swapaxes(-1, -2)
    return rts_backward(filtered, cross)
