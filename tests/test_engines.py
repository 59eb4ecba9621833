"""Engines: one Posterior type, reproducible draws, seeds derived per chain."""

import numpy as np
import pytest

from wager.ab.domain import prepare
from wager.kernel.inference import InferenceConfig, infer
from wager.kernel.seeds import chain_seeds, check_seed, derive_seed
from wager.workflow.specs import parse_spec

SPEC = parse_spec(
    {"arms": [{"name": "A", "visitors": 2000, "conversions": 110}, {"name": "B", "visitors": 2000, "conversions": 120}]}
)
MODEL = prepare(SPEC).model


def nuts(**kw):
    return InferenceConfig(engine="nuts", warmup=200, draws=200, **kw)


def test_chain_seeds_depend_only_on_seed_and_chain_index():
    assert chain_seeds(5, 4)[:2] == chain_seeds(5, 2)
    assert len(set(chain_seeds(5, 64))) == 64
    assert derive_seed(5, 1) != derive_seed(6, 1)


@pytest.mark.parametrize("bad", [1.5, "7", True, -1, 2**63])
def test_seeds_are_non_negative_integers(bad):
    with pytest.raises(ValueError, match="seed"):
        check_seed(bad)


def test_nuts_is_reproducible_and_chains_do_not_depend_on_how_many_run():
    four = infer(MODEL, nuts(seed=3, chains=4))
    again = infer(MODEL, nuts(seed=3, chains=4))
    two = infer(MODEL, nuts(seed=3, chains=2))
    np.testing.assert_array_equal(four["rate"], again["rate"])
    np.testing.assert_array_equal(four["rate"][:2], two["rate"])
    assert four["rate"].shape == (4, 200, 2)
    assert four.sample_stats["diverging"].shape == (4, 200)
    assert four.settings["chain_method"] == "sequential"
    other = infer(MODEL, nuts(seed=4, chains=2))
    assert not np.array_equal(other["rate"], two["rate"])


def test_chains_on_a_pool_of_threads_give_the_bits_of_one_thread(monkeypatch):
    from wager.kernel.nuts import CHAIN_THREADS_VARIABLE, chain_threads

    monkeypatch.setenv(CHAIN_THREADS_VARIABLE, "1")
    assert chain_threads(4) == 1
    calls = []
    alone = infer(MODEL, nuts(seed=8, chains=4), progress=lambda label, done, total: calls.append((done, total)))
    monkeypatch.setenv(CHAIN_THREADS_VARIABLE, "3")
    assert chain_threads(4) == 3 and chain_threads(2) == 2
    pooled = infer(MODEL, nuts(seed=8, chains=4), progress=lambda label, done, total: calls.append((done, total)))
    np.testing.assert_array_equal(alone["rate"], pooled["rate"])
    np.testing.assert_array_equal(alone.sample_stats["n_steps"], pooled.sample_stats["n_steps"])
    assert calls == [(done, 4) for done in range(5)] * 2  # every chain reported as it finishes, in either mode
    monkeypatch.delenv(CHAIN_THREADS_VARIABLE)  # unset: one thread per CPU
    assert 1 <= chain_threads(64) <= 64


def _cholesky_program(batch: int, n: int):
    import jax
    import jax.numpy as jnp

    spd = np.eye(n)[None].repeat(batch, axis=0) * 2.0
    return jax.jit(lambda a: jnp.linalg.cholesky(a).sum()).lower(spd).compile()


def test_a_program_whose_lapack_calls_jaxlib_spreads_over_its_pool_runs_its_chains_one_at_a_time():
    # jaxlib 0.10 splits a LAPACK batch over XLA's intra-op pool and blocks on it once the
    # batch's work (n^3 / 3 per Cholesky factor) reaches 200,000: two such executions at once
    # deadlocked the reserving model on 2 cores. Below half that, or for one matrix, it runs inline.
    import jax
    import jax.numpy as jnp

    from wager.kernel.nuts import LAPACK_INLINE_WORK, pool_safe

    assert pool_safe(_cholesky_program(8, 3))
    assert pool_safe(_cholesky_program(1, 300))  # one matrix: 9,000,000 but inline
    assert 299 * (10**3 // 3) < LAPACK_INLINE_WORK < 301 * (10**3 // 3)
    assert pool_safe(_cholesky_program(299, 10))
    assert not pool_safe(_cholesky_program(301, 10))
    assert not pool_safe(_cholesky_program(4000, 10))
    # the gradient's triangular solves count too: (299, 10, 10) right-hand sides cost 1,000 each
    spd = np.eye(10)[None].repeat(299, axis=0) * 2.0
    assert not pool_safe(jax.jit(jax.grad(lambda a: jnp.linalg.cholesky(a).sum())).lower(spd).compile())
    # a kernel whose cost wager does not model is refused unless it is one matrix
    assert not pool_safe(jax.jit(jnp.linalg.eigh).lower(np.eye(3)[None].repeat(5, axis=0)).compile())
    assert pool_safe(jax.jit(jnp.linalg.eigh).lower(np.eye(3)).compile())
    assert pool_safe(jax.jit(lambda x: jnp.sin(x).sum()).lower(spd).compile())


def test_lapack_calls_wager_lets_share_the_pool_run_on_two_threads_without_deadlock():
    """The installed jaxlib against ``LAPACK_INLINE_WORK``: the largest batch of 10 x 10
    Cholesky factors ``pool_safe`` accepts, 2,000 times on each of two threads, in a
    child process so that a deadlock fails the test instead of hanging the suite."""
    import subprocess
    import sys

    script = (
        "import numpy as np, jax, jax.numpy as jnp\n"
        "from concurrent.futures import ThreadPoolExecutor\n"
        "from wager.kernel.nuts import pool_safe\n"
        "a = np.eye(10)[None].repeat(299, axis=0) * 2.0\n"
        "f = jax.jit(lambda a: jnp.linalg.cholesky(a).sum()).lower(a).compile()\n"
        "assert pool_safe(f)\n"
        "with ThreadPoolExecutor(2) as pool:\n"
        "    sums = list(pool.map(lambda _: [float(f(a)) for _ in range(2000)], range(2)))\n"
        "print(sums[0][-1])\n"
    )
    try:
        done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    except subprocess.TimeoutExpired:
        pytest.fail("a LAPACK batch pool_safe accepts hung on two threads: LAPACK_INLINE_WORK is above this jaxlib's inline limit")
    assert done.returncode == 0, done.stderr[-2000:]
    assert float(done.stdout) == pytest.approx(299 * 10 * np.sqrt(2.0), rel=1e-4)  # float32 in the child


def test_posterior_converts_to_inference_data_with_chain_and_draw_dimensions():
    post = infer(MODEL, nuts(seed=1, chains=2))
    idata = post.to_inference_data()
    assert idata.posterior["rate"].dims[:2] == ("chain", "draw")
    assert idata.posterior["rate"].shape == (2, 200, 2)
    assert {"diverging", "energy", "tree_depth"} <= set(idata.sample_stats.data_vars)
    exact = infer(MODEL, InferenceConfig(seed=1, chains=2, draws=300)).to_inference_data()
    assert exact.posterior["rate"].shape == (2, 300, 2) and "sample_stats" not in exact.groups()


def _spec(conversions: tuple[int, int]):
    arms = [{"name": n, "visitors": 2000, "conversions": c} for n, c in zip("AB", conversions)]
    return prepare(parse_spec({"arms": arms})).model


def test_a_model_refitted_to_new_data_reuses_its_compiled_chain_and_carries_nothing_over():
    from wager.kernel import nuts as engine

    first = infer(_spec((110, 120)), nuts(seed=3, chains=2))
    other = infer(_spec((300, 90)), nuts(seed=3, chains=2))
    again = infer(_spec((110, 120)), nuts(seed=3, chains=2))
    np.testing.assert_array_equal(first["rate"], again["rate"])
    # the data moved the posterior: rate[0] near 300/2000, not 110/2000
    assert abs(other["rate"][..., 0].mean() - 300 / 2002) < 0.01
    assert first.settings["data_as_arguments"] is True
    compiled = [c for key, c in engine._CHAINS.items() if key[0] is _spec((1, 1)).numpyro_model and key[2] == engine._settings(nuts(seed=3))]
    assert len(compiled) == 1 and len(compiled[0]._executables) == 1  # traced and compiled once for all three fits


def _reads_its_data_in_python(y, n):
    import numpyro
    import numpyro.distributions as dist

    k = int(n.sum())  # a Python int from an array: cannot be traced
    mu = numpyro.sample("mu", dist.Normal(0, 10))
    with numpyro.plate("obs", k):
        numpyro.sample("y", dist.Normal(mu, 1), obs=y[:k])


def test_a_model_that_reads_its_data_in_python_is_sampled_with_the_data_as_constants():
    from wager.kernel.inference import Model

    y = np.array([1.0, 2.0, 3.0, 100.0])
    model = Model(name="python-reads", numpyro_model=_reads_its_data_in_python, data={"y": y, "n": np.array([1, 2])})
    post = infer(model, nuts(seed=1, chains=2))
    assert post.settings["data_as_arguments"] is False
    # only the first n.sum() = 3 observations enter: the posterior of mu sits near their mean, 2
    assert abs(post["mu"].mean() - 2.0) < 0.3
    np.testing.assert_array_equal(post["mu"], infer(model, nuts(seed=1, chains=2))["mu"])


def _normal_mean(y, sigma):
    """y_i ~ N(mu, sigma^2) with mu ~ N(0, 10^2), sigma known: the posterior of mu is Normal."""
    import numpyro
    import numpyro.distributions as dist

    mu = numpyro.sample("mu", dist.Normal(0.0, 10.0))
    numpyro.sample("y", dist.Normal(mu, sigma), obs=y)


def test_vi_recovers_a_normal_posterior_exactly_and_psis_trusts_it():
    """The mean-field Normal family contains this posterior, so ADVI's optimum is
    the conjugate closed form: precision 1/10^2 + n/sigma^2, mean (sum y / sigma^2) / precision."""
    from wager.kernel.inference import Model

    rng = np.random.default_rng(4)
    y, sigma = rng.normal(2.0, 3.0, size=40), 3.0
    precision = 1 / 10.0**2 + len(y) / sigma**2
    mean, sd = (y.sum() / sigma**2) / precision, precision**-0.5
    model = Model(name="normal-mean", numpyro_model=_normal_mean, data={"y": y, "sigma": np.float64(sigma)})
    post = infer(model, InferenceConfig(engine="vi", seed=1, vi_steps=3000, chains=2, draws=2000))
    draws = post["mu"].ravel()
    mcse = sd / np.sqrt(draws.size)
    assert abs(draws.mean() - mean) < 4 * mcse + 0.01 * sd
    assert abs(draws.std() / sd - 1) < 0.05
    assert post.settings["pareto_k"] < 0.5
    # same seed, same draws; the refit reuses the compiled fit
    again = infer(model, InferenceConfig(engine="vi", seed=1, vi_steps=3000, chains=2, draws=2000))
    np.testing.assert_array_equal(post["mu"], again["mu"])


def test_vi_refuses_a_latent_inside_a_mini_batched_plate():
    import numpyro
    import numpyro.distributions as dist

    from wager.kernel.inference import Model

    def local(y):
        with numpyro.plate("data", len(y), subsample_size=5) as idx:
            z = numpyro.sample("z", dist.Normal(0.0, 1.0))
            numpyro.sample("y", dist.Normal(z, 1.0), obs=y[idx])

    model = Model(name="local", numpyro_model=local, data={"y": np.zeros(20)})
    from wager.errors import SpecError

    with pytest.raises(SpecError, match="model: latent site 'z' is inside a subsampled plate"):
        infer(model, InferenceConfig(engine="vi", vi_steps=10))


def test_vi_refuses_a_mini_batched_model_without_a_whole_data_density():
    import numpyro
    import numpyro.distributions as dist

    from wager.kernel.inference import Model

    def batched(y, batch=5):
        mu = numpyro.sample("mu", dist.Normal(0.0, 1.0))
        with numpyro.plate("data", len(y), subsample_size=batch) as idx:
            numpyro.sample("y", dist.Normal(mu, 1.0), obs=y[idx])

    model = Model(name="batched", numpyro_model=batched, data={"y": np.zeros(20)})
    from wager.errors import SpecError

    with pytest.raises(SpecError, match="model: it subsamples its data"):
        infer(model, InferenceConfig(engine="vi", vi_steps=10))
    whole = Model(name="batched", numpyro_model=batched, data={"y": np.zeros(20)}, exact_overrides={"batch": None})
    assert np.isfinite(infer(whole, InferenceConfig(engine="vi", vi_steps=10, chains=1, draws=50)).settings["pareto_k"])


def _scale_of_normal_data(y):
    import numpyro
    import numpyro.distributions as dist

    tau = numpyro.sample("tau", dist.HalfCauchy(5.0))
    numpyro.sample("y", dist.Normal(0.0, tau), obs=y)


def _posterior_by_quadrature(log_density, grid):
    """Mean and sd of a one-dimensional posterior from its log density on a fine grid."""
    log_p = log_density(grid)
    w = np.exp(log_p - log_p.max())
    w /= w.sum()
    mean = (w * grid).sum()
    return mean, np.sqrt((w * (grid - mean) ** 2).sum())


def test_vi_starts_a_prior_without_a_finite_mean_at_its_median():
    """A half-Cauchy's mean is infinite: started there, every loss was NaN (eight schools with
    engine vi was an internal error). Started at its median, the fit matches quadrature."""
    from scipy import stats

    from wager.kernel.inference import Model

    y = np.random.default_rng(3).normal(0.0, 2.0, size=50)
    post = infer(Model(name="scale", numpyro_model=_scale_of_normal_data, data={"y": y}), InferenceConfig(engine="vi", seed=1, chains=2, draws=2000))
    mean, sd = _posterior_by_quadrature(
        lambda t: stats.norm.logpdf(y[:, None], 0.0, t).sum(axis=0) + stats.halfcauchy.logpdf(t, scale=5.0), np.linspace(0.5, 6.0, 40001)
    )
    draws = post["tau"].ravel()
    assert abs(draws.mean() - mean) < 0.1 * sd
    assert abs(draws.std() / sd - 1) < 0.1
    # the guide's Gaussian tail in log tau is lighter than the posterior's: PSIS sees it and says so
    assert np.isfinite(post.settings["pareto_k"])


def _rate_of_gamma_data(y):
    import jax.numpy as jnp
    import numpyro
    import numpyro.distributions as dist

    log_rate = numpyro.sample("log_rate", dist.Normal(-90.0, 5.0))
    numpyro.sample("y", dist.Gamma(2.0, jnp.exp(log_rate)), obs=y)


def test_vi_fits_data_beyond_float32s_range_in_float64():
    """The optimisation runs in float32, where 1e39 is inf: the fit runs again in float64 and
    matches quadrature (it raised FloatingPointError before)."""
    from scipy import stats

    from wager.kernel.inference import Model

    y = np.array([1e39, 2e39, 5e38, 3e39])
    post = infer(Model(name="rate", numpyro_model=_rate_of_gamma_data, data={"y": y}), InferenceConfig(engine="vi", seed=1, chains=2, draws=2000))
    mean, sd = _posterior_by_quadrature(
        lambda g: stats.gamma.logpdf(y[:, None], 2.0, scale=np.exp(-g)).sum(axis=0) + stats.norm.logpdf(g, -90.0, 5.0),
        np.linspace(-110.0, -70.0, 40001),
    )
    draws = post["log_rate"].ravel()
    assert post.settings["optimisation_precision"].startswith("float64")
    assert abs(draws.mean() - mean) < 0.2 * sd
    assert abs(draws.std() / sd - 1) < 0.1
    assert post.settings["pareto_k"] < 0.7


def _undefined_above_three(y):
    import jax.numpy as jnp
    import numpyro
    import numpyro.distributions as dist

    z = numpyro.sample("z", dist.Normal(0.0, 1.0))
    numpyro.factor("undefined_above_three", jnp.where(z < 3.0, 0.0, jnp.nan))
    numpyro.sample("y", dist.Normal(z, 0.1), obs=y)


def test_vi_whose_loss_stops_being_finite_keeps_the_last_guide_reached_through_finite_losses_and_is_blocked():
    """The data pull z towards 10, where the model is undefined: the loss turns NaN on the way
    (in float32 and again in float64). The guide kept is the last one reached through finite
    losses; its draws are finite, PSIS judges them, and the gate says what happened."""
    from wager.kernel.gates import GatePolicy, check
    from wager.kernel.inference import Model

    model = Model(name="undefined", numpyro_model=_undefined_above_three, data={"y": np.array([10.0])})
    post = infer(model, InferenceConfig(engine="vi", seed=0, vi_steps=1000, chains=1, draws=1000))
    settings = post.settings
    assert settings["guide_from_step"] < settings["elbo_not_finite_from_step"] < 1000
    assert np.isfinite(post["z"]).all() and np.isfinite(settings["final_elbo_loss"])
    report, _ = check(post, GatePolicy())
    assert not report.passed
    assert f"not finite from step {settings['elbo_not_finite_from_step']}" in report.gates[0].describe()


def _room_below_three(y):
    import jax.numpy as jnp
    import numpyro
    import numpyro.distributions as dist

    z = numpyro.sample("z", dist.Normal(0.0, 1.0))
    numpyro.factor("room", jnp.sqrt(3.0 - z))  # NaN above 3, and so is its gradient
    numpyro.sample("y", dist.Normal(z, 0.1), obs=y)


def test_vi_stops_once_the_guides_parameters_are_not_finite():
    """A NaN gradient makes Adam's parameters NaN for good: the optimisation stops there (in
    float32, then in float64) instead of running its remaining steps, and keeps the last guide
    reached through finite losses."""
    from wager.kernel.inference import Model

    seen = []
    model = Model(name="room", numpyro_model=_room_below_three, data={"y": np.array([10.0])})
    post = infer(model, InferenceConfig(engine="vi", seed=0, vi_steps=1000, chains=1, draws=1000), progress=lambda label, done, total: seen.append(done))
    assert post.settings["guide_from_step"] < post.settings["elbo_not_finite_from_step"]
    assert max(seen) < 1000 and len(seen) < 2 * 20  # both precisions stopped early (20 chunks each otherwise)
    assert np.isfinite(post["z"]).all()


def test_vi_on_data_the_model_cannot_evaluate_anywhere_is_bad_input():
    from wager.errors import SpecError
    from wager.kernel.inference import Model

    y = np.array([[1e200, 0.0]])  # (y - mu)^2 overflows float64 too
    with pytest.raises(SpecError, match="not finite anywhere the variational fit looked") as info:
        infer(Model(name="overflow", numpyro_model=_one_mean_per_group, data={"y": y}), InferenceConfig(engine="vi", vi_steps=100, chains=1, draws=100))
    assert info.value.field == "data"


def test_systematic_resampling_keeps_each_draw_in_proportion_to_its_weight_with_its_copies_adjacent():
    from wager.kernel.vi import systematic_resample

    w = np.random.default_rng(0).gamma(0.5, size=1000)
    w /= w.sum()
    picked = systematic_resample(w, np.random.default_rng(1))
    counts = np.bincount(picked, minlength=w.size)
    # systematic resampling keeps each draw floor(n w) or ceil(n w) times, its copies adjacent
    assert counts.sum() == w.size and np.all(np.abs(counts - w.size * w) < 1)
    assert np.all(np.diff(picked) >= 0)


def _flat_location_and_derived_scale(y):
    import jax.numpy as jnp
    import numpyro
    import numpyro.distributions as dist
    from numpyro.distributions import constraints

    mu = numpyro.sample("mu", dist.ImproperUniform(constraints.real, (), ()))
    log_sigma = numpyro.sample("log_sigma", dist.Normal(0.0, 1.0))
    sigma = numpyro.deterministic("sigma", jnp.exp(log_sigma))
    numpyro.sample("y", dist.Normal(mu, sigma), obs=y)


def test_vi_draws_carry_deterministic_sites_and_start_improper_sites_anywhere():
    """As NUTS's do: a decision or summary may read a deterministic site (eight schools' theta,
    a revenue per visitor). An improper flat prior cannot be sampled to find the guide's start
    (the risk reserve's model raised NotImplementedError); it starts at a uniform draw."""
    from wager.kernel.inference import Model

    y = np.random.default_rng(2).normal(3.0, 2.0, size=200)
    post = infer(Model(name="flat", numpyro_model=_flat_location_and_derived_scale, data={"y": y}), InferenceConfig(engine="vi", seed=1, chains=2, draws=1000))
    np.testing.assert_allclose(post["sigma"], np.exp(post["log_sigma"]))
    assert abs(post["mu"].mean() - y.mean()) < 0.1 and abs(post["sigma"].mean() - y.std()) < 0.2


def _means_of_groups_counted_in_python(y, g):
    import numpyro
    import numpyro.distributions as dist

    n = int(g.max()) + 1  # reads the data's values: untraceable with the data as traced arrays
    with numpyro.plate("groups", n):
        mu = numpyro.sample("mu", dist.Normal(0.0, 10.0))
    numpyro.sample("y", dist.Normal(mu[g], 1.0), obs=y)


def _support_set_by_another_latent(y):
    import numpyro
    import numpyro.distributions as dist

    s = numpyro.sample("s", dist.HalfNormal(2.0))
    lo = numpyro.sample("lo", dist.Uniform(0.0, s))
    numpyro.sample("y", dist.Normal(lo, 1.0), obs=y)


def test_vi_fits_a_model_that_reads_its_data_in_python_and_refuses_a_support_it_cannot_trace():
    """As NUTS does, VI binds the data as constants when the model reads their values in Python
    (it was an internal ConcretizationTypeError); a support set by another latent is bad input."""
    from wager.errors import SpecError
    from wager.kernel.inference import Model

    rng = np.random.default_rng(1)
    g = np.repeat(np.arange(3), 40)
    y = rng.normal(g * 2.0, 1.0)
    post = infer(Model(name="py-groups", numpyro_model=_means_of_groups_counted_in_python, data={"y": y, "g": g}), InferenceConfig(engine="vi", seed=1, chains=2, draws=1000))
    assert np.all(np.abs(post["mu"].mean(axis=(0, 1)) - [y[g == k].mean() for k in range(3)]) < 0.1)
    import warnings

    with warnings.catch_warnings(record=True) as seen, pytest.raises(SpecError, match="model: variational inference here cannot trace this model") as info:
        warnings.simplefilter("always")
        infer(Model(name="support", numpyro_model=_support_set_by_another_latent, data={"y": np.ones(5)}), InferenceConfig(engine="vi", vi_steps=50))
    assert "engine nuts" in str(info.value)
    # float32's truncation of the model's float64 requests is expected there, not printed before the error
    assert not [w for w in seen if "Explicitly requested dtype" in str(w.message)]


def _nan_of_its_own(y):
    import numpyro
    import numpyro.distributions as dist

    mu = numpyro.sample("mu", dist.Normal(0.0, 1.0))
    numpyro.factor("undefined", float("nan") * mu)
    numpyro.sample("y", dist.Normal(mu, 1.0), obs=y)


def test_vi_on_a_model_whose_density_is_nan_everywhere_blames_the_model_not_the_data():
    from wager.errors import SpecError
    from wager.kernel.inference import Model

    with pytest.raises(SpecError) as info:
        infer(Model(name="nan", numpyro_model=_nan_of_its_own, data={"y": np.zeros(3)}), InferenceConfig(engine="vi", vi_steps=100, chains=1, draws=100))
    assert info.value.field == "model" and "NaN everywhere" in str(info.value)


def test_nuts_on_a_model_whose_density_is_nan_everywhere_blames_the_model_not_the_data():
    """As VI does: NaN at every starting point is the model's arithmetic; an infinite density (the
    overflow test below) is the data's."""
    from wager.errors import SpecError
    from wager.kernel.inference import Model

    with pytest.raises(SpecError, match="NaN at every one of the 100 starting points tried: the model's own arithmetic") as info:
        infer(Model(name="nan", numpyro_model=_nan_of_its_own, data={"y": np.zeros(3)}), nuts(seed=1, chains=2))
    assert info.value.field == "model"


def _one_mean_per_group(y):
    import numpyro
    import numpyro.distributions as dist

    with numpyro.plate("groups", y.shape[0]):
        mu = numpyro.sample("mu", dist.Normal(0.0, 10.0))
    numpyro.sample("y", dist.Normal(mu[:, None], 1.0), obs=y)


def test_data_the_model_cannot_evaluate_anywhere_is_bad_input_not_an_internal_error():
    from wager.errors import SpecError
    from wager.kernel.inference import Model

    y = np.array([[1e308, 0.0]])  # (y - mu)^2 overflows: the log density is -inf wherever mu starts
    with pytest.raises(SpecError, match="not finite at any of the 100 starting points") as info:
        infer(Model(name="overflow", numpyro_model=_one_mean_per_group, data={"y": y}), nuts(seed=1, chains=1))
    assert info.value.field == "data"


def test_a_model_whose_latents_grow_with_its_data_gets_a_chain_per_shape():
    from wager.kernel.inference import Model

    rng = np.random.default_rng(0)
    for groups in (3, 5, 3):
        y = rng.normal(np.arange(groups)[:, None], 1.0, size=(groups, 20))
        post = infer(Model(name="groups", numpyro_model=_one_mean_per_group, data={"y": y}), nuts(seed=1, chains=1))
        assert post["mu"].shape == (1, 200, groups)
        # each group's mean near its data's: posterior sd about 1/sqrt(20)
        assert np.all(np.abs(post["mu"].mean(axis=(0, 1)) - y.mean(axis=1)) < 0.1)


def _poisson_rates_under_a_vague_prior(visitors, events):
    import numpyro
    import numpyro.distributions as dist

    with numpyro.plate("arms", visitors.shape[0]):
        rate = numpyro.sample("rate", dist.Gamma(1.0, 0.001))
        numpyro.sample("events", dist.Poisson(visitors * rate), obs=events)


def test_vi_starts_where_the_data_are_when_a_vague_prior_centres_far_from_them():
    """Gamma(1, 0.001) centres the rate at 1000 against a posterior near 0.3: from there 3,000 Adam
    steps ended at 8 (the A/B count example with engine vi was blocked). The guide starts at the
    uniform candidate of higher density instead and lands on the conjugate posterior,
    Gamma(1 + events, 0.001 + visitors), its means within 4 Monte Carlo errors."""
    from wager.kernel.diagnostics import chain_mean_se
    from wager.kernel.inference import Model

    visitors, events = np.array([8000.0, 8000.0, 8000.0]), np.array([2410.0, 2570.0, 2455.0])
    model = Model(name="vague", numpyro_model=_poisson_rates_under_a_vague_prior, data={"visitors": visitors, "events": events})
    post = infer(model, InferenceConfig(engine="vi", seed=7))
    assert post.settings["guide_start"].startswith("uniform draw") and post.settings["pareto_k"] < 0.7
    exact_mean = (1.0 + events) / (0.001 + visitors)
    rate = post["rate"].reshape(-1, 3)
    assert np.all(np.abs(rate.mean(axis=0) - exact_mean) < 4 * chain_mean_se(rate, post.chains))
    assert np.allclose(rate.std(axis=0), np.sqrt(1.0 + events) / (0.001 + visitors), rtol=0.1)
