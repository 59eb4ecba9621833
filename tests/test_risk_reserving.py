"""Bayesian loss reserving (Meyers' leveled and correlated chain ladders) on cumulative
paid triangles: it agrees with Mack's chain ladder run side by side, recovers simulated
parameters, simulates its reserve as the model says, and refuses bad triangles."""

import numpy as np
import pandas as pd
import pytest

from wager.errors import SpecError
from wager.kernel.diagnostics import diagnose
from wager.kernel.posterior import Posterior
from wager.risk.mack import mack_reserve
from wager.risk.reserve_problem import prepare
from wager.risk.reserving import build_model, fit_nuts, log_likelihood, predictive_reserve, simulate_triangle
from wager.risk.spec import ReserveSpec
from wager.risk.triangle import as_triangle, bundled_triangle

NUTS = {"chains": 2, "warmup": 500, "draws": 500}
# chainladder 0.10.1 on pandas 3 warns of a to_datetime deprecation on every triangle it builds
pytestmark = pytest.mark.filterwarnings("ignore:Parsing integer or float values:Warning")

# A 10 x 10 triangle from LCL with known parameters: ultimates about 100,000, 10% paid in
# the first year, log-scale sds falling from 0.3 to 0.02.
TRUE_ALPHA = np.log(1e5) + np.array([0.0, 0.1, -0.1, 0.2, 0.05, -0.15, 0.1, 0.3, 0.0, 0.2])
TRUE_BETA = np.log([0.10, 0.35, 0.55, 0.70, 0.80, 0.88, 0.93, 0.97, 0.99, 1.0])
TRUE_SIGMA = np.array([0.30, 0.20, 0.15, 0.10, 0.08, 0.06, 0.05, 0.04, 0.03, 0.02])


@pytest.fixture(scope="module")
def genins():
    return bundled_triangle("genins")


@pytest.fixture(scope="module")
def genins_posterior(genins):
    return fit_nuts(genins, model="lcl", seed=1, **NUTS)


# --- the Mack peer: chainladder reproduces the published figures --------------------------


def test_mack_reproduces_the_published_raa_and_genins_reserves():
    # RAA: Mack (1994), "Measuring the variability of chain ladder reserve estimates":
    # total reserve 52,135, standard error 26,909. GenIns (Taylor & Ashe 1983): Mack (1993),
    # reserve 18,680,856, standard error 2,447,095. Both with Mack's extrapolation of the
    # last sigma; chainladder's default log-linear one gives 26,881 for RAA.
    raa = mack_reserve(bundled_triangle("raa"))
    assert raa.reserve == pytest.approx(52_135, abs=1)
    assert raa.se == pytest.approx(26_909, abs=1)
    assert mack_reserve(bundled_triangle("raa"), sigma_interpolation="log-linear").se == pytest.approx(26_881, abs=1)
    gen = mack_reserve(bundled_triangle("genins"))
    assert gen.reserve == pytest.approx(18_680_856, abs=1)
    assert gen.se == pytest.approx(2_447_095, abs=1)
    # the totals are the sums and root-sums over origins they should be
    assert raa.reserve_by_origin.sum() == pytest.approx(raa.reserve)
    assert raa.se > np.sqrt((raa.se_by_origin**2).sum())  # origins share the estimated factors
    np.testing.assert_allclose(raa.ultimate, raa.latest + raa.reserve_by_origin)
    assert raa.origins[0] == "1981" and raa.reserve_by_origin[0] == 0 and raa.se_by_origin[0] == 0


def test_mack_reserve_per_origin_is_the_volume_weighted_chain_ladder(genins):
    # f_d = sum_w C[w, d+1] / sum_w C[w, d] over the origins observed at d + 1; each
    # origin's ultimate is its latest value times the factors still to come
    c = genins.losses
    n = genins.size
    factors = [np.sum(c[: n - 1 - d, d + 1]) / np.sum(c[: n - 1 - d, d]) for d in range(n - 1)]
    expected = np.array([genins.latest[w] * (np.prod(factors[n - 1 - w :]) - 1) for w in range(n)])
    np.testing.assert_allclose(mack_reserve(genins).reserve_by_origin, expected, rtol=1e-10)


# --- acceptance: the Bayesian reserve beside Mack's -----------------------------------------


def test_bayesian_reserve_on_genins_agrees_with_mack(genins, genins_posterior):
    # GenIns (Taylor & Ashe 1983), 10 x 10: LCL by NUTS, 2 chains x (500 + 500), then
    # 10 simulated ultimates per draw. Run side by side, Mack's reserve is 18,680,856
    # (se 2,447,095); the posterior predictive mean and median lie within two predictive
    # sds of it, and the predictive sd is of the size of Mack's standard error.
    bayes = predictive_reserve(genins_posterior, genins, model="lcl")
    mack = mack_reserve(genins)
    assert abs(bayes.mean - mack.reserve) < 2 * bayes.sd, (bayes.mean, bayes.sd, mack.reserve)
    assert abs(bayes.median - mack.reserve) < 2 * bayes.sd
    assert 0.5 < bayes.sd / mack.se < 2, (bayes.sd, mack.se)
    # the chains are healthy with these settings
    checks = diagnose(genins_posterior)
    assert checks.divergences == 0
    assert checks.max_rhat < 1.02
    assert checks.min_ess_bulk > 300
    # 99.5% VaR and TVaR of the reserve, above its mean, TVaR above VaR
    assert bayes.level == 0.995
    assert bayes.mean < bayes.var < bayes.tvar
    assert bayes.reserve.shape == (2 * 500 * 10,) and bayes.ultimate.shape == (2 * 500 * 10, 10)
    # per origin: the oldest is fully developed; the rest add up to the total
    assert np.all(bayes.reserve_by_origin[:, 0] == 0)
    np.testing.assert_allclose(bayes.reserve_by_origin.sum(axis=1), bayes.reserve)
    # the latest origin, 344,014 paid after one year, carries the largest reserve in both
    assert np.argmax(bayes.reserve_mean_by_origin) == np.argmax(mack.reserve_by_origin) == 9


def test_numpy_log_likelihood_is_the_density_the_sampler_used(genins, genins_posterior):
    # log_likelihood (NumPy, for diagnostics without JAX) equals NumPyro's log density of
    # the observed cells at posterior draws
    from numpyro.infer import log_likelihood as numpyro_log_likelihood

    model = build_model(genins)
    latent = {k: genins_posterior.flat(k)[:5] for k in ("sigma_step", "location_z")}
    numpyro_ll = numpyro_log_likelihood(model.numpyro_model, latent, **model.data)["log_losses"]
    draws = {k: genins_posterior.flat(k)[:5] for k in ("alpha", "beta", "sigma")}
    np.testing.assert_allclose(log_likelihood(genins, draws), np.asarray(numpyro_ll), rtol=1e-10)
    np.testing.assert_allclose(model.log_likelihood(draws), np.asarray(numpyro_ll), rtol=1e-10)


def test_nuts_recovers_the_parameters_of_a_simulated_triangle():
    # One 10 x 10 triangle drawn from LCL with the parameters above: every alpha, beta
    # and sigma within 3 posterior sds of its true value. (A single triangle is a weak
    # check: of the triangles from seeds 11-20, two put one alpha 3.4-4.1 sds off, their
    # few late cells happening to lie close and the posterior of the late sigmas falling
    # below the truth; a centred NUTS run at target_accept 0.99 gives the same posterior.)
    triangle, square = simulate_triangle(TRUE_ALPHA, TRUE_BETA, TRUE_SIGMA, np.random.default_rng(12))
    posterior = fit_nuts(triangle, seed=2, **NUTS)
    for name, truth in (("alpha", TRUE_ALPHA), ("beta", TRUE_BETA[:-1]), ("sigma", TRUE_SIGMA)):
        draws = posterior.flat(name)
        z = (draws.mean(axis=0) - truth) / draws.std(axis=0)
        assert np.all(np.abs(z) < 3), (name, z)
    checks = diagnose(posterior)
    assert checks.divergences == 0 and checks.max_rhat < 1.02
    # and the true reserve (the simulated lower triangle's last column) is inside the
    # predictive 99.5% interval
    reserve = predictive_reserve(posterior, triangle)
    true_reserve = np.sum(square[:, -1] - as_triangle(triangle).latest)
    lo, hi = np.quantile(reserve.reserve, [0.0025, 0.9975])
    assert lo < true_reserve < hi, (lo, true_reserve, hi)


@pytest.mark.slow
def test_correlated_chain_ladder_on_genins_agrees_with_mack(genins):
    # CCL (Meyers 2015) on GenIns: rho near 0 (about 0.1 +- 0.25), the reserve
    # within two predictive sds of Mack's, the chains healthy.
    posterior = fit_nuts(genins, model="ccl", seed=1, **NUTS)
    bayes = predictive_reserve(posterior, genins, model="ccl")
    mack = mack_reserve(genins)
    assert abs(bayes.mean - mack.reserve) < 2 * bayes.sd, (bayes.mean, bayes.sd, mack.reserve)
    assert abs(posterior.flat("rho").mean()) < 2 * posterior.flat("rho").std()
    checks = diagnose(posterior)
    assert checks.divergences == 0 and checks.max_rhat < 1.02


# --- the predictive simulation, against closed forms --------------------------------------------


def _fixed_posterior(**draws) -> Posterior:
    """A one-chain posterior repeating one parameter value 4000 times."""
    full = {k: np.broadcast_to(np.asarray(v, float), (1, 4000) + np.shape(v)).copy() for k, v in draws.items()}
    return Posterior(draws=full, engine="fixed", reason="test", seed=3, chain_seeds=(3,))


def test_lcl_predictive_reserve_is_lognormal_at_fixed_parameters():
    # With alpha and sigma fixed, each ultimate is LogNormal(alpha[w], sigma[n-1]):
    # E[R] = sum_{w >= 1} (exp(alpha[w] + sigma^2 / 2) - latest[w]), Var[R] = sum_w
    # exp(2 alpha[w] + sigma^2) (exp(sigma^2) - 1); checked within 4 Monte Carlo errors.
    triangle, _ = simulate_triangle(TRUE_ALPHA, TRUE_BETA, TRUE_SIGMA, np.random.default_rng(5))
    latest = as_triangle(triangle).latest
    s = 0.1
    sigma = np.full(10, s)
    result = predictive_reserve(_fixed_posterior(alpha=TRUE_ALPHA, sigma=sigma), triangle, per_draw=10)
    a = TRUE_ALPHA[1:]
    mean = np.sum(np.exp(a + s**2 / 2) - latest[1:])
    var = np.sum(np.exp(2 * a + s**2) * (np.exp(s**2) - 1))
    assert result.reserve.size == 40_000
    assert abs(result.mean - mean) < 4 * np.sqrt(var / result.reserve.size)
    assert result.sd == pytest.approx(np.sqrt(var), rel=0.03)
    # the first origin's ultimate is its observed value
    assert np.all(result.ultimate[:, 0] == triangle[0, -1])


def test_ccl_predictive_log_ultimates_follow_their_recursion():
    # CCL's last column: log U_w = mu_w + sigma Z_w with mu_w = alpha[w] + rho (log U_{w-1}
    # - mu_{w-1}), the previous origin's residual: the observed log C[0, n-1] - alpha[0]
    # for w = 1, sigma Z_{w-1} after. So the log ultimates' means are alpha[1] + rho (log
    # C[0, n-1] - alpha[0]), then alpha[w]; their sds sigma, then sigma sqrt(1 + rho^2);
    # origins w, w + 1 (w >= 2) correlate by rho / (1 + rho^2).
    triangle, _ = simulate_triangle(TRUE_ALPHA, TRUE_BETA, TRUE_SIGMA, np.random.default_rng(5))
    rho, s = 0.6, 0.05
    posterior = _fixed_posterior(alpha=TRUE_ALPHA, sigma=np.full(10, s), rho=rho)
    log_u = np.log(predictive_reserve(posterior, triangle, model="ccl", per_draw=10).ultimate)
    start = np.log(triangle[0, -1])
    expected_mean = np.concatenate([[start, TRUE_ALPHA[1] + rho * (start - TRUE_ALPHA[0])], TRUE_ALPHA[2:]])
    np.testing.assert_allclose(log_u.mean(axis=0), expected_mean, atol=4 * s * np.sqrt(1 + rho**2) / np.sqrt(log_u.shape[0]))
    np.testing.assert_allclose(log_u.std(axis=0)[1:], [s] + [s * np.sqrt(1 + rho**2)] * 8, rtol=0.03)
    corr = np.corrcoef(log_u[:, 4], log_u[:, 5])[0, 1]
    assert corr == pytest.approx(rho / (1 + rho**2), abs=0.03)


# --- inputs -----------------------------------------------------------------------------------


def test_a_chainladder_triangle_an_array_and_a_dataframe_give_the_same_triangle():
    import chainladder as cl

    raw = cl.load_sample("raa")
    from_cl = as_triangle(raw)
    assert from_cl.origins == tuple(str(y) for y in range(1981, 1991))
    assert from_cl.latest[0] == 18_834 and from_cl.latest[-1] == 2_063  # RAA's latest diagonal
    from_array = as_triangle(raw.values[0, 0], origins=range(1981, 1991))
    np.testing.assert_array_equal(from_array.losses, from_cl.losses)
    assert from_array.origins == from_cl.origins
    from_frame = as_triangle(raw.to_frame())
    np.testing.assert_array_equal(from_frame.losses, from_cl.losses)
    # incremental chainladder triangles are accumulated first
    np.testing.assert_allclose(as_triangle(raw.cum_to_incr()).losses, from_cl.losses)
    assert bundled_triangle("ukmotor").size == 7


def _triangle(n=4) -> np.ndarray:
    c = np.array([[100.0, 150, 170, 180], [110, 160, 180, np.nan], [120, 175, np.nan, np.nan], [130, np.nan, np.nan, np.nan]])
    return c[:n, :n].copy()


@pytest.mark.parametrize(
    "edit, rule",
    [
        (lambda c: c.__setitem__((1, 1), -5.0), "cumulative losses must be >= 0: origin 2, development 2"),
        (lambda c: c.__setitem__((0, 1), np.nan), "has a hole at origin 1, development 2: NaN before an observed value"),
        (lambda c: c.__setitem__((1, 2), np.nan), "has a hole at origin 2, development 3: NaN inside the observed"),
        (lambda c: c.__setitem__((2, 2), 190.0), "has a value below the latest diagonal at origin 3, development 3"),
        (lambda c: c.__setitem__((2, 0), 0.0), "must be > 0 where observed (the model takes logs): origin 3, development 1"),
        (lambda c: c.__setitem__((0, 3), np.inf), "must be finite: origin 1, development 4"),
    ],
)
def test_bad_triangles_are_refused_naming_the_field_and_the_rule(edit, rule):
    c = _triangle()
    edit(c)
    with pytest.raises(SpecError) as info:
        as_triangle(c)
    assert info.value.field == "triangle"
    assert rule in info.value.rule


def test_a_bad_cell_is_named_by_the_labels_its_table_shows():
    c = _triangle()
    c[1, 2] = np.nan
    frame = pd.DataFrame(c, index=[2001, 2002, 2003, 2004], columns=["12", "24", "36", "48"])
    with pytest.raises(SpecError, match="hole at origin 2002, development 36: NaN inside .* up to development 36"):
        as_triangle(frame)
    with pytest.raises(SpecError, match="hole at origin 1990, development 3"):
        as_triangle(c, origins=range(1989, 1993))  # labels given beside an array; developments default to 1..n


def test_too_small_non_square_and_mislabelled_triangles_are_refused():
    with pytest.raises(SpecError, match="at least 3 origins") as info:
        as_triangle([[100.0, 150.0], [110.0, np.nan]])
    assert info.value.field == "triangle"
    with pytest.raises(SpecError, match="must be square") as info:
        as_triangle(_triangle()[:, :3])
    assert info.value.field == "triangle"
    with pytest.raises(SpecError, match="must be 2-D"):
        as_triangle([100.0, 150.0, 170.0])
    with pytest.raises(SpecError, match="one label per origin") as info:
        as_triangle(_triangle(), origins=["2001", "2002"])
    assert info.value.field == "origins"
    with pytest.raises(SpecError, match="one label per development period: the triangle has 4 development periods, got 2") as info:
        as_triangle(_triangle(), developments=["12", "24"])
    assert info.value.field == "developments"
    with pytest.raises(SpecError) as info:
        as_triangle(bundled_triangle("raa").losses.tolist() + [[1.0] * 10])
    assert info.value.field == "triangle"
    with pytest.raises(SpecError) as info:
        bundled_triangle("no_such_sample")
    assert info.value.field == "name"
    with pytest.raises(SpecError, match="one chainladder triangle") as info:
        import chainladder as cl

        as_triangle(cl.load_sample("usaa"))
    assert info.value.field == "triangle"
    with pytest.raises(SpecError) as info:
        build_model(_triangle(), model="odp")
    assert info.value.field == "model"


def test_a_predictive_reserve_needs_the_posterior_of_its_model_and_triangle():
    triangle, _ = simulate_triangle(TRUE_ALPHA, TRUE_BETA, TRUE_SIGMA, np.random.default_rng(5))
    lcl = _fixed_posterior(alpha=TRUE_ALPHA, sigma=TRUE_SIGMA)
    with pytest.raises(SpecError, match="no rho") as info:
        predictive_reserve(lcl, triangle, model="ccl")
    assert info.value.field == "model"
    with pytest.raises(SpecError, match="has 4 origins") as info:
        predictive_reserve(lcl, _triangle())
    assert info.value.field == "triangle"
    with pytest.raises(SpecError) as info:
        predictive_reserve(lcl, triangle, level=1.5)
    assert info.value.field == "level"


# --- triangle files and samples: what the user's table shows names the labels and the rows --------


def _prepared(data: dict, folder=None):
    return prepare(ReserveSpec(data=data), base_dir=folder)


def _refusal(data: dict, folder=None) -> SpecError:
    with pytest.raises(SpecError) as info:
        _prepared(data, folder)
    return info.value


def test_a_ragged_triangle_file_is_refused_on_one_line_naming_the_row(tmp_path):
    # the header is line 1 of the file, so line 3 (origin 2002, one cell too many) is row 2
    (tmp_path / "t.csv").write_text("year,12,24,36\n2001,100,150,170\n2002,110,160,,5\n2003,120,,\n")
    error = _refusal({"path": "t.csv"}, tmp_path)
    assert error.field == "data.path" and "\n" not in str(error)
    assert str(error).endswith("Expected 4 fields in row 2 (line 3 of the file), saw 5")
    # a blank line (pandas skips it) leaves the row uncertain: the reader's line, on one line
    (tmp_path / "t.csv").write_text("year,12,24,36\n2001,100,150,170\n\n2002,110,160,,5\n2003,120,,\n")
    error = _refusal({"path": "t.csv"}, tmp_path)
    assert str(error).endswith("Expected 4 fields in line 4, saw 5") and "\n" not in str(error)


def test_a_triangle_row_without_an_origin_label_is_refused_naming_the_row(tmp_path):
    (tmp_path / "t.csv").write_text("year,12,24,36\n2001,100,150,170\n2002,110,160,\n,120,,\n")
    error = _refusal({"path": "t.csv"}, tmp_path)
    assert (error.field, error.rule) == ("data.origin", "must name each row's origin label: row 3 is empty")


def test_whole_number_origin_labels_read_as_the_table_shows_them(tmp_path):
    # one label written 2003.0 makes pandas read the whole column as floats
    (tmp_path / "t.csv").write_text("year,12,24,36\n2001,100,150,170\n2002,110,160,\n2003.0,120,,\n")
    assert _prepared({"path": "t.csv"}, tmp_path).triangle.origins == ("2001", "2002", "2003")
    pd.DataFrame({"year": [2001.0, 2002.0, 2003.0], "12": [100, 110, 120], "24": [150, 160, None], "36": [170, None, None]}).to_parquet(
        tmp_path / "t.parquet"
    )
    assert _prepared({"path": "t.parquet"}, tmp_path).triangle.origins == ("2001", "2002", "2003")


def test_an_unknown_sample_column_is_named_with_the_columns_the_sample_has():
    error = _refusal({"sample": "raa", "column": "paid"})
    assert (error.field, error.rule) == ("data.column", "must be one of 'values'; got 'paid'")
