"""Where NUTS chains start (``Model.nuts_init``). Warm-started from ADVI (``"vi"``): the
guide's variances become the first mass matrix (site by site, in NumPyro's order), each
chain starts at its own guide draw, and the posterior is still the posterior. From the
prior (``"prior"``): each chain at its own prior draw, wherever the prior puts its mass."""

from __future__ import annotations

import numpy as np
import pytest

from wager.kernel.inference import InferenceConfig, Model, infer


def scaled_normals(y_a, y_b):
    """Two independent Normal means with known posteriors: ``a`` on a scale of 1e-3, ``b`` of 10."""
    import numpyro
    import numpyro.distributions as dist

    a = numpyro.sample("a", dist.Normal(0.0, 1.0))
    b = numpyro.sample("b", dist.Normal(0.0, 100.0))
    numpyro.sample("ya", dist.Normal(a, 1e-3), obs=y_a)
    numpyro.sample("yb", dist.Normal(b, 10.0), obs=y_b)


def closed_form(y, prior_sd, noise_sd):
    precision = 1 / prior_sd**2 + 1 / noise_sd**2
    return (y / noise_sd**2) / precision, precision**-0.5


def model(init: str) -> Model:
    return Model(name="scaled", numpyro_model=scaled_normals, data={"y_a": np.array(0.3), "y_b": np.array(40.0)}, nuts_init=init)


def test_mass_matrix_from_the_guide_is_used_site_by_site() -> None:
    # No warmup, so no adaptation: the chains run on the first mass matrix and step size 1 as given.
    # With the guide's variances (1e-6 and 100, site order kept) every tree is a few steps;
    # with the unit mass matrix the 1e-3-wide coordinate forces trees to the depth limit.
    config = InferenceConfig(engine="nuts", chains=2, warmup=0, draws=50, seed=3, max_tree_depth=8, vi_steps=2000)
    warm = infer(model("vi"), config)
    cold = infer(model("uniform"), config)
    assert warm.sample_stats["n_steps"].mean() < 8
    assert (cold.sample_stats["n_steps"] == 2**8 - 1).mean() > 0.5 or cold.sample_stats["diverging"].mean() > 0.5
    assert warm.settings["init"].startswith("ADVI warm start")
    assert cold.settings["init"].startswith("uniform")


def test_warm_started_posterior_matches_the_closed_form_and_is_reproducible() -> None:
    config = InferenceConfig(engine="nuts", chains=2, warmup=200, draws=1000, seed=11, vi_steps=2000)
    post = infer(model("vi"), config)
    again = infer(model("vi"), config)
    for name, y, prior_sd, noise_sd in (("a", 0.3, 1.0, 1e-3), ("b", 40.0, 100.0, 10.0)):
        draws = post.draws[name]
        np.testing.assert_array_equal(draws, again.draws[name])
        mean, sd = closed_form(y, prior_sd, noise_sd)
        mcse = sd / np.sqrt(draws.size / 4)  # a generous effective sample size
        assert abs(draws.mean() - mean) < 4 * mcse, name
        assert draws.std() == pytest.approx(sd, rel=0.1), name
    # the chains start at different guide draws
    assert post.draws["b"][0, 0] != post.draws["b"][1, 0]


def far_prior():
    """A prior a thousand sds from the origin, where a uniform start on (-2, 2) lands."""
    import numpyro
    import numpyro.distributions as dist

    numpyro.sample("x", dist.Normal(1000.0, 1.0))


def test_prior_start_puts_each_chain_at_its_own_prior_draw() -> None:
    # No warmup and trees of one leapfrog step, so the draws stay near where each chain started.
    config = InferenceConfig(engine="nuts", chains=2, warmup=0, draws=10, seed=5, max_tree_depth=1)
    prior = infer(Model(name="far", numpyro_model=far_prior, nuts_init="prior"), config)
    uniform = infer(Model(name="far", numpyro_model=far_prior, nuts_init="uniform"), config)
    assert np.all(np.abs(prior.draws["x"] - 1000.0) < 10)
    assert prior.draws["x"][0, 0] != prior.draws["x"][1, 0]
    assert np.all(np.abs(uniform.draws["x"][:, 0] - 1000.0) > 100)  # the first step from (-2, 2) gets part of the way
    assert prior.settings["init"].startswith("each chain at its own draw from the prior")
    assert uniform.settings["init"].startswith("uniform")
