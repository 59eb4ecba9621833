"""Priors are documented decisions: justified, validated, round-tripped, hashed."""

import json

import pytest
import yaml
from pydantic import ValidationError

from wager.errors import SpecError
from wager.kernel.priors import FAMILIES, SUPPORT, Prior, priors_digest, with_overrides

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


def _prior(family, **params):
    return Prior(family=family, params=params, why="test", source="test")


DEFAULTS = {"persistence": _prior("beta", alpha=15, beta=1.5), "scale": _prior("gamma", shape=2, rate=1), "level": _prior("normal", loc=0, scale=1)}


@pytest.mark.parametrize(
    "name, override",
    [
        ("persistence", _prior("uniform", low=0.5, high=1)),  # (0.5, 1) inside (0, 1)
        ("persistence", _prior("beta", alpha=2, beta=2)),
        ("scale", _prior("half_normal", scale=1)),  # (0, inf) as the gamma's
        ("scale", _prior("uniform", low=1, high=3)),
        ("level", _prior("student_t", df=3, loc=0, scale=1)),
        ("level", _prior("exponential", rate=1)),  # a narrower range than all reals
    ],
)
def test_an_override_inside_the_defaults_support_replaces_it(name, override):
    assert with_overrides(DEFAULTS, {name: override})[name] == override


@pytest.mark.parametrize(
    "name, override, field, rule",
    [
        ("persistence", _prior("normal", loc=0.9, scale=1), "priors.persistence.family",
         "must keep persistence in (0, 1) as the default beta prior does; normal ranges over all reals"),
        ("persistence", _prior("uniform", low=0, high=2), "priors.persistence.params",
         "must keep persistence in (0, 1) as the default beta prior does; uniform(low=0, high=2) ranges over (0, 2)"),
        ("scale", _prior("cauchy", loc=0, scale=1), "priors.scale.family",
         "must keep scale in (0, inf) as the default gamma prior does; cauchy ranges over all reals"),
        ("level", _prior("normal_inverse_gamma", loc=0, kappa=1, shape=2, scale=1), "priors.level.family",
         "must keep level in all reals as the default normal prior does; normal_inverse_gamma ranges over all reals x (0, inf)"),
    ],
)
def test_an_override_that_puts_mass_where_the_default_cannot_is_refused(name, override, field, rule):
    with pytest.raises(SpecError) as refused:
        with_overrides(DEFAULTS, {name: override})
    assert (refused.value.field, refused.value.rule) == (field, rule)


def test_the_support_of_each_family_is_its_documented_range():
    inf = float("inf")
    assert _prior("beta", alpha=1, beta=1).support() == ((0, 1),)
    assert _prior("lognormal", loc=0, scale=1).support() == ((0, inf),)
    assert _prior("cauchy", loc=0, scale=1).support() == ((-inf, inf),)
    assert _prior("uniform", low=-5, high=5).support() == ((-5, 5),)
    assert _prior("normal_inverse_gamma", loc=0, kappa=1, shape=2, scale=1).support() == ((-inf, inf), (0, inf))
    assert set(SUPPORT) | {"uniform"} == set(FAMILIES)
