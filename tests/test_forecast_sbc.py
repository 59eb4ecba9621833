"""Simulation-based calibration of the hierarchical forecast model: its prior
predictive simulator (the model's own forecast mode run from an empty history),
checked against the closed form of the first period, and SBC of NUTS on it."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from scipy import stats
from typer.testing import CliRunner

from wager.cli import app
from wager.forecast.examples import simulate_panel

MISSING = [3, 7, 30]
"""Rows of the small panel's long table left empty: series 0 at t = 3 and 7, series 1 at t = 14."""
SBC_NUTS = {"chains": 1, "warmup": 300, "draws": 245}
"""One chain of 245 draws thinned to 49 (a spacing of 5), as the revenue model's SBC in tests/test_sbc.py."""
SMOKE_NUTS = {"chains": 1, "warmup": 100, "draws": 99}
"""One short chain where only the run matters, not the draws: the same settings and shapes
in both tests that use it, so they share one compiled chain."""


@pytest.fixture(autouse=True, scope="module")
def _float64():
    from wager.kernel.nuts import configure_jax

    configure_jax()


def small_panel(likelihood: str = "normal", groups: dict[str, int] | None = None, fourier: int = 0, common_levels: str = "auto"):
    """Four series (2 regions x 2 products, unless ``groups`` says otherwise), 16 quarters,
    three values missing; seasonal states, or ``fourier`` harmonics; common levels as asked."""
    from wager.forecast.domain import prepare
    from wager.forecast.spec import ForecastSpec

    history, _ = simulate_panel(groups or {"region": 2, "product": 2}, n_time=16, seed=9)
    history.loc[MISSING, "value"] = np.nan
    if likelihood in ("negbin", "zinb"):
        history["value"] = np.round(history["value"] / 20)
    seasonality = {"seasonality": {"fourier": fourier}} if fourier else {}
    spec = ForecastSpec(
        data={"time": "time", "group": ["region", "product"], "value": "value"}, horizon=2, likelihood=likelihood, common_levels=common_levels, **seasonality,
    )
    return prepare(spec, frame=history)


@pytest.fixture(scope="module")
def problem():
    return small_panel()


# --- the simulator --------------------------------------------------------------


@pytest.mark.parametrize("likelihood, fourier", [("normal", 0), ("student_t", 0), ("negbin", 0), ("normal", 2)])
def test_simulate_is_deterministic_in_the_seed_and_keeps_the_panels_layout(likelihood, fourier):
    p = small_panel(likelihood, fourier=fourier)
    data = p.model.data
    one, again, other = p.simulate(4), p.simulate(4), p.simulate(5)
    z = np.asarray(one.model.data["z"])
    np.testing.assert_array_equal(z, again.model.data["z"])
    assert all(np.array_equal(one.truth[k], again.truth[k]) for k in one.truth)
    assert not np.array_equal(z, other.model.data["z"])

    assert z.shape == data["z"].shape == (4, 16) and np.isfinite(z).all()
    observed = np.asarray(data["mask"]) > 0
    assert (~observed).sum() == len(MISSING)
    np.testing.assert_array_equal(one.model.data["mask"], data["mask"])  # the panel's missing entries stay missing
    assert np.all(z[~observed] == 0) and np.any(z[observed] != 0)
    assert {k: v for k, v in one.model.data.items() if k != "z"}.keys() == {k for k in data if k != "z"}
    if likelihood == "negbin":  # counts, simulated as counts
        assert np.all(z >= 0) and np.array_equal(z, np.round(z))
        assert "concentration" in one.truth and one.truth["init_z"].shape == (4, p.layout.n_initial)
    if likelihood == "student_t":
        assert "df" in one.truth and "init_z" in one.truth
    if likelihood == "normal":  # the initial states are integrated out, not sampled
        assert "init_z" not in one.truth
    if fourier:  # the cycle's coefficients' hierarchy, not seasonal states
        assert one.truth["fourier_mean"].shape == (2 * fourier,) and "season_mean" not in one.truth
    assert not {"paths", "init_noise", "future_noise", "alpha", "sigma", "loglik"} & set(one.truth)


def test_true_values_have_the_names_and_shapes_of_the_posteriors_draws(problem):
    from wager.kernel.inference import InferenceConfig, infer

    simulation = problem.simulate(1)
    posterior = infer(simulation.model, InferenceConfig(engine="nuts", seed=2, **SMOKE_NUTS))
    assert {k: np.shape(v) for k, v in simulation.truth.items()} == {k: posterior.flat(k).shape[1:] for k in posterior.draws}


def test_the_first_period_is_normal_around_what_the_true_parameters_imply():
    """Given the true parameters, the first simulated value of series ``i`` is
    ``z_0 = l_0 + phi b_0 + s_0 + e_0`` with the initial states drawn from their prior
    (means from the hierarchy, sds ``level_sd``, ``trend_sd``, ``season_sd``) and
    ``e_0 ~ N(0, sigma_i^2)``. The group effects of the initial means are not
    parameters here (the Normal likelihood integrates them out), so they are part of
    the draw: series sharing a level of a column share its effects, and the panel's
    first values are jointly Normal,

        z_0 ~ N(level_mean + phi_i trend_mean + season_mean[0], Sigma)
        Sigma_ij = [i = j] (level_sd^2 + phi_i^2 trend_sd^2 + season_sd^2 + sigma_i^2)
                   + sum_g [g(i) = g(j)] (level_g_sd^2 + season_g_sd^2)

    (``phi_i`` and log ``sigma_i`` pooled from their logits' and logs' sampled group
    effects). Whitened by this closed form, 60 simulations x 20 series are 1,200
    independent N(0, 1) values: their mean is within 4 / sqrt(1200) = 0.12 of 0 and
    their variance within 4 sqrt(2 / 1200) = 0.16 of 1. A simulator whose data did not
    come from its truth (another draw, another scale, a lost term or a lost
    correlation) fails this by far."""
    problem = small_panel(groups={"region": 5, "product": 4})
    assert problem.layout.marginal_effects
    groups = problem.arrays()["groups"]
    columns = problem.layout.groups

    def pooled(truth, name, mean):
        return mean + sum(truth[f"{name}_{c}_sd"] * truth[f"{name}_{c}_z"][groups[:, g]] for g, c in enumerate(columns))

    scores = []
    for seed in range(60):
        simulation = problem.simulate(seed)
        t = simulation.truth
        phi = 0.8 + 0.18 / (1 + np.exp(-pooled(t, "phi", t["phi_logit"])))
        sigma = np.exp(pooled(t, "sigma", t["sigma_log_mean"]) + t["sigma_series_sd"] * t["sigma_series_z"])
        mean = t["level_mean"] + phi * t["trend_mean"] + t["season_mean"][0]
        cov = np.diag(t["level_sd"] ** 2 + phi**2 * t["trend_sd"] ** 2 + t["season_sd"] ** 2 + sigma**2)
        for g, c in enumerate(columns):
            shared = groups[:, g][:, None] == groups[:, g][None, :]
            cov = cov + shared * (t[f"level_{c}_sd"] ** 2 + t[f"season_{c}_sd"] ** 2)
        residual = np.asarray(simulation.model.data["z"])[:, 0] - mean
        scores.append(np.linalg.solve(np.linalg.cholesky(cov), residual))
    scores = np.concatenate(scores)
    assert abs(scores.mean()) < 4 / np.sqrt(scores.size), scores.mean()
    assert abs(scores.var() - 1) < 4 * np.sqrt(2 / scores.size), scores.var()
    assert stats.kstest(scores, "norm").pvalue > 1e-3


# --- SBC ----------------------------------------------------------------------------


@pytest.mark.slow  # 50 NUTS fits: 5 to 12 minutes on two shared cores (2 to 113 s a fit)
def test_nuts_on_the_forecast_model_passes_sbc(problem):
    from wager.workflow.sbc import LOG_LIKELIHOOD, sbc

    result = sbc(problem, simulations=50, seed=1, thin_to=49, inference=SBC_NUTS)
    assert result.engine == "nuts" and result.simulations == 50
    assert {"level_mean", "sigma_series_z[3]", "season_region_sd", "phi_region_z[1]", LOG_LIKELIHOOD} <= set(result.quantities)
    assert result.passed, "\n".join(result.lines())


@pytest.mark.slow  # 50 NUTS fits: 14 to 16 minutes on two shared cores (4 to 47 s a fit)
def test_nuts_on_the_model_with_common_levels_passes_sbc():
    """The model ``auto`` runs on panels of more than 40 series, here forced on a small one:
    the common states' gains and damping, and each series' sampled initial states, are
    recovered with uniform ranks. NUTS diverges in most of these fits (36 of 50 at
    target acceptance 0.8: the sampled initial states' funnel, which is why ``auto``
    keeps them integrated out on small panels), but not enough to bias the ranks."""
    from wager.workflow.sbc import sbc

    problem = small_panel(common_levels="on")
    assert problem.layout.common
    result = sbc(problem, simulations=50, seed=1, thin_to=49, inference=SBC_NUTS)
    assert {"common_alpha_region_logit", "common_beta_product_logit", "common_phi_logit", "init_z[3,0]"} <= set(result.quantities)
    assert result.passed, "\n".join(result.lines())


def test_wager_validate_runs_sbc_and_the_prior_check_on_a_forecast_spec(tmp_path, monkeypatch):
    import wager.workflow.sbc as sbc_module

    monkeypatch.setattr(sbc_module, "NUTS_DEFAULTS", SMOKE_NUTS)  # short fits: a smoke test
    history, _ = simulate_panel({"region": 2, "product": 2}, n_time=16, seed=9)
    history.to_csv(tmp_path / "panel.csv", index=False)
    spec = tmp_path / "orders.yaml"
    spec.write_text(
        "domain: forecast\nname: orders\n"
        "data: {path: panel.csv, time: time, group: [region, product], value: value}\n"
        "horizon: 2\n"
        "inference: {engine: vi, seed: 5, vi_steps: 300, chains: 2, draws: 100}\n"
        "gates: {max_pareto_k: 1000}  # a test of the checks that run, not of the fit\n"
    )
    old = os.getcwd()
    os.chdir(tmp_path)
    try:
        result = CliRunner().invoke(app, ["validate", str(spec), "--sbc", "10", "--executor", "serial", "--json"])
    finally:
        os.chdir(old)
    payload = json.loads(result.stdout)
    sbc_check = {c["name"]: c for c in payload["checks"]}["sbc"]
    assert sbc_check["status"] in ("passed", "failed"), sbc_check  # it ran: not skipped as unsupported
    assert sbc_check["data"]["simulations"] == 10 and sbc_check["data"]["engine"] == "vi"  # the engine the spec asks for
    assert "level_mean" in sbc_check["data"]["quantities"]
    prior = {c["name"]: c for c in payload["checks"]}["prior predictive"]
    assert prior["status"] == "passed" and prior["data"]["draws"] == 1000, prior  # simulated by the domain, not skipped


# --- the prior predictive check ------------------------------------------------------


def test_prior_check_passes_on_a_panel_from_the_prior_and_flags_an_outlier():
    """A panel the model itself simulated has unremarkable statistics among 1,000 prior
    panels; the same panel with one value 1,000 standardised units out, beyond the
    maximum of every prior panel, is a prior-data conflict on ``max`` (ppp 0; its ``sd`` too). The
    default priors are wide: an outlier of 40 units still has a ppp near 0.01."""
    from dataclasses import replace

    from wager.workflow.predictive import prior_check_of

    p = small_panel()
    simulated = p.simulate(seed=5).model
    problem = replace(p, seed=p.seed)
    problem.__dict__["model"] = simulated  # the problem on the simulated panel
    check = prior_check_of(*problem.prior_predictive(seed=1))
    assert check.passed, check.lines()
    assert {c.statistic for c in check.checks} == {"mean", "sd", "min", "max"}

    z = simulated.data["z"].copy()
    z[0, 5] += 1000.0
    problem.__dict__["model"] = replace(simulated, data={**simulated.data, "z": z})
    flagged = prior_check_of(*problem.prior_predictive(seed=1))
    assert not flagged.passed
    assert "max" in {c.statistic for c in flagged.checks if c.flagged}, flagged.lines()
    assert {c.statistic: c.ppp for c in flagged.checks}["max"] == 0.0


def test_forecast_specs_default_to_their_own_nuts_and_svi_settings_unless_set():
    """``FORECAST_TARGET_ACCEPT`` and ``FORECAST_VI_STEPS`` (their docstrings give the
    measurements behind them) apply to a spec that does not set them, in every form."""
    from wager.forecast.spec import FORECAST_TARGET_ACCEPT, FORECAST_VI_STEPS, ForecastSpec
    from wager.kernel.inference import InferenceConfig

    data = {"time": "t", "group": ["g"], "value": "v"}
    for spec in (ForecastSpec(data=data, horizon=2), ForecastSpec(data=data, horizon=2, inference={"engine": "nuts"})):
        assert (spec.inference.target_accept, spec.inference.vi_steps) == (FORECAST_TARGET_ACCEPT, FORECAST_VI_STEPS)
    kernel = InferenceConfig()
    assert (FORECAST_TARGET_ACCEPT, FORECAST_VI_STEPS) != (kernel.target_accept, kernel.vi_steps)
    own = ForecastSpec(data=data, horizon=2, inference={"target_accept": 0.8, "vi_steps": 500})
    assert (own.inference.target_accept, own.inference.vi_steps) == (0.8, 500)
