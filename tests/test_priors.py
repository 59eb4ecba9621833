"""Priors are documented decisions: justified, validated, round-tripped, hashed."""

import json

import pytest
import yaml
from pydantic import ValidationError

from wager.kernel.priors import FAMILIES, Prior, priors_digest

UNIFORM = dict(family="beta", params={"alpha": 1, "beta": 1}, why="no rate favoured", source="Laplace")


def test_prior_without_why_is_rejected():
    with pytest.raises(ValidationError, match="why"):
        Prior(family="beta", params={"alpha": 1, "beta": 1}, source="Laplace")


def test_blank_why_is_rejected():
    with pytest.raises(ValidationError, match="justification"):
        Prior(**{**UNIFORM, "why": "   "})


def test_unknown_family_names_the_known_ones():
    with pytest.raises(ValidationError, match="unknown prior family 'betta'.*beta"):
        Prior(**{**UNIFORM, "family": "betta"})


@pytest.mark.parametrize(
    "params, message",
    [
        ({"alpha": 1}, "missing beta"),
        ({"alpha": 1, "beta": 1, "gamma": 2}, "unknown gamma"),
        ({"alpha": -1, "beta": 1}, "'alpha' of 'beta' must be > 0"),
        ({"alpha": float("nan"), "beta": 1}, "finite"),
    ],
)
def test_parameters_must_fit_the_family(params, message):
    with pytest.raises(ValidationError, match=message):
        Prior(**{**UNIFORM, "params": params})


def test_round_trips_through_yaml_and_json():
    prior = Prior(**UNIFORM)
    assert Prior.model_validate(yaml.safe_load(yaml.safe_dump(prior.model_dump()))) == prior
    assert Prior.model_validate_json(prior.model_dump_json()) == prior


def test_hash_is_canonical_and_sensitive():
    a = Prior(**UNIFORM)
    b = Prior(**{**UNIFORM, "params": {"beta": 1.0, "alpha": 1.0}})  # other key order, floats
    assert a.digest() == b.digest()
    assert json.loads(a.canonical_json()) == a.model_dump()
    c = Prior(**{**UNIFORM, "params": {"alpha": 1, "beta": 2}})
    assert c.digest() != a.digest()
    assert priors_digest({"x": a, "y": c}) == priors_digest({"y": c, "x": a})
    assert priors_digest({"x": a, "y": c}) != priors_digest({"x": c, "y": a})


def test_every_single_variable_family_builds_a_numpyro_distribution():
    examples = {
        "beta": {"alpha": 2, "beta": 3}, "gamma": {"shape": 2, "rate": 1}, "normal": {"loc": 0, "scale": 1},
        "half_normal": {"scale": 1}, "lognormal": {"loc": 0, "scale": 1}, "student_t": {"df": 3, "loc": 0, "scale": 1},
        "cauchy": {"loc": 0, "scale": 1}, "half_cauchy": {"scale": 1}, "exponential": {"rate": 1},
        "inverse_gamma": {"shape": 3, "scale": 1}, "uniform": {"low": 0, "high": 1},
    }
    assert set(examples) == set(FAMILIES) - {"normal_inverse_gamma"}
    for family, params in examples.items():
        d = Prior(family=family, params=params, why="test", source="test").to_numpyro()
        assert d.batch_shape == ()
