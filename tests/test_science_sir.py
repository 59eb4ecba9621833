"""The SIR epidemic model: the diffrax ODE solution against SciPy, recovery of known
parameters from simulated counts, the shipped boarding-school data, and bad input."""

from __future__ import annotations

import numpy as np
import pytest

from wager.errors import SpecError
from wager.kernel.gates import GatePolicy, check
from wager.kernel.inference import InferenceConfig, infer
from wager.kernel.nuts import configure_jax
from wager.science import sir


@pytest.fixture(scope="module", autouse=True)
def float64():
    configure_jax()  # the solver runs in float64, as it does under NUTS


@pytest.mark.parametrize("beta, gamma, population", [(1.7, 0.5, 763.0), (0.9, 0.3, 10_000.0), (3.0, 1.2, 250.0)])
def test_the_diffrax_solution_agrees_with_scipy_dop853_to_a_millionth_of_the_population(beta, gamma, population):
    # peer: SciPy's solve_ivp (DOP853, rtol = atol = 1e-10), an independent integrator
    ts = np.linspace(0.25, 30.0, 120)
    states, ok = sir.solve_sir(beta, gamma, population, 1.0, ts)
    states = np.asarray(states)
    reference = sir.reference_solution(beta, gamma, population, 1.0, ts)
    assert bool(ok)
    assert np.max(np.abs(states - reference)) < 1e-6 * population  # diffrax runs at rtol = atol = 1e-6
    assert np.allclose(states.sum(axis=1), population, rtol=1e-9)  # S + I + R is conserved


def test_the_final_size_matches_the_closed_form_final_size_equation():
    # closed form (Kermack & McKendrick): the share never infected, s_inf, solves
    # log(s_inf / s_0) = R0 (s_inf - 1) with s_0 = (N - 1) / N, R(0) = 0
    from scipy.optimize import brentq

    beta, gamma, population = 1.8, 0.5, 1000.0
    r0, s0 = beta / gamma, (population - 1) / population
    s_inf = brentq(lambda s: np.log(s / s0) - r0 * (s - 1), 1e-9, s0 - 1e-9)
    states, _ = sir.solve_sir(beta, gamma, population, 1.0, np.array([200.0]))
    assert np.asarray(states)[0, 0] / population == pytest.approx(s_inf, abs=1e-5)


def test_the_boarding_school_counts_are_the_bmj_1978_series():
    # BMJ, 4 March 1978; R's outbreaks::influenza_england_1978_school, column in_bed
    outbreak = sir.boarding_school()
    assert outbreak.counts.tolist() == [3, 8, 26, 76, 225, 298, 258, 233, 189, 128, 68, 29, 14, 4]
    assert outbreak.days.tolist() == list(range(1, 15))
    assert outbreak.population == 763 and outbreak.initial_infected == 1


SETTINGS = InferenceConfig(engine="nuts", chains=2, warmup=500, draws=1000, seed=11)
"""A small NUTS run: most of this test's time is compiling the ODE inside NUTS (20-40 s on
two busy cores), which no sampler setting shortens; test_science_cli (slow) uses the same
setting and shapes, so in one process the compiled chain is shared."""


def test_nuts_recovers_the_transmission_and_recovery_rates_of_a_simulated_outbreak():
    truth = {"beta": 1.6, "gamma": 0.45, "phi_inv": 0.05}
    outbreak = sir.simulate_outbreak(truth["beta"], truth["gamma"], 1 / truth["phi_inv"], 763.0, np.arange(1, 15),
                                     np.random.default_rng(7))
    model = sir.build_model(outbreak, horizon=14)
    posterior = infer(model, SETTINGS)
    report, _ = check(posterior, GatePolicy())
    assert report.passed, [g.describe() for g in report.failed]
    truth.update(R0=truth["beta"] / truth["gamma"], recovery_time=1 / truth["gamma"])
    for name, value in truth.items():
        draws = posterior.flat(name)
        z = (draws.mean() - value) / draws.std()
        assert abs(z) < 3, (name, value, draws.mean(), draws.std())
    assert posterior["infected"].shape == (2, 1000, 14)
    # the model's NumPy log-likelihood (read off the recorded curve) against SciPy's solver and nbinom at three draws
    from scipy import stats

    recorded = model.log_likelihood({k: v[:, :3] for k, v in posterior.draws.items()})
    for c, d in ((0, 0), (0, 2), (1, 1)):
        b, g, phi = posterior["beta"][c, d], posterior["gamma"][c, d], 1 / posterior["phi_inv"][c, d]
        mean = sir.reference_solution(b, g, 763.0, 1.0, outbreak.days)[:, 1]
        assert recorded[c, d] == pytest.approx(stats.nbinom.logpmf(outbreak.counts, phi, phi / (phi + mean)).sum(), abs=1e-4)


BAD = [
    (dict(days=[1, 2, 3], counts=[4, -1, 2], population=100), "counts", "whole numbers >= 0"),
    (dict(days=[1, 2, 3], counts=[4, 2.5, 2], population=100), "counts", "whole numbers >= 0"),
    (dict(days=[1, 2, 3], counts=[4, float("nan"), 2], population=100), "counts", "finite"),
    (dict(days=[1, 2], counts=[4, 5, 2], population=100), "days", "one day per count"),
    (dict(days=[1, 3, 2], counts=[4, 5, 2], population=100), "days", "strictly increasing"),
    (dict(days=[0, 1, 2], counts=[4, 5, 2], population=100), "days", "> 0"),
    (dict(days=[1, 2, 3], counts=[4, 5, 2], population=0), "population", "> 0"),
    (dict(days=[1, 2, 3], counts=[4, 5, 2], population=-5), "population", "> 0"),
    (dict(days=[1, 2, 3], counts=[4, 500, 2], population=100), "counts", "cannot exceed the population"),
    (dict(days=[1, 2, 3], counts=[4, 5, 2], population=100, initial_infected=0), "initial_infected", "> 0"),
]


@pytest.mark.parametrize("arguments, field, rule", BAD, ids=[
    "negative count", "fractional count", "NaN count", "lengths differ", "days out of order", "day 0",
    "zero population", "negative population", "count above population", "no initial case",
])
def test_bad_outbreak_input_raises_a_spec_error_naming_the_field(arguments, field, rule):
    with pytest.raises(SpecError) as caught:
        sir.check_outbreak(**arguments)
    assert caught.value.field == field and rule in caught.value.rule
