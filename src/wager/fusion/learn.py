"""A filter as a likelihood: noise levels learned by NUTS.

The Kalman filter's ``log p(y_1..T | theta)`` is exact for a linear-Gaussian
model and differentiable in its noise levels ``theta``, so a NumPyro model can
sample ``theta`` from documented priors and add the filter's log-likelihood
with ``numpyro.factor``: the states are integrated out analytically and NUTS
explores only ``theta`` (Durbin & Koopman 2012, ch. 13). The same holds for the
EKF and UKF, whose log-likelihood is then an approximation.

``local_level_model`` is the smallest instance, the local level (random walk
plus noise) model of the Nile series::

    y_t   = level_t + eps_t,           eps_t ~ N(0, obs_sd^2)
    level_t = level_{t-1} + eta_t,     eta_t ~ N(0, level_sd^2)
    level_0 ~ N(initial_level.loc, initial_level.scale^2)

with priors on the two standard deviations (the variances ``obs_var`` and
``level_var`` are recorded as deterministics, as statsmodels'
``UnobservedComponents(y, "local level")`` reports them). The initial level's
Gaussian prior enters the filter as ``m0, P0``, so it is integrated out too.
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from wager.errors import SpecError
from wager.fusion.validate import check_measurements
from wager.kernel.inference import Model
from wager.kernel.priors import Prior

LOCAL_LEVEL_PRIORS = ("obs_sd", "level_sd", "initial_level")


def local_level_model(y: Any, *, priors: Mapping[str, Prior]) -> None:
    """The local level model on ``y`` ``(T,)`` (NaN: missing); ``priors`` keyed
    ``obs_sd``, ``level_sd`` (positive families) and ``initial_level`` (a ``normal``)."""
    import jax.numpy as jnp
    import numpyro

    from wager.fusion.kalman import LinearGaussian, kalman_filter

    obs_sd = numpyro.sample("obs_sd", priors["obs_sd"].to_numpyro())
    level_sd = numpyro.sample("level_sd", priors["level_sd"].to_numpyro())
    obs_var = numpyro.deterministic("obs_var", obs_sd**2)
    level_var = numpyro.deterministic("level_var", level_sd**2)
    start = priors["initial_level"]
    one = jnp.ones((1, 1))
    model = LinearGaussian(
        F=one, H=one, Q=level_var * one, R=obs_var * one,
        m0=jnp.array([start["loc"]]), P0=jnp.array([[start["scale"] ** 2]]),
    )
    numpyro.factor("log_likelihood", kalman_filter(model, jnp.asarray(y)[:, None]).log_likelihood)


def build_local_level(y: Any, priors: Mapping[str, Prior], allow_missing: bool = True, field: str = "data") -> Model:
    """The kernel's ``Model`` of the local level model on ``y`` ``(T,)``, checked at the edge."""
    missing = [name for name in LOCAL_LEVEL_PRIORS if name not in priors]
    if missing:
        raise SpecError(f"priors.{missing[0]}", f"the local level model needs priors {', '.join(LOCAL_LEVEL_PRIORS)}")
    if priors["initial_level"].family != "normal":
        raise SpecError("priors.initial_level", "must be a normal prior: it enters the Kalman filter as its starting mean and variance")
    values = check_measurements(field, y, 1, allow_missing)[:, 0]
    return Model(name="fusion:local_level", numpyro_model=local_level_model, data={"y": np.ascontiguousarray(values), "priors": dict(priors)})
