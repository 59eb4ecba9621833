"""Insurance claims: frequency and severity pooled across classes, on a book's
frequency and claims tables (``wager.risk.portfolio``); the next period's
aggregate loss is simulated from the posterior by ``wager.risk.aggregate``.

The model, for classes ``c = 1..C`` (non-centred pooling, so a class with few
claims shrinks toward the book)::

    log rate_c  = rate_mean_log + rate_class_sd * z_c,             z_c ~ N(0, 1)
    n_r         ~ NB2(mean = E_r rate_c[r], concentration phi)     Var = mean + mean^2 / phi
    m_c         = severity_log_mean + severity_class_sd * w_c,    w_c ~ N(0, 1)
    log y_i     ~ N(m_c[i], severity_sigma^2)                       (y lognormal)

    rate_mean_log     = log(sum_r n_r / sum_r E_r) + rate_level
    severity_log_mean = log(median_i y_i)          + severity_level

The priors (``default_priors``) are on ``rate_level`` and ``severity_level``,
the book's centre relative to its overall claim rate and median claim, so they
are in the data's units whatever the currency or the exposure unit.

``rate`` (claims per unit of exposure), ``severity_loc`` (``m_c``),
``mean_severity = exp(m_c + sigma^2 / 2)`` and ``pure_premium = rate *
mean_severity`` (expected cost per unit of exposure) are recorded per class.
The severity likelihood is evaluated from three statistics per class (the
claim count, the mean and the sum of squared deviations of ``log y``), so its
cost does not grow with the number of claims.

The negative binomial's ``phi`` describes the rows' unit: with one row per
class and year it is the year-to-year swing of a class's claim count beyond
Poisson noise, which is the unit the next-period forecast draws. With a single
row per class it is not separable from ``rate_class_sd`` and rests on its prior.
"""

from __future__ import annotations

import functools
from typing import Any, Hashable, Mapping, Sequence, Unpack

import numpy as np

from wager.errors import SpecError
from wager.kernel.inference import Model
from wager.kernel.posterior import Posterior
from wager.kernel.priors import Prior
from wager.risk.portfolio import Portfolio, check_portfolio
from wager.risk.problem import NutsSettings, fit_by_nuts

SOURCE = (
    "wager.risk defaults; Klugman, Panjer & Willmot, Loss Models (5th ed.), ch. 6-9; "
    "Gelman et al., Bayesian Data Analysis (3rd ed.), ch. 5"
)
PARAMETERS = ("rate", "concentration", "severity_loc", "severity_sigma")
"""What a simulation of the aggregate loss needs from a posterior."""


# --- priors and the model --------------------------------------------------------------


def default_priors() -> dict[str, Prior]:
    """The documented default priors, in units set by the data: the model's rates are
    relative to the book's overall claim rate and its log amounts to the log median
    claim (``reference_levels``), so one set of priors fits any currency and any
    exposure unit."""

    def p(family: str, why: str, **params: float) -> Prior:
        return Prior(family=family, params=params, why=why, source=SOURCE)

    return {
        "rate_level": p("normal", "Log of the classes' average claim rate over the book's overall rate (claims / exposure): near 0, within a factor of e.", loc=0.0, scale=1.0),
        "rate_class_sd": p("half_normal", "Rating classes' claim rates differ by tens of percent, rarely by more than a factor of e (log sd 0.5).", scale=0.5),
        "concentration": p("gamma", "Negative-binomial concentration: from strong overdispersion (1) to nearly Poisson (50); Gamma(2, 0.1), mean 20.", shape=2.0, rate=0.1),
        "severity_level": p("normal", "Classes' average log claim amount minus the log of the median claim: near 0, within a factor of e.", loc=0.0, scale=1.0),
        "severity_class_sd": p("half_normal", "Classes' typical claim amounts differ by tens of percent, rarely by more than a factor of e (log sd 0.5).", scale=0.5),
        "severity_sigma": p("half_normal", "Lognormal log-sd of claim amounts: 0.5-2.5 in property and motor (Klugman et al.); HalfNormal(2) allows all of it.", scale=2.0),
    }


def reference_levels(portfolio: Portfolio) -> dict[str, np.ndarray]:
    """The data's units, as scalars: ``log_overall_rate = log(sum n / sum E)`` (half a
    claim when there are none) and ``log_median_amount``."""
    overall = max(float(portfolio.counts.sum()), 0.5) / float(portfolio.exposure.sum())
    return {"log_overall_rate": np.asarray(np.log(overall)), "log_median_amount": np.asarray(np.log(np.median(portfolio.amounts)))}


def claims_model(
    exposure: Any,
    counts: Any,
    row_class: Any,
    n_claims: Any,
    mean_log_amount: Any,
    ss_log_amount: Any,
    sum_log_amount: Any,
    log_overall_rate: Any,
    log_median_amount: Any,
    *,
    priors: Mapping[str, Prior],
) -> None:
    """Frequency (NB2 with exposure offset) and lognormal severity, both pooled by class.

    ``exposure``, ``counts``, ``row_class``: the frequency table ``(R,)``;
    ``n_claims``, ``mean_log_amount``, ``ss_log_amount``: per class ``(C,)``
    (``Portfolio.severity_statistics``); ``sum_log_amount``, ``log_overall_rate``,
    ``log_median_amount``: scalars (``reference_levels``). ``rate_mean_log =
    log_overall_rate + rate_level`` and ``severity_log_mean = log_median_amount +
    severity_level`` are recorded. The severity factor is ``sum_i log LogNormal(y_i;
    m_c, sigma)`` written as ``sum_c [-n_c log(sigma sqrt(2 pi)) - (ss_c + n_c
    (mean_c - m_c)^2) / (2 sigma^2)] - sum_i log y_i``.

    The references are data, not constants in the priors, so fits to new data of the
    same shapes reuse one compiled sampler, and the sampler starts near the data.
    """
    import jax.numpy as jnp
    import numpyro
    import numpyro.distributions as dist

    def prior(name: str) -> Any:
        return numpyro.sample(name, priors[name].to_numpyro())

    n_classes = n_claims.shape[0]
    rate_mean_log = numpyro.deterministic("rate_mean_log", log_overall_rate + prior("rate_level"))
    rate_class_sd = prior("rate_class_sd")
    rate_z = numpyro.sample("rate_z", dist.Normal(0.0, 1.0).expand((n_classes,)))
    rate = numpyro.deterministic("rate", jnp.exp(rate_mean_log + rate_class_sd * rate_z))
    concentration = prior("concentration")
    numpyro.sample("counts", dist.NegativeBinomial2(exposure * rate[row_class], concentration), obs=counts)

    severity_log_mean = numpyro.deterministic("severity_log_mean", log_median_amount + prior("severity_level"))
    severity_class_sd = prior("severity_class_sd")
    severity_z = numpyro.sample("severity_z", dist.Normal(0.0, 1.0).expand((n_classes,)))
    loc = numpyro.deterministic("severity_loc", severity_log_mean + severity_class_sd * severity_z)
    sigma = prior("severity_sigma")
    numpyro.factor("amounts", _severity_log_likelihood(jnp, n_claims, mean_log_amount, ss_log_amount, sum_log_amount, loc, sigma))
    mean_severity = numpyro.deterministic("mean_severity", jnp.exp(loc + 0.5 * sigma**2))
    numpyro.deterministic("pure_premium", rate * mean_severity)


def _severity_log_likelihood(xp: Any, n: Any, mean: Any, ss: Any, sum_log: Any, loc: Any, sigma: Any) -> Any:
    """Lognormal log-likelihood from per-class statistics; ``loc`` ``(..., C)``, ``sigma`` ``(...)``."""
    sigma = sigma[..., None]
    per_class = -n * (xp.log(sigma) + 0.5 * np.log(2 * np.pi)) - (ss + n * (mean - loc) ** 2) / (2 * sigma**2)
    return xp.sum(per_class, axis=-1) - sum_log


def log_likelihood(portfolio: Portfolio, draws: Mapping[str, Any]) -> np.ndarray:
    """The model's log-likelihood of both tables at each draw of ``rate`` ``(..., C)``,
    ``concentration`` ``(...)``, ``severity_loc`` ``(..., C)``, ``severity_sigma`` ``(...)``,
    in NumPy and SciPy; shape ``(...)``."""
    from scipy import stats

    rate, phi, loc, sigma = (np.asarray(draws[k], dtype=float) for k in PARAMETERS)
    mean = portfolio.exposure * rate[..., portfolio.row_class]
    phi_ = phi[..., None]
    frequency = stats.nbinom.logpmf(portfolio.counts, phi_, phi_ / (phi_ + mean)).sum(axis=-1)
    s = portfolio.severity_statistics()
    severity = _severity_log_likelihood(np, s["n_claims"], s["mean_log_amount"], s["ss_log_amount"], float(s["sum_log_amount"]), loc, sigma)
    return frequency + severity


def build_model(portfolio: Portfolio, priors: Mapping[str, Prior] | None = None) -> Model:
    """The kernel's ``Model`` for a validated ``portfolio`` (``check_portfolio``)."""
    if not isinstance(portfolio, Portfolio):
        raise SpecError("portfolio", "must be a Portfolio: build it with check_portfolio(...) or simulate_portfolio(...)")
    return Model(
        name="risk:claims_frequency_severity",
        numpyro_model=claims_model,
        data={
            "exposure": portfolio.exposure,
            "counts": portfolio.counts,
            "row_class": portfolio.row_class,
            **portfolio.severity_statistics(),
            **reference_levels(portfolio),
            "priors": dict(priors or default_priors()),
        },
        log_likelihood=functools.partial(log_likelihood, portfolio),  # picklable, for SBC's worker processes
    )


def fit_nuts(portfolio: Portfolio, *, priors: Mapping[str, Prior] | None = None, **nuts: Unpack[NutsSettings]) -> Posterior:
    """The posterior of the frequency-severity model on ``portfolio`` by NUTS
    (``wager.risk.problem.fit_by_nuts``: ``chains``, ``warmup``, ``draws``, ``seed``,
    ``target_accept``, ``progress``)."""
    return fit_by_nuts(build_model(portfolio, priors), **nuts)


# --- simulation ---------------------------------------------------------------------------


def simulate_portfolio(
    *,
    rate: Any,
    severity_loc: Any,
    concentration: float,
    severity_sigma: float,
    exposure: Any,
    rng: np.random.Generator,
    classes: Sequence[Hashable] | None = None,
) -> Portfolio:
    """A synthetic book from known parameters: ``rate``, ``severity_loc`` ``(C,)``;
    ``exposure`` ``(C,)`` (one period per class) or ``(C, T)`` (``T`` periods, one
    frequency-table row each). Counts ``n ~ NB2(E rate_c, phi)`` per row; each claim
    ``exp(m_c + sigma eps)``. Labels ``classes`` default to ``"class 0"``, ...
    """
    rate = np.asarray(rate, dtype=float)
    loc = np.asarray(severity_loc, dtype=float)
    e = np.asarray(exposure, dtype=float)
    e = e[:, None] if e.ndim == 1 else e
    labels = list(classes) if classes is not None else [f"class {c}" for c in range(rate.size)]
    row_class = np.repeat(np.arange(rate.size), e.shape[1])
    mean = e.ravel() * rate[row_class]
    counts = rng.negative_binomial(concentration, concentration / (concentration + mean))
    claim_class = np.repeat(row_class, counts)
    amounts = np.exp(loc[claim_class] + severity_sigma * rng.standard_normal(claim_class.size))
    return check_portfolio([labels[c] for c in row_class], e.ravel(), counts, [labels[c] for c in claim_class], amounts)
