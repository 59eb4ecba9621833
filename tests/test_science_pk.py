"""Population pharmacokinetics: the closed-form concentration against a numerical ODE
solution, recovery of simulated population parameters, the dose choice, and bad input."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.integrate import solve_ivp

from wager.errors import SpecError
from wager.kernel.gates import GatePolicy, check
from wager.kernel.inference import InferenceConfig, infer
from wager.science import dosing, pk

SETTINGS = InferenceConfig(engine="nuts", chains=4, warmup=500, draws=1000, target_accept=0.9, seed=3)
"""As in test_science_cli: the kernel keeps one compiled chain per model, shapes and settings."""


def gut_and_central(t: np.ndarray, dose: float, ka: float, ke: float, v: float) -> np.ndarray:
    """Peer: the one-compartment model as its ODE (gut amount, central amount), solved by
    SciPy's DOP853 at rtol = atol = 1e-12; concentration = central amount / V."""
    solution = solve_ivp(lambda _t, a: [-ka * a[0], ka * a[0] - ke * a[1]], (0.0, float(t[-1])), [dose, 0.0],
                         method="DOP853", t_eval=t, rtol=1e-12, atol=1e-12)
    return solution.y[1] / v


@pytest.mark.parametrize("ka, ke, v", [(1.5, 0.087, 0.46), (0.3, 0.25, 2.0), (0.2, 0.2, 1.0), (0.2, 0.2 + 1e-8, 1.0)],
                         ids=["theophylline", "slow absorption", "ka equals ke", "ka a hair above ke"])
def test_the_closed_form_concentration_matches_the_ode_solution(ka, ke, v):
    t = np.linspace(0.0, 48.0, 97)
    closed = pk.concentration(t, 4.0, ka, ke, v)
    assert np.allclose(closed, gut_and_central(t, 4.0, ka, ke, v), rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize("ka, ke", [(1.5, 0.087), (0.2, 0.2)], ids=["theophylline", "ka equals ke"])
def test_the_steady_state_curve_is_the_sum_of_all_past_doses(ka, ke):
    # peer: superposition of the single-dose curve over 400 doses every 12 h (the oldest contributes < 1e-12)
    tau, t = 12.0, np.linspace(0.0, 12.0, 25)
    past = sum(pk.concentration(t + k * tau, 4.0, ka, ke, 0.46) for k in range(400))
    assert np.allclose(pk.steady_state_concentration(t, 4.0, ka, ke, 0.46, tau), past, rtol=1e-9)


def simulate_trial(rng: np.random.Generator, truth: dict, patients: int = 24) -> pk.Trial:
    times = np.array([0.25, 0.5, 1.0, 2.0, 3.5, 5.0, 7.0, 9.0, 12.0, 24.0])
    labels, hours, levels, doses = [], [], [], []
    for i in range(patients):
        excess, cl, v = (truth[f"{n}_pop"] * np.exp(truth[f"omega_{n}"] * rng.standard_normal()) for n in ("ka", "cl", "v"))
        ka, ke, v = pk.rates(excess, cl, v)
        dose = rng.uniform(3.0, 6.0)
        mean = pk.concentration(times, dose, ka, ke, v)
        sd = np.sqrt(truth["sigma_add"] ** 2 + (truth["sigma_prop"] * mean) ** 2)
        labels += [f"p{i}"] * times.size
        hours += times.tolist()
        levels += np.maximum(mean + sd * rng.standard_normal(times.size), 0.0).tolist()
        doses += [dose] * times.size
    return pk.check_trial(labels, hours, levels, doses)


def test_the_hierarchical_model_recovers_simulated_population_parameters():
    truth = {"ka_pop": 1.5, "cl_pop": 0.04, "v_pop": 0.5, "omega_ka": 0.4, "omega_cl": 0.3, "omega_v": 0.15,
             "sigma_add": 0.2, "sigma_prop": 0.1}
    trial = simulate_trial(np.random.default_rng(2024), truth, patients=16)
    # 4 x 400 left split R-hat at 1.011 on an AMD EPYC (4 x 800: 1.007); the chains' floating point differs by CPU
    posterior = infer(pk.build_model(trial), InferenceConfig(engine="nuts", chains=4, warmup=500, draws=800, target_accept=0.9, seed=3))
    report, _ = check(posterior, GatePolicy(min_ess_bulk=200, min_ess_tail=200))  # a recovery check, not a decision
    assert report.passed, [g.describe() for g in report.failed]
    for name, value in truth.items():
        # the population's typical values through their sampled logs, where the posterior is near normal
        draws = posterior.flat(f"log_{name}" if name.endswith("_pop") else name)
        target = np.log(value) if name.endswith("_pop") else value
        z = (draws.mean() - target) / draws.std()
        assert abs(z) < 3, (name, value, draws.mean(), draws.std())


def test_the_dose_interval_trick_agrees_with_checking_each_simulated_curve():
    # with the population known (a point-mass posterior), P(in window) per dose computed through the
    # acceptable-dose interval equals the share of directly simulated curves inside [5, 20] mg/L
    draws = {"log_ka_pop": np.full((1, 2000), np.log(1.4)), "log_cl_pop": np.full((1, 2000), np.log(0.04)),
             "log_v_pop": np.full((1, 2000), np.log(0.46)), "omega_ka": np.full((1, 2000), 0.5),
             "omega_cl": np.full((1, 2000), 0.3), "omega_v": np.full((1, 2000), 0.15)}
    window = dosing.dose_window(draws, np.random.default_rng(5), low=5, high=20, regimen="steady_state", interval=12, per_draw=5)
    patients = dosing.new_patients(draws, np.random.default_rng(5), 5)
    curves = dosing.unit_dose_curves(patients, dosing.time_grid("steady_state", 12, 0, 0), "steady_state", 12)
    for dose in (3.0, 4.5, 6.0):
        direct = ((dose * curves.min(axis=-1) >= 5) & (dose * curves.max(axis=-1) <= 20)).mean()
        assert window.probability(dose) == pytest.approx(direct, abs=1e-12)


def test_the_theophylline_dose_is_the_lowest_candidate_meeting_the_target():
    trial = pk.theophylline()
    assert trial.n_patients == 12 and trial.conc.size == 132  # R's Theoph
    posterior = infer(pk.build_model(trial), SETTINGS)
    report, _ = check(posterior, GatePolicy())
    assert report.passed, [g.describe() for g in report.failed]
    # nlme's fit of Theoph (Pinheiro & Bates 2000, ch. 6: lKa 0.451, lCl -3.215): ka 1.57/h, CL 0.040 L/h/kg
    assert posterior.flat("cl_pop").mean() == pytest.approx(0.040, rel=0.1)
    assert posterior.flat("ka_pop").mean() == pytest.approx(1.57, rel=0.25)
    window = dosing.dose_window(posterior.draws, np.random.default_rng(1), low=5, high=20, regimen="single", start=2, end=12)
    choice = dosing.choose_dose(window, [3, 4, 5, 6, 7, 8, 9], target=0.6)
    chosen = choice.doses.index(choice.chosen)
    assert choice.probability[chosen] >= 0.6 > choice.probability[chosen - 1]
    assert all(p < 0.6 for p in choice.probability[:chosen])
    # below the peak of P(dose) more patients clear the trough as the dose rises
    peak = int(np.argmax(choice.probability))
    assert all(np.diff(choice.probability[: peak + 1]) > 0)
    assert all(se < 0.02 for se in choice.probability_se)


BAD = [
    (dict(patients=[1, 1, 2], time=[0, 1, 1], conc=[0, 5, 4], dose=[4, 4, 0]), "dose", "must be > 0"),
    (dict(patients=[1, 1, 2], time=[0, 1, 1], conc=[0, 5, 4], dose=[4, 4, -3]), "dose", "must be > 0"),
    (dict(patients=[1, 1, 2], time=[0, 1, 1], conc=[0, 5, 4], dose=[4, 5, 3]), "dose", "one value per patient"),
    (dict(patients=[1, 1, 2], time=[0, 1, 1], conc=[0, -5, 4], dose=[4, 4, 3]), "conc", "must be >= 0"),
    (dict(patients=[1, 1, 2], time=[0, float("nan"), 1], conc=[0, 5, 4], dose=[4, 4, 3]), "time", "finite"),
    (dict(patients=[1, 1, 2], time=[0, -1, 1], conc=[0, 5, 4], dose=[4, 4, 3]), "time", "must be >= 0"),
    (dict(patients=[1, 1, 2], time=[0, 1], conc=[0, 5, 4], dose=[4, 4, 3]), "time", "one value per sample"),
    (dict(patients=[1, float("nan"), 2], time=[0, 1, 1], conc=[0, 5, 4], dose=[4, 4, 3]), "patient", "must name each row's patient: row 2 is empty"),
    (dict(patients=[1, 1, 2], time=[0, 1, 1], conc=[0, "<LOQ", 4], dose=[4, 4, 3]), "conc", "must be numbers: row 2 has '<LOQ'"),
]


@pytest.mark.parametrize("arguments, field, rule", BAD, ids=[
    "zero dose", "negative dose", "dose changes within a patient", "negative concentration", "NaN time",
    "negative time", "lengths differ", "empty patient cell", "text concentration",
])
def test_bad_trial_input_raises_a_spec_error_naming_the_field(arguments, field, rule):
    with pytest.raises(SpecError) as caught:
        pk.check_trial(**arguments)
    assert caught.value.field == field and rule in caught.value.rule
