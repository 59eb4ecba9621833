"""A/B models: default priors (each with its justification), NumPyro model
functions, and exact updates where the model is conjugate.

Every arm shares the metric's priors; arms are independent a priori.
"""

from __future__ import annotations

import math
from dataclasses import replace
from functools import partial
from typing import Mapping

import numpy as np

from wager.ab.spec import ABSpec, Arm
from wager.errors import SpecError
from wager.kernel.conjugate import ExactPosterior, beta_binomial, gamma_poisson, normal_inverse_gamma
from wager.kernel.inference import Model
from wager.kernel.priors import Prior

DEFAULT_PRIORS: dict[str, dict[str, Prior]] = {
    "conversion": {
        "rate": Prior(
            family="beta",
            params={"alpha": 1.0, "beta": 1.0},
            why=(
                "Uniform over conversion rates: no rate is favoured before the test. It adds one "
                "pseudo-conversion and one pseudo-failure per arm, which moves a posterior mean by "
                "at most 1/(visitors + 2)."
            ),
            source="wager default; the Bayes-Laplace uniform prior, as in the founding example (pm.Beta(1, 1))",
        )
    },
    "count": {
        "rate": Prior(
            family="gamma",
            params={"shape": 0.5, "rate": 0.1},
            why=(
                "Weak over events per visitor: Jeffreys' prior for a Poisson rate (density proportional to "
                "rate^-1/2, which favours no scale) made proper by a tenth of a visitor of exposure. 90% of its "
                "mass lies between 0.02 and 19 events per visitor (median 2.3), and any rate from 0.0001 to 40 "
                "passes the prior predictive check (wager validate); it adds half a pseudo-event and a tenth of "
                "a visitor per arm, negligible against any test's traffic."
            ),
            source="wager default; Jeffreys' prior Gamma(1/2, 0) for a Poisson rate (Gelman et al., BDA3, sec. 2.8), made proper",
        )
    },
    "revenue": {
        "purchase_rate": Prior(
            family="beta",
            params={"alpha": 1.0, "beta": 1.0},
            why="Uniform over the share of visitors who buy: no share is favoured before the test.",
            source="wager default; Bayes-Laplace uniform prior",
        ),
        "log_spend_mean": Prior(
            family="normal",
            params={"loc": 0.0, "scale": 10.0},
            why=(
                "The mean log spend of a buyer. A standard deviation of 10 on the log scale spans spends "
                "from fractions of a cent to millions of currency units, so the data, not the prior, "
                "locate it."
            ),
            source="wager default; weakly informative prior on a log-scale location (Gelman et al., BDA3, sec. 2.9)",
        ),
        "log_spend_sd": Prior(
            family="half_normal",
            params={"scale": 2.5},
            why=(
                "The spread of log spend between buyers. Real basket sizes vary by factors of 2 to 50 "
                "(log-scale sd 0.7 to 4); a half-normal with scale 2.5 keeps all of that plausible and "
                "rules out absurd spreads."
            ),
            source="wager default; weakly informative half-normal on a scale parameter (Gelman 2006)",
        ),
    },
    "mean": {
        "mean": Prior(
            family="normal_inverse_gamma",
            params={"loc": 0.0, "kappa": 1e-6, "shape": 0.001, "scale": 0.001},
            why=(
                "Nearly flat on the arm's mean (worth a millionth of one visitor) and on the log of its "
                "variance, so the sample mean and spread drive the posterior; it is the conjugate limit "
                "of the reference (Jeffreys) analysis, which it matches within 0.1% for 10 or more visitors."
            ),
            source="wager default; vague Normal-Inverse-Gamma prior (Gelman et al., BDA3, sec. 3.3)",
        )
    },
}

VALUE = {"conversion": "rate", "count": "rate", "revenue": "revenue_per_visitor", "mean": "mean"}
"""The posterior quantity arms are compared on, per metric."""

UNITS = {
    "conversion": "conversions per visitor",
    "count": "events per visitor",
    "revenue": "revenue per visitor",
    "mean": "units of the metric per visitor",
}


def priors_for(spec: ABSpec) -> dict[str, Prior]:
    """The metric's default priors, overridden by any the spec declares."""
    priors = {**DEFAULT_PRIORS[spec.metric], **spec.priors}
    families = {
        "conversion": {"rate": ("beta",)},
        "count": {"rate": ("gamma",)},
        "mean": {"mean": ("normal_inverse_gamma",)},
    }
    for name, allowed in families.get(spec.metric, {}).items():
        if priors[name].family not in allowed:
            raise SpecError(f"priors.{name}.family", f"the {spec.metric} metric needs a {' or '.join(allowed)} prior; got {priors[name].family}")
    return priors


PRIOR_SITES: dict[str, dict[str, tuple[str, ...]]] = {
    "conversion": {"rate": ("rate",)},
    "count": {"rate": ("rate",)},
    "revenue": {
        "purchase_rate": ("purchase_rate",),
        "log_spend_mean": ("log_spend_mean",),
        "log_spend_sd": ("log_spend_sd",),
    },
    "mean": {"mean": ("mean", "variance")},
}
"""Prior name -> the posterior variables drawn from it (one per arm). The joint
Normal-Inverse-Gamma prior governs ``(mean, variance)`` together."""


def build_model(spec: ABSpec) -> Model:
    """The metric's model for ``spec.arms``, with its NumPy log-likelihood."""
    model = _build_model(spec)
    return replace(model, log_likelihood=partial(data_log_likelihood, spec.metric, model.data))


def data_log_likelihood(metric: str, data: Mapping[str, object], draws: Mapping[str, np.ndarray]) -> np.ndarray:
    """``log p(data | theta)`` at each draw, shape ``(chains, draws)``: the same terms
    as the metric's NumPyro model (``conversion_model`` ...), summed over arms, in NumPy."""
    from scipy import special

    d: dict = dict(data)
    if metric == "conversion":
        n, k, p = d["visitors"], d["conversions"], np.asarray(draws["rate"], dtype=float)
        terms = _log_binomial_coefficient(n, k) + special.xlogy(k, p) + special.xlog1py(n - k, -p)
    elif metric == "count":
        n, k, rate = d["visitors"], d["events"], np.asarray(draws["rate"], dtype=float)
        terms = special.xlogy(k, n * rate) - n * rate - special.gammaln(k + 1.0)
    elif metric == "mean":
        n, mean, variance = d["visitors"], np.asarray(draws["mean"]), np.asarray(draws["variance"])
        terms = -0.5 * n * np.log(2 * math.pi * variance) - (d["sum_sq_dev"] + n * (d["sample_mean"] - mean) ** 2) / (2 * variance)
    elif metric == "revenue":
        n, k = d["visitors"], d["purchasers"]
        p, mu, sigma = (np.asarray(draws[v], dtype=float) for v in ("purchase_rate", "log_spend_mean", "log_spend_sd"))
        s1, s2 = d["log_revenue"], d["log_revenue_sq"]
        terms = (
            _log_binomial_coefficient(n, k) + special.xlogy(k, p) + special.xlog1py(n - k, -p)
            - k * np.log(sigma) - 0.5 * k * math.log(2 * math.pi) - (s2 - 2 * mu * s1 + k * mu**2) / (2 * sigma**2) - s1
        )
    else:
        raise ValueError(f"unknown metric {metric!r}")
    return np.sum(terms, axis=-1)


def _log_binomial_coefficient(n: np.ndarray, k: np.ndarray) -> np.ndarray:
    from scipy import special

    n, k = np.asarray(n, dtype=float), np.asarray(k, dtype=float)
    return special.gammaln(n + 1) - special.gammaln(k + 1) - special.gammaln(n - k + 1)


def _build_model(spec: ABSpec) -> Model:
    assert spec.arms is not None
    priors = priors_for(spec)
    arms = spec.arms
    if spec.metric == "conversion":
        return Model(
            name="ab.conversion",
            numpyro_model=conversion_model,
            data={
                "visitors": np.array([a.visitors for a in arms]),
                "conversions": np.array([a.conversions for a in arms]),
                "rate_prior": priors["rate"],
            },
            exact=lambda: _exact(arms, lambda a: beta_binomial(priors["rate"], a.conversions, a.visitors)),
        )
    if spec.metric == "count":
        return Model(
            name="ab.count",
            numpyro_model=count_model,
            data={
                "visitors": np.array([float(a.visitors) for a in arms]),
                "events": np.array([a.events for a in arms]),
                "rate_prior": priors["rate"],
            },
            exact=lambda: _exact(arms, lambda a: gamma_poisson(priors["rate"], a.events, a.visitors)),
        )
    if spec.metric == "mean":
        sum_sq_dev = [a.sd**2 * (a.visitors - 1) for a in arms]  # type: ignore[operator]
        nig = priors["mean"]
        updates = {a.name: normal_inverse_gamma(nig, a.visitors, a.mean, ss) for a, ss in zip(arms, sum_sq_dev)}  # type: ignore[arg-type]
        return Model(
            name="ab.mean",
            numpyro_model=mean_model,
            data={
                "visitors": np.array([float(a.visitors) for a in arms]),
                "sample_mean": np.array([a.mean for a in arms], dtype=float),
                "sum_sq_dev": np.array(sum_sq_dev, dtype=float),
                "prior": nig,
            },
            exact=lambda: _exact_nig(arms, updates),
        )
    return Model(
        name="ab.revenue",
        numpyro_model=revenue_model,
        data={
            "visitors": np.array([a.visitors for a in arms]),
            "purchasers": np.array([a.purchasers for a in arms]),
            "log_revenue": np.array([a.log_revenue for a in arms], dtype=float),
            "log_revenue_sq": np.array([a.log_revenue_sq for a in arms], dtype=float),
            "purchase_rate_prior": priors["purchase_rate"],
            "log_spend_mean_prior": priors["log_spend_mean"],
            "log_spend_sd_prior": priors["log_spend_sd"],
        },
        exact=None,
    )


def _exact(arms: list[Arm], update) -> ExactPosterior:
    marginals = {f"rate[{a.name}]": update(a) for a in arms}

    def joint(rng: np.random.Generator, size: tuple[int, ...]) -> dict[str, np.ndarray]:
        return {"rate": np.stack([marginals[f"rate[{a.name}]"].sample(rng, size) for a in arms], axis=-1)}

    return ExactPosterior(marginals=marginals, joint=joint)


def _exact_nig(arms: list[Arm], updates) -> ExactPosterior:
    marginals = {f"mean[{a.name}]": updates[a.name].mean_marginal for a in arms}

    def joint(rng: np.random.Generator, size: tuple[int, ...]) -> dict[str, np.ndarray]:
        per_arm = [updates[a.name].sample(rng, size) for a in arms]
        return {k: np.stack([d[k] for d in per_arm], axis=-1) for k in ("mean", "variance")}

    return ExactPosterior(marginals=marginals, joint=joint)


# --- NumPyro model functions (module level, so they pickle into worker processes) ---


def conversion_model(visitors, conversions, rate_prior: Prior) -> None:
    """conversions[i] ~ Binomial(visitors[i], rate[i]),  rate[i] ~ rate_prior."""
    import numpyro
    import numpyro.distributions as dist

    with numpyro.plate("arm", len(visitors)):
        rate = numpyro.sample("rate", rate_prior.to_numpyro())
        numpyro.sample("conversions", dist.Binomial(visitors, probs=rate), obs=conversions)


def count_model(visitors, events, rate_prior: Prior) -> None:
    """events[i] ~ Poisson(visitors[i] * rate[i]),  rate[i] ~ rate_prior."""
    import numpyro
    import numpyro.distributions as dist

    with numpyro.plate("arm", len(visitors)):
        rate = numpyro.sample("rate", rate_prior.to_numpyro())
        numpyro.sample("events", dist.Poisson(visitors * rate), obs=events)


def revenue_model(
    visitors,
    purchasers,
    log_revenue,
    log_revenue_sq,
    purchase_rate_prior: Prior,
    log_spend_mean_prior: Prior,
    log_spend_sd_prior: Prior,
) -> None:
    """Zero-inflated lognormal spend per visitor, from sufficient statistics.

    A visitor buys with probability ``p``; a buyer spends ``exp(N(mu, sigma))``.
    With ``k`` buyers, ``S1 = sum log y`` and ``S2 = sum (log y)^2`` the
    lognormal log-likelihood is
    ``-k log sigma - k/2 log(2 pi) - (S2 - 2 mu S1 + k mu^2) / (2 sigma^2) - S1``.
    Revenue per visitor: ``p * exp(mu + sigma^2 / 2)``.
    """
    import jax.numpy as jnp
    import numpyro
    import numpyro.distributions as dist

    with numpyro.plate("arm", len(visitors)):
        p = numpyro.sample("purchase_rate", purchase_rate_prior.to_numpyro())
        mu = numpyro.sample("log_spend_mean", log_spend_mean_prior.to_numpyro())
        sigma = numpyro.sample("log_spend_sd", log_spend_sd_prior.to_numpyro())
        numpyro.sample("purchases", dist.Binomial(visitors, probs=p), obs=purchasers)
    k = purchasers
    loglik = (
        -k * jnp.log(sigma)
        - 0.5 * k * math.log(2 * math.pi)
        - (log_revenue_sq - 2 * mu * log_revenue + k * mu**2) / (2 * sigma**2)
        - log_revenue
    )
    numpyro.factor("spend", jnp.sum(loglik))
    numpyro.deterministic("revenue_per_visitor", p * jnp.exp(mu + sigma**2 / 2))


def mean_model(visitors, sample_mean, sum_sq_dev, prior: Prior) -> None:
    """Normal per-visitor values from sufficient statistics, Normal-Inverse-Gamma prior:
    ``variance ~ InvGamma(shape, scale)``, ``mean | variance ~ Normal(loc, variance / kappa)``,
    log-likelihood ``-n/2 log(2 pi variance) - (SS + n (ybar - mean)^2) / (2 variance)``."""
    import jax.numpy as jnp
    import numpyro
    import numpyro.distributions as dist

    p = prior.params
    with numpyro.plate("arm", len(visitors)):
        variance = numpyro.sample("variance", dist.InverseGamma(p["shape"], p["scale"]))
        mean = numpyro.sample("mean", dist.Normal(p["loc"], jnp.sqrt(variance / p["kappa"])))
    n = visitors
    loglik = -0.5 * n * jnp.log(2 * math.pi * variance) - (sum_sq_dev + n * (sample_mean - mean) ** 2) / (2 * variance)
    numpyro.factor("values", jnp.sum(loglik))


def value_draws(spec: ABSpec, draws: Mapping[str, np.ndarray]) -> np.ndarray:
    """Draws of the compared quantity, shape ``(chains, draws, arms)``."""
    return np.asarray(draws[VALUE[spec.metric]], dtype=float)
