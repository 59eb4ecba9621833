"""The Kalman filter and the Rauch-Tung-Striebel smoother for a linear-Gaussian,
time-invariant state-space model.

The model, for ``t = 1 .. T`` (Kalman 1960)::

    x_t = F x_{t-1} + B u_t + q_t,      q_t ~ N(0, Q)
    y_t = H x_t + r_t,                  r_t ~ N(0, R)
    x_0 ~ N(m0, P0)

with states ``x`` ``(dx,)``, measurements ``y`` ``(dz,)`` and an optional
control input ``u`` ``(du,)`` (``B`` ``(dx, du)``). Each step predicts, then
updates: ``m0, P0`` describe the state one step *before* the first measurement,
the convention of ``filterpy``'s ``KalmanFilter.batch_filter``. A NaN in ``y_t``
is a measurement not taken: the update skips it (a row all NaN is predict only;
``wager.fusion.gaussian``).

Everything is a pure JAX function over NamedTuples: ``jax.jit`` compiles it,
``jax.vmap`` batches it (over measurement sequences, or over noise levels
inside a NumPyro model), ``jax.grad`` differentiates the log-likelihood. No
input is checked here (a traced function cannot raise on values): check at the
edge with ``wager.fusion.validate``.
"""

from __future__ import annotations

from typing import Any, NamedTuple, Optional

from wager.fusion.gaussian import Filtered, Smoothed, linear_update, rts_backward, symmetric

Array = Any


class LinearGaussian(NamedTuple):
    """``F`` ``(dx, dx)``, ``H`` ``(dz, dx)``, ``Q`` ``(dx, dx)``, ``R`` ``(dz, dz)``,
    ``m0`` ``(dx,)``, ``P0`` ``(dx, dx)``; ``B`` ``(dx, du)`` or ``None`` (no control)."""

    F: Array
    H: Array
    Q: Array
    R: Array
    m0: Array
    P0: Array
    B: Optional[Array] = None


def controls(model_B: Optional[Array], dx: int, us: Optional[Array], steps: int, dtype: Any) -> tuple[Array, Array]:
    """``(B, us)`` with an empty control ``(T, 0)`` and ``B`` ``(dx, 0)`` where none is given,
    so every filter's step reads ``B @ u`` alike."""
    import jax.numpy as jnp

    if us is None:
        return jnp.zeros((dx, 0), dtype), jnp.zeros((steps, 0), dtype)
    us = jnp.asarray(us, dtype)
    us = us[:, None] if us.ndim == 1 else us
    B = jnp.zeros((dx, us.shape[-1]), dtype) if model_B is None else jnp.asarray(model_B, dtype)
    return B, us


def kalman_filter(model: LinearGaussian, ys: Array, us: Optional[Array] = None) -> Filtered:
    """Filter measurements ``ys`` ``(T, dz)`` (NaN: not measured) with controls ``us`` ``(T, du)``.

    Per step::

        m^-_t = F m_{t-1} + B u_t,          P^-_t = F P_{t-1} F^T + Q
        S_t   = H P^-_t H^T + R,            K_t = P^-_t H^T S_t^-1
        m_t   = m^-_t + K_t (y_t - H m^-_t)
        P_t   = P^-_t - K_t S_t K_t^T
        log p(y_t | y_1..t-1) = log N(y_t; H m^-_t, S_t)

    Returns ``Filtered``; ``.log_likelihood`` is ``log p(y_1..T)``.
    """
    import jax
    import jax.numpy as jnp

    ys = jnp.asarray(ys)
    ys = ys[:, None] if ys.ndim == 1 else ys
    dtype = jnp.result_type(ys.dtype, jnp.asarray(model.P0).dtype)
    F, H, Q, R = (jnp.asarray(a, dtype) for a in (model.F, model.H, model.Q, model.R))
    B, us = controls(model.B, F.shape[0], us, ys.shape[0], dtype)

    def step(carry: tuple[Array, Array], inputs: tuple[Array, Array]) -> tuple[tuple[Array, Array], tuple[Array, ...]]:
        m, P = carry
        y, u = inputs
        m_pred = F @ m + B @ u
        P_pred = symmetric(F @ P @ F.T + Q)
        m_new, P_new, ll = linear_update(m_pred, P_pred, y, H @ m_pred, H, R)
        return (m_new, P_new), (m_new, P_new, ll)

    m0, P0 = jnp.asarray(model.m0, dtype), jnp.asarray(model.P0, dtype)
    _, (means, covs, ll) = jax.lax.scan(step, (m0, P0), (ys.astype(dtype), us))
    # The predictions again, for all steps at once: the same arithmetic, but returning them
    # from the scan as well made XLA's loop on a CPU several times slower.
    before = jnp.concatenate([m0[None], means[:-1]]), jnp.concatenate([P0[None], covs[:-1]])
    pred_means = before[0] @ F.T + us @ B.T
    pred_covs = symmetric(F @ before[1] @ F.T + Q)
    return Filtered(means, covs, pred_means, pred_covs, ll)


def rts_smoother(model: LinearGaussian, filtered: Filtered) -> Smoothed:
    """``p(x_t | y_1..T)`` from ``kalman_filter``'s output: the smoother gain is
    ``G_t = P_t F^T (P^-_{t+1})^-1`` (``wager.fusion.gaussian.rts_backward``)."""
    import jax.numpy as jnp

    F = jnp.asarray(model.F, filtered.covs.dtype)
    cross = filtered.covs[:-1] @ F.T
    return rts_backward(filtered, cross)
