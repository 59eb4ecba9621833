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


def test_posterior_converts_to_inference_data_with_chain_and_draw_dimensions():
    post = infer(MODEL, nuts(seed=1, chains=2))
    idata = post.to_inference_data()
    assert idata.posterior["rate"].dims[:2] == ("chain", "draw")
    assert idata.posterior["rate"].shape == (2, 200, 2)
    assert {"diverging", "energy", "tree_depth"} <= set(idata.sample_stats.data_vars)
    exact = infer(MODEL, InferenceConfig(seed=1, chains=2, draws=300)).to_inference_data()
    assert exact.posterior["rate"].shape == (2, 300, 2) and "sample_stats" not in exact.groups()
