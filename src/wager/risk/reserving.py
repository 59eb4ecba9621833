"""Bayesian loss reserving on a cumulative paid-loss development triangle
(``wager.risk.triangle``: ``C[w, d]``, origins down, developments across,
observed where ``w + d <= n - 1``; the reserve ``R = sum_w (U_w - L_w)``, the
ultimates less the latest diagonal).

The models (Meyers 2015, *Stochastic Loss Reserving Using Bayesian MCMC
Models*, CAS Monograph 1), on the logs of every observed cell::

    log C[w, d] ~ Normal(mu[w, d], sigma[d])
    LCL (leveled chain ladder):     mu[w, d] = alpha[w] + beta[d]
    CCL (correlated chain ladder):  mu[0, d] = alpha[0] + beta[d]
                                    mu[w, d] = alpha[w] + beta[d] + rho (log C[w-1, d] - mu[w-1, d])
    beta[n-1] = 0,   sigma[d] = a[d] + a[d+1] + ... + a[n-1]

``alpha[w]`` is the expected log ultimate of origin ``w`` (``beta[n-1] = 0``),
``beta[d]`` the log of the share of the ultimate paid by development ``d``,
and ``sigma`` decreases with development because every ``a[i] > 0``: late
cells move less than early ones. CCL adds ``rho``, the correlation of an
origin's level with the previous origin's residual. Meyers' models carry a
premium (``mu = log premium + logelr + alpha + beta``, ``alpha[0] = 0``); a
paid triangle alone has none, so every ``alpha[w]`` is free and its prior is
centred on the log of the triangle's largest observed cumulative loss
(``default_priors``, ``log_scale``). Meyers fits LCL and CCL to
incurred triangles and prefers a payment-year trend for paid ones (his CIT);
here they are applied to paid losses as the simplest faithful Bayesian
counterpart of the chain ladder: both are multiplicative in origin and
development.

The likelihood is written on ``log C``; the lognormal density of ``C`` differs
from it by ``-sum log C``, a constant of the data, so the posterior is the same.

Predictive (as Meyers simulates it): for each posterior draw, the ultimates
of the origins not yet at the last development are simulated, ``log U_w ~
Normal(mu[w, n-1], sigma[n-1])``; under CCL origin by origin, each ``mu``
taking the previous origin's (observed or simulated) ultimate. The first
origin's ultimate is observed. An ultimate is not conditioned on its origin's
latest paid amount (under LCL the cells of an origin are independent given
``alpha``), so it may fall below it, a negative reserve: on GenIns the 2002
origin's mean reserve is about -14,000 where the chain ladder says +95,000.

Sampling. NUTS runs in coordinates that standardise ``alpha`` and ``beta``
given ``sigma`` (``lcl_model``): sampled directly, the late columns' one or
two cells make funnels and NUTS diverges.

The peer, Mack's chain ladder, is ``wager.risk.mack``.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, Literal, Mapping, Sequence, Unpack

import numpy as np

from wager.errors import SpecError
from wager.kernel.inference import Model
from wager.kernel.posterior import Posterior
from wager.kernel.priors import Prior
from wager.kernel.seeds import derive_seed
from wager.risk.problem import NutsSettings, fit_by_nuts
from wager.risk.tail import chain_tail_summary
from wager.risk.triangle import LossTriangle, as_triangle

SOURCE = "Meyers (2015), Stochastic Loss Reserving Using Bayesian MCMC Models, CAS Monograph 1 (LCL and CCL)"

ReservingModel = Literal["lcl", "ccl"]


# --- simulating a triangle ------------------------------------------------------------


def simulate_triangle(
    alpha: Any, beta: Any, sigma: Any, rng: np.random.Generator, rho: float = 0.0
) -> tuple[np.ndarray, np.ndarray]:
    """``(triangle, square)`` drawn from the model: ``square`` is ``(n, n)`` cumulative
    losses for every cell, ``triangle`` the same with NaN below the latest diagonal.

    ``alpha``, ``beta`` (``beta[n-1] = 0``) and ``sigma`` are ``(n,)``; ``rho = 0``
    is LCL, otherwise CCL.
    """
    alpha, beta, sigma = (np.asarray(x, dtype=float) for x in (alpha, beta, sigma))
    n = alpha.size
    log_c = np.empty((n, n))
    mu_prev = None
    for w in range(n):
        mu = alpha[w] + beta
        if mu_prev is not None:
            mu = mu + rho * (log_c[w - 1] - mu_prev)
        log_c[w] = mu + sigma * rng.standard_normal(n)
        mu_prev = mu
    square = np.exp(log_c)
    triangle = np.where(np.add.outer(np.arange(n), np.arange(n)) <= n - 1, square, np.nan)
    return triangle, square


# --- priors and the model -----------------------------------------------------------------


def default_priors(model: ReservingModel = "lcl") -> dict[str, Prior]:
    """The documented default priors (Meyers 2015, scaled to the triangle through ``log_scale``).

    ``alpha`` is the prior of ``alpha[w] - log_scale``, each origin's log ultimate
    relative to ``log_scale``, the log of the largest observed cumulative loss
    (an ultimate's order of magnitude) passed with the data; Meyers' ``alpha`` is
    likewise relative, to log premium plus the log expected loss ratio. ``beta``
    and ``sigma_step`` are Meyers' LCL priors, ``rho`` a flat one on (-1, 1). Being free of the
    data, one compiled NUTS chain serves every triangle of a size.
    """

    def p(family: str, why: str, **params: float) -> Prior:
        return Prior(family=family, params=params, why=why, source=SOURCE)

    priors = {
        "alpha": p(
            "normal",
            "Log ultimate of each origin relative to the log of the largest observed cumulative loss: "
            "centred there, sd sqrt(10) as Meyers' alpha, a factor of e^3.2 (about 24) either way at one sd.",
            loc=0.0,
            scale=float(np.sqrt(10.0)),
        ),
        "beta": p(
            "uniform",
            "Log share of the ultimate paid by each development before the last (beta[n-1] = 0): "
            "Meyers' Uniform(-5, 5), from 0.7% of the ultimate to well above it.",
            low=-5.0,
            high=5.0,
        ),
        "sigma_step": p(
            "uniform",
            "Increments a[d] of sigma[d] = a[d] + ... + a[n-1]: Meyers' Uniform(0, 1), so sigma decreases with "
            "development and no log-scale sd exceeds n.",
            low=0.0,
            high=1.0,
        ),
    }
    if model == "ccl":
        priors["rho"] = p(
            "uniform",
            "Correlation of an origin's level with the previous origin's residual: flat over (-1, 1), as "
            "weak as Meyers' CCL prior on the same range (his is a Beta(2, 2) stretched to it).",
            low=-1.0,
            high=1.0,
        )
    return priors


def lcl_model(log_losses: Any, observed: Any, log_scale: Any = 0.0, *, size: int, priors: Mapping[str, Prior]) -> None:
    """Leveled chain ladder on ``log_losses`` ``(n, n)`` (any finite value where not
    ``observed``); ``priors`` as ``default_priors``, the prior of ``alpha`` read
    relative to ``log_scale`` ``()``. ``size`` is ``n``, a Python int: the sites'
    shapes depend on it, so it is bound into the compiled chain with the priors
    (the kernel keeps one compiled chain per model and constants, whatever the
    arrays' shapes).

    Samples ``sigma_step`` ``(n,)`` and ``location_z`` ``(2n-1,)`` (see "Sampling
    coordinates" below); records ``alpha`` ``(n,)``, ``beta`` ``(n-1,)`` (the free
    entries: ``beta[n-1] = 0`` is not recorded, a constant having no R-hat) and
    ``sigma`` ``(n,)``.

    Sampling coordinates. The last development columns hold one or two cells,
    which barely bound their ``sigma`` below, yet pin the locations near them to
    within that ``sigma``: shifting every ``alpha`` up and every ``beta[d < n-1]``
    down moves one fitted cell, ``(0, n-1)``, so that direction's width is
    ``sigma[n-1]``. Sampled as ``alpha`` and ``beta`` these are funnels, and NUTS
    diverged on 1-2% of draws of GenIns. The model is the same in coordinates
    that standardise the locations given ``sigma``: with ``theta = (alpha,
    beta[:n-1])`` and the cells' design ``X`` (``mu = X theta``), LCL given
    ``sigma`` is a weighted linear model, and::

        Q(sigma)      = X' W X,   W = diag(1 / sigma[d]^2) over the observed cells
        theta_hat     = Q^-1 X' W log C                (weighted least squares)
        theta         = theta_hat + L^-T location_z,    Q = L L' (Cholesky)

    Under LCL with flat location priors ``location_z`` is exactly ``Normal(0, I)``
    whatever ``sigma`` is, and ``sigma`` keeps its marginal posterior; with the
    default priors (wide for ``alpha``, flat within bounds for ``beta``) nearly so.
    ``location_z`` is sampled flat; the map's Jacobian ``|Q|^(-1/2)``, the priors of
    ``alpha`` and ``beta`` (bounds included) and the likelihood of every cell enter
    as factors, so the posterior is the model's exactly. ``Q`` is positive definite
    for any complete triangle (every row and column observed, ``beta[n-1] = 0``).
    CCL uses the same coordinates: still a change of variables, if not an exact
    standardisation there.
    """
    _chain_ladder(log_losses, observed, log_scale, size, priors, correlated=False)


def ccl_model(log_losses: Any, observed: Any, log_scale: Any = 0.0, *, size: int, priors: Mapping[str, Prior]) -> None:
    """Correlated chain ladder: ``lcl_model`` plus ``rho`` (``priors["rho"]``)."""
    _chain_ladder(log_losses, observed, log_scale, size, priors, correlated=True)


def _chain_ladder(log_losses: Any, observed: Any, log_scale: Any, n: int, priors: Mapping[str, Prior], correlated: bool) -> None:
    import jax.numpy as jnp
    import jax.scipy.linalg as jla
    import numpyro
    import numpyro.distributions as dist
    from numpyro.distributions import constraints

    y = jnp.asarray(log_losses)
    mask = jnp.asarray(observed, dtype=bool)
    steps = numpyro.sample("sigma_step", priors["sigma_step"].to_numpyro().expand([n]).to_event(1))
    sigma = numpyro.deterministic("sigma", jnp.cumsum(steps[::-1])[::-1])
    z = numpyro.sample("location_z", dist.ImproperUniform(constraints.real, (), (2 * n - 1,)))
    theta_hat, chol = location_given_sigma(y, mask, sigma)
    theta = theta_hat + jla.solve_triangular(chol, z, lower=True, trans="T")
    numpyro.factor("jacobian", -jnp.sum(jnp.log(jnp.diag(chol))))
    alpha = numpyro.deterministic("alpha", theta[:n])
    beta = jnp.concatenate([numpyro.deterministic("beta", theta[n:]), jnp.zeros(1)])
    numpyro.factor("alpha_prior", _log_prior(priors["alpha"], alpha - log_scale))
    numpyro.factor("beta_prior", _log_prior(priors["beta"], beta[: n - 1]))
    if correlated:
        rho = numpyro.sample("rho", priors["rho"].to_numpyro())
        mu = correlated_means(y, mask, alpha, beta, rho, jnp)
    else:
        mu = alpha[:, None] + beta[None, :]
    numpyro.sample("log_losses", dist.Normal(mu, sigma).mask(mask).to_event(2), obs=y)


def location_given_sigma(y: Any, observed: Any, sigma: Any) -> tuple[Any, Any]:
    """``(theta_hat, L)``: LCL's weighted least-squares ``theta = (alpha, beta[:n-1])``
    ``(2n-1,)`` given ``sigma`` ``(n,)``, and the lower Cholesky factor ``L``
    ``(2n-1, 2n-1)`` of ``Q = X' W X`` (``lcl_model``), in JAX.

    ``Q`` in blocks: ``diag_w(sum_d W[w, d])`` for ``alpha``, ``diag_d(sum_w W[w, d])``
    for ``beta``, ``W[w, d]`` between ``alpha[w]`` and ``beta[d]``.
    """
    import jax.numpy as jnp
    import jax.scipy.linalg as jla

    n = y.shape[0]
    weight = jnp.where(observed, 1.0 / sigma[None, :] ** 2, 0.0)  # (n, n)
    cross = weight[:, : n - 1]
    q = jnp.block([
        [jnp.diag(weight.sum(axis=1)), cross],
        [cross.T, jnp.diag(cross.sum(axis=0))],
    ])
    wy = jnp.where(observed, weight * y, 0.0)
    rhs = jnp.concatenate([wy.sum(axis=1), wy[:, : n - 1].sum(axis=0)])
    chol = jnp.linalg.cholesky(q)
    theta_hat = jla.cho_solve((chol, True), rhs)
    return theta_hat, chol


def _log_prior(prior: Prior, x: Any) -> Any:
    """``sum log p(x)`` in JAX, ``-inf`` outside the support (NumPyro's ``log_prob``
    does not check it: a Uniform's is constant everywhere)."""
    import jax.numpy as jnp

    d = prior.to_numpyro()
    return jnp.sum(jnp.where(d.support(x), d.log_prob(x), -jnp.inf))


def correlated_means(y: Any, observed: Any, alpha: Any, beta: Any, rho: Any, xp: Any = np) -> Any:
    """CCL's ``mu`` ``(..., n, n)``: ``mu[0] = alpha[0] + beta``, ``mu[w] = alpha[w] + beta
    + rho (y[w-1] - mu[w-1])``, the residual taken as 0 where ``y[w-1]`` is not observed
    (no observed cell needs it). ``alpha``, ``beta`` ``(..., n)``, ``rho`` ``(...)``;
    ``xp`` is ``numpy`` or ``jax.numpy``."""
    n = y.shape[-1]
    rho = xp.asarray(rho)[..., None]
    rows = [alpha[..., 0:1] + beta]
    for w in range(1, n):
        residual = xp.where(observed[w - 1], y[w - 1] - rows[-1], 0.0)
        rows.append(alpha[..., w : w + 1] + beta + rho * residual)
    return xp.stack(rows, axis=-2)


def log_likelihood(triangle: Any, draws: Mapping[str, Any], model: ReservingModel = "lcl") -> np.ndarray:
    """``sum over observed cells of log Normal(log C[w, d]; mu[w, d], sigma[d])`` at each
    draw of ``alpha`` and ``sigma`` ``(..., n)``, ``beta`` ``(..., n-1)`` as recorded (or
    ``(..., n)`` ending in 0), and ``rho`` ``(...)`` for CCL; the result is shaped
    ``(...)``. NumPy only; the density the sampler used."""
    y, observed, mu, s = cell_distributions(triangle, draws, model)
    z = (y - mu) / s
    cell = -0.5 * z * z - np.log(s) - 0.5 * np.log(2 * np.pi)
    return np.where(observed, cell, 0.0).sum(axis=(-2, -1))


def cell_distributions(
    triangle: Any, draws: Mapping[str, Any], model: ReservingModel = "lcl"
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(log C, observed, mu, sigma)``: the triangle's logs ``(n, n)`` (0 where not
    observed), its observed cells, and each cell's Normal ``mu`` ``(..., n, n)`` and
    ``sigma`` ``(..., 1, n)`` at each draw (as ``log_likelihood`` takes them)."""
    tri = as_triangle(triangle)
    y, observed = _log_data(tri)
    alpha, beta, sigma = (np.asarray(draws[k], dtype=float) for k in ("alpha", "beta", "sigma"))
    if beta.shape[-1] == tri.size - 1:  # as recorded: beta[n-1] = 0 left out
        beta = np.concatenate([beta, np.zeros(beta.shape[:-1] + (1,))], axis=-1)
    if model == "ccl":
        mu = correlated_means(y, observed, alpha, beta, np.asarray(draws["rho"], dtype=float))
    else:
        mu = alpha[..., :, None] + beta[..., None, :]
    return y, observed, mu, sigma[..., None, :]


def triangle_log_scale(triangle: Any) -> float:
    """The log of the largest observed cumulative loss: where ``alpha``'s prior is centred."""
    return float(np.log(np.nanmax(as_triangle(triangle).losses)))


def _log_data(tri: LossTriangle) -> tuple[np.ndarray, np.ndarray]:
    observed = tri.observed
    return np.where(observed, np.log(np.where(observed, tri.losses, 1.0)), 0.0), observed


def build_model(
    triangle: Any,
    *,
    model: ReservingModel = "lcl",
    priors: Mapping[str, Prior] | None = None,
    origins: Sequence[Any] | None = None,
) -> Model:
    """The kernel's ``Model`` for a cumulative paid triangle (validated): ``model``
    ``"lcl"`` or ``"ccl"``, ``priors`` by default ``default_priors(model)``."""
    if model not in ("lcl", "ccl"):
        raise SpecError("model", f"must be 'lcl' (leveled chain ladder) or 'ccl' (correlated chain ladder), got {model!r}")
    tri = as_triangle(triangle, origins)
    y, observed = _log_data(tri)
    return Model(
        name=f"risk:reserving_{model}",
        numpyro_model=lcl_model if model == "lcl" else ccl_model,
        data={
            "log_losses": y,
            "observed": observed,
            "log_scale": np.asarray(triangle_log_scale(tri)),
            "size": tri.size,
            "priors": dict(priors or default_priors(model)),
        },
        log_likelihood=functools.partial(log_likelihood, tri, model=model),  # picklable, for SBC's worker processes
    )


def fit_nuts(
    triangle: Any,
    *,
    model: ReservingModel = "lcl",
    priors: Mapping[str, Prior] | None = None,
    origins: Sequence[Any] | None = None,
    **nuts: Unpack[NutsSettings],
) -> Posterior:
    """The posterior of LCL or CCL on ``triangle`` by NUTS (``wager.risk.problem.fit_by_nuts``:
    ``chains``, ``warmup``, ``draws``, ``seed``, ``target_accept``, ``progress``)."""
    return fit_by_nuts(build_model(triangle, model=model, priors=priors, origins=origins), **nuts)


# --- the predictive reserve -------------------------------------------------------------------


@dataclass(frozen=True)
class BayesianReserve:
    """The posterior predictive reserve, in the triangle's money units.

    ``reserve`` ``(S,)`` are draws of the total reserve ``sum_w (U_w - L_w)``;
    ``ultimate`` ``(S, n)`` the draws of each origin's ultimate; ``latest`` ``(n,)``
    the paid to date. ``var`` and ``tvar`` are the reserve's VaR and TVaR at
    ``level`` (``wager.risk.tail.chain_tail_summary``), with standard errors
    through the chains' effective sample size: the draws come from Markov
    chains, and the ``per_draw`` reserves of a draw share its parameters.
    """

    model: str
    origins: tuple[str, ...]
    latest: np.ndarray
    reserve: np.ndarray
    ultimate: np.ndarray
    level: float
    var: float
    var_se: float
    tvar: float
    tvar_se: float
    posterior: Posterior

    @property
    def mean(self) -> float:
        return float(self.reserve.mean())

    @property
    def sd(self) -> float:
        return float(self.reserve.std(ddof=1))

    @property
    def median(self) -> float:
        return float(np.median(self.reserve))

    @property
    def reserve_by_origin(self) -> np.ndarray:
        """``(S, n)`` draws of each origin's reserve ``U_w - L_w``."""
        return self.ultimate - self.latest

    @property
    def ultimate_mean(self) -> np.ndarray:
        return self.ultimate.mean(axis=0)

    @property
    def reserve_mean_by_origin(self) -> np.ndarray:
        return self.reserve_by_origin.mean(axis=0)

    @property
    def reserve_sd_by_origin(self) -> np.ndarray:
        return self.reserve_by_origin.std(axis=0, ddof=1)


def predictive_reserve(
    posterior: Posterior,
    triangle: Any,
    *,
    model: ReservingModel = "lcl",
    origins: Sequence[Any] | None = None,
    level: float = 0.995,
    per_draw: int = 10,
    rng: np.random.Generator | None = None,
) -> BayesianReserve:
    """Simulated ultimates and reserves from a posterior of ``model`` on ``triangle``.

    Each posterior draw gives ``per_draw`` simulated last columns: ``log U_w =
    mu[w, n-1] + sigma[n-1] Z`` for every origin but the first (whose ultimate is
    observed), with ``mu[w, n-1] = alpha[w]`` (LCL) or ``alpha[w] + rho (log U_{w-1}
    - mu[w-1, n-1])`` (CCL, origin by origin). ``S = chains x draws x per_draw``,
    in that order.
    """
    tri = as_triangle(triangle, origins)
    if model not in ("lcl", "ccl"):
        raise SpecError("model", f"must be 'lcl' or 'ccl', got {model!r}")
    if model == "ccl" and "rho" not in posterior.draws:
        raise SpecError("model", "is 'ccl' but the posterior has no rho: it was fitted with 'lcl'")
    if posterior["alpha"].shape[-1] != tri.size:
        raise SpecError("triangle", f"has {tri.size} origins but the posterior's alpha has {posterior['alpha'].shape[-1]}")
    if per_draw < 1:
        raise SpecError("per_draw", f"must be at least 1, got {per_draw}")
    rng = rng if rng is not None else np.random.default_rng(derive_seed(posterior.seed, 1))
    n = tri.size
    alpha = posterior.flat("alpha")  # (D, n)
    sigma_last = posterior.flat("sigma")[:, -1]
    rho = posterior.flat("rho") if model == "ccl" else np.zeros(alpha.shape[0])
    shape = (alpha.shape[0], per_draw)
    log_u = np.empty(shape + (n,))
    log_u[..., 0] = np.log(tri.losses[0, n - 1])
    mu_prev = np.broadcast_to(alpha[:, None, 0], shape)  # beta[n-1] = 0
    for w in range(1, n):
        mu = alpha[:, None, w] + rho[:, None] * (log_u[..., w - 1] - mu_prev)
        log_u[..., w] = mu + sigma_last[:, None] * rng.standard_normal(shape)
        mu_prev = mu
    ultimate = np.exp(log_u).reshape(-1, n)
    ultimate[:, 0] = tri.losses[0, n - 1]  # exactly, not through exp(log(.))
    reserve = (ultimate - tri.latest).sum(axis=1)
    tail = chain_tail_summary(reserve.reshape(posterior.chains, -1, per_draw), level)
    return BayesianReserve(
        model=model,
        origins=tri.origins,
        latest=tri.latest,
        reserve=reserve,
        ultimate=ultimate,
        level=level,
        var=float(tail.var),
        var_se=float(tail.var_se),
        tvar=float(tail.tvar),
        tvar_se=float(tail.tvar_se),
        posterior=posterior,
    )


def bayesian_reserve(
    triangle: Any,
    *,
    model: ReservingModel = "lcl",
    priors: Mapping[str, Prior] | None = None,
    origins: Sequence[Any] | None = None,
    level: float = 0.995,
    per_draw: int = 10,
    **nuts: Unpack[NutsSettings],
) -> BayesianReserve:
    """Fit ``model`` by NUTS (``fit_nuts``, settings ``nuts``) and simulate its reserve
    (``predictive_reserve``)."""
    tri = as_triangle(triangle, origins)
    posterior = fit_nuts(tri, model=model, priors=priors, **nuts)
    return predictive_reserve(posterior, tri, model=model, level=level, per_draw=per_draw)
