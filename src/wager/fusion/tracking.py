"""GPS and accelerometer fusion along a track: where am I, plus or minus how much.

The state is position ``p`` (m), velocity ``v`` (m/s) and the accelerometer's
bias ``b`` (m/s^2). The accelerometer, read ``rate`` times a second (step
``dt = 1/rate``), is the control input ``u_t`` of a constant-velocity model;
GPS fixes measure position every ``gps_every``-th step and are NaN between
fixes and through dropouts::

    p_t = p_{t-1} + v_{t-1} dt + (u_t - b_{t-1}) dt^2 / 2
    v_t = v_{t-1} + (u_t - b_{t-1}) dt
    b_t = b_{t-1} + bias_walk sqrt(dt) N(0, 1)
    gps_t = p_t + N(0, gps_sd^2)

that is ``x_t = F x_{t-1} + B u_t + q_t`` with ``F = [[1, dt, -dt^2/2], [0, 1,
-dt], [0, 0, 1]]``, ``B = (dt^2/2, dt, 0)^T`` and ``Q = accel_sd^2 B B^T +
bias_walk^2 dt e_3 e_3^T``: the accelerometer's white noise (sd ``accel_sd``
per sample) enters through ``B``, the bias drifts as a random walk.

**Learning the noise at the rate of the fixes.** Between fixes the filter only
predicts, and ``k = gps_every`` predictions compose exactly into one::

    x_{jk} = F^k x_{(j-1)k} + c_j + q'_j,    c_j = sum_{i=1..k} F^{k-i} B u_{(j-1)k+i}
    Q_k    = accel_sd^2 A + bias_walk^2 dt W,   A = sum_{i<k} F^i B B^T F^iT,   W = sum_{i<k} F^i e3 e3^T F^iT

so the Kalman filter over the fixes (``F^k``, control ``c_j``, ``Q_k``) gives
the same log-likelihood and the same state at every fix as the filter over
every accelerometer sample, ``k`` times cheaper: NUTS differentiates a scan of
60 steps instead of 6,000. ``A``, ``W`` and ``c`` do not depend on the noise
levels and are computed once, in NumPy.

The NumPyro model samples ``accel_sd`` and ``gps_sd`` from their priors (the
initial state's Gaussian priors enter as ``m0, P0``) and records the state at
the last step: ``position``, ``position_sd``, ``velocity``, ``velocity_sd``.
"""

from __future__ import annotations

from typing import Any, Mapping, NamedTuple

import numpy as np

from wager.kernel.priors import Prior

Array = Any
SOURCE = "wager.fusion defaults; Groves (2013), Principles of GNSS, Inertial, and Multisensor Integrated Navigation Systems, ch. 4 and 9"
STATES = ("position", "velocity", "accel_bias")
INITIAL = ("initial_position", "initial_velocity", "initial_bias")
"""Priors of the state at the start, each a ``normal``: they are the filter's ``m0`` and ``P0``."""
NOISE = ("accel_sd", "gps_sd")


def default_priors() -> dict[str, Prior]:
    """The documented default priors, in metres and seconds."""

    def p(family: str, why: str, **params: float) -> Prior:
        return Prior(family=family, params=params, why=why, source=SOURCE)

    return {
        "accel_sd": p("lognormal", "White noise of a MEMS accelerometer per 100 Hz sample: noise densities of 100-400 ug/sqrt(Hz) over a 50 Hz band give 0.007-0.03 m/s^2; median 0.02, 95% in (0.003, 0.14).", loc=float(np.log(0.02)), scale=1.0),
        "gps_sd": p("lognormal", "Consumer GNSS position error, one axis: 1-10 m in the open; median 3 m, 95% in (0.7, 13).", loc=float(np.log(3.0)), scale=0.75),
        "initial_position": p("normal", "Positions are measured from the start of the track; the first fixes pin it down within metres.", loc=0.0, scale=50.0),
        "initial_velocity": p("normal", "A road vehicle: speed along the track within +-40 m/s.", loc=0.0, scale=20.0),
        "initial_bias": p("normal", "An uncalibrated MEMS accelerometer's bias: up to about 0.2 m/s^2 (20 mg).", loc=0.0, scale=0.1),
    }


class TrackMatrices(NamedTuple):
    """One accelerometer step's ``F`` ``(3, 3)`` and ``B`` ``(3, 1)``; over ``k`` steps
    ``Fk = F^k``, the unit noise sums ``A`` and ``W`` ``(3, 3)``."""

    F: np.ndarray
    B: np.ndarray
    Fk: np.ndarray
    A: np.ndarray
    W: np.ndarray
    dt: float
    k: int


def matrices(rate: float, gps_every: int) -> TrackMatrices:
    """The model's matrices for accelerometer ``rate`` (Hz) and a fix every ``gps_every`` samples."""
    dt = 1.0 / rate
    F = np.array([[1.0, dt, -0.5 * dt * dt], [0.0, 1.0, -dt], [0.0, 0.0, 1.0]])
    B = np.array([[0.5 * dt * dt], [dt], [0.0]])
    e3 = np.array([[0.0], [0.0], [1.0]])
    A, W, Fi = np.zeros((3, 3)), np.zeros((3, 3)), np.eye(3)
    for _ in range(gps_every):
        A += Fi @ B @ B.T @ Fi.T
        W += Fi @ e3 @ e3.T @ Fi.T
        Fi = F @ Fi
    return TrackMatrices(F=F, B=B, Fk=Fi, A=A, W=W, dt=dt, k=gps_every)


def step_noise(m: TrackMatrices, accel_sd: Array, bias_walk: float) -> Array:
    """``Q`` of one accelerometer step."""
    e3 = np.array([[0.0], [0.0], [1.0]])
    return accel_sd**2 * (m.B @ m.B.T) + bias_walk**2 * m.dt * (e3 @ e3.T)


def drive(m: TrackMatrices, accel: np.ndarray) -> np.ndarray:
    """``c_j = sum_i F^{k-i} B u_{(j-1)k+i}``, ``(n_fixes, 3)``, for ``accel`` ``(n_fixes * k,)``."""
    u = np.asarray(accel, dtype=float).reshape(-1, m.k)
    c = np.zeros((u.shape[0], 3))
    for i in range(m.k):
        c = c @ m.F.T + u[:, i : i + 1] * m.B[:, 0]
    return c


def initial_state(priors: Mapping[str, Prior]) -> tuple[np.ndarray, np.ndarray]:
    """``(m0, P0)`` from the three ``normal`` priors of the initial state."""
    loc = np.array([priors[name]["loc"] for name in INITIAL])
    scale = np.array([priors[name]["scale"] for name in INITIAL])
    return loc, np.diag(scale**2)


def tracking_model(gps: Any, drive: Any, *, Fk: Any, A: Any, W: Any, dt: float, bias_walk: float, priors: Mapping[str, Prior]) -> None:
    """The NumPyro model over the fixes: ``gps`` ``(n,)`` (NaN: no fix), ``drive`` ``(n, 3)``."""
    import jax.numpy as jnp
    import numpyro

    from wager.fusion.kalman import LinearGaussian, kalman_filter

    accel_sd = numpyro.sample("accel_sd", priors["accel_sd"].to_numpyro())
    gps_sd = numpyro.sample("gps_sd", priors["gps_sd"].to_numpyro())
    m0, P0 = initial_state(priors)
    model = LinearGaussian(
        F=jnp.asarray(Fk), H=jnp.array([[1.0, 0.0, 0.0]]),
        Q=accel_sd**2 * jnp.asarray(A) + bias_walk**2 * dt * jnp.asarray(W),
        R=jnp.reshape(gps_sd**2, (1, 1)), m0=jnp.asarray(m0), P0=jnp.asarray(P0), B=jnp.eye(3),
    )
    filtered = kalman_filter(model, jnp.asarray(gps)[:, None], jnp.asarray(drive))
    numpyro.factor("log_likelihood", filtered.log_likelihood)
    last, cov = filtered.means[-1], filtered.covs[-1]
    numpyro.deterministic("position", last[0])
    numpyro.deterministic("position_sd", jnp.sqrt(cov[0, 0]))
    numpyro.deterministic("velocity", last[1])
    numpyro.deterministic("velocity_sd", jnp.sqrt(cov[1, 1]))


def step_model(m: TrackMatrices, accel_sd: Array, gps_sd: Array, bias_walk: float, priors: Mapping[str, Prior]) -> Any:
    """The ``LinearGaussian`` of one accelerometer step (the filter over every sample)."""
    from wager.fusion.kalman import LinearGaussian

    m0, P0 = initial_state(priors)
    return LinearGaussian(
        F=m.F, H=np.array([[1.0, 0.0, 0.0]]), Q=step_noise(m, accel_sd, bias_walk),
        R=np.reshape(np.asarray(gps_sd, dtype=float) ** 2, (1, 1)), m0=m0, P0=P0, B=m.B,
    )


def trajectory(
    m: TrackMatrices, accel: np.ndarray, gps: np.ndarray, accel_sd: np.ndarray, gps_sd: np.ndarray,
    bias_walk: float, priors: Mapping[str, Prior], every: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Smoothed means ``(draws, T // every, 3)`` and sds ``(draws, T // every, 3)`` at every
    ``every``-th accelerometer step (the last step of each stretch), one per noise draw:
    the filter and RTS smoother over every sample, vmapped over the draws."""
    import jax
    import jax.numpy as jnp

    from wager.fusion.kalman import LinearGaussian, kalman_filter, rts_smoother

    m0, P0 = initial_state(priors)
    e3 = jnp.array([[0.0], [0.0], [1.0]])
    B = jnp.asarray(m.B)
    ys = jnp.asarray(gps)[:, None]
    us = jnp.asarray(accel)[:, None]

    def one(a_sd: Array, g_sd: Array) -> tuple[Array, Array]:
        model = LinearGaussian(
            F=jnp.asarray(m.F), H=jnp.array([[1.0, 0.0, 0.0]]), Q=a_sd**2 * (B @ B.T) + bias_walk**2 * m.dt * (e3 @ e3.T),
            R=jnp.reshape(g_sd**2, (1, 1)), m0=jnp.asarray(m0), P0=jnp.asarray(P0), B=B,
        )
        smoothed = rts_smoother(model, kalman_filter(model, ys, us))
        keep = slice(every - 1, None, every)
        return smoothed.means[keep], jnp.sqrt(jnp.diagonal(smoothed.covs[keep], axis1=-2, axis2=-1))

    means, sds = jax.jit(jax.vmap(one))(jnp.asarray(accel_sd), jnp.asarray(gps_sd))
    return np.asarray(means), np.asarray(sds)


class Drive(NamedTuple):
    """A simulated drive: ``accel`` ``(T,)`` as read (bias and noise included), ``gps``
    ``(T,)`` (NaN between fixes and in dropouts), and the truth ``position``,
    ``velocity`` ``(T,)`` and ``bias`` ``(T,)``."""

    accel: np.ndarray
    gps: np.ndarray
    position: np.ndarray
    velocity: np.ndarray
    bias: np.ndarray


def simulate_drive(
    seconds: float, rate: float, gps_every: int, *, accel_sd: float, gps_sd: float, bias: float, bias_walk: float,
    speed: float, dropouts: list[tuple[float, float]], seed: int,
) -> Drive:
    """A drive along a road: speed ``speed`` m/s at the start, a smooth acceleration
    profile (two sinusoids, periods 23 s and 7 s), the accelerometer read with its
    ``bias`` (drifting by ``bias_walk``) and white noise ``accel_sd``, and a GPS fix
    every ``gps_every`` samples with noise ``gps_sd``, none within a dropout
    ``[start, end)`` (seconds). The same model the filter assumes, so its
    calibration can be checked against the truth. NumPy's PCG64 from ``seed``."""
    rng = np.random.default_rng(seed)
    steps = int(round(seconds * rate))
    dt = 1.0 / rate
    t = np.arange(1, steps + 1) * dt
    a = 0.6 * np.sin(2 * np.pi * t / 23.0) + 0.25 * np.sin(2 * np.pi * t / 7.0 + 1.0)
    b = bias + np.cumsum(bias_walk * np.sqrt(dt) * rng.standard_normal(steps))
    accel = a + b + accel_sd * rng.standard_normal(steps)
    v = speed + np.cumsum(a) * dt
    v_before = np.concatenate([[speed], v[:-1]])
    p = np.cumsum(v_before * dt + 0.5 * a * dt * dt)
    gps = np.full(steps, np.nan)
    fixes = np.arange(gps_every - 1, steps, gps_every)
    gps[fixes] = p[fixes] + gps_sd * rng.standard_normal(fixes.size)
    for start, end in dropouts:
        gps[(t > start) & (t <= end)] = np.nan
    return Drive(accel=accel, gps=gps, position=p, velocity=v, bias=b)
