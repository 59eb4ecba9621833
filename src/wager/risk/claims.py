"""Insurance claims: frequency and severity pooled across classes, and the
aggregate loss of the next period with the parameters' uncertainty carried in.

Data. A *frequency table*, one row per class and period (or per policy group):
the class label, the exposure ``E_r > 0`` (policy-years, vehicle-years...) and
the claim count ``n_r`` (an integer >= 0); a class may have many rows. A
*claims table*: the class label and the amount ``y_i > 0`` of each claim, in
currency units; it may cover a different window than the counts (closed claims
of several years, say). Every class in the claims table must be in the
frequency table; a class with no claims takes its severity from the pool.

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

Aggregate loss. For each posterior draw ``s`` and each of ``per_draw``
simulated periods, with next-period class exposures ``E_c``::

    N_c ~ NB2(E_c rate_c^(s), phi^(s)),   S_c = sum_{i <= N_c} exp(m_c^(s) + sigma^(s) eps_i),   S = sum_c S_c

``aggregate_predictive`` returns the draws of ``S`` and ``S_c`` and the VaR and
TVaR of ``S`` (``wager.risk.tail.tail_summary``; level 0.995, Solvency II's
one-year standard, by default). ``aggregate_plug_in`` runs the same simulation
with the parameters fixed at point estimates (``posterior_medians``): what a
fitted-then-frozen model reports, and narrower in the tail when data are few.

Simulation cost. The counts of all draws and classes are drawn at once; the
claim amounts are then drawn for blocks of periods holding at most
``max_claims`` claims together (one claim's location and scale repeated by its
cell's count, ``exp`` of a Normal, summed per cell by ``np.bincount``), so
memory stays near ``5 * 8 * max_claims`` bytes however many claims the
periods hold; the time is linear in the total number of claims simulated.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Hashable, Mapping, Sequence

import numpy as np

from wager.errors import SpecError
from wager.kernel.inference import InferenceConfig, Model, ProgressFn, infer
from wager.kernel.posterior import Posterior
from wager.kernel.priors import Prior

SOURCE = (
    "wager.risk defaults; Klugman, Panjer & Willmot, Loss Models (5th ed.), ch. 6-9; "
    "Gelman et al., Bayesian Data Analysis (3rd ed.), ch. 5"
)
MAX_CLAIMS = 2_000_000
"""Claim amounts simulated at once (about 80 MB of work arrays): bounds the simulation's memory."""
PARAMETERS = ("rate", "concentration", "severity_loc", "severity_sigma")
"""What a simulation of the aggregate loss needs from a posterior."""


# --- the data ------------------------------------------------------------------------


@dataclass(frozen=True)
class Portfolio:
    """A validated frequency table and claims table (``check_portfolio`` builds one).

    ``classes``: the labels, in order of first appearance in the frequency table;
    ``row_class``, ``exposure``, ``counts``: the frequency table's rows ``(R,)``
    (class index, exposure, claim count); ``claim_class``, ``amounts``: the
    claims table ``(K,)`` (class index, amount).
    """

    classes: tuple[Hashable, ...]
    row_class: np.ndarray
    exposure: np.ndarray
    counts: np.ndarray
    claim_class: np.ndarray
    amounts: np.ndarray

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    def class_exposure(self) -> np.ndarray:
        """Total exposure per class ``(C,)``."""
        return np.bincount(self.row_class, weights=self.exposure, minlength=self.n_classes)

    def typical_exposure(self) -> np.ndarray:
        """Mean exposure of a class's rows ``(C,)``: one typical period of each class."""
        rows = np.bincount(self.row_class, minlength=self.n_classes)
        return self.class_exposure() / rows

    def severity_statistics(self) -> dict[str, np.ndarray]:
        """Per class ``(C,)``: claim count ``n``, mean of ``log y`` and sum of squared
        deviations about it; and ``sum log y`` (the lognormal's Jacobian), a scalar."""
        log_y = np.log(self.amounts)
        n = np.bincount(self.claim_class, minlength=self.n_classes).astype(float)
        total = np.bincount(self.claim_class, weights=log_y, minlength=self.n_classes)
        mean = np.divide(total, n, out=np.zeros_like(total), where=n > 0)
        squares = np.bincount(self.claim_class, weights=(log_y - mean[self.claim_class]) ** 2, minlength=self.n_classes)
        return {"n_claims": n, "mean_log_amount": mean, "ss_log_amount": squares, "sum_log_amount": np.asarray(log_y.sum())}


def check_portfolio(
    classes: Sequence[Hashable],
    exposure: Any,
    counts: Any,
    claim_classes: Sequence[Hashable],
    amounts: Any,
) -> Portfolio:
    """The frequency table (``classes``, ``exposure``, ``counts``, one entry per row)
    and the claims table (``claim_classes``, ``amounts``, one per claim), validated.

    ``SpecError`` names the field: ``exposure`` (finite, > 0), ``counts`` (whole
    numbers >= 0), ``claims.amount`` (finite, > 0), ``claims.class`` (each label
    in the frequency table), ``classes`` (one label per row).
    """
    labels = _labels(classes)
    e = _numbers(exposure, "exposure")
    if not labels:
        raise SpecError("classes", "the frequency table needs at least one row")
    if e.size != len(labels):
        raise SpecError("exposure", f"needs one value per frequency-table row ({len(labels)}), got {e.size}")
    if np.any(e <= 0):
        bad = int(np.argmax(e <= 0))
        raise SpecError("exposure", f"must be > 0 (policy-years or similar): row {bad} has {e[bad]:g}")
    n = _numbers(counts, "counts")
    if n.size != len(labels):
        raise SpecError("counts", f"needs one value per frequency-table row ({len(labels)}), got {n.size}")
    if np.any((n < 0) | (n != np.round(n))):
        bad = int(np.argmax((n < 0) | (n != np.round(n))))
        raise SpecError("counts", f"must be whole numbers >= 0 (claims counted): row {bad} has {n[bad]:g}")
    index: dict[Hashable, int] = {}
    for label in labels:
        index.setdefault(label, len(index))
    claim_labels = _labels(claim_classes)
    y = _numbers(amounts, "claims.amount")
    if y.size != len(claim_labels):
        raise SpecError("claims.amount", f"needs one amount per claim ({len(claim_labels)} class labels), got {y.size}")
    if y.size == 0:
        raise SpecError("claims.amount", "needs at least one claim to estimate severity")
    if np.any(y <= 0):
        bad = int(np.argmax(y <= 0))
        raise SpecError("claims.amount", f"must be > 0 (a claim's cost, in currency): claim {bad} has {y[bad]:g}")
    unknown = [label for label in dict.fromkeys(claim_labels) if label not in index]
    if unknown:
        raise SpecError("claims.class", f"every claim's class must be in the frequency table; not there: {', '.join(map(repr, unknown[:5]))}")
    return Portfolio(
        classes=tuple(index),
        row_class=np.asarray([index[label] for label in labels], dtype=np.int64),
        exposure=e,
        counts=np.round(n).astype(np.int64),
        claim_class=np.asarray([index[label] for label in claim_labels], dtype=np.int64),
        amounts=y,
    )


def _labels(values: Any) -> list[Hashable]:
    # a list of tuples stays a list of labels; a Series or array is flattened to its values
    return list(values) if isinstance(values, (list, tuple)) else list(np.asarray(values, dtype=object).ravel())


def _numbers(values: Any, field: str) -> np.ndarray:
    try:
        x = np.asarray(values, dtype=float).ravel()
    except (TypeError, ValueError) as exc:
        raise SpecError(field, f"must be numbers: {exc}") from None
    if not np.isfinite(x).all():
        raise SpecError(field, f"must be finite (no NaN or inf): {int((~np.isfinite(x)).sum())} bad value(s)")
    return x


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
        log_likelihood=lambda draws: log_likelihood(portfolio, draws),
    )


def fit_nuts(
    portfolio: Portfolio,
    *,
    priors: Mapping[str, Prior] | None = None,
    chains: int = 2,
    warmup: int = 500,
    draws: int = 500,
    seed: int = 20240101,
    progress: ProgressFn | None = None,
) -> Posterior:
    """The posterior of the frequency-severity model on ``portfolio`` by NUTS
    (``wager.kernel.inference.infer``)."""
    config = InferenceConfig(engine="nuts", chains=chains, warmup=warmup, draws=draws, seed=seed)
    return infer(build_model(portfolio, priors), config, progress)


# --- the aggregate loss ---------------------------------------------------------------------


@dataclass(frozen=True)
class ClaimParameters:
    """What the aggregate simulation needs, with a leading axis of ``S`` parameter sets:
    ``rate``, ``severity_loc`` ``(S, C)``; ``concentration``, ``severity_sigma`` ``(S,)``."""

    rate: np.ndarray
    concentration: np.ndarray
    severity_loc: np.ndarray
    severity_sigma: np.ndarray

    @classmethod
    def from_draws(cls, draws: Posterior | Mapping[str, Any]) -> "ClaimParameters":
        """All posterior draws, chains pooled (draw ``d`` of chain ``k`` at ``k * draws + d``)."""
        rate, phi, loc, sigma = (np.asarray(draws[k], dtype=float) for k in PARAMETERS)
        classes = rate.shape[-1]
        return cls(rate.reshape(-1, classes), phi.reshape(-1), loc.reshape(-1, classes), sigma.reshape(-1))

    def repeat(self, times: int) -> "ClaimParameters":
        """Each parameter set ``times`` times in a row."""
        return ClaimParameters(*(np.repeat(getattr(self, k), times, axis=0) for k in PARAMETERS))


def posterior_medians(posterior: Posterior | Mapping[str, Any]) -> ClaimParameters:
    """Point estimates: each parameter's (each class's) posterior median, as one parameter set."""
    p = ClaimParameters.from_draws(posterior)
    return ClaimParameters(*(np.median(getattr(p, k), axis=0, keepdims=True) for k in PARAMETERS))


@dataclass(frozen=True)
class AggregateLoss:
    """Simulated total claims of the next period and their tail, in currency units.

    ``total`` ``(n,)`` and ``by_class`` ``(n, C)``, one row per simulated period
    (the predictive's periods grouped by posterior draw, ``per_draw`` in a row);
    ``var``, ``tvar`` of ``total`` at ``level`` with Monte Carlo standard errors.
    """

    classes: tuple[Hashable, ...]
    exposure: np.ndarray
    total: np.ndarray
    by_class: np.ndarray
    level: float
    var: float
    var_se: float
    tvar: float
    tvar_se: float
    method: str


def aggregate_predictive(
    posterior: Posterior,
    portfolio: Portfolio,
    rng: np.random.Generator,
    *,
    exposure: Any = None,
    level: float = 0.995,
    per_draw: int = 20,
    max_claims: int = MAX_CLAIMS,
) -> AggregateLoss:
    """The posterior predictive of next period's total claims: ``per_draw`` periods
    simulated from each posterior draw, so parameter uncertainty is in the tail.

    ``exposure``: next period's exposure per class, ``(C,)`` in ``portfolio.classes``
    order or ``{label: exposure}``; by default each class's typical period
    (``Portfolio.typical_exposure``). VaR and TVaR from ``tail_summary`` over all
    simulated periods; their standard errors allow for the periods of one posterior
    draw sharing its parameters and for the draws coming from Markov chains: the
    VaR's is ``tail_summary``'s binomial rule with the number of periods replaced by
    the effective number ``p (1 - p) / mcse(g)^2``, ``g`` the share of a draw's
    periods at or below the VaR (its MCSE through ArviZ's ESS over chains); the
    TVaR's is the MCSE of the per-draw mean of ``VaR + (S - VaR)^+ / (1 - p)``.
    """
    from wager.risk.tail import tail_summary

    level = _check_level(level)
    if not isinstance(per_draw, (int, np.integer)) or per_draw < 1:
        raise SpecError("per_draw", f"must be a positive integer, got {per_draw!r}")
    e = next_exposure(portfolio, exposure)
    params = ClaimParameters.from_draws(posterior)
    by_class = simulate_aggregate(params.repeat(per_draw), e, rng, max_claims=max_claims)
    total = by_class.sum(axis=1)
    summary = tail_summary(total, level)
    var = float(summary.var)
    phi = np.asarray(posterior["concentration"])
    per = total.reshape(phi.shape[0] if phi.ndim > 1 else 1, -1, per_draw)  # (chains, draws, periods)
    below = (per <= var).mean(axis=-1)
    shortfall = (var + np.maximum(per - var, 0.0) / (1 - level)).mean(axis=-1)
    var_se = float(summary.var_se)
    g_se = _mcse(below)
    if g_se > 0:
        effective = level * (1 - level) / g_se**2
        d = np.sqrt(level * (1 - level) / effective)
        lo, hi = np.quantile(total, [max(level - d, 0.0), min(level + d, 1.0)])
        var_se = float(hi - lo) / 2
    tvar_se = _mcse(shortfall) or float(summary.tvar_se)
    return AggregateLoss(
        classes=portfolio.classes,
        exposure=e,
        total=total,
        by_class=by_class,
        level=level,
        var=var,
        var_se=var_se,
        tvar=float(summary.tvar),
        tvar_se=tvar_se,
        method=f"predictive: {per_draw} simulated periods per posterior draw ({params.concentration.size} draws)",
    )


def aggregate_plug_in(
    point: ClaimParameters,
    portfolio: Portfolio,
    rng: np.random.Generator,
    *,
    exposure: Any = None,
    level: float = 0.995,
    periods: int = 100_000,
    max_claims: int = MAX_CLAIMS,
) -> AggregateLoss:
    """Next period's total claims with the parameters fixed at ``point`` (one set,
    e.g. ``posterior_medians``): ``periods`` independent periods; VaR and TVaR and
    their standard errors from ``tail_summary``."""
    from wager.risk.tail import tail_summary

    level = _check_level(level)
    if point.concentration.size != 1:
        raise SpecError("point", f"must be one parameter set, got {point.concentration.size}")
    if not isinstance(periods, (int, np.integer)) or periods < 2:
        raise SpecError("periods", f"must be an integer >= 2, got {periods!r}")
    e = next_exposure(portfolio, exposure)
    by_class = simulate_aggregate(point.repeat(periods), e, rng, max_claims=max_claims)
    total = by_class.sum(axis=1)
    summary = tail_summary(total, level)
    return AggregateLoss(
        classes=portfolio.classes,
        exposure=e,
        total=total,
        by_class=by_class,
        level=level,
        var=float(summary.var),
        var_se=float(summary.var_se),
        tvar=float(summary.tvar),
        tvar_se=float(summary.tvar_se),
        method=f"plug-in: {periods} simulated periods at fixed parameters",
    )


def simulate_aggregate(
    params: ClaimParameters, exposure: np.ndarray, rng: np.random.Generator, *, max_claims: int = MAX_CLAIMS
) -> np.ndarray:
    """Total claim amount per period and class ``(S, C)``, one period per parameter set.

    ``N_sc ~ NB2(exposure_c rate_sc, phi_s)`` (NumPy's ``negative_binomial(phi,
    phi / (phi + mean))``), then ``N_sc`` amounts ``exp(m_sc + sigma_s eps)`` summed,
    in blocks of periods holding at most ``max_claims`` claims (a single period with
    more is simulated alone).
    """
    if not isinstance(max_claims, (int, np.integer)) or max_claims < 1:
        raise SpecError("max_claims", f"must be a positive integer, got {max_claims!r}")
    mean = exposure * params.rate
    phi = params.concentration[:, None]
    counts = rng.negative_binomial(phi, phi / (phi + mean))
    n_classes = mean.shape[1]
    totals = np.zeros(mean.shape)
    cumulative = np.cumsum(counts.sum(axis=1))
    start = 0
    while start < counts.shape[0]:
        before = cumulative[start - 1] if start else 0
        stop = max(start + 1, int(np.searchsorted(cumulative, before + max_claims, side="right")))
        n = counts[start:stop].ravel()
        cell = np.repeat(np.arange(n.size), n)
        loc = params.severity_loc[start:stop].ravel()[cell]
        scale = np.repeat(params.severity_sigma[start:stop], n_classes)[cell]
        amounts = np.exp(loc + scale * rng.standard_normal(cell.size))
        totals[start:stop] = np.bincount(cell, weights=amounts, minlength=n.size).reshape(-1, n_classes)
        start = stop
    return totals


def next_exposure(portfolio: Portfolio, exposure: Any = None) -> np.ndarray:
    """Next period's exposure per class ``(C,)``: ``None`` (each class's typical period),
    an array in ``portfolio.classes`` order, or ``{label: exposure}`` naming every class."""
    if exposure is None:
        return portfolio.typical_exposure()
    if isinstance(exposure, Mapping):
        missing = [c for c in portfolio.classes if c not in exposure]
        extra = [c for c in exposure if c not in portfolio.classes]
        if missing or extra:
            raise SpecError("exposure", f"must name every class once; missing {missing!r}, unknown {extra!r}")
        exposure = [exposure[c] for c in portfolio.classes]
    e = _numbers(exposure, "exposure")
    if e.size != portfolio.n_classes:
        raise SpecError("exposure", f"needs one value per class ({portfolio.n_classes}), got {e.size}")
    if np.any(e <= 0):
        raise SpecError("exposure", "next period's exposure must be > 0 for every class")
    return e


def _check_level(level: Any) -> float:
    try:
        value = float(level)
    except (TypeError, ValueError):
        raise SpecError("level", f"must be a number in (0, 1), got {level!r}") from None
    if not 0.0 < value < 1.0:
        raise SpecError("level", f"must be in (0, 1) (e.g. 0.995), got {level}")
    return value


def _mcse(x: np.ndarray) -> float:
    """MCSE of the mean of ``x`` ``(chains, draws)`` through ArviZ's ESS (0 when ``x`` is constant)."""
    import arviz as az

    if np.ptp(x) == 0:
        return 0.0
    return float(np.ravel(az.mcse(np.asarray(x, dtype=float), method="mean"))[0])


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
