"""Bad input to the filters is refused at the edge with ``SpecError`` naming the field:
a covariance that is not positive definite, dimensions that do not match, NaN
measurements where the model does not allow them. And the tracking model's
likelihood over the fixes is the filter's over every accelerometer sample."""

import numpy as np
import pytest

from wager.errors import SpecError
from wager.fusion.validate import check_covariance, check_measurements, linear_gaussian

GOOD = dict(
    F=np.array([[1.0, 1.0], [0.0, 1.0]]), H=np.array([[1.0, 0.0]]), Q=0.1 * np.eye(2), R=np.array([[4.0]]),
    m0=np.zeros(2), P0=np.eye(2),
)


def field_of(**changes) -> str:
    with pytest.raises(SpecError) as bad:
        linear_gaussian(**{**GOOD, **changes})
    return bad.value.field


def test_a_valid_model_passes_unchanged():
    model = linear_gaussian(**GOOD)
    np.testing.assert_array_equal(model.F, GOOD["F"]) and np.testing.assert_array_equal(model.R, GOOD["R"])


@pytest.mark.parametrize(
    "changes, field",
    [
        ({"R": np.array([[-1.0]])}, "model.R"),  # negative variance
        ({"P0": np.array([[1.0, 2.0], [2.0, 1.0]])}, "model.P0"),  # eigenvalues 3 and -1
        ({"Q": np.array([[1.0, 0.5], [0.0, 1.0]])}, "model.Q"),  # not symmetric
        ({"Q": -np.eye(2)}, "model.Q"),  # not even semidefinite
        ({"P0": np.array([[1.0, np.nan], [np.nan, 1.0]])}, "model.P0"),
    ],
    ids=["R-negative", "P0-indefinite", "Q-asymmetric", "Q-negative", "P0-nan"],
)
def test_a_covariance_that_is_not_positive_definite_names_its_field(changes, field):
    assert field_of(**changes) == field


@pytest.mark.parametrize(
    "changes, field",
    [
        ({"H": np.array([[1.0, 0.0, 0.0]])}, "model.H"),  # three state columns for a two-state F
        ({"R": np.eye(2)}, "model.R"),  # two measurement noises for one measured quantity
        ({"m0": np.zeros(3)}, "model.m0"),
        ({"F": np.ones((2, 3))}, "model.F"),
        ({"B": np.ones((3, 1))}, "model.B"),
    ],
    ids=["H", "R", "m0", "F-not-square", "B"],
)
def test_mismatched_dimensions_name_the_field(changes, field):
    assert field_of(**changes) == field


def test_a_positive_semidefinite_process_noise_is_allowed_it_may_drive_only_some_states():
    B = np.array([[0.5], [1.0]])
    linear_gaussian(**{**GOOD, "Q": B @ B.T})
    with pytest.raises(SpecError, match="positive definite"):
        check_covariance("R", B @ B.T, 2)


def test_nan_measurements_only_where_declared_allowed():
    ys = np.array([1.0, np.nan, 3.0])
    assert check_measurements("data.y", ys, 1, allow_missing=True).shape == (3, 1)
    with pytest.raises(SpecError) as bad:
        check_measurements("data.y", ys, 1, allow_missing=False)
    assert bad.value.field == "data.y" and "the first at row 2," in bad.value.rule
    with pytest.raises(SpecError) as wrong:
        check_measurements("data.y", np.ones((3, 2)), 1, allow_missing=True)
    assert wrong.value.field == "data.y" and "(T, 1)" in wrong.value.rule
    with pytest.raises(SpecError):
        check_measurements("data.y", np.array([1.0, np.inf]), 1, allow_missing=True)  # infinity is never "missing"


def test_the_likelihood_over_the_fixes_equals_the_filter_over_every_accelerometer_sample():
    # k = 100 predictions compose into one (F^k, the driven sum, Q_k): same log-likelihood,
    # same state at every fix, 100 times fewer steps for NUTS to differentiate.
    from wager.fusion import tracking
    from wager.fusion.kalman import LinearGaussian, kalman_filter
    from wager.kernel.nuts import configure_jax

    configure_jax()
    priors = tracking.default_priors()
    m = tracking.matrices(100.0, 100)
    drive = tracking.simulate_drive(20, 100.0, 100, accel_sd=0.02, gps_sd=3.0, bias=0.05, bias_walk=0.001, speed=12.0, dropouts=[(8.0, 12.0)], seed=3)
    every_sample = kalman_filter(tracking.step_model(m, 0.03, 2.5, 0.001, priors), drive.gps, drive.accel)
    m0, P0 = tracking.initial_state(priors)
    fixes = LinearGaussian(F=m.Fk, H=np.array([[1.0, 0.0, 0.0]]), Q=0.03**2 * m.A + 0.001**2 * m.dt * m.W, R=np.array([[2.5**2]]), m0=m0, P0=P0, B=np.eye(3))
    per_fix = kalman_filter(fixes, drive.gps[99::100], tracking.drive(m, drive.accel))
    assert float(per_fix.log_likelihood) == pytest.approx(float(every_sample.log_likelihood), abs=1e-8)
    np.testing.assert_allclose(np.asarray(per_fix.means), np.asarray(every_sample.means[99::100]), atol=1e-8)
    np.testing.assert_allclose(np.asarray(per_fix.covs), np.asarray(every_sample.covs[99::100]), atol=1e-8)
