"""Panels drawn from the forecast model's prior predictive, for simulation-based
calibration (``wager.workflow.sbc``) and the prior predictive check (``wager validate``).

The model's likelihood is a ``numpyro.factor`` (the Normal likelihood
integrates the initial states out), so there is no observed site for NumPyro's
``uncondition`` to sample. The model's own forecast mode is a simulator
instead: run from an empty history (no columns, ``end = 0``), the filter keeps
the initial state, whose conditional posterior is then its prior, and
``horizon = T`` steps of the state equations with simulated noise are a draw of
a ``T``-period panel from the prior predictive. Being the model itself, any
change to its story flows through here unchanged.

* Scale: the paths come back through ``back_transform(layout, standard)``; the
  simulation runs with the ``identity`` transform and ``standard = (0, 1)`` so
  the paths are the standardised ``z`` the model reads. Count likelihoods
  simulate counts and keep the panel's ``standard`` (its centre is the count
  filter's log-mean offset).
* Time: the forecast window starts at period 0 (``end = 0``), so it reads the
  history's regressors (the first ``T`` columns of ``x``) and, with Fourier
  seasonality, the cycle at the phases the data have.
* Layout: the simulated values replace ``z`` where the panel is observed; the
  panel's missing entries and the time padding (``ForecastProblem.arrays``)
  stay as they are, so the fit sees the same shapes and mask as the real one.
* Truth: the sites inference samples (the latent sample sites of the model run
  on the problem's data, found by tracing it), read from the simulation's
  trace. Forecast-only sites (``init_noise``, ``future_noise``, ``paths``, the
  per-series deterministics) are not parameters.

SBC's test quantity ``log p(y | theta)`` is the ``loglik`` factor (for the
Normal likelihood the marginal over the initial states, which inference does
not sample either), evaluated by ``wager.workflow.sbc.log_likelihood``.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

_PARAMETER_SITES: dict[tuple, tuple[str, ...]] = {}
"""``parameter_sites`` per model, constants and shapes (SBC simulates many panels of one layout)."""


def simulate(problem: Any, seed: int) -> Any:
    """One draw ``(theta, y)`` from ``problem``'s prior predictive: the true parameter
    values (``{site: array}``, the shapes of the posterior's draws) and the problem's
    model on the simulated panel (a ``wager.kernel.calibration.Simulation``)."""
    from wager.kernel.nuts import configure_jax
    from wager.kernel.calibration import Simulation

    configure_jax()
    import jax
    from numpyro import handlers

    model = problem.model
    data, run = _empty_history(problem)
    n_time = problem.panel.values.shape[1]
    trace = handlers.trace(handlers.seed(model.numpyro_model, jax.random.PRNGKey(seed))).get_trace(**run)
    truth = {name: np.asarray(trace[name]["value"]) for name in parameter_sites(model)}

    observed = np.asarray(data["mask"]) > 0
    z = np.zeros(observed.shape)
    z[:, :n_time] = np.asarray(trace["paths"]["value"], dtype=float)  # (series, n_time); the padding stays 0
    simulated = {**model.data, "z": np.where(observed, z, 0.0)}
    return Simulation(truth=truth, model=replace(model, data=simulated))


def _empty_history(problem: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """The model's whole-data keyword data, and the same run forward from an empty
    history over the panel's ``T`` periods (on the standardised scale, counts as counts)."""
    data = {k: v for k, v in problem.model.data.items() if k != "batch"}  # forecast mode never mini-batches
    layout = data["layout"]
    n_series, n_time = problem.panel.values.shape
    empty = np.zeros((n_series, 0))
    run = {**data, "z": empty, "mask": empty, "end": np.array(0), "horizon": n_time}
    if not layout.counts:
        run.update(layout=replace(layout, transform="identity"), standard=np.array([0.0, 1.0]))
    if "x" in data:
        run["x"] = data["x"][:, :n_time]
    return data, run


PRIOR_CHECK_DRAWS = 1000
"""Panels simulated for the prior predictive check (the ppp-values' Monte Carlo error is at most 0.016)."""


def prior_panels(problem: Any, seed: int, draws: int = PRIOR_CHECK_DRAWS) -> tuple[np.ndarray, np.ndarray]:
    """The panel's observed values on the model's scale (standardised; counts as counts),
    and the same entries of ``draws`` panels simulated from the priors alone, ``(draws, values)``:
    what ``wager.workflow.predictive.prior_check_of`` compares."""
    from wager.kernel.nuts import configure_jax

    configure_jax()
    import jax
    from numpyro.infer import Predictive

    data, run = _empty_history(problem)
    n_time = problem.panel.values.shape[1]
    observed = np.asarray(data["mask"])[:, :n_time] > 0
    y = np.asarray(data["z"], dtype=float)[:, :n_time][observed]
    paths = Predictive(problem.model.numpyro_model, num_samples=draws, return_sites=["paths"])(jax.random.PRNGKey(seed), **run)["paths"]
    return y, np.asarray(paths, dtype=float)[:, observed]


def parameter_sites(model: Any) -> tuple[str, ...]:
    """The sites inference samples: the model's latent sample sites on its own data
    (traced once per process for the same constants and shapes)."""
    import jax
    from numpyro import handlers

    from wager.kernel.nuts import _constants_key, split_data

    data = {**model.data, **model.exact_overrides}
    arrays, constants = split_data(data)
    key = (model.numpyro_model, _constants_key(constants), tuple(sorted((k, np.shape(v)) for k, v in arrays.items())))
    if key not in _PARAMETER_SITES:
        trace = handlers.trace(handlers.seed(model.numpyro_model, jax.random.PRNGKey(0))).get_trace(**data)
        _PARAMETER_SITES[key] = tuple(name for name, site in trace.items() if site["type"] == "sample" and not site["is_observed"])
    return _PARAMETER_SITES[key]
