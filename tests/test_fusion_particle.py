"""The bootstrap particle filter: its log-likelihood estimate agrees with the
Kalman filter's exact log-likelihood within Monte Carlo error, measured from
repeated runs; systematic resampling keeps the weights' CDF; the backward-
simulation smoother reproduces the RTS smoother's moments."""

import numpy as np
import pytest

from wager.fusion.kalman import LinearGaussian, kalman_filter, rts_smoother
from wager.fusion.particle import backward_simulation, linear_gaussian_particles, particle_filter, systematic_resample

RUNS, PARTICLES, STEPS = 40, 2000, 100


@pytest.fixture(scope="module", autouse=True)
def float64():
    from wager.kernel.nuts import configure_jax

    configure_jax()


@pytest.fixture(scope="module")
def linear():
    dt = 1.0
    model = LinearGaussian(
        F=np.array([[1.0, dt], [0.0, 1.0]]),
        H=np.array([[1.0, 0.0]]),
        Q=0.1 * np.array([[dt**3 / 3, dt**2 / 2], [dt**2 / 2, dt]]),
        R=np.array([[4.0]]),
        m0=np.zeros(2),
        P0=10.0 * np.eye(2),
    )
    rng = np.random.default_rng(1)
    x, ys = rng.multivariate_normal(model.m0, model.P0), []
    for _ in range(STEPS):
        x = model.F @ x + rng.multivariate_normal(np.zeros(2), model.Q)
        ys.append(model.H @ x + rng.normal(0.0, 2.0, 1))
    ys = np.array(ys)
    ys[50:60] = np.nan
    return model, ys


def test_particle_log_likelihood_is_within_monte_carlo_error_of_the_exact_kalman_log_likelihood(linear):
    import jax

    model, ys = linear
    exact = float(kalman_filter(model, ys).log_likelihood)
    particles = linear_gaussian_particles(model)
    keys = jax.random.split(jax.random.PRNGKey(2024), RUNS)
    runs = np.asarray(jax.jit(jax.vmap(lambda k: particle_filter(k, particles, ys, n_particles=PARTICLES, history=False).log_likelihood))(keys))
    sd = runs.std(ddof=1)  # one run's Monte Carlo error, from the repeats
    se = sd / np.sqrt(RUNS)
    # The estimate of p(y) is unbiased, so its log is biased low by about var/2 (Pitt et al. 2012).
    bias = sd**2 / 2
    print(f"exact {exact:.3f}; {RUNS} runs of {PARTICLES} particles: mean {runs.mean():.3f}, sd {sd:.3f}, se {se:.3f}, expected bias {-bias:.3f}")
    assert abs(runs.mean() + bias - exact) < 4 * se
    assert 0.05 < sd < 1.0  # the Monte Carlo error is real and small at this size


def test_more_particles_shrink_the_monte_carlo_error_like_one_over_root_n(linear):
    import jax

    model, ys = linear
    particles = linear_gaussian_particles(model)
    sds = []
    for n in (250, 4000):
        keys = jax.random.split(jax.random.PRNGKey(n), 30)
        runs = jax.vmap(lambda k: particle_filter(k, particles, ys, n_particles=n, history=False).log_likelihood)(keys)
        sds.append(float(np.std(np.asarray(runs), ddof=1)))
    assert 2.0 < sds[0] / sds[1] < 8.0, sds  # sqrt(4000 / 250) = 4


def test_systematic_resampling_draws_each_particle_within_one_of_n_times_its_weight():
    import jax
    import jax.numpy as jnp

    w = np.array([0.5, 0.25, 0.125, 0.0625, 0.0625])
    for seed in range(20):
        ancestors = np.asarray(systematic_resample(jax.random.PRNGKey(seed), jnp.log(jnp.asarray(w))))
        counts = np.bincount(ancestors, minlength=5)
        assert counts.sum() == 5 and np.all(np.abs(counts - 5 * w) < 1)


def test_resampling_happens_only_when_the_effective_sample_size_falls_below_the_threshold(linear):
    import jax

    model, ys = linear
    run = particle_filter(jax.random.PRNGKey(3), linear_gaussian_particles(model), ys, n_particles=500, ess_threshold=0.5)
    ess, resampled = np.asarray(run.ess), np.asarray(run.resampled)
    np.testing.assert_array_equal(resampled, ess < 250)
    assert not resampled[50:60].any()  # no measurement, no reweighting, nothing to resample
    never = particle_filter(jax.random.PRNGKey(3), linear_gaussian_particles(model), ys, n_particles=500, ess_threshold=0.0)
    assert not np.asarray(never.resampled).any()


def test_backward_simulation_reproduces_the_rts_smoother_moments(linear):
    import jax

    model, ys = linear
    smoothed = rts_smoother(model, kalman_filter(model, ys))
    particles = linear_gaussian_particles(model)
    run = particle_filter(jax.random.PRNGKey(5), particles, ys, n_particles=2000)
    paths = np.asarray(backward_simulation(jax.random.PRNGKey(6), particles, run, n_paths=300))
    assert paths.shape == (300, STEPS, 2)
    sd = np.sqrt(np.asarray(smoothed.covs[:, 0, 0]))
    z = (paths[:, :, 0].mean(axis=0) - np.asarray(smoothed.means[:, 0])) / sd
    ratio = paths[:, :, 0].std(axis=0) / sd
    assert np.mean(np.abs(z)) < 0.25, np.mean(np.abs(z))  # the path means sit on the smoothed means
    assert 0.8 < np.median(ratio) < 1.2, np.median(ratio)  # and spread as the smoothed sd
