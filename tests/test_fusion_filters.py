"""Gaussian filters and smoothers of ``wager.fusion``: the Kalman filter and its
RTS smoother give filterpy's numbers, run side by side, to 1e-9; the extended and
unscented filters give the Kalman filter's numbers on a linear model; missing
measurements are skipped exactly."""

import numpy as np
import pytest
from filterpy.kalman import KalmanFilter

from wager.fusion.extended import NonlinearGaussian, extended_kalman_filter, extended_rts_smoother
from wager.fusion.kalman import LinearGaussian, kalman_filter, rts_smoother
from wager.fusion.unscented import SigmaPoints, unscented_kalman_filter, unscented_rts_smoother

TOL = 1e-9


@pytest.fixture(scope="module", autouse=True)
def float64():
    from wager.kernel.nuts import configure_jax

    configure_jax()  # wager's own switch: float64 (what NUTS runs under too)


def constant_velocity(dt: float = 0.5, q: float = 0.3, r: float = 4.0) -> LinearGaussian:
    """Position and velocity, position measured: the textbook tracking model
    (white-noise acceleration of spectral density ``q``; Bar-Shalom et al. 2001, 6.2.2)."""
    F = np.array([[1.0, dt], [0.0, 1.0]])
    Q = q * np.array([[dt**3 / 3, dt**2 / 2], [dt**2 / 2, dt]])
    return LinearGaussian(F=F, H=np.array([[1.0, 0.0]]), Q=Q, R=np.array([[r]]), m0=np.array([0.0, 1.0]), P0=np.diag([25.0, 4.0]))


def simulate(model: LinearGaussian, steps: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.multivariate_normal(model.m0, model.P0)
    ys = []
    for _ in range(steps):
        x = model.F @ x + rng.multivariate_normal(np.zeros(2), model.Q)
        ys.append(model.H @ x + rng.multivariate_normal(np.zeros(1), model.R))
    return np.array(ys)


def filterpy_run(model: LinearGaussian, ys: np.ndarray):
    """filterpy's KalmanFilter: batch_filter and rts_smoother, and the log-likelihood
    summed over its own predict/update steps (batch_filter does not return it)."""

    def fresh() -> KalmanFilter:
        kf = KalmanFilter(dim_x=2, dim_z=1)
        kf.F, kf.H, kf.Q, kf.R = model.F, model.H, model.Q, model.R
        kf.x, kf.P = model.m0.copy(), model.P0.copy()
        return kf

    zs = [None if np.isnan(y).all() else y for y in ys]
    kf = fresh()
    means, covs, pred_means, pred_covs = kf.batch_filter(zs)
    smoothed_means, smoothed_covs, _, _ = kf.rts_smoother(means, covs)
    kf, loglik = fresh(), 0.0
    for z in zs:
        kf.predict()
        kf.update(z)
        loglik += kf.log_likelihood if z is not None else 0.0
    return means, covs, pred_means, pred_covs, smoothed_means, smoothed_covs, loglik


@pytest.fixture(scope="module")
def tracking():
    model = constant_velocity()
    ys = simulate(model, 400, seed=3)
    ys[120:135] = np.nan  # a dropout: 15 steps predicted only
    return model, ys


def test_kalman_filter_and_rts_smoother_equal_filterpy_on_constant_velocity_tracking(tracking):
    model, ys = tracking
    means, covs, pred_means, pred_covs, s_means, s_covs, loglik = filterpy_run(model, ys)
    filtered = kalman_filter(model, ys)
    smoothed = rts_smoother(model, filtered)
    for ours, theirs in [
        (filtered.means, means), (filtered.covs, covs), (filtered.pred_means, pred_means), (filtered.pred_covs, pred_covs),
        (smoothed.means, s_means), (smoothed.covs, s_covs),
    ]:
        np.testing.assert_allclose(np.asarray(ours), theirs, rtol=0, atol=TOL)
    assert float(filtered.log_likelihood) == pytest.approx(loglik, abs=TOL)
    # a sanity range: 385 measured steps of noise sd 2 give about -2.6 nats each
    assert -1000 < loglik < -700


def nonlinear_view(model: LinearGaussian) -> NonlinearGaussian:
    """The same linear model given as functions, for the EKF and UKF."""
    import jax.numpy as jnp

    F, H = jnp.asarray(model.F), jnp.asarray(model.H)
    return NonlinearGaussian(f=lambda x, u: F @ x, h=lambda x: H @ x, Q=model.Q, R=model.R, m0=model.m0, P0=model.P0)


def assert_same(filtered, smoothed, exact, exact_smoothed) -> None:
    for ours, theirs in [
        (filtered.means, exact.means), (filtered.covs, exact.covs), (filtered.log_likelihoods, exact.log_likelihoods),
        (smoothed.means, exact_smoothed.means), (smoothed.covs, exact_smoothed.covs),
    ]:
        np.testing.assert_allclose(np.asarray(ours), np.asarray(theirs), rtol=0, atol=TOL)
    assert float(filtered.log_likelihood) == pytest.approx(float(exact.log_likelihood), abs=TOL)


def test_extended_kalman_filter_and_smoother_equal_the_kalman_filter_on_a_linear_model(tracking):
    model, ys = tracking
    exact = kalman_filter(model, ys)
    nonlinear = nonlinear_view(model)
    ekf = extended_kalman_filter(nonlinear, ys)
    assert_same(ekf, extended_rts_smoother(nonlinear, ekf), exact, rts_smoother(model, exact))


@pytest.mark.parametrize("sigma", [SigmaPoints(), SigmaPoints(alpha=0.5, beta=2.0, kappa=1.0)], ids=["default", "alpha0.5-kappa1"])
def test_unscented_kalman_filter_and_smoother_equal_the_kalman_filter_on_a_linear_model(tracking, sigma):
    # the unscented transform is exact for linear functions whatever alpha, beta, kappa
    model, ys = tracking
    exact = kalman_filter(model, ys)
    nonlinear = nonlinear_view(model)
    ukf = unscented_kalman_filter(nonlinear, ys, sigma=sigma)
    assert_same(ukf, unscented_rts_smoother(nonlinear, ukf), exact, rts_smoother(model, exact))
    assert tuple(float(v) for v in ukf.sigma_points) == tuple(sigma)  # recorded with the result


def test_ekf_and_ukf_track_a_nonlinear_range_measurement_where_the_kalman_filter_cannot_be_used():
    # A target at constant velocity seen by its distance from a station at (0, -10):
    # the filters' position errors stay of the order of their own standard deviations.
    import jax.numpy as jnp

    dt = 1.0
    F = np.kron(np.array([[1.0, dt], [0.0, 1.0]]), np.eye(2))  # (px, py, vx, vy)
    Q = 0.01 * np.eye(4)
    station = jnp.array([0.0, -10.0])
    model = NonlinearGaussian(
        f=lambda x, u: jnp.asarray(F) @ x,
        h=lambda x: jnp.array([jnp.linalg.norm(x[:2] - station), jnp.arctan2(x[1] - station[1], x[0] - station[0])]),
        Q=Q, R=np.diag([0.25, 0.01**2]), m0=np.array([0.0, 0.0, 1.0, 0.5]), P0=np.eye(4),
    )
    rng = np.random.default_rng(4)
    x, truth, ys = rng.multivariate_normal(model.m0, model.P0), [], []
    for _ in range(60):
        x = F @ x + rng.multivariate_normal(np.zeros(4), Q)
        truth.append(x)
        ys.append(np.asarray(model.h(x)) + rng.multivariate_normal(np.zeros(2), np.asarray(model.R)))
    truth, ys = np.array(truth), np.array(ys)
    for run, smooth in ((extended_kalman_filter, extended_rts_smoother), (unscented_kalman_filter, unscented_rts_smoother)):
        filtered = run(model, ys)
        smoothed = smooth(model, filtered)
        for result in (filtered, smoothed):
            z = (np.asarray(result.means)[:, :2] - truth[:, :2]) / np.sqrt(np.diagonal(np.asarray(result.covs), axis1=1, axis2=2)[:, :2])
            assert np.mean(z**2) < 3, (run.__name__, np.mean(z**2))  # calibrated: about 1
        assert np.isfinite(float(filtered.log_likelihood))


def test_a_row_of_nan_is_a_predict_only_step_and_adds_nothing_to_the_likelihood(tracking):
    model, ys = tracking
    filtered = kalman_filter(model, ys)
    gap = slice(120, 135)
    np.testing.assert_array_equal(np.asarray(filtered.means[gap]), np.asarray(filtered.pred_means[gap]))
    np.testing.assert_array_equal(np.asarray(filtered.covs[gap]), np.asarray(filtered.pred_covs[gap]))
    assert np.all(np.asarray(filtered.log_likelihoods[gap]) == 0.0)
    # and the uncertainty grows through the gap, then shrinks at the next fix
    p = np.asarray(filtered.covs[:, 0, 0])
    assert np.all(np.diff(p[119:135]) > 0) and p[135] < p[134]


def test_a_partly_missing_measurement_updates_on_its_observed_components_only():
    # Position and velocity both measured; where velocity is NaN, the step equals
    # filterpy's update with the position row of H and R alone.
    model = constant_velocity()._replace(H=np.eye(2), R=np.diag([4.0, 0.5]))
    rng = np.random.default_rng(5)
    ys = rng.normal(size=(6, 2))
    ys[3, 1] = np.nan
    ours = kalman_filter(model, ys)
    kf = KalmanFilter(dim_x=2, dim_z=2)
    kf.F, kf.H, kf.Q, kf.R, kf.x, kf.P = model.F, model.H, model.Q, model.R, model.m0.copy(), model.P0.copy()
    loglik = 0.0
    for t, y in enumerate(ys):
        kf.predict()
        if np.isnan(y).any():
            kf.update(y[:1], R=model.R[:1, :1], H=model.H[:1])
        else:
            kf.update(y)
        loglik += kf.log_likelihood
        np.testing.assert_allclose(np.asarray(ours.means[t]), kf.x, atol=TOL)
        np.testing.assert_allclose(np.asarray(ours.covs[t]), kf.P, atol=TOL)
    assert float(ours.log_likelihood) == pytest.approx(loglik, abs=TOL)


def test_filters_compile_once_and_batch_over_measurement_sequences_with_vmap(tracking):
    import jax

    model, ys = tracking
    batch = np.stack([ys, ys + 1.0, ys - 2.0])
    loglik = jax.jit(jax.vmap(lambda y: kalman_filter(model, y).log_likelihood))(batch)
    one_by_one = [float(kalman_filter(model, y).log_likelihood) for y in batch]
    np.testing.assert_allclose(np.asarray(loglik), one_by_one, atol=TOL)
