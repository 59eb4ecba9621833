"""Common levels and trends: the panel filter and the forecast's simulation against
their state equations, where ``common_levels: auto`` turns them on and what ``on``
refuses, the prior predictive through them, and (slow) NUTS recovering a simulated gain.
Their benefit on real data is measured in benchmarks/forecast.py (tourism)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import norm, t as student_t

from wager.forecast import forecast_panel
from wager.forecast.examples import Truth, simulate_panel


@pytest.fixture(autouse=True, scope="module")
def _float64():
    from wager.kernel.nuts import configure_jax

    configure_jax()


# --- the filter and the simulation against the state equations, step by step ---------------

A, B, G, PHI, PHI_C = 0.3, 0.05, 0.1, 0.9, 0.85
GROUPS = np.array([[0, 0], [0, 1], [1, 0], [1, 1], [2, 0], [2, 1]])  # 3 regions x 2 products
LEVELS = (3, 2)
GAINS = {0: (0.4, 0.3), 1: (0.2, 0.5)}  # column: (level gain, trend share)


def _common_arguments():
    import jax.numpy as jnp

    from wager.forecast.filters import Common, Smoothing

    n = len(GROUPS)
    params = Smoothing(*(jnp.full(n, v) for v in (A, B, G, PHI)), 4)
    gain = np.concatenate([np.tile([GAINS[g][0], GAINS[g][0] * GAINS[g][1]], (LEVELS[g], 1)) for g in range(2)])
    common = Common(jnp.asarray(GROUPS + np.array([0, LEVELS[0]])), jnp.asarray(gain), jnp.asarray(PHI_C))
    return params, common


def _reference_step(x, shared, e, weight):
    """One step of the series' ETS(A,Ad,A) and of the common states, as the model's docstring writes them."""
    x = np.column_stack([x[:, 0] + PHI * x[:, 1] + A * e, PHI * x[:, 1] + B * e, x[:, 3:], x[:, 2] + G * e])
    new = []
    for g, c in enumerate(shared):
        w = np.bincount(GROUPS[:, g], weight, LEVELS[g])
        mean = np.divide(np.bincount(GROUPS[:, g], weight * e, LEVELS[g]), w, out=np.zeros(LEVELS[g]), where=w > 0)
        gain, share = GAINS[g]
        new.append(np.column_stack([c[:, 0] + PHI_C * c[:, 1] + gain * mean, PHI_C * c[:, 1] + gain * share * mean]))
    return x, new


def _offset(shared):
    return sum((c[:, 0] + PHI_C * c[:, 1])[GROUPS[:, g]] for g, c in enumerate(shared))


@pytest.mark.parametrize("df", [None, 4.0])
def test_the_common_filter_equals_the_state_equations(df):
    from wager.forecast.filters import explicit_filter_common, initial_map

    rng = np.random.default_rng(0)
    n, t = len(GROUPS), 30
    z = rng.normal(size=(n, t))
    mask = (rng.uniform(size=(n, t)) > 0.25).astype(float)
    mask[5] = 0.0  # a series with no data: it moves no common state and still gets one
    sigma = rng.uniform(0.5, 1.5, size=n)
    u = rng.normal(size=(n, 5))
    params, common = _common_arguments()
    state, shared, loglik = explicit_filter_common(z * mask, mask, np.zeros((n, t)), params, u, sigma, df, common)

    x, ref = u @ initial_map(4).T, [np.zeros((k, 2)) for k in LEVELS]
    expected = np.zeros(n)
    for step in range(t):
        e = (z[:, step] - (x[:, 0] + PHI * x[:, 1] + x[:, 2]) - _offset(ref)) * mask[:, step]
        density = norm.logpdf(e, scale=sigma) if df is None else student_t.logpdf(e, df, scale=sigma)
        expected += mask[:, step] * density
        x, ref = _reference_step(x, ref, e, mask[:, step] / sigma**2)
    np.testing.assert_allclose(np.asarray(loglik), expected, rtol=1e-10)
    np.testing.assert_allclose(np.asarray(state), x, atol=1e-12)
    np.testing.assert_allclose(np.asarray(shared), np.concatenate(ref), atol=1e-12)


def test_the_forecast_simulation_follows_the_same_equations():
    from wager.forecast.filters import simulate_common

    rng = np.random.default_rng(1)
    n, horizon = len(GROUPS), 6
    sigma = rng.uniform(0.5, 1.5, size=n)
    x = rng.normal(size=(n, 6))
    shared = [rng.normal(size=(k, 2)) for k in LEVELS]
    shift = rng.normal(size=(n, horizon))
    noise = sigma[:, None] * rng.normal(size=(n, horizon))
    params, common = _common_arguments()
    paths = np.asarray(simulate_common(x, np.concatenate(shared), params, shift, noise, sigma, common))

    expected = np.empty((n, horizon))
    for step in range(horizon):
        e = noise[:, step]
        expected[:, step] = shift[:, step] + x[:, 0] + PHI * x[:, 1] + x[:, 2] + _offset(shared) + e
        x, shared = _reference_step(x, shared, e, sigma**-2)
    np.testing.assert_allclose(paths, expected, atol=1e-12)


# --- where auto turns them on -------------------------------------------------------------


@pytest.mark.parametrize(
    "groups, likelihood, common_levels, batch, on, reason",
    [
        ({"region": 2, "product": 2}, "normal", "auto", None, False, "off: 4 series"),  # NUTS-sized: closed form kept
        ({"region": 7, "product": 6}, "normal", "auto", None, True, "on: 42 series"),
        ({"region": 7, "product": 6}, "student_t", "auto", None, True, "on: 42 series"),
        ({"region": 7, "product": 6}, "negbin", "auto", None, False, "off: the negbin likelihood"),
        ({"region": 7, "product": 6}, "normal", "auto", 10, False, "mini-batches of 10"),
        ({"region": 7, "product": 6}, "normal", "off", None, False, "off, as asked"),
        ({"region": 2, "product": 2}, "normal", "on", None, True, "on, as asked"),
    ],
)
def test_auto_turns_common_levels_on_for_panels_svi_fits_whole(groups, likelihood, common_levels, batch, on, reason):
    """The choice, the reason recorded, and what it does to the rest of the layout. Nothing is fitted."""
    from wager.forecast.domain import prepare
    from wager.forecast.spec import ForecastSpec

    history, _ = simulate_panel(groups, n_time=12, seed=0)
    history["value"] = history["value"].round()  # whole numbers, which the count likelihoods need
    spec = ForecastSpec(
        data={"time": "time", "group": list(groups), "value": "value"}, horizon=2, likelihood=likelihood,
        common_levels=common_levels, batch=batch, inference={"engine": "auto"},
    )
    problem = prepare(spec, frame=history)
    assert problem.layout.common is on
    if on:  # the common states tie the series together: no mini-batches, no per-series closed form
        assert problem.svi_batch is None and not problem.layout.marginal_effects
        assert {"common_alpha_logit", "common_beta_logit", "common_phi_logit"} <= set(problem.priors)
    summary = problem.outcome(np.ones((10, problem.panel.n_series, 2))).summary
    assert reason in summary["common_levels"]


@pytest.mark.parametrize(
    "likelihood, batch, fragment",
    [("negbin", None, "normal and student_t"), ("normal", 10, "every series in each SVI step")],
)
def test_common_levels_on_refuses_what_it_cannot_do(likelihood, batch, fragment):
    from wager.errors import SpecError
    from wager.forecast.domain import prepare
    from wager.forecast.spec import ForecastSpec

    history, _ = simulate_panel({"region": 3, "product": 5}, n_time=12, seed=0)
    history["value"] = history["value"].round()
    spec = ForecastSpec(data={"time": "time", "group": ["region", "product"], "value": "value"}, horizon=2, likelihood=likelihood, common_levels="on", batch=batch)
    with pytest.raises(SpecError) as refused:
        prepare(spec, frame=history)
    assert refused.value.field == "common_levels" and fragment in str(refused.value)


# --- the prior predictive ------------------------------------------------------------------


def test_the_prior_predictive_runs_through_the_common_states():
    """SBC and ``wager validate``'s prior check simulate panels with the model's own
    forecast mode: with common levels on it must draw finite panels of the data's shape,
    and its truth must include the common gains."""
    from wager.forecast.domain import prepare
    from wager.forecast.prior_predictive import prior_panels, simulate
    from wager.forecast.spec import ForecastSpec

    history, _ = simulate_panel({"region": 6, "product": 8}, n_time=20, seed=3)
    spec = ForecastSpec(data={"time": "time", "group": ["region", "product"], "value": "value"}, horizon=2)
    problem = prepare(spec, frame=history)
    assert problem.layout.common
    y, panels = prior_panels(problem, seed=0, draws=50)
    assert panels.shape == (50, y.size) and np.isfinite(panels).all()
    truth = simulate(problem, seed=1).truth
    assert {"common_alpha_region_logit", "common_beta_product_logit", "common_phi_logit"} <= set(truth)


# --- fits ------------------------------------------------------------------------------------


@pytest.mark.slow
def test_nuts_recovers_the_common_gain_it_was_simulated_with():
    """24 series in 3 regions whose common levels move with gain 0.6 (the model's own
    equations, simulated in NumPy): NUTS's posterior for the region gain covers it
    (z within 3). (Mean-field SVI on the same panel centres
    lower, near 0.37, with a 90% interval that excludes 0.6: the variational fit is
    checked by its Pareto-k gate before anything is decided on it.)"""
    truth = Truth(alpha_logit=-3.0, sigma_log_mean=float(np.log(0.1)), common_gain={"region": 0.6})
    history, _ = simulate_panel({"region": 3, "product": 8}, n_time=32, truth=truth, seed=22)
    result = forecast_panel(
        history, time="time", groups=["region", "product"], value="value", horizon=2, engine="nuts", common_levels="on",
        seed=1, chains=2, draws=500, warmup=500,
    )
    gain = 1 / (1 + np.exp(-result.posterior.flat("common_alpha_region_logit")))
    z = (gain.mean() - 0.6) / gain.std()
    assert abs(z) < 3, (gain.mean(), gain.std())

