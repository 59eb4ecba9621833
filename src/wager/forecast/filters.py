"""The forecast model's filters: pure JAX functions, vectorised over series, that
run the damped-trend seasonal recursion of ``wager.forecast.model`` (whose
docstring gives the equations) over a panel.

* ``affine_filter``: the state affine in the initial state, ``x_t = a_t + A_t u``,
  and the sufficient statistics of the innovations, for ``marginal_normal`` to
  integrate ``u`` out in closed form (the Normal likelihood), and
  ``marginal_effects`` to integrate out the group effects of ``u``'s prior mean too;
* ``explicit_filter_t`` and ``explicit_filter_counts``: the filter from a given
  initial state, with the Student-t and (zero-inflated) negative-binomial
  log-likelihoods;
* ``explicit_filter_common``: the whole panel's filter with common levels and
  trends shared by the series of each group (Normal or Student-t);
* ``simulate_gaussian``, ``simulate_common`` and ``simulate_counts``: forecast
  paths from a final state.

Each is jitted once per process through ``compiled``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

UNROLL = 1
"""Time steps per loop iteration of the filters' scans (fewer loop round trips on CPU)."""


@dataclass(frozen=True)
class Smoothing:
    alpha: Any
    beta: Any
    gamma: Any
    phi: Any
    period: int  # seasonal states the filter carries; 0: none (Fourier seasonality)


_COMPILED: dict[str, Any] = {}


def compiled(fn: Any, *static: str) -> Any:
    """``fn`` under ``jax.jit``, made once per process.

    Inside a compiled program (NUTS, SVI, the jitted forecast) this changes
    nothing; where NumPyro runs the model op by op (NUTS's initialisation) it
    turns hundreds of one-off primitive compilations into one.
    """
    if fn.__name__ not in _COMPILED:
        import jax

        if not _COMPILED:
            jax.tree_util.register_dataclass(Smoothing, data_fields=["alpha", "beta", "gamma", "phi"], meta_fields=["period"])
            jax.tree_util.register_dataclass(Common, data_fields=["index", "gain", "phi"], meta_fields=[])
        _COMPILED[fn.__name__] = jax.jit(fn, static_argnames=static)
    return _COMPILED[fn.__name__]


def initial_map(period: int) -> np.ndarray:
    """``C`` with ``x0 = C u``: state (level, trend, s_1..s_m) from the free initial states
    (``period`` 0: level and trend only, ``C = I``)."""
    if period == 0:
        return np.eye(2)
    k, p = 2 + period, 1 + period
    c = np.zeros((k, p))
    c[0, 0] = c[1, 1] = 1.0
    c[2 : 2 + period - 1, 2:] = np.eye(period - 1)
    c[k - 1, 2:] = -1.0
    return c


def _prediction(state: Any, phi: Any) -> Any:
    """``l + phi b + s[t-m]`` for a state ``(series, k, ...)`` (``k = 2``: no season)."""
    phi = phi.reshape(phi.shape + (1,) * (state.ndim - 2))
    if state.shape[1] == 2:
        return state[:, 0] + phi * state[:, 1]
    return state[:, 0] + phi * state[:, 1] + state[:, 2]


def _advance(state: Any, e: Any, params: Smoothing) -> Any:
    """The state after an innovation ``e`` (same trailing shape as ``state[:, 0]``)."""
    import jax.numpy as jnp

    extra = (1,) * (state.ndim - 2)
    alpha, beta, gamma, phi = (v.reshape(v.shape + extra) for v in (params.alpha, params.beta, params.gamma, params.phi))
    level = state[:, 0] + phi * state[:, 1] + alpha * e
    trend = phi * state[:, 1] + beta * e
    if state.shape[1] == 2:
        return jnp.concatenate([level[:, None], trend[:, None]], axis=1)
    season = state[:, 2] + gamma * e
    return jnp.concatenate([level[:, None], trend[:, None], state[:, 3:], season[:, None]], axis=1)


def affine_filter(z: Any, mask: Any, shift: Any, params: Smoothing, end: Any = None, terms: Any = None) -> tuple[Any, Any, tuple[Any, Any, Any, Any]]:
    """Run the filter with the state affine in the initial state, ``x_t = a_t + A_t u``.

    ``terms`` ``(time, q)`` (optional): known inputs whose coefficients ``c`` are
    unknown, adding ``F_t' c`` to every series' prediction; ``c`` is then the last
    ``q`` entries of ``u`` (it does not enter the initial state, only the
    innovations and through them the states).

    Returns ``a`` ``(series, k)`` and ``A`` ``(series, k, p + q)`` after ``end`` steps
    (default: all; later steps are padding), and the
    sufficient statistics of ``e = r - D u`` over observed steps:
    ``(sum r^2, D'r, D'D, count)``. ``a`` and ``A`` travel as one array
    ``[a | A]`` so each step is one update; the statistics are summed after the
    scan, as matrix products rather than ``time`` small updates.
    """
    import jax
    import jax.numpy as jnp

    n, n_time = z.shape
    c = jnp.asarray(initial_map(params.period))
    if terms is None:
        terms = jnp.zeros((n_time, 0))
    k, q = c.shape[0], terms.shape[1]
    c = jnp.concatenate([c, jnp.zeros((k, q))], axis=1)
    p = c.shape[1]
    start = jnp.broadcast_to(jnp.concatenate([jnp.zeros((k, 1)), c], axis=1), (n, k, 1 + p))
    pad = jnp.zeros((n, p - q))

    def step(carry, inputs):
        aa, kept = carry
        zt, mt, st, ft, t = inputs
        # the innovation's coefficients [r | -d], e = r - d u; zero where unobserved
        known = jnp.concatenate([(zt - st)[:, None], pad, jnp.broadcast_to(-ft, (n, q))], axis=1)
        rd = (known - _prediction(aa, params.phi)) * mt[:, None]
        aa = _advance(aa, rd, params)
        return (aa, _kept(t, end, aa, kept)), rd

    inputs = (z.T, mask.T, shift.T, terms, jnp.arange(n_time))
    (_, aa), rd = jax.lax.scan(step, (start, start), inputs, unroll=UNROLL)
    r, d = rd[:, :, 0], -rd[:, :, 1:]  # (time, n), (time, n, p)
    stats = (
        jnp.einsum("tn,tn->n", r, r),
        jnp.einsum("tnp,tn->np", d, r),
        jnp.einsum("tnp,tnq->npq", d, d),
        mask.sum(axis=1),
    )
    return aa[:, :, 0], aa[:, :, 1:], stats


def _kept(t: Any, end: Any, new: Any, kept: Any) -> Any:
    """The state to keep after step ``t`` (0-based): the new one until ``end`` steps are done."""
    import jax.numpy as jnp

    return new if end is None else jnp.where(t < end, new, kept)


def marginal_normal(stats: tuple[Any, Any, Any, Any], mean: Any, var: Any, sigma: Any) -> tuple[Any, Any, Any]:
    """Per-series log marginal likelihood with ``u ~ N(mean, diag(var))`` integrated
    out, and ``u``'s conditional posterior (mean, upper Cholesky factor of its precision).

    ``log p(r) = -n/2 log(2 pi s^2) - 1/2 log|P| - 1/2 log|Q| - 1/2 (r'r/s^2 + m'P^-1 m - b'Q^-1 b)``
    with ``Q = P^-1 + D'D/s^2`` and ``b = P^-1 m + D'r/s^2``.
    """
    import jax.numpy as jnp
    from jax.scipy.linalg import cho_solve

    srr, sdr, sdd, count = stats
    s2 = sigma**2
    q = sdd / s2[:, None, None] + jnp.eye(mean.shape[1])[None] / var[:, :, None]
    b = mean / var + sdr / s2[:, None]
    chol = jnp.linalg.cholesky(q)
    post = cho_solve((chol, True), b[..., None])[..., 0]
    logdet_q = 2.0 * jnp.log(jnp.diagonal(chol, axis1=1, axis2=2)).sum(axis=1)
    quad = srr / s2 + (mean**2 / var).sum(axis=1) - (b * post).sum(axis=1)
    loglik = -0.5 * count * jnp.log(2 * jnp.pi * s2) - 0.5 * jnp.log(var).sum(axis=1) - 0.5 * logdet_q - 0.5 * quad
    return loglik, post, jnp.swapaxes(chol, 1, 2)


def marginal_effects(stats: tuple[Any, Any, Any, Any], mean: Any, var: Any, sigma: Any, index: Any, scale: Any, dims: tuple[int, ...]) -> tuple[Any, Any, Any]:
    """The whole panel's log marginal likelihood with the initial states ``u_i`` and
    the group effects of their prior means both integrated out, and the effects'
    posterior in standardised form (mean, upper Cholesky factor of its precision).

    The prior: ``u_i ~ N(mean_i + M_i w, diag(var_i))``, where ``w`` stacks one
    effect per level of each grouping column for each pooled dimension ``dims`` of
    ``u`` (``index`` ``(series, columns)``: a series' row of ``w`` in each column;
    ``M_i`` sums them), ``w = scale * omega`` with ``omega ~ N(0, I)``.

    Integrating ``u_i`` out leaves a Gaussian in its prior mean ``mu_i`` with
    precision ``Pi_i = V^-1 Q^-1 L`` and score ``r_i = V^-1 Q^-1 (eta - L mean_i)``
    at ``mean_i`` (``L = D'D / s^2``, ``eta = D'r / s^2``, ``Q = L + V^-1``; a series
    with no data gives ``Pi = 0``). Summed over series, ``omega`` is Gaussian with
    precision ``G = I + S (sum M'Pi M) S`` and linear term ``y = S sum M'r``, so

        log p = sum_i log p_i(mean_i) - 1/2 log|G| + 1/2 y' G^-1 y

    (``log p_i``: ``marginal_normal`` at the effects' prior mean). ``G >= I``
    stays well conditioned as ``scale -> 0``, where the sampled effects form a
    funnel with the series' spread. The cost is one Cholesky factor of size
    ``levels x len(dims)`` per evaluation.
    """
    import jax.numpy as jnp
    from jax.scipy.linalg import cho_solve

    _, sdr, sdd, _ = stats
    loglik, _, upper = marginal_normal(stats, mean, var, sigma)
    s2 = (sigma**2)[:, None]
    lam = sdd / s2[..., None]
    pi = cho_solve((upper, False), lam) / var[:, :, None]
    pi = 0.5 * (pi + jnp.swapaxes(pi, 1, 2))
    residual = sdr / s2 - jnp.einsum("npq,nq->np", lam, mean)
    r = cho_solve((upper, False), residual[..., None])[..., 0] / var
    dims = jnp.asarray(dims)
    pi, r = pi[:, dims][:, :, dims], r[:, dims]

    levels, width = scale.shape
    info, score = jnp.zeros((levels, levels, width, width)), jnp.zeros((levels, width))
    for g in range(index.shape[1]):
        score = score.at[index[:, g]].add(r)
        for h in range(index.shape[1]):
            info = info.at[index[:, g], index[:, h]].add(pi)
    size = levels * width
    s = scale.reshape(size)
    precision = jnp.eye(size) + s[:, None] * info.transpose(0, 2, 1, 3).reshape(size, size) * s[None, :]
    chol = jnp.linalg.cholesky(precision)
    y = s * score.reshape(size)
    omega = cho_solve((chol, True), y)
    total = loglik.sum() - jnp.log(jnp.diagonal(chol)).sum() + 0.5 * y @ omega
    return total, omega, chol.T


def solve_upper(upper: Any, eps: Any) -> Any:
    """``U^-1 eps`` per series: a draw with covariance ``(U'U)^-1`` from standard normals."""
    import jax

    return jax.scipy.linalg.solve_triangular(upper, eps[..., None], lower=False)[..., 0]


def explicit_filter_t(z, mask, shift, params: Smoothing, u, sigma, df, end=None) -> tuple[Any, Any]:
    """The filter from a given initial state; Student-t log-likelihood per series, and
    the state after ``end`` steps (default: all)."""
    import jax
    import jax.numpy as jnp
    import numpyro.distributions as dist

    state0 = u @ jnp.asarray(initial_map(params.period)).T
    noise = dist.StudentT(df, 0.0, sigma)

    def step(carry, inputs):
        state, kept, ll = carry
        zt, mt, st, t = inputs
        e = (zt - st - _prediction(state, params.phi)) * mt
        ll = ll + mt * noise.log_prob(e)
        state = _advance(state, e, params)
        return (state, _kept(t, end, state, kept), ll), None

    (_, state, ll), _ = jax.lax.scan(step, (state0, state0, jnp.zeros(z.shape[0])), (z.T, mask.T, shift.T, jnp.arange(z.shape[1])))
    return state, ll


def _count_distribution(log_mean, concentration, zero):
    import jax.numpy as jnp
    import numpyro.distributions as dist

    nb = dist.NegativeBinomial2(jnp.exp(log_mean), concentration)
    if zero is None:
        return nb
    return dist.ZeroInflatedDistribution(nb, gate=zero)


def explicit_filter_counts(y, mask, shift, params: Smoothing, u, center, concentration, zero, end=None) -> tuple[Any, Any]:
    """The score-driven count filter: states on the log-mean scale, innovation
    ``log1p(y) - log1p(mean)``; (zero-inflated) negative-binomial log-likelihood, and
    the state after ``end`` steps (default: all)."""
    import jax
    import jax.numpy as jnp

    state0 = u @ jnp.asarray(initial_map(params.period)).T

    def step(carry, inputs):
        state, kept, ll = carry
        yt, mt, st, t = inputs
        log_mean = jnp.clip(center + st + _prediction(state, params.phi), -20.0, 20.0)
        ll = ll + mt * _count_distribution(log_mean, concentration, zero).log_prob(yt)
        e = (jnp.log1p(yt) - jnp.log1p(jnp.exp(log_mean))) * mt
        state = _advance(state, e, params)
        return (state, _kept(t, end, state, kept), ll), None

    (_, state, ll), _ = jax.lax.scan(step, (state0, state0, jnp.zeros(y.shape[0])), (y.T, mask.T, shift.T, jnp.arange(y.shape[1])))
    return state, ll


def simulate_gaussian(state, params: Smoothing, shift, noise) -> Any:
    """Paths ``(series, horizon)`` on the standardised scale from a final state and noise."""
    import jax

    def step(state, inputs):
        st, e = inputs
        z = st + _prediction(state, params.phi) + e
        return _advance(state, e, params), z

    _, z = jax.lax.scan(step, state, (shift.T, noise.T))
    return z.T


def simulate_counts(key, state, params: Smoothing, shift, center, concentration, zero, horizon) -> Any:
    """Count paths ``(series, horizon)``: draw each step's count and feed it back."""
    import jax
    import jax.numpy as jnp

    keys = jax.random.split(key, horizon)

    def step(state, inputs):
        st, k = inputs
        log_mean = jnp.clip(center + st + _prediction(state, params.phi), -20.0, 20.0)
        y = _count_distribution(log_mean, concentration, zero).sample(k)
        e = jnp.log1p(y) - jnp.log1p(jnp.exp(log_mean))
        return _advance(state, e, params), y

    _, y = jax.lax.scan(step, state, (shift.T, keys))
    return y.T


@dataclass(frozen=True)
class Common:
    """The common levels and trends: one pair per level of each grouping column.

    ``index`` ``(series, columns)``: each series' row in the stacked common states,
    one per column; ``gain`` ``(common states, 2)``: how far each common level and
    trend moves per unit of its series' mean innovation; ``phi``: the common trends' damping.
    """

    index: Any
    gain: Any
    phi: Any


def _common_offset(common: Any, c: Common) -> Any:
    """Each series' share of the common states' prediction ``level + phi trend``, summed over its columns."""
    return (common[:, 0] + c.phi * common[:, 1])[c.index].sum(axis=1)


def _common_update(common: Any, e: Any, weight: Any, c: Common) -> Any:
    """The common states after the innovations ``e``: each level and trend moves by its
    gain times the ``weight``-ed mean innovation of its series (``weight`` 0: unobserved)."""
    import jax.numpy as jnp

    n = c.gain.shape[0]
    sums = jnp.zeros(n).at[c.index].add(jnp.broadcast_to((weight * e)[:, None], c.index.shape))
    weights = jnp.zeros(n).at[c.index].add(jnp.broadcast_to(weight[:, None], c.index.shape))
    mean = jnp.where(weights > 0, sums / jnp.where(weights > 0, weights, 1.0), 0.0)
    level = common[:, 0] + c.phi * common[:, 1]
    trend = c.phi * common[:, 1]
    return jnp.stack([level, trend], axis=1) + c.gain * mean[:, None]


def explicit_filter_common(z, mask, shift, params: Smoothing, u, sigma, df, common: Common, end=None) -> tuple[Any, Any, Any]:
    """The filter with common levels and trends, from a given initial state (the common
    states start at 0: the series' initial levels carry where each series starts).

    Each step predicts every series from its own state plus its groups' common states,
    takes the innovations, advances the series' states, then moves each common state by
    its gains times the precision-weighted mean innovation (weights ``1 / sigma^2``) of
    the observed series in its group. Normal (``df`` None) or Student-t log-likelihood
    per series; the series' states and the common states after ``end`` steps."""
    import jax
    import jax.numpy as jnp
    import numpyro.distributions as dist

    state0 = u @ jnp.asarray(initial_map(params.period)).T
    common0 = jnp.zeros(common.gain.shape)
    noise = dist.Normal(0.0, sigma) if df is None else dist.StudentT(df, 0.0, sigma)
    precision = sigma**-2

    def step(carry, inputs):
        state, shared, kept, kept_shared, ll = carry
        zt, mt, st, t = inputs
        e = (zt - st - _common_offset(shared, common) - _prediction(state, params.phi)) * mt
        ll = ll + mt * noise.log_prob(e)
        state = _advance(state, e, params)
        shared = _common_update(shared, e, mt * precision, common)
        return (state, shared, _kept(t, end, state, kept), _kept(t, end, shared, kept_shared), ll), None

    carry = (state0, common0, state0, common0, jnp.zeros(z.shape[0]))
    (_, _, state, shared, ll), _ = jax.lax.scan(step, carry, (z.T, mask.T, shift.T, jnp.arange(z.shape[1])), unroll=UNROLL)
    return state, shared, ll


def simulate_common(state, shared, params: Smoothing, shift, noise, sigma, common: Common) -> Any:
    """Paths ``(series, horizon)`` of the model with common states, from its final series
    and common states and each series' noise (every series observed, weights ``1 / sigma^2``)."""
    import jax

    precision = sigma**-2

    def step(carry, inputs):
        state, shared = carry
        st, e = inputs
        z = st + _common_offset(shared, common) + _prediction(state, params.phi) + e
        return (_advance(state, e, params), _common_update(shared, e, precision, common)), z

    _, z = jax.lax.scan(step, (state, shared), (shift.T, noise.T))
    return z.T
