"""Population pharmacokinetics: the closed-form concentration against a numerical ODE
solution, recovery of simulated population parameters, the dose choice, and bad input."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats
from scipy.integrate import solve_ivp

from wager.errors import SpecError
from wager.kernel.gates import GatePolicy, check
from wager.kernel.inference import InferenceConfig, infer
from wager.science import dosing, pk
from wager.workflow.predictive import posterior_predictive_check, prior_predictive_check

SETTINGS = InferenceConfig(engine="nuts", chains=4, warmup=500, draws=1000, target_accept=0.95, seed=3)
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


@pytest.mark.parametrize("ka, ke, tlag", [(1.5, 0.087, 0.3), (0.2, 0.2, 0.3), (1.5, 0.087, 1e-6), (1.5, 0.087, 26.5)],
                         ids=["theophylline", "ka equals ke", "no lag", "a lag beyond two intervals"])
def test_the_steady_state_curve_is_the_sum_of_all_past_doses(ka, ke, tlag):
    # peer: superposition of the lagged single-dose curve over 400 doses every 12 h (the oldest contributes < 1e-12)
    tau, t = 12.0, np.linspace(0.0, 12.0, 25)
    past = sum(pk.lagged_concentration(t + k * tau, 4.0, ka, ke, 0.46, tlag) for k in range(400))
    assert np.allclose(pk.steady_state_concentration(t, 4.0, ka, ke, 0.46, tau, tlag), past, rtol=1e-9, atol=1e-12)


def test_absorption_starts_after_the_lag_smoothed_over_minutes():
    t = np.array([0.0, 0.2, 0.3, 0.5, 1.0, 6.0])
    lagged = pk.lagged_concentration(t, 4.0, 1.5, 0.087, 0.46, tlag=0.3)
    shifted = pk.concentration(t - 0.3, 4.0, 1.5, 0.087, 0.46)  # a hard lag: nothing before 0.3 h
    # before the lag only the smoothing's tail is absorbed: C rises at D ka / V from 0 for h log(1 + exp((t - tlag) / h)) hours
    early = 4.0 * 1.5 / 0.46 * 0.05 * np.log1p(np.exp((t[:2] - 0.3) / 0.05))
    assert np.allclose(lagged[:2], early, rtol=0.01) and lagged[0] < 0.002 and lagged[1] < 0.1
    assert np.allclose(lagged[4:], shifted[4:], rtol=1e-5)  # 14 widths after it, the hard lag's curve


def test_a_censored_concentration_counts_the_normal_mass_below_the_limit():
    # peer: SciPy's Normal cdf and pdf; replicates below the limit read the limit, as the data do
    import jax

    dist = pk.censored_normal(np.array([0.0, 0.3, 2.0]), np.array([0.2, 0.2, 0.5]), 0.1)
    logp = np.asarray(dist.log_prob(np.array([0.1, 0.1, 2.4])))
    assert np.allclose(logp[:2], stats.norm.logcdf(0.1, [0.0, 0.3], 0.2), rtol=1e-6)  # float32 outside x64
    assert logp[2] == pytest.approx(stats.norm.logpdf(2.4, 2.0, 0.5), rel=1e-6)
    draws = np.asarray(pk.censored_normal(0.0, 0.2, 0.1).sample(jax.random.PRNGKey(0), (20000,)))
    assert draws.min() == 0.1 and np.mean(draws == 0.1) == pytest.approx(stats.norm.cdf(0.5), abs=0.01)
    gradient = jax.grad(lambda m: pk.censored_normal(m, 0.2, 0.1).log_prob(0.1))(0.3)
    assert np.isfinite(gradient) and gradient < 0  # a higher curve makes "below the limit" less likely


def simulate_trial(rng: np.random.Generator, truth: dict, patients: int = 24) -> pk.Trial:
    """Samples at the Theoph schedule's hours, pre-dose included, read as 0 below 0 (an assay's "not detected")."""
    times = np.array([0.0, 0.25, 0.5, 1.0, 2.0, 3.5, 5.0, 7.0, 9.0, 12.0, 24.0])
    labels, hours, levels, doses = [], [], [], []
    for i in range(patients):
        excess, cl, v, tlag = (truth[f"{n}_pop"] * np.exp(truth[f"omega_{n}"] * rng.standard_normal()) for n in ("ka", "cl", "v", "tlag"))
        ka, ke, v = pk.rates(excess, cl, v)
        dose = rng.uniform(3.0, 6.0)
        mean = pk.lagged_concentration(times, dose, ka, ke, v, tlag)
        sd = np.sqrt(truth["sigma_add"] ** 2 + (truth["sigma_prop"] * mean) ** 2)
        labels += [f"p{i}"] * times.size
        hours += times.tolist()
        levels += np.maximum(mean + sd * rng.standard_normal(times.size), 0.0).tolist()
        doses += [dose] * times.size
    return pk.check_trial(labels, hours, levels, doses)


def test_the_hierarchical_model_recovers_simulated_population_parameters():
    truth = {"ka_pop": 1.5, "cl_pop": 0.04, "v_pop": 0.5, "tlag_pop": 0.15, "omega_ka": 0.4, "omega_cl": 0.3, "omega_v": 0.15,
             "omega_tlag": 0.5, "sigma_add": 0.2, "sigma_prop": 0.1}
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
             "omega_cl": np.full((1, 2000), 0.3), "omega_v": np.full((1, 2000), 0.15),
             "log_tlag_pop": np.full((1, 2000), np.log(0.2)), "omega_tlag": np.full((1, 2000), 0.5)}
    window = dosing.dose_window(draws, np.random.default_rng(5), low=5, high=20, regimen="steady_state", interval=12, per_draw=5)
    patients = dosing.new_patients(draws, np.random.default_rng(5), 5)
    curves = dosing.unit_dose_curves(patients, dosing.time_grid("steady_state", 12, 0, 0), "steady_state", 12)
    for dose in (3.0, 4.5, 6.0):
        direct = ((dose * curves.min(axis=-1) >= 5) & (dose * curves.max(axis=-1) <= 20)).mean()
        assert window.probability(dose) == pytest.approx(direct, abs=1e-12)


def standard_two_stage(trial: pk.Trial) -> dict[str, float]:
    """Peer: the standard two-stage estimate (Steimer et al. 1984): each patient's curve with a hard lag fitted
    alone by SciPy's weighted least squares (additive 0.3 mg/L + proportional 10% error, best of three starts),
    the population's typical ``ka``, ``CL``, ``V`` the geometric means over patients."""
    from scipy.optimize import least_squares

    fits = []
    for i in range(trial.n_patients):
        t, y, dose = trial.time[trial.patient == i], trial.conc[trial.patient == i], trial.dose[i]

        def residuals(log_p: np.ndarray) -> np.ndarray:
            ka, ke, v, tlag = np.exp(log_p)
            mean = pk.concentration(np.maximum(t - tlag, 0.0), dose, ka, ke, v)
            return (y - mean) / np.sqrt(0.3**2 + (0.1 * mean) ** 2)

        starts = (np.log([ka, 0.08, 0.5, 0.2]) for ka in (0.5, 1.5, 4.0))
        ka, ke, v, _ = np.exp(min((least_squares(residuals, x0) for x0 in starts), key=lambda r: r.cost).x)
        fits.append((ka, ke * v, v))
    ka, cl, v = np.exp(np.log(fits).mean(axis=0))
    return {"ka": ka, "cl": cl, "v": v}


@pytest.fixture(scope="module")
def theoph():
    trial = pk.theophylline()
    assert trial.n_patients == 12 and trial.conc.size == 132  # R's Theoph
    return trial, infer(pk.build_model(trial), SETTINGS)


def test_the_model_reproduces_theophs_absorption_and_its_readings_of_zero(theoph):
    # Without the lag and the censoring (model version 1) both checks failed on Theoph: min(conc) = 0 had
    # predictive p-values of 0.000 (its replicates went negative), and the LOO-PIT left its band (max |ECDF -
    # uniform| 0.151: the early samples at PIT 0 or 1, the rest bunched in the middle by a widened error)
    trial, posterior = theoph
    model = pk.build_model(trial)
    assert int(trial.censored.sum()) == 9  # the pre-dose zeros
    prior = prior_predictive_check(model, seed=1)
    posterior_check = posterior_predictive_check(model, posterior, seed=1)
    assert prior.passed, prior.lines()
    assert posterior_check.passed, posterior_check.lines()
    assert posterior_check.loo_pit.max_ecdf_difference < 0.1


def test_the_theophylline_dose_is_the_lowest_candidate_meeting_the_target(theoph):
    trial, posterior = theoph
    report, _ = check(posterior, GatePolicy())
    assert report.passed, [g.describe() for g in report.failed]
    # nlme's fit of Theoph (Pinheiro & Bates 2000, ch. 6: lCl -3.215): CL 0.040 L/h/kg. Its ka (1.57/h) is of a
    # model without a lag, which makes absorption look slower; the peer for this model is the two-stage fit
    peer = standard_two_stage(trial)
    assert posterior.flat("cl_pop").mean() == pytest.approx(0.040, rel=0.1)
    assert posterior.flat("cl_pop").mean() == pytest.approx(peer["cl"], rel=0.1)
    assert posterior.flat("v_pop").mean() == pytest.approx(peer["v"], rel=0.1)
    assert posterior.flat("ka_pop").mean() == pytest.approx(peer["ka"], rel=0.25)
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
