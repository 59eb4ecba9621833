"""Hierarchical forecasting: the filter's algebra, recovery on simulated panels,
pooling on short series, cold start, coherent aggregates, newsvendor, bad input."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy.stats import multivariate_normal

from wager.forecast import forecast_panel
from wager.forecast.decide import capacity, newsvendor, newsvendor_cost
from wager.forecast.examples import Truth, simulate_panel
from cli_helpers import assert_refused, invoke
from forecast_helpers import crps



@pytest.fixture(autouse=True, scope="module")
def _float64():
    from wager.kernel.nuts import configure_jax

    configure_jax()


# --- the filter's algebra ---------------------------------------------------------


def _smoothing(n, a, b, g, phi, period=4):
    import jax.numpy as jnp

    from wager.forecast.filters import Smoothing

    return Smoothing(jnp.full(n, a), jnp.full(n, b), jnp.full(n, g), jnp.full(n, phi), period)


def test_affine_filter_equals_the_state_equations_from_any_initial_state():
    from wager.forecast.filters import affine_filter, initial_map

    rng = np.random.default_rng(0)
    n, t = 7, 30
    z = rng.normal(size=(n, t))
    mask = (rng.uniform(size=(n, t)) > 0.25).astype(float)
    a_, b_, g_, phi = 0.3, 0.05, 0.1, 0.9
    a_T, A_T, (srr, sdr, sdd, count) = affine_filter(z * mask, mask, np.zeros((n, t)), _smoothing(n, a_, b_, g_, phi))
    u = rng.normal(size=(n, 5))
    x = u @ initial_map(4).T
    sse = np.zeros(n)
    for step in range(t):  # ETS(A,Ad,A) step by step; a missing value leaves e = 0
        e = (z[:, step] - (x[:, 0] + phi * x[:, 1] + x[:, 2])) * mask[:, step]
        sse += e**2
        x = np.column_stack([x[:, 0] + phi * x[:, 1] + a_ * e, phi * x[:, 1] + b_ * e, x[:, 3:], x[:, 2] + g_ * e])
    np.testing.assert_allclose(np.asarray(a_T) + np.einsum("nkp,np->nk", A_T, u), x, atol=1e-12)
    quadratic = np.asarray(srr) - 2 * np.einsum("np,np->n", sdr, u) + np.einsum("np,npq,nq->n", u, sdd, u)
    np.testing.assert_allclose(quadratic, sse, rtol=1e-10)
    np.testing.assert_array_equal(np.asarray(count), mask.sum(axis=1))


def test_marginal_likelihood_equals_the_multivariate_normal_density():
    from wager.forecast.filters import marginal_normal

    rng = np.random.default_rng(1)
    n, p = 20, 5
    D, r = rng.normal(size=(n, p)), rng.normal(size=n)
    m, v, s = rng.normal(size=p), rng.uniform(0.1, 2, size=p), 0.7
    # r = D u + e, u ~ N(m, diag v), e ~ N(0, s^2 I)  =>  r ~ N(D m, s^2 I + D diag(v) D')
    expected = multivariate_normal(D @ m, s**2 * np.eye(n) + D @ np.diag(v) @ D.T).logpdf(r)
    stats = (np.array([r @ r]), (D.T @ r)[None], (D.T @ D)[None], np.array([float(n)]))
    loglik, post_mean, _ = marginal_normal(stats, m[None], v[None], np.array([s]))
    assert float(loglik[0]) == pytest.approx(expected, rel=1e-10)
    precision = np.diag(1 / v) + D.T @ D / s**2
    np.testing.assert_allclose(post_mean[0], np.linalg.solve(precision, m / v + D.T @ r / s**2), rtol=1e-10)


def test_integrating_the_group_effects_out_equals_the_joint_normal_of_the_panel():
    """Five series, two grouping columns (2 and 3 levels), one series without data.
    With ``u_i ~ N(m_i + M_i w, diag v_i)`` and the group effects ``w ~ N(0, diag
    scale^2)`` on level and season (not trend), the series are jointly Gaussian:
    ``Cov(u) = diag(v) + M diag(scale^2) M'``, and the stacked ``r ~ N(D m, D Cov(u) D'
    + diag(s^2))``. The panel's log likelihood equals that density, and the effects'
    posterior equals Gaussian conditioning of ``w`` on ``r``."""
    from wager.forecast.filters import marginal_effects

    rng = np.random.default_rng(0)
    n, p, dims = 5, 5, (0, 2, 3, 4)
    levels = (2, 3)
    groups = np.column_stack([rng.integers(0, k, n) for k in levels])
    groups[:2] = [[0, 0], [1, 2]]
    index = groups + np.array([0, levels[0]])
    scale = rng.uniform(0.2, 1.5, size=(sum(levels), len(dims)))
    m, v, s = rng.normal(size=(n, p)), rng.uniform(0.1, 2, size=(n, p)), rng.uniform(0.3, 1, size=n)
    lengths = [6, 0, 3, 8, 1]
    Ds, rs = [rng.normal(size=(t, p)) for t in lengths], [rng.normal(size=t) for t in lengths]
    stats = (
        np.array([r @ r for r in rs]), np.array([D.T @ r for D, r in zip(Ds, rs)]),
        np.array([D.T @ D for D in Ds]), np.array(lengths, dtype=float),
    )
    loglik, omega, upper = marginal_effects(stats, m, v, s, index, scale, dims)

    M = np.zeros((n * p, scale.size))  # u (stacked) = m + M w + noise
    for i in range(n):
        for g in range(len(levels)):
            for j, d in enumerate(dims):
                M[i * p + d, index[i, g] * len(dims) + j] = 1.0
    prior_w = np.diag(scale.ravel() ** 2)
    D = np.zeros((sum(lengths), n * p))
    rows = np.cumsum([0, *lengths])
    for i, Di in enumerate(Ds):
        D[rows[i] : rows[i + 1], i * p : (i + 1) * p] = Di
    cov = D @ (np.diag(v.ravel()) + M @ prior_w @ M.T) @ D.T + np.diag(np.repeat(s**2, lengths))
    r = np.concatenate(rs)
    assert float(loglik) == pytest.approx(multivariate_normal(D @ m.ravel(), cov).logpdf(r), rel=1e-10)

    cross = prior_w @ M.T @ D.T
    w_mean = cross @ np.linalg.solve(cov, r - D @ m.ravel())
    w_cov = prior_w - cross @ np.linalg.solve(cov, cross.T)
    np.testing.assert_allclose(np.asarray(omega) * scale.ravel(), w_mean, atol=1e-12)
    precision = np.asarray(upper).T @ np.asarray(upper)  # of omega = w / scale
    np.testing.assert_allclose(np.outer(scale.ravel(), scale.ravel()) * np.linalg.inv(precision), w_cov, atol=1e-12)


@pytest.mark.parametrize("period", [4, 12])
def test_the_normal_likelihood_of_the_largest_nuts_panel_may_run_its_chains_side_by_side(period):
    """NUTS chains share the pool of chain threads only when their program's LAPACK calls
    run inline (``wager.kernel.nuts.pool_safe``). The integrated-out likelihood's gradient
    at the most series NUTS takes, quarterly and monthly, is such a program."""
    import jax

    from wager.forecast.filters import marginal_effects
    from wager.forecast.model import Layout
    from wager.forecast.problem import NUTS_MAX_SERIES
    from wager.kernel.nuts import pool_safe

    layout = Layout(period=period, groups=("region", "product"), levels=(8, 5))
    n, p, dims = NUTS_MAX_SERIES, layout.n_initial, layout.pooled_dims
    rng = np.random.default_rng(1)
    index = np.column_stack([rng.integers(0, 8, n), 8 + rng.integers(0, 5, n)])
    D = rng.normal(size=(n, 3 * p, p))
    stats = (np.ones(n), rng.normal(size=(n, p)), np.einsum("ntp,ntq->npq", D, D), np.full(n, 3.0 * p))

    def loglik(mean, var, sigma, scale):
        return marginal_effects(stats, mean, var, sigma, index, scale, dims)[0]

    arguments = (np.zeros((n, p)), np.ones((n, p)), np.ones(n), np.ones((13, len(dims))))
    assert pool_safe(jax.jit(jax.grad(loglik, argnums=(0, 1, 2, 3))).lower(*arguments).compile())


# --- fits ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def recovery():
    """A 12-series panel (region x product), 40 quarters, fitted by NUTS."""
    history, future = simulate_panel({"region": 4, "product": 3}, n_time=40, horizon=8, seed=11)
    result = forecast_panel(
        history, time="time", groups=["region", "product"], value="value", horizon=8,
        engine="nuts", seed=3, chains=2, draws=400, warmup=400, target_accept=0.9,
    )
    return history, future, result


def test_the_pooled_model_recovers_the_parameters_it_was_simulated_with(recovery):
    history, _, result = recovery
    truth = history.attrs["truth"]
    fitted = result.problem.forecast(result.posterior)
    for name in ("alpha", "sigma"):
        draws = fitted[name]  # (draws, series), series in the panel's (sorted) order
        order = np.lexsort((history.drop_duplicates(["region", "product"])["product"], history.drop_duplicates(["region", "product"])["region"]))
        true = truth[name][order]
        z = (draws.mean(axis=0) - true) / draws.std(axis=0)
        assert np.all(np.abs(z) < 3), (name, z)
    # the global noise level on the model's standardised scale. Its group effects sum to
    # zero, so it is the average over the levels: on this balanced grid (one series per
    # region x product, no series term in the simulation) the mean of the true log sigmas
    scale = result.problem.standard[1]
    post = result.posterior.flat("sigma_log_mean")
    z = (post.mean() - (np.log(truth["sigma"]).mean() - np.log(scale))) / post.std()
    assert abs(z) < 3, z


@pytest.mark.parametrize(
    "engine, likelihood, groups, sample_effects, integrated",
    [
        ("auto", "normal", {"region": 2, "product": 2}, False, True),  # 4 series: auto runs NUTS
        ("nuts", "normal", {"region": 2, "product": 2}, False, True),
        ("vi", "normal", {"region": 2, "product": 2}, False, False),  # SVI keeps them sampled (the cost)
        ("auto", "normal", {"region": 7, "product": 6}, False, False),  # 42 series: auto runs SVI
        ("nuts", "student_t", {"region": 2, "product": 2}, False, False),  # only the Normal integrates
        ("nuts", "normal", {"region": 2, "product": 2}, True, False),
    ],
)
def test_the_group_effects_are_integrated_out_where_nuts_runs_the_normal_likelihood(engine, likelihood, groups, sample_effects, integrated):
    """The choice of form, and the record saying which ran. Nothing is fitted: the
    outcome is read off placeholder paths."""
    from dataclasses import replace

    from wager.forecast.domain import prepare
    from wager.forecast.spec import ForecastSpec

    history, _ = simulate_panel(groups, n_time=12, seed=0)
    spec = ForecastSpec(
        data={"time": "time", "group": list(groups), "value": "value"}, horizon=2, likelihood=likelihood, inference={"engine": engine},
    )
    problem = replace(prepare(spec, frame=history), sample_effects=sample_effects)
    assert problem.layout.marginal_effects is integrated
    summary = problem.outcome(np.ones((10, problem.panel.n_series, 2))).summary
    assert summary["group_effects"] == ("integrated out" if integrated else "sampled")


def test_a_single_level_column_leaves_every_parameter_rateable():
    """One series: its grouping column has one level. A zero-sum effect there would be
    the constant 0, whose R-hat is undefined, and the gates would block every such fit."""
    history, _ = simulate_panel({"store": 1}, n_time=20, seed=1)
    result = forecast_panel(history, time="time", groups=["store"], value="value", horizon=2, engine="nuts", chains=2, warmup=100, draws=100, seed=1)
    r_hat = next(g for g in result.gates.gates if g.name == "r_hat")
    assert np.isfinite(r_hat.value) and r_hat.value < 1.2, r_hat


def test_forecast_bands_are_calibrated_on_the_simulated_future(recovery):
    history, future, result = recovery
    truth = future.pivot_table(index=["region", "product"], columns="time", values="value")
    y = truth.reindex(pd.MultiIndex.from_frame(result.keys)).to_numpy()
    lo, hi = np.quantile(result.paths, [0.05, 0.95], axis=0)
    covered = np.mean((y >= lo) & (y <= hi))
    # 96 values, nominal 0.9: binomial sd 0.03; allow 4 sd below
    assert covered >= 0.9 - 4 * 0.03, covered


def test_pooling_beats_independent_fits_on_short_series():
    """Six series of one product family, each seen only in its last 6 quarters:
    one pooled fit forecasts them better (CRPS) than a fit per series."""
    truth = Truth(level_group_sd=0.1, season_group_sd=0.05, smoothing_group_sd=0.1, sigma_group_sd=0.05, season_mean=(0.6, -0.4, 0.3))
    history, future = simulate_panel({"store": 6}, n_time=24, horizon=4, truth=truth, seed=5)
    short = history.copy()
    short.loc[short["time"] < sorted(short["time"].unique())[-6], "value"] = np.nan
    options = dict(time="time", value="value", horizon=4, engine="vi", seed=1, vi_steps=1500, draws=250, chains=2)
    pooled = forecast_panel(short, groups=["store"], **options)
    actual = future.pivot_table(index="store", columns="time", values="value")
    y = actual.reindex(pooled.keys["store"]).to_numpy()
    pooled_crps = crps(pooled.paths, y).mean()
    alone = []
    for store, rows in short.groupby("store"):
        single = forecast_panel(rows, groups=["store"], **options)
        alone.append(crps(single.paths, actual.loc[store].to_numpy()[None]).mean())
    assert pooled_crps < np.mean(alone), (pooled_crps, np.mean(alone))


@pytest.mark.parametrize(
    "products, truth, common",
    [
        (3, Truth(), False),  # 9 series
        (12, Truth(common_gain={"region": 0.5, "product": 0.3}, common_trend_share=0.2), True),  # 36 series, common levels on
    ],
)
def test_a_series_with_no_history_gets_a_finite_forecast_with_wider_bands(products, truth, common):
    history, _ = simulate_panel({"region": 3, "product": products}, n_time=24, truth=truth, seed=8)
    new = history["region"].eq("region0") & history["product"].eq("product2")
    history.loc[new, "value"] = np.nan  # the rows name the series; no value observed
    result = forecast_panel(
        history, time="time", groups=["region", "product"], value="value", horizon=4, engine="vi", seed=2, vi_steps=1500, draws=250, chains=2,
        common_levels="on" if common else "auto",
    )
    assert result.problem.layout.common is common
    assert np.isfinite(result.paths).all()
    log_paths = np.log(result.paths)
    width = (np.quantile(log_paths, 0.9, axis=0) - np.quantile(log_paths, 0.1, axis=0)).mean(axis=1)
    cold = np.flatnonzero((result.keys["region"] == "region0") & (result.keys["product"] == "product2"))[0]
    siblings = np.flatnonzero((result.keys["region"] == "region0") & (result.keys["product"] != "product2"))
    assert width[cold] > width[siblings].max(), (width[cold], width[siblings])
    assert result.problem.panel.observed[cold].sum() == 0


def test_aggregates_are_sums_of_sample_paths_draw_by_draw():
    history, _ = simulate_panel({"state": 2, "purpose": 3}, n_time=20, seed=4)
    result = forecast_panel(history, time="time", groups=["state", "purpose"], value="value", horizon=3, engine="vi", seed=1, vi_steps=300, draws=100, chains=2)
    aggregates = result.problem.aggregates(result.paths)
    np.testing.assert_array_equal(aggregates["total"][1][:, 0], result.paths.sum(axis=1))
    labels, by_state = aggregates["state"]
    for j, state in enumerate(labels):
        members = (result.keys["state"] == state).to_numpy()
        np.testing.assert_array_equal(by_state[:, j], result.paths[:, members].sum(axis=1))
    np.testing.assert_allclose(by_state.sum(axis=1), aggregates["total"][1][:, 0], rtol=1e-12)


# --- decisions ------------------------------------------------------------------------------


def test_newsvendor_order_is_the_critical_fractile_and_minimises_expected_cost():
    rng = np.random.default_rng(3)
    demand = rng.gamma(3.0, 20.0, size=(4001, 2, 3))
    under, over = 3.0, 1.0
    orders = newsvendor(demand, under, over)
    assert orders.fractile == under / (under + over)
    np.testing.assert_array_equal(orders.quantity, np.quantile(demand, 0.75, axis=0, method="inverted_cdf"))
    for i in range(2):
        for h in range(3):
            d = demand[:, i, h]
            grid = np.linspace(d.min(), d.max(), 2001)
            costs = newsvendor_cost(grid[:, None], d[None], under, over).mean(axis=1)
            best = newsvendor_cost(orders.quantity[i, h], d, under, over).mean()
            assert best <= costs.min() + 1e-9
            assert best == pytest.approx(orders.expected_cost[i, h])
            # and the minimiser is where the empirical CDF crosses the fractile
            assert np.mean(d < orders.quantity[i, h]) <= 0.75 <= np.mean(d <= orders.quantity[i, h])


def test_capacity_is_the_tail_quantile_with_its_expected_cost():
    rng = np.random.default_rng(4)
    demand = rng.lognormal(3, 0.5, size=(5000, 3))
    cap = capacity(demand, 0.95, unit_cost=1.0, shortage_cost=10.0)
    np.testing.assert_array_equal(cap.capacity, np.quantile(demand, 0.95, axis=0, method="inverted_cdf"))
    assert np.all(cap.exceed_probability <= 0.05)
    shortfall = np.maximum(demand - cap.capacity, 0).mean(axis=0)
    np.testing.assert_allclose(cap.expected_cost, cap.capacity + 10 * shortfall)


# --- the command line -----------------------------------------------------------------------


@pytest.fixture
def panel_csv(tmp_path):
    history, _ = simulate_panel({"region": 2, "product": 2}, n_time=16, seed=9)
    path = tmp_path / "panel.csv"
    history.to_csv(path, index=False)
    return tmp_path, path, history


def test_wager_forecast_orders_through_the_shared_path(panel_csv):
    folder, path, _ = panel_csv
    args = ["forecast", "--data", str(path), "--time", "time", "--group", "region,product", "--value", "value", "--horizon", "2",
            "--engine", "vi", "--vi-steps", "400", "--draws", "250", "--chains", "2", "--under", "3", "--over", "1", "--json"]
    result = invoke(args, folder)
    payload = json.loads(result.stdout)
    assert payload["domain"] == "forecast"
    assert payload["inference"]["engine"] == "vi"
    assert [g["name"] for g in payload["gates"]["checks"]] == ["pareto_k"]
    if result.exit_code == 0:
        assert payload["action"] == "order"
        assert len(payload["newsvendor"]["orders"]) == 4
        assert payload["newsvendor"]["critical_fractile"] == 0.75
    else:  # the guide failed its PSIS check: no orders, and the run says why
        assert result.exit_code == 3 and payload["blocked_by"] == ["pareto_k"]
        assert "--engine nuts" in payload["gates"]["checks"][0]["remedy"]
    assert payload["run_id"]


def test_a_forecast_spec_decides_orders_and_its_report_draws_fan_charts(panel_csv):
    folder, path, _ = panel_csv
    spec = folder / "orders.yaml"
    spec.write_text(
        "domain: forecast\nname: orders\n"
        f"data: {{path: {path.name}, time: time, group: [region, product], value: value}}\n"
        "horizon: 2\ndecision: {newsvendor: {under: 3, over: 1}, capacity: {level: 0.95, unit_cost: 1, shortage_cost: 5}}\n"
        "inference: {engine: vi, seed: 5, vi_steps: 800, chains: 2, draws: 250}\n"
        "gates: {max_pareto_k: 1000}  # a test of the decision and the report, not of the fit\n"
    )
    result = invoke(["run", str(spec), "--json"], folder)
    payload = json.loads(result.stdout)
    assert payload["inference"]["engine"] == "vi"
    assert result.exit_code == 0, payload["blocked_by"]
    assert payload["action"] == "order"
    for order, item in zip(payload["newsvendor"]["orders"], payload["series"]):
        q75 = order["quantity"][0]
        assert item["quantiles"]["0.5"][0] <= q75 <= item["quantiles"]["0.975"][0]
    assert len(payload["capacity"]["per_series"]) == 4
    html = folder / "report.html"
    shown = invoke(["report", payload["run_id"], "--out", str(html)], folder)
    assert shown.exit_code == 0, shown.output
    page = html.read_text()
    assert 'id="forecast"' in page and page.count("Fan chart of") == 5  # the total and four series


BAD = [
    (["--value", "sales"], ["data.value", "no column 'sales'"]),
    (["--horizon", "0"], ["horizon", "greater than 0"]),
    (["--likelihood", "negbin", "--value", "signed"], ["data.value", "count likelihood needs values >= 0"]),
    (["--group", "region"], ["data.time", "more than one row"]),
    (["--data", "irregular.csv"], ["data.time", "not on a regular grid"]),
    (["--data", "unlabelled.csv"], ["data.group", "row 6 has no label in grouping column 'product'"]),
    (["--data", "misdated.csv"], ["data.time", "row 2 holds 'soon', which is not a date"]),
    (["--group", "region,,product"], ["data.group.1", "is empty: 'region,,product' has nothing at position 2"]),
    (["--data", "reformatted.csv"], ["data.time", "row 5 holds '01/04/2011', which is not a date or date-time in the column's format"]),
    (["--time", "index"], ["data.time", "holds numbers (0, ...), not times"]),
    (["--time", "blank"], ["data.time", "row 1 has no time"]),
    (["--events", "unnamed.csv"], ["data.events.event", "row 2 has no event name"]),
    (["--engine", "exact"], ["inference.engine", "no exact (conjugate) update"]),
    (["--common-levels", "sideways"], ["common_levels", "'auto', 'on' or 'off'"]),
    (["--common-levels", "on", "--likelihood", "negbin", "--value", "whole"], ["common_levels", "normal and student_t"]),
    (["--value", "huge", "--transform", "identity"], ["data.value", "too large to model on the identity scale"]),
    (["--regressors", "spike"], ["data.regressors", "column 'spike' holds an infinite value at row 2"]),
    (["--regressors", "level"], ["data.regressors", "column 'level' must be numeric; row 3 holds 'high'"]),
    (["--regressors", "time"], ["data.regressors", "column 'time' must be numeric; row 1 holds '2010-01-01'"]),
    (["--capacity", "nan"], ["decision.capacity.level", "finite number"]),
    (["--period", "nan"], ["period", "finite number"]),
    (["--events", "unknown_label.csv"], ["data.events.region", "row 1 holds 'zzz', which no series has (labels: region0, region1)"]),
    (["--events", "spaced_label.csv"], ["data.events.region", "row 1 holds ' region0', which no series has"]),
    (["--events", "between.csv"], ["data.events.time", "row 1 is at 2011-02-15 00:00, between the data's time stamps"]),
    (["--events", "unscoped.csv"], ["data.events.store", "is not a grouping column of the data (region, product)"]),
    (["--value", "flag"], ["data.value", "column 'flag' holds true/false values"]),
    (["--data", "spaced.csv"], ["data.group", "row 21 labels column 'region' 'region0 ', which differs from 'region0' (row 1) only in spaces"]),
    (["--regressors", "index,index"], ["data.regressors", "must be distinct"]),
    (["--unit-cost", "5"], ["decision.capacity.unit_cost", "--unit-cost needs --capacity"]),
    (["--shortage-cost", "10"], ["decision.capacity.shortage_cost", "--shortage-cost needs --capacity"]),
]


@pytest.mark.parametrize("change, fragments", BAD)
def test_bad_forecast_input_exits_2_and_writes_nothing(panel_csv, change, fragments):
    folder, path, history = panel_csv
    history = history.assign(signed=np.where(np.arange(len(history)) == 3, -1.0, 2.0), whole=history["value"].round())
    history.to_csv(path, index=False)
    irregular = history.copy()
    irregular.loc[irregular["time"] == irregular["time"].max(), "time"] = pd.Timestamp("2013-12-17")
    irregular.to_csv(folder / "irregular.csv", index=False)
    history.assign(product=history["product"].where(np.arange(len(history)) != 5)).to_csv(folder / "unlabelled.csv", index=False)
    history.assign(time=history["time"].astype(str).where(np.arange(len(history)) != 1, "soon")).to_csv(folder / "misdated.csv", index=False)
    row = np.arange(len(history))
    history.assign(
        index=row, blank=np.nan, huge=history["value"] * 1e300, spike=np.where(row == 1, np.inf, 1.0),
        level=np.where(row == 2, "high", "1"), flag=row % 2 == 0,
    ).to_csv(path, index=False)
    history.assign(region=history["region"].where(row != 20, "region0 ")).to_csv(folder / "spaced.csv", index=False)
    # one date in another format: read cell by cell it would pass (US or European day first?)
    history.assign(time=history["time"].dt.strftime("%Y-%m-%d").where(row != 4, "01/04/2011")).to_csv(folder / "reformatted.csv", index=False)
    pd.DataFrame({"time": [history["time"].max()] * 2, "event": ["promo", None]}).to_csv(folder / "unnamed.csv", index=False)
    events = {
        "unknown_label": {"time": ["2011-01-01"], "event": ["promo"], "region": ["zzz"]},
        "spaced_label": {"time": ["2011-01-01"], "event": ["promo"], "region": [" region0"]},
        "between": {"time": ["2011-02-15"], "event": ["promo"]},  # inside the quarterly data, off its grid
        "unscoped": {"time": ["2011-01-01"], "event": ["promo"], "store": ["north"]},
    }
    for name, table in events.items():
        pd.DataFrame(table).to_csv(folder / f"{name}.csv", index=False)
    before = sorted(p.name for p in folder.iterdir())
    args = {"--data": str(path), "--time": "time", "--group": "region,product", "--value": "value", "--horizon": "2"}
    args.update(dict(zip(change[::2], change[1::2])))
    # the run is recorded, as by default: bad input must stop before the registry is opened;
    # and no warning may reach stderr on the way (pytest would catch it, so it fails the run here)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = invoke(["forecast", *[x for kv in args.items() for x in kv], "--quiet"], folder)
    assert_refused(result, fragments, folder, before)


# --- reading the table's times and the spec -------------------------------------------------------


QUARTERS = pd.date_range("2020-01-01", periods=8, freq="QS")
MONTHS = pd.date_range("2020-01-01", periods=8, freq="MS")


@pytest.mark.parametrize("written, starts", [
    ([f"{t.year}Q{t.quarter}" for t in QUARTERS], QUARTERS),  # the periods wager's own messages suggest
    ([f"{t:%Y-%m}" for t in MONTHS], MONTHS),
    ([f"{t:%Y-%m-%dT%H:%M}+01:00" for t in QUARTERS], QUARTERS),  # in UTC, 23:00 the day before
    ([f"{t:%Y-%m-%dT%H:%M}-05:00" for t in QUARTERS], QUARTERS),
    # one zone's daylight-saving time (Berlin: +02:00 from April to October), and two zones: wall times kept
    ([f"{t:%Y-%m-%dT%H:%M}{'+02:00' if 4 <= t.month <= 10 else '+01:00'}" for t in QUARTERS], QUARTERS),
    ([f"{t:%Y-%m-%dT%H:%M}{'+05:00' if i == 3 else '+00:00'}" for i, t in enumerate(QUARTERS)], QUARTERS),
])
def test_periods_and_local_times_read_as_written_without_a_warning(written, starts):
    from wager.forecast.data import Panel

    frame = pd.DataFrame({"time": written * 2, "store": ["a"] * 8 + ["b"] * 8, "sales": np.arange(16.0) + 1})
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # pandas' "Could not infer format" would reach stderr
        panel = Panel.from_frame(frame, time="time", groups=["store"], value="sales", horizon=2)
    assert list(panel.times) == list(starts)


@pytest.mark.parametrize("freq, period", [
    ("QS", 4), ("QE", 4), ("BQE", 4), ("2QS", 2),  # 2QS: half years, two to a year
    ("MS", 12), ("ME", 12), ("BMS", 12), ("BME", 12), ("WOM-1MON", 12), ("2MS", 6),
    ("W-MON", 52), ("14D", 26),  # fortnights: pandas reads them as 2W
    ("D", 7), ("B", 5), ("h", 24), ("2h", 12),
])
def test_the_seasonal_period_is_the_steps_in_the_frequencys_cycle(freq, period):
    from wager.forecast.data import Panel

    frame = pd.DataFrame({"time": pd.date_range("2015-01-01", periods=30, freq=freq), "store": "a", "sales": 1.0})
    assert Panel.from_frame(frame, time="time", groups=["store"], value="sales", horizon=2).period == period


@pytest.mark.parametrize("freq", ["3W-SUN", "min"])
def test_a_seasonal_period_the_frequency_does_not_tell_is_asked_for(freq):
    from wager.errors import SpecError
    from wager.forecast.data import Panel

    frame = pd.DataFrame({"time": pd.date_range("2015-01-01", periods=30, freq=freq), "store": "a", "sales": 1.0})
    with pytest.raises(SpecError, match=r"^data.time: .* cannot be told from it; set period"):
        Panel.from_frame(frame, time="time", groups=["store"], value="sales", horizon=2)


SPEC_HEAD = "domain: forecast\ndata: {path: sales.csv, time: time, group: [store], value: sales}\n"


@pytest.mark.parametrize("switch, common", [("on", "on"), ("off", "off"), ("auto", "auto")])
def test_yaml_on_and_off_switch_common_levels(switch, common):
    """YAML 1.1 reads a bare on and off, the documented values, as true and false."""
    import yaml

    from wager.workflow.specs import parse_spec

    assert parse_spec(yaml.safe_load(f"{SPEC_HEAD}horizon: 2\ncommon_levels: {switch}\n")).common_levels == common


@pytest.mark.parametrize("lines, field", [
    ("horizon: true", "horizon"),  # would be a horizon of 1
    ("horizon: 2\nperiod: yes", "period"),
    ("horizon: 2\nbatch: on", "batch"),
    ("horizon: 2\nseasonality: {fourier: true}", "seasonality.fourier"),
])
def test_a_yaml_boolean_is_no_number(lines, field):
    import yaml

    from wager.errors import SpecError
    from wager.workflow.specs import parse_spec

    with pytest.raises(SpecError, match=f"^{field}: must be a number, not true$"):
        parse_spec(yaml.safe_load(f"{SPEC_HEAD}{lines}\n"))


# --- leave-future-out calibration -------------------------------------------------------------


def test_leave_future_out_pit_is_uniform_for_the_process_and_flags_a_shift():
    from wager.forecast.domain import prepare
    from wager.forecast.spec import ForecastSpec
    from wager.forecast.validation import lfo_pit
    from wager.kernel.inference import InferenceConfig

    history, _ = simulate_panel({"region": 3, "product": 3}, n_time=32, seed=12)
    spec = ForecastSpec(data={"time": "time", "group": ["region", "product"], "value": "value"}, horizon=1)
    config = InferenceConfig(engine="vi", seed=1, vi_steps=2000, draws=200, chains=2)
    calm = lfo_pit(prepare(spec, frame=history), config, origins=3, seed=0)
    assert calm.values.size == 27 and calm.passed, calm.lines()
    assert len(calm.to_json()["lfo_pit"]["values"]) == 27  # what the HTML report plots

    shifted = history.copy()
    late = shifted["time"] >= sorted(shifted["time"].unique())[-3]
    shifted.loc[late, "value"] *= 3.0  # demand triples in the last three quarters
    alarm = lfo_pit(prepare(spec, frame=shifted), config, origins=3, seed=0)
    assert not alarm.passed, alarm.lines()
    first = alarm.values[:9]  # the first shifted quarter, forecast from calm data: far in the upper tail
    assert np.all(first > 0.99), first
    assert alarm.coverage["0.95"] < 0.5  # later origins have seen the jump and adapt


# --- events, regressors, mini-batches -------------------------------------------------------


def test_an_event_table_adds_an_effect_that_is_learned_and_forecast():
    """A promotion raises sales by exp(0.6) in its quarters, history and future alike."""
    history, future = simulate_panel({"region": 3, "product": 2}, n_time=28, horizon=4, seed=6)
    stamps = sorted(history["time"].unique())
    promo = [stamps[i] for i in (5, 13, 21)] + [sorted(future["time"].unique())[1]]
    for frame in (history, future):
        frame.loc[frame["time"].isin(promo), "value"] *= np.exp(0.6)
    events = pd.DataFrame({"time": promo, "event": "promotion"})

    from wager.forecast.domain import prepare
    from wager.forecast.spec import ForecastSpec
    from wager.kernel.inference import infer

    spec = ForecastSpec(
        data={"time": "time", "group": ["region", "product"], "value": "value"}, horizon=4,
        inference={"engine": "vi", "seed": 2, "vi_steps": 1500, "draws": 250, "chains": 2},
    )
    problem = prepare(spec, frame=history, events=events)
    assert problem.panel.regressors == ("event:promotion",)
    posterior = infer(problem.model, spec.inference)
    effect = posterior.flat("coef")[:, 0] * problem.standard[1]  # back on the log scale
    assert abs(effect.mean() - 0.6) < 0.15, effect.mean()
    # the known future promotion (second forecast quarter) shifts every path by the
    # effect on the log scale there, and nowhere else: with and without it in the table
    from dataclasses import replace

    with_promo = problem.paths(posterior)
    x = problem.panel.x.copy()
    x[:, len(problem.panel.times) + 1, 0] = 0.0
    without = replace(problem, panel=replace(problem.panel, x=x)).paths(posterior)
    shift = np.log(with_promo) - np.log(without)
    np.testing.assert_allclose(shift[:, :, [0, 2, 3]], 0.0, atol=1e-9)
    draws = np.unique(np.linspace(0, effect.size - 1, shift.shape[0]).round().astype(int))
    np.testing.assert_allclose(shift[:, :, 1], np.broadcast_to(effect[draws][:, None], shift[:, :, 1].shape), rtol=1e-9)


def test_forecast_panel_takes_regressor_columns_with_their_future_values():
    """A price index moves sales by exp(-0.5 x) in history and future alike; the
    regressor's rows after the data (value missing) carry the forecast window's x."""
    history, future = simulate_panel({"region": 3, "product": 2}, n_time=28, horizon=4, seed=6)
    rng = np.random.default_rng(3)
    stamps = sorted(pd.concat([history, future])["time"].unique())
    price = pd.Series(rng.choice([-1.0, 0.0, 1.0], size=len(stamps)), index=stamps)
    for frame in (history, future):
        frame["price"] = frame["time"].map(price)
        frame["value"] *= np.exp(-0.5 * frame["price"])
    window = future.assign(value=np.nan)
    options = dict(time="time", groups=["region", "product"], value="value", horizon=4, engine="vi", seed=2, vi_steps=1500, draws=250, chains=2)

    result = forecast_panel(pd.concat([history, window]), regressors=["price"], **options)
    assert result.problem.panel.regressors == ("price",)
    effect = result.posterior.flat("coef")[:, 0] * result.problem.standard[1]  # back on the log scale
    assert abs(effect.mean() + 0.5) < 0.15, effect.mean()
    assert np.isfinite(result.paths).all() and result.paths.shape[1:] == (6, 4)

    # without the forecast window's values the regressor cannot be forecast: refused, naming the field
    from wager.errors import SpecError

    with pytest.raises(SpecError, match="regressors"):
        forecast_panel(history, regressors=["price"], **options)


def test_mini_batched_svi_matches_the_full_batch_fit():
    history, _ = simulate_panel({"region": 6, "product": 4}, n_time=20, seed=10)
    from wager.forecast.domain import prepare
    from wager.forecast.spec import ForecastSpec
    from wager.kernel.inference import infer

    def fit(batch):
        spec = ForecastSpec(
            data={"time": "time", "group": ["region", "product"], "value": "value"}, horizon=2, batch=batch,
            inference={"engine": "vi", "seed": 4, "vi_steps": 2500, "draws": 200, "chains": 2},
        )
        problem = prepare(spec, frame=history)
        return problem, infer(problem.model, spec.inference)

    problem, batched = fit(8)
    assert problem.model.data["batch"] == 8 and problem.model.exact_overrides == {"batch": None}
    _, whole = fit(None)
    assert batched.flat("sigma_series_z").shape[1] == 24  # every series' local parameter, not a batch of them
    assert np.isfinite(batched.settings["pareto_k"])
    for name in ("sigma_log_mean", "alpha_logit", "level_mean"):
        a, b = batched.flat(name), whole.flat(name)
        assert abs(a.mean() - b.mean()) < 2 * max(a.std(), b.std()) + 0.05, (name, a.mean(), b.mean())


@pytest.mark.parametrize("likelihood", ["negbin", "zinb"])
def test_intermittent_counts_get_integer_paths_at_the_right_level(likelihood):
    """Counts of a seasonal Poisson process with many zeros: the paths are counts,
    and their mean per series tracks the process's mean one season ahead."""
    rng = np.random.default_rng(2)
    times = pd.date_range("2015-01-01", periods=28, freq="QS")
    season = np.array([1.6, 0.6, 1.0, 0.8])
    rates = {"a": 0.8, "b": 2.0, "c": 5.0, "d": 1.2}
    rows = [
        {"time": t, "sku": sku, "units": rng.poisson(rate * season[i % 4])}
        for sku, rate in rates.items() for i, t in enumerate(times)
    ]
    frame = pd.DataFrame(rows)
    assert (frame["units"] == 0).mean() > 0.1
    result = forecast_panel(frame, time="time", groups=["sku"], value="units", horizon=4, likelihood=likelihood,
                            engine="vi", seed=1, vi_steps=1500, draws=250, chains=2)
    paths = result.paths
    assert np.all(paths >= 0) and np.all(paths == np.round(paths))
    expected = np.array([rates[s] for s in result.keys["sku"]])[:, None] * season[None, :]  # quarters 29-32: seasons 0..3
    mean = paths.mean(axis=0)
    assert np.all(np.abs(np.log((mean + 0.5) / (expected + 0.5))) < np.log(2.0)), (mean, expected)


@pytest.mark.parametrize("likelihood", ["normal", "student_t", "negbin"])
def test_padding_the_time_axis_changes_neither_the_density_nor_the_forecast(likelihood):
    """The problem pads time to a multiple of ``TIME_BUCKET`` (so origins share a compiled
    program); the padded columns are masked out and the filters keep the state at ``end``,
    so the log density at any parameters, and the paths from the same draws and key, equal
    those of the unpadded arrays."""
    import jax
    from numpyro.infer import Predictive
    from numpyro.infer.util import log_density

    from wager.forecast.domain import prepare
    from wager.forecast.problem import TIME_BUCKET, forward
    from wager.forecast.spec import ForecastSpec
    from wager.kernel.nuts import _Bound, split_data

    history, _ = simulate_panel({"region": 2, "product": 2}, n_time=21, horizon=4, seed=5)
    if likelihood == "negbin":
        history["value"] = history["value"].round()
    spec = ForecastSpec(data={"time": "time", "group": ["region", "product"], "value": "value"}, horizon=4, likelihood=likelihood)
    problem = prepare(spec, frame=history)
    padded, constants = split_data(problem.arrays())
    assert padded["z"].shape[1] == TIME_BUCKET * 2 and int(padded["end"]) == 21
    assert not padded["mask"][:, 21:].any()
    unpadded = {**padded, "z": padded["z"][:, :21], "mask": padded["mask"][:, :21], "end": None}

    model = _Bound(problem.model.numpyro_model, constants)
    prior = Predictive(model, num_samples=3)(jax.random.PRNGKey(0), **unpadded)
    latents = {k: v for k, v in prior.items() if k != "loglik"}
    for i in range(3):
        params = {k: v[i] for k, v in latents.items()}
        a = log_density(model, (), padded, params)[0]
        b = log_density(model, (), unpadded, params)[0]
        assert float(a) == pytest.approx(float(b), rel=1e-12)

    run = forward({**constants, "horizon": 4})
    key = jax.random.PRNGKey(1)
    with_padding, without = run(key, latents, padded), run(key, latents, unpadded)
    np.testing.assert_allclose(np.asarray(with_padding["paths"]), np.asarray(without["paths"]), rtol=1e-12)


def test_nuts_chains_start_at_prior_draws_except_with_common_levels_or_a_warm_start():
    """``ForecastProblem.nuts_init``: prior starts for the model ``auto`` samples with NUTS,
    uniform ones with common levels, an ADVI warm start where ``auto`` would run SVI."""
    from wager.forecast.domain import prepare
    from wager.forecast.spec import ForecastSpec

    history, _ = simulate_panel({"region": 2, "product": 2}, n_time=16, seed=0)
    data = {"time": "time", "group": ["region", "product"], "value": "value"}
    small = prepare(ForecastSpec(data=data, horizon=2), frame=history)
    common = prepare(ForecastSpec(data=data, horizon=2, common_levels="on"), frame=history)
    assert (small.model.nuts_init, common.model.nuts_init) == ("prior", "uniform")
    large, _ = simulate_panel({"region": 7, "product": 7}, n_time=16, seed=0)  # 49 series: auto runs SVI
    assert prepare(ForecastSpec(data=data, horizon=2, inference={"engine": "nuts"}), frame=large).model.nuts_init == "vi"
