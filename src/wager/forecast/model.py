"""The forecaster: one damped-trend seasonal state-space model over every series
of a panel, with its parameters partially pooled across the grouping hierarchy.

Each series follows additive Holt-Winters with a damped trend in innovations
form, ETS(A,Ad,A) (Hyndman et al. 2008, *Forecasting with Exponential
Smoothing*, ch. 2-3), on a transformed and standardised scale ``z``::

    prediction   mu_t = l[t-1] + phi b[t-1] + s[t-m] + x_t' coef
    innovation   e_t  = z_t - mu_t                     (0 where z_t is missing)
    level        l[t] = l[t-1] + phi b[t-1] + alpha e_t
    trend        b[t] = phi b[t-1] + beta e_t
    season       s[t] = s[t-m] + gamma e_t

With ``alpha in (0, 1)``, ``beta = alpha * sigmoid(.)``, ``gamma = (1 - alpha) *
sigmoid(.)`` and ``phi in (0.8, 0.98)`` (the usual admissible region).

Fourier seasonality (``Layout.harmonics = K > 0``). Seasonal states cost a
state of size ``2 + m``: fine for quarters and months, heavy for weeks
(``m = 52``), impossible for days in a year (``m = 365.25``, not even a whole
number). With Fourier terms the filter keeps level and trend only,
ETS(A,Ad,N), and the season is a fixed cycle of ``K`` harmonics of a period
``m`` that may be fractional (Hyndman & Athanasopoulos, FPP3 ch. 10.5 and 12.1)::

    prediction   mu_t = l[t-1] + phi b[t-1] + F_t' c + x_t' coef
    F_t          = (cos(2 pi k t / m), sin(2 pi k t / m))  for k = 1..K

with ``t`` the column of the panel's time axis (0 its first period, so the
forecast continues the cycle at ``end``, ``end + 1``, ...). The ``2K``
coefficients ``c`` of a series are its group mean, pooled like everything else
(``fourier_mean`` plus group effects), plus a series deviation of sd
``fourier_sd``.

Pooling. Every per-series quantity (the four smoothing parameters on the logit
scale, the log noise scale, the mean of the initial level and of the initial
seasonal pattern) is a global mean plus one effect per level of each grouping
column, ``mean + sum_g sd_g * z_g[level]`` (non-centred), so Region effects
shrink toward zero within the State and Purpose effects, and a series with
little data sits near what its place in the hierarchy implies. The effects on
the smoothing parameters and the noise scale sum to zero within each column
of two or more levels (``ZeroSumNormal``; each effect's prior variance is ``(levels - 1) / levels``
of ``sd_g^2``), so ``mean`` is the average over the levels and cannot trade off
against all the effects at once: with a few levels per column that trade-off
is a ridge NUTS diverges on (``benchmarks/forecast_geometry.py``). The effects
on the initial states' means stay independent Normals, which NUTS integrates
out (below).

Initial states. The innovations are affine in the initial state ``u`` (level,
trend, m - 1 free seasonal states; the last makes the pattern sum to zero), so
the filter carries ``x_t = a_t + A_t u``. With the Normal likelihood and a
Normal prior ``u ~ N(group mean, diag(sd^2))``, ``u`` is integrated out in
closed form from three sufficient statistics per series; NUTS never sees the
``(m + 1) x series`` initial states, and a series with no data is left with its
prior: the hierarchy's forecast with wider bands. With Fourier seasonality
``u = (level, trend, c)``: the coefficients enter each prediction through the
known ``F_t' c``, so the innovations stay affine in ``u`` and the same closed
form integrates the series' cycle out with its initial states. Student-t and
count likelihoods sample ``u`` (non-centred) instead.

Group effects of the initial states' means. Given the smoothing parameters the
Normal model is linear-Gaussian in the group effects of the initial level and
season (or cycle) too, so for NUTS, with the whole panel in each step and at
most ``MARGINAL_EFFECTS_MAX`` of them (``wager.forecast.problem``, which says
why not for SVI), they are integrated out as well (``Layout.marginal_effects``,
``marginal_effects``): the series' information about their prior means sums
into one Gaussian over the effects, and inference samples only their spreads.
Sampled, the effects and the series' spread ``level_sd`` form a funnel: on six
2 x 2-group panels of 16 quarters (``benchmarks/forecast_geometry.py``, 2 x 500
draws), NUTS at target acceptance 0.8 diverged 15-67 times per fit (smallest
bulk ESS 63); integrated out, 2-6 times (smallest bulk ESS 298), and at 0.95
once in six fits (sampled: 10 times in three). The forecast draws the effects
from their posterior first (recorded as the sampled form's ``*_z`` sites),
then each series' initial state given them.

Common levels (``Layout.common``). The pooling above shares the series'
parameters, not their movements: each series finds out on its own, one noisy
period at a time, that trips to every region of a state fell. With common
states, each level of each grouping column (each state, region and purpose)
carries a level ``c`` and a damped trend ``d`` that its series share, a vector
innovations model in the sense of Hyndman et al. (2008, ch. 17)::

    prediction   mu_it = (series' own, as above) + sum_g (c_gt + phi_c d_gt)   over i's groups g
    common       c_g,t+1 = c_gt + phi_c d_gt + kappa_g ebar_gt
                 d_g,t+1 = phi_c d_gt + kappa_g beta_g ebar_gt

where ``ebar_gt`` is the mean innovation of the observed series in group ``g``,
weighted by ``1 / sigma_i^2`` (the most precise estimate of a shared movement
from series of unequal noise), ``kappa_g`` and ``beta_g`` are one gain and one
trend share per grouping column, and the common states start at 0 (each
series' initial level carries where it starts). The innovations are still each
period's one-step errors, so the likelihood is one pass over the panel; but each
series' innovations now depend on every other series' initial states, so the
per-series closed form no longer applies and the initial states are sampled
(non-centred), as for Student-t. The forecast simulates every series' noise and
feeds the groups' mean back into their common states, so the paths of a group
move together. On tourism (304 series, three origins) the common states took
scaled CRPS from 0.1355 to 0.127 and MASE from 0.941 to 0.90
(``benchmarks/forecast.py``).

Counts. For the negative-binomial likelihood (optionally zero-inflated) the
states live on the log-mean scale and the innovation is ``log1p(y) -
log1p(mean)``, a score-driven (observation-driven) update: the likelihood is
still one deterministic pass over the data, and the forecast simulates counts
and feeds them back.

Forecasts. With ``horizon > 0`` the model also draws sample paths forward from
each posterior draw (run through ``numpyro.infer.Predictive``): the initial
state from its conditional posterior (Normal) or as sampled, the final state
from the filter, then ``horizon`` steps of the state equations with simulated
noise. Paths are returned on the data's scale (``paths``).

Padding. The time axis may run past the data: columns after ``end`` are
masked out (they change no likelihood) and the filters keep the state at
``end``, so panels of different lengths padded to one length share one
compiled program (rolling origins, leave-future-out refits). The
standardisation (``standard``: centre and scale) is data, not a constant, for
the same reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

from wager.forecast.filters import (
    Common,
    Smoothing,
    affine_filter,
    compiled,
    explicit_filter_common,
    explicit_filter_counts,
    explicit_filter_t,
    marginal_effects,
    marginal_normal,
    simulate_common,
    simulate_counts,
    simulate_gaussian,
    solve_upper,
)
from wager.kernel.priors import Prior

LIKELIHOODS = ("normal", "student_t", "negbin", "zinb")
PHI_LOW, PHI_HIGH = 0.8, 0.98


@dataclass(frozen=True)
class Layout:
    """What the model needs to know that is not an array: static, hashable.
    ``period``: the seasonal period, a whole number with seasonal states, any
    number > 2 with ``harmonics`` (Fourier terms; 0: seasonal states)."""

    period: float
    groups: tuple[str, ...]
    levels: tuple[int, ...]
    likelihood: str = "normal"
    transform: str = "log1p"  # log | log1p | identity (counts: identity)
    regressors: tuple[str, ...] = ()
    harmonics: int = 0
    marginal_effects: bool = False  # integrate the group effects of the initial states' means out (NUTS, Normal, whole panel)
    common: bool = False  # a common level and trend per level of each grouping column (whole panel, initial states sampled)

    @property
    def fourier(self) -> bool:
        return self.harmonics > 0

    @property
    def seasonal_states(self) -> int:
        """Seasonal states the filter carries: ``m``, or none with Fourier terms."""
        return 0 if self.fourier else int(self.period)

    @property
    def n_initial(self) -> int:
        """Free initial values: level, trend and m - 1 seasonal states, or with
        Fourier terms level, trend and the ``2K`` coefficients."""
        if self.fourier:
            return 2 + 2 * self.harmonics
        return 1 + 1 + (self.period - 1)

    @property
    def pooled_dims(self) -> tuple[int, ...]:
        """The initial values whose prior means are pooled by group: level and season (not trend)."""
        return (0, *range(2, self.n_initial))

    @property
    def n_effects(self) -> int:
        """Group effects of the initial states' means: one per level of each grouping column and pooled value."""
        return sum(self.levels) * len(self.pooled_dims)

    def seasonality(self) -> str:
        """The seasonal model in words, for the record."""
        if self.fourier:
            return f"{self.harmonics} Fourier harmonic{'s' if self.harmonics > 1 else ''} of period {self.period:g}"
        return f"{self.period:g} seasonal states"

    @property
    def counts(self) -> bool:
        return self.likelihood in ("negbin", "zinb")


STATES_MAX_PERIOD = 366
"""The longest period seasonal states carry (a state of size 2 + m per series)."""


def check_seasonality(harmonics: int, period: float) -> None:
    """``SpecError`` naming the field unless the seasonal model fits the period:
    seasonal states need a whole period of at most ``STATES_MAX_PERIOD``; Fourier
    terms need ``1 <= K <= period / 2`` (a harmonic above ``m / 2`` repeats a lower
    one at the sampled times, Nyquist)."""
    from wager.errors import SpecError

    if harmonics < 0:
        raise SpecError("seasonality.fourier", f"must be at least 1 harmonic; got {harmonics}")
    if harmonics == 0:
        if float(period) != int(period):
            raise SpecError("period", f"seasonal states need a whole number of periods; got {period:g} (a fractional period needs seasonality: {{fourier: K}})")
        if period > STATES_MAX_PERIOD:
            raise SpecError("period", f"seasonal states carry at most {STATES_MAX_PERIOD} periods; got {period:g} (use seasonality: {{fourier: K}})")
        return
    if harmonics > period / 2:
        raise SpecError("seasonality.fourier", f"at most period / 2 = {period / 2:g} harmonics for period {period:g}; got {harmonics}")


def fourier_terms(period: float, harmonics: int, n_time: int) -> np.ndarray:
    """``F`` ``(n_time, 2K)``: row ``t`` is ``(cos(2 pi k t / m), sin(2 pi k t / m))``
    for ``k = 1..K``, pairs side by side."""
    angle = 2 * np.pi * np.arange(n_time)[:, None] * np.arange(1, harmonics + 1)[None, :] / period
    return np.stack([np.cos(angle), np.sin(angle)], axis=2).reshape(n_time, 2 * harmonics)


def default_priors(layout: Layout) -> dict[str, Prior]:
    """The documented default priors, on the standardised transformed scale."""

    def p(family: str, why: str, **params: float) -> Prior:
        return Prior(family=family, params=params, why=why, source=SOURCE)

    level_loc = 0.0
    priors = {
        "level_mean": p("normal", "The panel is standardised, so the average initial level is within a few units of 0.", loc=level_loc, scale=2.0),
        "level_group_sd": p("half_normal", "Groups (regions, purposes) differ in size by up to a few panel standard deviations.", scale=1.0),
        "level_sd": p("half_normal", "Series differ from their groups' mean level by up to about one panel standard deviation.", scale=1.0),
        "trend_mean": p("normal", "Per-period growth is a small fraction of the panel's spread.", loc=0.0, scale=0.1),
        "trend_sd": p("half_normal", "Series' initial growth rates differ by a small fraction of the panel's spread.", scale=0.1),
        "season_mean": p("normal", "Seasonal swings are at most about one panel standard deviation.", loc=0.0, scale=1.0),
        "season_group_sd": p("half_normal", "Groups' seasonal patterns differ by a fraction of a panel standard deviation.", scale=0.5),
        "season_sd": p("half_normal", "Series' seasonal patterns differ from their groups' by a fraction of a panel standard deviation.", scale=0.5),
        "alpha_logit": p("normal", "Level smoothing centred near 0.2 (logit -1.5), the middle of values fitted to business series.", loc=-1.5, scale=1.0),
        "beta_logit": p("normal", "Trend smoothing a small share of alpha (logit -2: 12%); trends move slowly.", loc=-2.0, scale=1.0),
        "gamma_logit": p("normal", "Seasonal smoothing a small share of 1 - alpha (logit -2: 12%); patterns move slowly.", loc=-2.0, scale=1.0),
        "phi_logit": p("normal", "Damping spread across (0.8, 0.98), the range Hyndman et al. recommend.", loc=0.0, scale=1.5),
        "smoothing_group_sd": p("half_normal", "Groups' smoothing parameters differ by up to about one unit on the logit scale.", scale=0.5),
        "sigma_log_mean": p("normal", "One-step noise around a third of the panel's spread (log 0.3), within a factor of e either way.", loc=float(np.log(0.3)), scale=1.0),
        "sigma_group_sd": p("half_normal", "Groups' noise levels differ by up to a factor of about e.", scale=0.5),
        "sigma_series_sd": p("half_normal", "Series' noise levels differ from their groups' by up to a factor of about e.", scale=0.5),
    }
    if layout.fourier:
        # a cycle of K harmonics with coefficients of sd tau swings with sd sqrt(K) tau
        # over a period (each harmonic's variance is (a^2 + b^2) / 2): tau = 1/sqrt(K)
        # keeps the whole cycle's swing near one panel sd, whatever K
        tau = 1.0 / float(np.sqrt(layout.harmonics))
        for name in ("season_mean", "season_group_sd", "season_sd", "gamma_logit"):
            del priors[name]
        priors["fourier_mean"] = p("normal", "Fourier coefficients of the panel's cycle with sd 1/sqrt(K): the cycle swings by about one panel standard deviation, whatever K.", loc=0.0, scale=tau)
        priors["fourier_group_sd"] = p("half_normal", "Groups' cycles differ by about half a panel standard deviation (coefficient sd 0.5/sqrt(K)).", scale=0.5 * tau)
        priors["fourier_sd"] = p("half_normal", "Series' cycles differ from their groups' by about half a panel standard deviation (coefficient sd 0.5/sqrt(K)).", scale=0.5 * tau)
    if layout.regressors:
        priors["coef"] = p("normal", "A regressor moves the standardised series by at most about one unit per unit.", loc=0.0, scale=1.0)
    if layout.common:
        priors["common_alpha_logit"] = p("normal", "A group's common level moves by about a fifth of its series' mean innovation (logit -1.5), anywhere from 1% to 80% plausible.", loc=-1.5, scale=1.5)
        priors["common_beta_logit"] = p("normal", "A group's common trend moves by a small share of its level's gain (logit -2: 12%); shared growth changes slowly.", loc=-2.0, scale=1.0)
        priors["common_phi_logit"] = p("normal", "Damping of the common trends spread across (0.8, 0.98), as for the series' own.", loc=0.0, scale=1.5)
    if layout.likelihood == "student_t":
        priors["df"] = p("gamma", "Gamma(2, 0.1) on the degrees of freedom: heavy tails possible, Normal-like allowed (Juarez & Steel 2010).", shape=2.0, rate=0.1)
    if layout.counts:
        priors["level_mean"] = p("normal", "Log mean count: centred on the panel's log mean, within a factor of e^2.", loc=0.0, scale=2.0)
        priors["concentration"] = p("gamma", "Negative-binomial concentration: overdispersion from strong (1) to nearly Poisson (50).", shape=2.0, rate=0.1)
    if layout.likelihood == "zinb":
        priors["zero_inflation"] = p("beta", "Share of structural zeros, most likely small: Beta(1, 4), mean 0.2.", alpha=1.0, beta=4.0)
    return priors


SOURCE = "wager.forecast defaults; Hyndman & Athanasopoulos, Forecasting: Principles and Practice (3rd ed.), ch. 8"


# --- the model -----------------------------------------------------------------


def forecast_model(
    z: Any,
    mask: Any,
    groups: Any,
    x: Any = None,
    standard: Any = (0.0, 1.0),
    end: Any = None,
    *,
    layout: Layout,
    priors: Mapping[str, Prior],
    horizon: int = 0,
    batch: int | None = None,
) -> None:
    """The panel model. ``z``, ``mask``: ``(series, time)``, missing values as 0
    with ``mask`` 0; ``groups``: ``(series, grouping columns)`` level indices;
    ``x``: ``(series, time + horizon, regressors)`` or ``None``, the future's
    values from column ``end``; ``standard``: the centre and scale that map ``z``
    back to the transformed data (counts: the log mean count, 1); ``end``: the
    periods observed, the columns after it padding (default: all); ``batch``:
    series per SVI step (mini-batching), ``None`` for all."""
    import jax.numpy as jnp
    import numpyro
    import numpyro.distributions as dist

    n_series, n_time = z.shape
    end = n_time if end is None else end
    standard = jnp.asarray(standard)

    def prior(name: str, shape: tuple[int, ...] = ()) -> Any:
        d = priors[name].to_numpyro()
        return numpyro.sample(name, d.expand(shape) if shape else d)

    def group_sds(name: str, sd_name: str) -> list[Any]:
        """``sd_g``, the spread of ``name``'s effects within each grouping column."""
        return [numpyro.sample(f"{name}_{column}_sd", priors[sd_name].to_numpyro()) for column in layout.groups]

    def pooled(name: str, mean: Any, sd_name: str, extra_shape: tuple[int, ...] = (), series_sd: str | None = None, zero_sum: bool = False) -> Any:
        """``mean + sum_g sd_g * z_g[level of series] (+ sd * z_series)``, shape ``(series, *extra_shape)``;
        with ``zero_sum`` each ``z_g`` of two or more levels sums to zero over them."""
        total = jnp.broadcast_to(mean, (n_series, *extra_shape))
        for g, (column, n_levels, sd) in enumerate(zip(layout.groups, layout.levels, group_sds(name, sd_name))):
            # one level: a zero-sum effect would be a constant 0, which R-hat cannot rate
            unit = dist.ZeroSumNormal(1.0, (n_levels, *extra_shape)) if zero_sum and n_levels > 1 else dist.Normal(0.0, 1.0).expand((n_levels, *extra_shape))
            effect = numpyro.sample(f"{name}_{column}_z", unit)
            total = total + sd * effect[groups[:, g]]
        if series_sd is not None:
            sd = numpyro.sample(f"{name}_series_sd", priors[series_sd].to_numpyro())
            effect = numpyro.sample(f"{name}_series_z", dist.Normal(0.0, 1.0).expand((n_series, *extra_shape)))
            total = total + sd * effect
        return total

    logit = {
        name: pooled(name, prior(f"{name}_logit"), "smoothing_group_sd", zero_sum=True)
        for name in ("alpha", "beta", "phi") + (() if layout.fourier else ("gamma",))
    }
    alpha = _sigmoid(logit["alpha"])
    beta = alpha * _sigmoid(logit["beta"])
    gamma = jnp.zeros(n_series) if layout.fourier else (1.0 - alpha) * _sigmoid(logit["gamma"])  # no seasonal state to smooth
    phi = PHI_LOW + (PHI_HIGH - PHI_LOW) * _sigmoid(logit["phi"])
    log_sigma = pooled("sigma", prior("sigma_log_mean"), "sigma_group_sd", zero_sum=True)
    sigma_series_sd = prior("sigma_series_sd")

    # the initial state's prior: mean from the hierarchy, series deviation sd
    season = "fourier" if layout.fourier else "season"  # u = (level, trend, c): the cycle's coefficients join the initial states
    n_season = int(layout.n_initial) - 2
    effects = None
    if layout.marginal_effects:  # the group effects are integrated out: only their spreads are sampled
        level0 = jnp.broadcast_to(prior("level_mean"), (n_series,))
        level_sds = group_sds("level", "level_group_sd")
        trend0 = jnp.broadcast_to(prior("trend_mean"), (n_series,))
        season0 = jnp.broadcast_to(prior(f"{season}_mean", (n_season,)), (n_series, n_season))
        season_sds = group_sds(season, f"{season}_group_sd")
        scale = jnp.concatenate([
            jnp.broadcast_to(jnp.concatenate([level_sd[None], jnp.broadcast_to(season_sd, (n_season,))]), (n_levels, n_season + 1))
            for n_levels, level_sd, season_sd in zip(layout.levels, level_sds, season_sds)
        ])
        effects = (jnp.asarray(groups) + jnp.asarray(np.cumsum((0, *layout.levels[:-1]))), scale)
    else:
        level0 = pooled("level", prior("level_mean"), "level_group_sd")
        trend0 = jnp.broadcast_to(prior("trend_mean"), (n_series,))
        season0 = pooled(season, prior(f"{season}_mean", (n_season,)), f"{season}_group_sd", (n_season,))
    init_mean = jnp.concatenate([level0[:, None], trend0[:, None], season0], axis=1)
    init_sd = jnp.concatenate(
        [prior("level_sd")[None], prior("trend_sd")[None], jnp.broadcast_to(prior(f"{season}_sd"), (n_season,))]
    )

    shift = jnp.zeros((n_series, n_time + horizon))
    if layout.regressors:
        coef = prior("coef", (len(layout.regressors),))
        shift = shift + x[:, : n_time + horizon] @ coef
    extra = None if layout.likelihood != "student_t" else prior("df")
    if layout.counts:
        extra = (prior("concentration"), prior("zero_inflation") if layout.likelihood == "zinb" else None)

    # The per-series latents: each series' noise deviation and (unless the
    # Normal likelihood integrates them out) its initial states, non-centred.
    unit = dist.Normal(0.0, 1.0)
    with numpyro.plate("series", n_series):
        sigma = jnp.exp(log_sigma + sigma_series_sd * numpyro.sample("sigma_series_z", unit))
        init_z = None if layout.likelihood == "normal" and not layout.common else numpyro.sample("init_z", unit.expand((layout.n_initial,)).to_event(1))

    params = Smoothing(alpha, beta, gamma, phi, layout.seasonal_states)
    if horizon > 0:  # forecast mode (Predictive): the per-series parameters, for reports and checks
        for name, v in (("alpha", alpha), ("beta", beta), ("gamma", gamma), ("phi", phi), ("sigma", sigma)):
            numpyro.deterministic(name, v)
    z, mask = jnp.asarray(z), jnp.asarray(mask)
    if layout.common:  # the common states tie every series together: one filter over the whole panel
        common = _common_states(groups, layout, priors)
        _common_likelihood(z, mask, shift, params, sigma, (init_mean, init_sd, init_z), extra, common, layout, horizon, standard, end)
        return
    if effects is not None:  # the effects tie every series together: one likelihood of the whole panel
        _panel_likelihood(z, mask, shift, params, sigma, (init_mean, init_sd), effects, layout, horizon, standard, end)
        return

    # The likelihood per series; with ``batch`` (SVI only) a random subset of
    # series per step, scaled up by series / batch. Latents stay outside this
    # plate, so the variational guide is the same whole or mini-batched.
    subsample = batch if horizon == 0 else None
    with numpyro.plate("series_data", n_series, subsample_size=subsample) as idx:
        params = Smoothing(alpha[idx], beta[idx], gamma[idx], phi[idx], layout.seasonal_states)
        init = (init_mean[idx], init_sd, None if init_z is None else init_z[idx])
        _series_likelihood(z[idx], mask[idx], shift[idx], params, sigma[idx], init, extra, layout, horizon, standard, end)


def _series_likelihood(z, mask, shift, params, sigma, init, extra, layout: Layout, horizon: int, standard, end) -> None:
    """The likelihood (and, with ``horizon > 0``, the forecast paths) of the series in the plate.
    ``init``: the initial states' prior mean and sd, and their standardised values (``None``
    where the Normal likelihood integrates them out). With Fourier seasonality the last
    ``2K`` initial values are the cycle's coefficients ``c``: the Normal likelihood
    integrates them with the states (``F_t`` a known input of the affine filter); the
    others add ``F_t' c`` to ``shift``. Either way the forecast's ``F_t`` are the columns
    from ``end`` on, the periods after the data."""
    import jax
    import jax.numpy as jnp
    import numpyro
    import numpyro.distributions as dist

    n_series, n_time = z.shape
    n_init = layout.n_initial
    init_mean, init_sd, init_z = init
    init_var = jnp.broadcast_to(init_sd**2, (n_series, n_init))
    terms = jnp.asarray(fourier_terms(layout.period, layout.harmonics, shift.shape[1])) if layout.fourier else None

    def window(v: Any) -> Any:
        return jax.lax.dynamic_slice_in_dim(v, end, horizon, axis=v.ndim - 1)

    if layout.likelihood == "normal":
        a, A, stats = compiled(affine_filter)(z, mask, shift[:, :n_time], params, end, None if terms is None else terms[:n_time])
        loglik, post_mean, post_chol = compiled(marginal_normal)(stats, init_mean, init_var, sigma)
        numpyro.factor("loglik", loglik)
        if horizon > 0:
            _gaussian_paths((a, A), (post_mean, post_chol), shift, terms, params, sigma, layout, horizon, standard, end)
        return

    u, shift = _sampled_initial(init_mean + jnp.sqrt(init_var) * init_z, shift, terms)
    past = shift[:, :n_time]
    future = window(shift) if horizon > 0 else None
    if layout.likelihood == "student_t":
        df = extra
        state, loglik = compiled(explicit_filter_t)(z, mask, past, params, u, sigma, df, end)
        numpyro.factor("loglik", loglik)
        if horizon > 0:
            noise = numpyro.sample("future_noise", dist.StudentT(df).expand((horizon,)).to_event(1))
            paths = compiled(simulate_gaussian)(state, params, future, sigma[:, None] * noise)
            numpyro.deterministic("paths", back_transform(paths, layout, standard))
        return

    concentration, zero = extra
    state, loglik = compiled(explicit_filter_counts)(z, mask, past, params, u, standard[0], concentration, zero, end)
    numpyro.factor("loglik", loglik)
    if horizon > 0:
        key = numpyro.prng_key()
        paths = compiled(simulate_counts, "horizon")(key, state, params, future, standard[0], concentration, zero, horizon)
        numpyro.deterministic("paths", paths)


def _sampled_initial(u, shift, terms) -> tuple[Any, Any]:
    """Sampled initial values ``u``: with Fourier ``terms`` their last ``2K`` are the
    cycle's coefficients, a known shift of each series' predictions, so they move
    into ``shift`` and the filter's initial states are the rest."""
    if terms is None:
        return u, shift
    n_states = u.shape[1] - terms.shape[1]
    return u[:, :n_states], shift + u[:, n_states:] @ terms.T


def _common_states(groups, layout: Layout, priors: Mapping[str, Prior]) -> Common:
    """The common states' gains, one level gain and trend share per grouping column, and their damping."""
    import jax.numpy as jnp
    import numpyro

    def gain(name: str, column: str) -> Any:
        return _sigmoid(numpyro.sample(f"common_{name}_{column}_logit", priors[f"common_{name}_logit"].to_numpyro()))

    gains = []
    for column, n_levels in zip(layout.groups, layout.levels):
        alpha = gain("alpha", column)
        gains.append(jnp.broadcast_to(jnp.stack([alpha, alpha * gain("beta", column)]), (n_levels, 2)))
    phi = PHI_LOW + (PHI_HIGH - PHI_LOW) * _sigmoid(numpyro.sample("common_phi_logit", priors["common_phi_logit"].to_numpyro()))
    index = jnp.asarray(groups) + jnp.asarray(np.cumsum((0, *layout.levels[:-1])))
    return Common(index, jnp.concatenate(gains), phi)


def _common_likelihood(z, mask, shift, params, sigma, init, extra, common: Common, layout: Layout, horizon: int, standard, end) -> None:
    """The likelihood (and, with ``horizon > 0``, the forecast paths) of the panel with
    common states: one filter over every series, whose initial states are sampled
    (the common states couple their innovations, so the per-series closed form does
    not apply). With Fourier seasonality the sampled cycle is a known shift, as for Student-t."""
    import jax
    import jax.numpy as jnp
    import numpyro
    import numpyro.distributions as dist

    n_series, n_time = z.shape
    init_mean, init_sd, init_z = init
    terms = jnp.asarray(fourier_terms(layout.period, layout.harmonics, shift.shape[1])) if layout.fourier else None
    u, shift = _sampled_initial(init_mean + init_sd * init_z, shift, terms)
    df = extra if layout.likelihood == "student_t" else None
    state, shared, loglik = compiled(explicit_filter_common)(z, mask, shift[:, :n_time], params, u, sigma, df, common, end)
    numpyro.factor("loglik", loglik.sum())
    if horizon == 0:
        return
    unit = dist.Normal(0.0, 1.0) if df is None else dist.StudentT(df)
    with numpyro.plate("series_data", n_series):
        noise = numpyro.sample("future_noise", unit.expand((horizon,)).to_event(1))
    future = jax.lax.dynamic_slice_in_dim(shift, end, horizon, axis=1)
    paths = compiled(simulate_common)(state, shared, params, future, sigma[:, None] * noise, sigma, common)
    numpyro.deterministic("paths", back_transform(paths, layout, standard))


def _panel_likelihood(z, mask, shift, params, sigma, init, effects, layout: Layout, horizon: int, standard, end) -> None:
    """The Normal likelihood of the whole panel with the initial states and the group
    effects of their means integrated out (``marginal_effects``), and with ``horizon > 0``
    the forecast: the effects drawn from their posterior (recorded, standardised, as
    ``level_<column>_z`` and ``season_<column>_z`` or ``fourier_<column>_z``, the sites
    the sampled form has), then each series' initial state given them, as the per-series form does.
    ``effects``: each series' row of the stacked effects per grouping column, and their sds
    ``(levels, pooled values)``."""
    import jax
    import jax.numpy as jnp
    import numpyro
    import numpyro.distributions as dist

    n_series, n_time = z.shape
    init_mean, init_sd = init
    init_var = jnp.broadcast_to(init_sd**2, (n_series, layout.n_initial))
    terms = jnp.asarray(fourier_terms(layout.period, layout.harmonics, shift.shape[1])) if layout.fourier else None
    a, A, stats = compiled(affine_filter)(z, mask, shift[:, :n_time], params, end, None if terms is None else terms[:n_time])
    index, scale = effects
    loglik, omega, upper = compiled(marginal_effects, "dims")(stats, init_mean, init_var, sigma, index, scale, layout.pooled_dims)
    numpyro.factor("loglik", loglik)
    if horizon == 0:
        return
    eps = numpyro.sample("effects_noise", dist.Normal(0.0, 1.0).expand(omega.shape).to_event(1))
    omega = (omega + jax.scipy.linalg.solve_triangular(upper, eps, lower=False)).reshape(scale.shape)
    season = "fourier" if layout.fourier else "season"
    start = 0
    for column, n_levels in zip(layout.groups, layout.levels):
        numpyro.deterministic(f"level_{column}_z", omega[start : start + n_levels, 0])
        numpyro.deterministic(f"{season}_{column}_z", omega[start : start + n_levels, 1:])
        start += n_levels
    effect = scale * omega
    init_mean = init_mean.at[:, jnp.asarray(layout.pooled_dims)].add(sum(effect[index[:, g]] for g in range(index.shape[1])))
    _, post_mean, post_chol = compiled(marginal_normal)(stats, init_mean, init_var, sigma)
    with numpyro.plate("series_data", n_series):  # given the effects, the series' states and noise are independent
        _gaussian_paths((a, A), (post_mean, post_chol), shift, terms, params, sigma, layout, horizon, standard, end)


def _gaussian_paths(affine, posterior, shift, terms, params, sigma, layout: Layout, horizon: int, standard, end) -> None:
    """Forecast paths (site ``paths``, on the data's scale) from the affine filter's
    final state ``a + A u``, with ``u`` drawn from its conditional posterior (mean,
    upper Cholesky factor of its precision) and ``horizon`` steps of Normal noise;
    inside the plate of series, which makes the draws per series."""
    import jax
    import jax.numpy as jnp
    import numpyro
    import numpyro.distributions as dist

    (a, A), (post_mean, post_chol) = affine, posterior
    unit = dist.Normal(0.0, 1.0)

    def window(v: Any) -> Any:
        return jax.lax.dynamic_slice_in_dim(v, end, horizon, axis=v.ndim - 1)

    eps = numpyro.sample("init_noise", unit.expand((layout.n_initial,)).to_event(1))
    u = post_mean + solve_upper(post_chol, eps)
    state = a + jnp.einsum("nkp,np->nk", A, u)
    future = window(shift)
    if terms is not None:  # the cycle's coefficients are the last 2K initial values
        future = future + u[:, layout.n_initial - terms.shape[1] :] @ window(terms.T)
    noise = numpyro.sample("future_noise", unit.expand((horizon,)).to_event(1))
    paths = compiled(simulate_gaussian)(state, params, future, sigma[:, None] * noise)
    numpyro.deterministic("paths", back_transform(paths, layout, standard))


def _sigmoid(v: Any) -> Any:
    import jax

    return jax.nn.sigmoid(v)


def back_transform(z: Any, layout: Layout, standard: Any) -> Any:
    """Standardised transformed values back to the data's scale (``standard``: centre, scale)."""
    import jax.numpy as jnp

    v = z * standard[1] + standard[0]
    if layout.transform == "log":
        return jnp.exp(v)
    if layout.transform == "log1p":
        return jnp.maximum(jnp.expm1(v), 0.0)
    return v
