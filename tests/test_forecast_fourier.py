"""Fourier seasonality in the panel forecaster: the closed-form marginal over the
initial states and the cycle's coefficients, the forecast continuing the cycle
after the data, recovery of a yearly cycle in weekly data, bad input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from cli_helpers import assert_refused, invoke
from scipy.stats import multivariate_normal


WEEKS_PER_YEAR = 365.25 / 7


@pytest.fixture(autouse=True, scope="module")
def _float64():
    from wager.kernel.nuts import configure_jax

    configure_jax()


def simulate_weekly(groups: dict[str, int], n_time: int, horizon: int, coef: np.ndarray, seed: int = 0, coef_sd: float = 0.03):
    """A weekly panel on the log scale: ETS(A,Ad,N) level and damped trend plus a yearly
    cycle ``sum_k a_k cos(2 pi k t / m) + b_k sin(2 pi k t / m)``, ``m = 365.25 / 7``,
    ``t`` counted from the first week; ``coef`` the panel's ``(a_1, b_1, a_2, b_2, ...)``,
    each series' its own within ``coef_sd``. Written out step by step, apart from the model.
    Returns (history, future) long tables."""
    rng = np.random.default_rng(seed)
    names = list(groups)
    cells = np.array(np.meshgrid(*[np.arange(n) for n in groups.values()], indexing="ij")).reshape(len(names), -1).T
    n, total = len(cells), n_time + horizon
    alpha, beta, phi, sigma = 0.15, 0.01, 0.9, 0.08
    level = 4.0 + 0.5 * rng.normal(size=n)
    trend = 0.002 + 0.001 * rng.normal(size=n)
    series_coef = coef[None, :] + coef_sd * rng.normal(size=(n, coef.size))
    z = np.empty((n, total))
    for t in range(total):
        season = np.zeros(n)
        for k in range(coef.size // 2):
            angle = 2 * np.pi * (k + 1) * t / WEEKS_PER_YEAR
            season += series_coef[:, 2 * k] * np.cos(angle) + series_coef[:, 2 * k + 1] * np.sin(angle)
        e = sigma * rng.normal(size=n)
        z[:, t] = level + phi * trend + season + e
        level, trend = level + phi * trend + alpha * e, phi * trend + beta * e
    times = pd.date_range("2019-01-07", periods=total, freq="W-MON")
    keys = pd.DataFrame({name: [f"{name}{i}" for i in cells[:, g]] for g, name in enumerate(names)})
    frame = keys.loc[keys.index.repeat(total)].reset_index(drop=True)
    frame.insert(0, "time", np.tile(times, n))
    frame["value"] = np.exp(z).ravel()
    past = frame["time"].isin(times[:n_time])
    history = frame[past].reset_index(drop=True)
    history.attrs["coef"] = series_coef  # (series, 2K), in the order of the rows
    return history, frame[~past].reset_index(drop=True)


def _problem(frame: pd.DataFrame, groups: list[str], horizon: int, harmonics: int, period: float, likelihood: str = "normal"):
    from wager.forecast.domain import prepare
    from wager.forecast.spec import ForecastSpec

    spec = ForecastSpec(
        data={"time": "time", "group": groups, "value": "value"}, horizon=horizon, period=period,
        seasonality={"fourier": harmonics}, likelihood=likelihood,
    )
    return prepare(spec, frame=frame)


# --- the closed form ------------------------------------------------------------------


def test_normal_marginal_over_states_and_cycle_equals_the_multivariate_normal_of_the_data():
    """One series of 23 periods (padded to 32), K = 2 harmonics of a fractional period
    7.5. The model's log likelihood, with the initial level, trend and the 4 Fourier
    coefficients integrated out, and the store's group effects on their means too,
    equals the density of the data vector under the Gaussian the innovations form
    implies: ``e = L z - D w`` with ``w = (l0, b0, c) ~ N(m, V)`` and ``e ~ N(0, s^2 I)``,
    so ``z ~ N(L^-1 D m, L^-1 (s^2 I + D V D') L^-T)`` (``|L| = 1``). With one store
    its effect only adds to the variances of ``l0`` and ``c``. ``L`` and ``D`` are read
    off a plain NumPy filter run on unit vectors."""
    import jax
    from numpyro import handlers

    from wager.forecast.model import forecast_model
    from wager.kernel.nuts import _Bound, split_data

    rng = np.random.default_rng(3)
    n_time, period, harmonics = 23, 7.5, 2
    frame = pd.DataFrame({
        "time": pd.date_range("2024-01-01", periods=n_time, freq="D"), "store": "a",
        "value": np.exp(2.0 + np.cumsum(0.1 * rng.normal(size=n_time)) + 0.3 * np.sin(2 * np.pi * np.arange(n_time) / period)),
    })
    problem = _problem(frame, ["store"], 1, harmonics, period)
    assert problem.layout.marginal_effects
    arrays, constants = split_data(problem.arrays())
    assert arrays["z"].shape[1] == 32 and int(arrays["end"]) == n_time  # padded: the filter must stop at end
    model = _Bound(forecast_model, {**constants, "horizon": 1})  # forecast mode records alpha, beta, phi, sigma

    for seed in range(3):
        trace = handlers.trace(handlers.seed(model, jax.random.PRNGKey(seed))).get_trace(**arrays)
        v = {name: np.asarray(site["value"]) for name, site in trace.items()}
        loglik = float(trace["loglik"]["fn"].log_factor)
        alpha, beta, phi, s = (float(v[name][0]) for name in ("alpha", "beta", "phi", "sigma"))

        # the prior of w = (l0, b0, c): the panel's means; series sds and the store's effect's
        mean = np.concatenate([[v["level_mean"], v["trend_mean"]], v["fourier_mean"]])
        var = np.array(
            [v["level_sd"] ** 2 + v["level_store_sd"] ** 2, v["trend_sd"] ** 2]
            + [v["fourier_sd"] ** 2 + v["fourier_store_sd"] ** 2] * (2 * harmonics)
        )

        def innovations(z: np.ndarray, w: np.ndarray) -> np.ndarray:
            level, trend, c = w[0], w[1], w[2:]
            out = np.empty(n_time)
            for t in range(n_time):
                season = sum(
                    c[2 * j] * np.cos(2 * np.pi * (j + 1) * t / period) + c[2 * j + 1] * np.sin(2 * np.pi * (j + 1) * t / period)
                    for j in range(harmonics)
                )
                out[t] = z[t] - (level + phi * trend + season)
                level, trend = level + phi * trend + alpha * out[t], phi * trend + beta * out[t]
            return out

        eye_t, eye_w = np.eye(n_time), np.eye(mean.size)
        L = np.column_stack([innovations(eye_t[j], np.zeros(mean.size)) for j in range(n_time)])
        D = np.column_stack([-innovations(np.zeros(n_time), eye_w[j]) for j in range(mean.size)])
        L_inv = np.linalg.inv(L)
        cov = L_inv @ (s**2 * eye_t + D @ np.diag(var) @ D.T) @ L_inv.T
        expected = multivariate_normal(L_inv @ D @ mean, cov).logpdf(arrays["z"][0, :n_time])
        assert loglik == pytest.approx(expected, rel=1e-9), seed


@pytest.mark.parametrize("likelihood", ["normal", "student_t", "negbin"])
def test_forecast_continues_the_cycle_from_the_end_of_the_data_not_the_padding(likelihood):
    """The time axis is padded past the data (``TIME_BUCKET``); the horizon starts at
    column ``end``. Paths from the same draws and key are the same with and without the
    padding, and so is the log density: the Fourier terms are indexed by period, not
    by the padded length."""
    import jax
    from numpyro.infer import Predictive
    from numpyro.infer.util import log_density

    from wager.forecast.problem import forward
    from wager.kernel.nuts import _Bound, split_data

    coef = np.array([0.4, 0.2, -0.1, 0.1])
    history, _ = simulate_weekly({"region": 2, "store": 2}, n_time=61, horizon=0, coef=coef, seed=1)
    if likelihood == "negbin":
        history["value"] = history["value"].round()
    problem = _problem(history, ["region", "store"], 5, 2, WEEKS_PER_YEAR, likelihood)
    padded, constants = split_data(problem.arrays())
    assert padded["z"].shape[1] == 64 and int(padded["end"]) == 61
    unpadded = {**padded, "z": padded["z"][:, :61], "mask": padded["mask"][:, :61], "end": None}

    model = _Bound(problem.model.numpyro_model, constants)
    prior = Predictive(model, num_samples=3)(jax.random.PRNGKey(0), **unpadded)
    latents = {k: v for k, v in prior.items() if k != "loglik"}
    assert "gamma_logit" not in latents and latents["fourier_mean"].shape == (3, 4)
    for i in range(3):
        params = {k: v[i] for k, v in latents.items()}
        assert float(log_density(model, (), padded, params)[0]) == pytest.approx(float(log_density(model, (), unpadded, params)[0]), rel=1e-12)
    run = forward({**constants, "horizon": 5})
    key = jax.random.PRNGKey(1)
    with_padding, without = run(key, latents, padded), run(key, latents, unpadded)
    np.testing.assert_allclose(np.asarray(with_padding["paths"]), np.asarray(without["paths"]), rtol=1e-12)


# --- recovery ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def weekly():
    """Eight series (2 regions x 4 stores), 3 years of weeks, a yearly cycle of two
    harmonics; fitted with K = 3 by SVI (NUTS takes minutes here: too long for a test)."""
    from wager.forecast import forecast_panel

    coef = np.array([0.30, 0.15, -0.10, 0.12])
    history, future = simulate_weekly({"region": 2, "store": 4}, n_time=156, horizon=26, coef=coef, seed=7)
    result = forecast_panel(
        history, time="time", groups=["region", "store"], value="value", horizon=26,
        period=WEEKS_PER_YEAR, seasonality={"fourier": 3},
        engine="vi", seed=2, chains=2, draws=500, vi_steps=3000,
    )
    return coef, history, future, result


def test_the_yearly_cycle_is_recovered_from_weekly_data(weekly):
    """The panel's mean cycle: its posterior is centred on the average of the eight
    series' true coefficients (what the data can tell; the simulation's population mean
    is off by their sampling error, sd 0.03 / sqrt(8))."""
    _, history, _, result = weekly
    # the panel's cycle on the log scale: the standardised coefficients times the scale
    draws = result.posterior.flat("fourier_mean") * result.problem.standard[1]  # (draws, 6)
    truth = np.concatenate([history.attrs["coef"].mean(axis=0), [0.0, 0.0]])  # no third harmonic in the simulation
    # the cycle's swing: sd over a period, sqrt(sum_k (a_k^2 + b_k^2) / 2)
    amplitude = np.sqrt((draws**2).sum(axis=1) / 2)
    lo, hi = np.quantile(amplitude, [0.005, 0.995])
    assert lo <= np.sqrt((truth**2).sum() / 2) <= hi, (lo, hi)
    z = (draws.mean(axis=0) - truth) / draws.std(axis=0)
    assert np.all(np.abs(z) < 3.5), z


def test_the_fourier_forecast_beats_seasonal_naive_and_says_its_seasonality(weekly):
    _, history, future, result = weekly
    truth = future.pivot_table(index=["region", "store"], columns="time", values="value")
    y = np.log(truth.reindex(pd.MultiIndex.from_frame(result.keys)).to_numpy())
    past = history.pivot_table(index=["region", "store"], columns="time", values="value")
    past = np.log(past.reindex(pd.MultiIndex.from_frame(result.keys)).to_numpy())
    naive = past[:, -52:][:, :26]  # the same weeks a year earlier
    median = np.median(np.log(result.paths), axis=0)
    mae_model, mae_naive = np.abs(median - y).mean(), np.abs(naive - y).mean()
    assert mae_model < 0.9 * mae_naive, (mae_model, mae_naive)
    outcome = result.problem.outcome(result.paths)
    assert outcome.summary["seasonality"] == "3 Fourier harmonics of period 52.1786"
    assert "seasonality: 3 Fourier harmonics of period 52.1786" in outcome.lines[0]


# --- bad input --------------------------------------------------------------------------


BAD = [
    (["--fourier", "0"], ["seasonality.fourier", "greater than or equal to 1"]),
    (["--period", "4", "--fourier", "3"], ["seasonality.fourier", "at most period / 2 = 2 harmonics"]),
    (["--fourier", "27"], ["seasonality.fourier", "at most period / 2 = 26 harmonics"]),  # weekly: period 52
    (["--period", "52.18"], ["period", "whole number", "fourier"]),
]


@pytest.mark.parametrize("change, fragments", BAD)
def test_bad_seasonality_exits_2_naming_the_field(tmp_path, change, fragments):
    history, _ = simulate_weekly({"store": 2}, n_time=20, horizon=0, coef=np.array([0.3, 0.1]))
    path = tmp_path / "weekly.csv"
    history.to_csv(path, index=False)
    args = ["forecast", "--data", str(path), "--time", "time", "--group", "store", "--value", "value", "--horizon", "4",
            *change, "--no-record", "--quiet"]
    result = invoke(args, tmp_path)
    assert_refused(result, fragments, tmp_path, ["weekly.csv"])


def test_a_seasonality_that_is_neither_states_nor_fourier_is_refused():
    from wager.errors import SpecError
    from wager.workflow.specs import parse_spec

    base = {"domain": "forecast", "data": {"time": "t", "group": ["g"], "value": "v"}, "horizon": 4}
    assert parse_spec({**base, "seasonality": {"fourier": 10}, "period": 365.25}).harmonics == 10
    assert parse_spec(base).harmonics == 0
    for bad, field in [("fourier", "seasonality"), ({"fourier": 2, "order": 3}, "seasonality.order")]:
        with pytest.raises(SpecError) as err:
            parse_spec({**base, "seasonality": bad})
        assert err.value.field == field
