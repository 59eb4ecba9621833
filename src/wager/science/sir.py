"""An epidemic in a closed population: the SIR model as an ODE, fitted to daily counts.

The model, for a population of ``N`` with ``I_0`` infectious at day 0::

    dS/dt = -beta S I / N
    dI/dt =  beta S I / N - gamma I
    dR/dt =  gamma I                         S(0) = N - I_0, I(0) = I_0, R(0) = 0

    y_t ~ NB2(mean = I(t), concentration phi)          Var = I(t) + I(t)^2 / phi

``y_t`` is the number of people counted ill on day ``t`` (the boarding school's
pupils confined to bed), read as the infectious compartment; ``phi = 1 /
phi_inv``. ``beta`` is the transmission rate (per day), ``gamma`` the recovery
rate (per day); the basic reproduction number is ``R0 = beta / gamma`` and the
mean time ill is ``1 / gamma`` days (``recovery_time``). Both are recorded per draw.

The ODE is solved by diffrax (``Tsit5``, a PID step-size controller, ``rtol`` and
``atol`` of 1e-6 people) at the observation days and at every whole day up to the
``horizon``, so one solve gives the likelihood and the fitted curve. Reverse-mode
gradients for NUTS pass through the solver (``RecursiveCheckpointAdjoint``). A
solve that fails (parameters far in the tails during warmup, where the step count
runs out) contributes ``-inf``: NUTS rejects it as a divergence instead of
stopping the run.

Priors (``default_priors``) follow the boarding-school case study of Grinsztajn
et al. (2021), moved to log-normals so each parameter is positive without
truncation. ``beta`` and ``gamma`` are sampled non-centred (``beta_z``,
``gamma_z``; see ``_positive``), so every chain starts where the outbreak takes off.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from importlib import resources
from typing import Any, Mapping

import numpy as np

from wager.errors import SpecError
from wager.kernel.inference import Model
from wager.kernel.priors import Prior
from wager.tables import finite_numbers, row_at

SOURCE = (
    "Grinsztajn, Semenova, Margossian & Riou (2021), Bayesian workflow for disease transmission modeling in Stan, "
    "Statistics in Medicine 40(27); Keeling & Rohani (2008), Modeling Infectious Diseases in Humans and Animals, ch. 2"
)
RTOL = 1e-6
ATOL = 1e-6
"""Tolerances of the adaptive solver, relative and in people."""
MAX_STEPS = 1024
"""Solver steps before a solve counts as failed (``-inf`` log density)."""
PARAMETERS = ("beta", "gamma", "phi_inv")
BOARDING_SCHOOL_POPULATION = 763
BOARDING_SCHOOL_FILE = "influenza_england_1978_school.csv"


# --- the data ------------------------------------------------------------------------


@dataclass(frozen=True)
class Outbreak:
    """Daily counts of one outbreak, validated (``check_outbreak`` builds one).

    ``days`` ``(T,)``: increasing times of the counts, in days after day 0 (> 0);
    ``counts`` ``(T,)``: people counted ill on each day (whole numbers >= 0);
    ``population``: people at risk; ``initial_infected``: infectious at day 0.
    """

    days: np.ndarray
    counts: np.ndarray
    population: float
    initial_infected: float = 1.0
    label: str = "outbreak"


def check_outbreak(days: Any, counts: Any, population: float, initial_infected: float = 1.0, label: str = "outbreak") -> Outbreak:
    """The counts of an outbreak, checked. ``SpecError`` names the field: ``counts``
    (whole numbers >= 0, finite, no more than the population), ``days`` (finite,
    > 0, strictly increasing, one per count), ``population`` (a finite number > 0),
    ``initial_infected`` (> 0 and below the population)."""
    n = finite_numbers(counts, "counts")
    if n.size == 0:
        raise SpecError("counts", "needs at least one daily count")
    t = finite_numbers(days, "days")
    if t.size != n.size:
        raise SpecError("days", f"needs one day per count ({n.size} counts), got {t.size}")
    if np.any((n < 0) | (n != np.round(n))):
        bad = int(np.argmax((n < 0) | (n != np.round(n))))
        raise SpecError("counts", f"must be whole numbers >= 0 (people counted): {row_at(bad)} has {n[bad]:g}")
    if np.any(t <= 0):
        raise SpecError("days", f"must be > 0 (days after the outbreak's day 0): {row_at(np.argmax(t <= 0))} has {t[int(np.argmax(t <= 0))]:g}")
    if np.any(np.diff(t) <= 0):
        raise SpecError("days", f"must be strictly increasing: {row_at(np.argmax(np.diff(t) <= 0) + 1)} is not after the row before it")
    try:
        N = float(population)
    except (TypeError, ValueError):
        raise SpecError("population", f"must be a number; got {population!r}") from None
    if not (np.isfinite(N) and N > 0):
        raise SpecError("population", f"must be a finite number > 0 (people at risk); got {population!r}")
    i0 = float(initial_infected)
    if not (np.isfinite(i0) and 0 < i0 < N):
        raise SpecError("initial_infected", f"must be > 0 and below the population ({N:g}); got {initial_infected!r}")
    if np.any(n > N):
        bad = int(np.argmax(n > N))
        raise SpecError("counts", f"cannot exceed the population ({N:g}): {row_at(bad)} has {n[bad]:g}")
    return Outbreak(days=t, counts=np.round(n).astype(np.int64), population=N, initial_infected=i0, label=label)


def boarding_school() -> Outbreak:
    """Influenza in an English boarding school, 1978 (BMJ, 4 March 1978): 763 pupils, one
    index case at day 0, the pupils confined to bed on days 1-14 (22 January to 4 February).
    Shipped with wager (``wager/science/data``, its README gives the source)."""
    import pandas as pd

    with resources.files("wager.science").joinpath("data").joinpath(BOARDING_SCHOOL_FILE).open("r") as handle:
        table = pd.read_csv(handle)
    return check_outbreak(table["day"], table["in_bed"], BOARDING_SCHOOL_POPULATION, 1.0, label="boarding school influenza, 1978")


# --- the ODE -------------------------------------------------------------------------------


def solve_sir(beta: Any, gamma: Any, population: Any, initial_infected: Any, ts: Any, max_steps: int = MAX_STEPS) -> tuple[Any, Any]:
    """``(S, I, R)`` at the times ``ts`` ``(K,)`` (increasing, > 0): shape ``(K, 3)``, and
    whether the solve succeeded (a JAX boolean). diffrax ``Tsit5`` from day 0 with a PID
    controller (``RTOL``, ``ATOL``); differentiable in ``beta`` and ``gamma``. A failed
    solve returns ones in place of the states, so gradients stay finite.

    The solve is one jitted function: called outside a trace (NumPyro's search for a
    starting point, plain use) it runs compiled rather than op by op, which for diffrax's
    loop is the difference between milliseconds and seconds."""
    import jax

    global _JITTED
    if _JITTED is None:
        _JITTED = jax.jit(_solve, static_argnames="max_steps")
    return _JITTED(beta, gamma, population, initial_infected, ts, max_steps=max_steps)


_JITTED: Any = None


def _solve(beta: Any, gamma: Any, population: Any, initial_infected: Any, ts: Any, max_steps: int) -> tuple[Any, Any]:
    import diffrax
    import jax.numpy as jnp

    def vector_field(t: Any, y: Any, args: Any) -> Any:
        b, g, n = args
        infection = b * y[0] * y[1] / n
        recovery = g * y[1]
        return jnp.stack([-infection, infection - recovery, recovery])

    ts = jnp.asarray(ts, dtype=float)
    y0 = jnp.stack([population - initial_infected, jnp.asarray(initial_infected, dtype=float), jnp.zeros(())])
    solution = diffrax.diffeqsolve(
        diffrax.ODETerm(vector_field),
        diffrax.Tsit5(),
        t0=0.0,
        t1=ts[-1],
        dt0=0.1,
        y0=y0,
        args=(beta, gamma, population),
        saveat=diffrax.SaveAt(ts=ts),
        stepsize_controller=diffrax.PIDController(rtol=RTOL, atol=ATOL),
        max_steps=max_steps,
        throw=False,
    )
    ok = solution.result == diffrax.RESULTS.successful
    return jnp.where(ok, solution.ys, 1.0), ok


def curve_times(outbreak: Outbreak, horizon: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The times one solve saves at: the observation days and every whole day ``1..horizon``,
    merged and sorted ``(K,)``; where the observations sit in it ``(T,)``; where the daily
    curve sits ``(horizon,)``."""
    grid = np.arange(1, horizon + 1, dtype=float)
    times = np.unique(np.concatenate([outbreak.days, grid]))
    return times, np.searchsorted(times, outbreak.days), np.searchsorted(times, grid)


# --- priors and the model --------------------------------------------------------------


def default_priors() -> dict[str, Prior]:
    """Documented defaults for a respiratory infection in a closed community."""

    def p(family: str, why: str, **params: float) -> Prior:
        return Prior(family=family, params=params, why=why, source=SOURCE)

    return {
        "beta": p(
            "lognormal",
            "Transmission rate per day: influenza in close contact runs 1-3 a day; median 2, 95% between 0.75 and 5.3 "
            "(the case study's Normal(2, 1), kept positive).",
            loc=float(np.log(2.0)), scale=0.5,
        ),
        "gamma": p(
            "lognormal",
            "Recovery rate per day, 1 / days ill: influenza keeps people ill 1-7 days; median 0.4 (2.5 days), 95% between "
            "0.15 and 1.07 a day (about 0.9 to 6.7 days ill).",
            loc=float(np.log(0.4)), scale=0.5,
        ),
        "phi_inv": p(
            "exponential",
            "Overdispersion of the daily counts beyond Poisson (1 / NB concentration): mean 0.2, so most mass near Poisson "
            "and counts twice as variable still plausible; the case study's choice.",
            rate=5.0,
        ),
    }


def sir_model(
    counts: Any,
    times: Any,
    observed_at: Any,
    curve_at: Any,
    population: Any,
    initial_infected: Any,
    *,
    priors: Mapping[str, Prior],
    max_steps: int = MAX_STEPS,
) -> None:
    """SIR dynamics with negative-binomial daily counts.

    ``counts`` ``(T,)`` (or ``None`` to simulate); ``times`` ``(K,)``: where one solve
    saves (``curve_times``); ``observed_at`` ``(T,)`` and ``curve_at`` ``(H,)``: indices
    into ``times`` of the counts' days and of days ``1..H``. Records ``R0``,
    ``recovery_time`` (days) and ``infected`` ``(H,)``: ``I(t)`` on days ``1..H``.
    """
    import jax.numpy as jnp
    import numpyro
    import numpyro.distributions as dist

    beta = _positive("beta", priors["beta"])
    gamma = _positive("gamma", priors["gamma"])
    phi_inv = numpyro.sample("phi_inv", priors["phi_inv"].to_numpyro())
    numpyro.deterministic("R0", beta / gamma)
    numpyro.deterministic("recovery_time", 1.0 / gamma)
    states, ok = solve_sir(beta, gamma, population, initial_infected, times, max_steps)
    numpyro.factor("solved", jnp.where(ok, 0.0, -jnp.inf))
    infectious = jnp.clip(states[:, 1], 1e-6, None)  # the solver may undershoot 0 by its tolerance
    numpyro.deterministic("infected", infectious[curve_at])
    numpyro.sample("counts", dist.NegativeBinomial2(infectious[observed_at], 1.0 / phi_inv), obs=counts)


def _positive(name: str, prior: Prior) -> Any:
    """A rate with a log-normal prior sampled non-centred, ``exp(loc + scale z)`` with
    ``z ~ N(0, 1)`` (site ``{name}_z``; the rate itself recorded as ``name``): NUTS then
    starts within two prior sds of the prior's median, where the outbreak takes off,
    not at ``exp(+-2)``, where ``beta << gamma`` and a flat likelihood can hold a chain.
    Other families are sampled as they are."""
    import jax.numpy as jnp
    import numpyro
    import numpyro.distributions as dist

    if prior.family != "lognormal":
        return numpyro.sample(name, prior.to_numpyro())
    z = numpyro.sample(f"{name}_z", dist.Normal(0.0, 1.0))
    return numpyro.deterministic(name, jnp.exp(prior["loc"] + prior["scale"] * z))


def model_data(outbreak: Outbreak, horizon: int) -> dict[str, Any]:
    """The keyword data of ``sir_model`` for ``outbreak`` and a curve of ``horizon`` days."""
    times, observed_at, curve_at = curve_times(outbreak, horizon)
    return {
        "counts": outbreak.counts,
        "times": times,
        "observed_at": observed_at.astype(np.int64),
        "curve_at": curve_at.astype(np.int64),
        "population": np.asarray(outbreak.population, dtype=float),
        "initial_infected": np.asarray(outbreak.initial_infected, dtype=float),
    }


def log_likelihood(outbreak: Outbreak, draws: Mapping[str, Any], horizon: int) -> np.ndarray:
    """The counts' log-likelihood at each draw ``(...)``, from the recorded ``infected``
    curve where the counts fall on whole days, else by solving again."""
    from scipy import stats

    phi = 1.0 / np.asarray(draws["phi_inv"], dtype=float)
    days = outbreak.days
    if np.all(days == np.round(days)) and days[-1] <= horizon and "infected" in draws:
        mean = np.asarray(draws["infected"], dtype=float)[..., np.round(days).astype(int) - 1]
    else:
        mean = _solve_draws(outbreak, draws, days)
    phi_ = phi[..., None]
    return stats.nbinom.logpmf(outbreak.counts, phi_, phi_ / (phi_ + mean)).sum(axis=-1)


def _solve_draws(outbreak: Outbreak, draws: Mapping[str, Any], ts: np.ndarray) -> np.ndarray:
    import jax

    from wager.kernel.nuts import configure_jax

    configure_jax()
    beta = np.asarray(draws["beta"], dtype=float)
    gamma = np.asarray(draws["gamma"], dtype=float)
    solve = jax.jit(jax.vmap(lambda b, g: solve_sir(b, g, outbreak.population, outbreak.initial_infected, ts)[0][:, 1]))
    return np.clip(np.asarray(solve(beta.ravel(), gamma.ravel())), 1e-6, None).reshape(beta.shape + (ts.size,))


def build_model(outbreak: Outbreak, priors: Mapping[str, Prior] | None = None, horizon: int | None = None) -> Model:
    """The kernel's ``Model`` for a validated ``outbreak``; the fitted curve runs to day
    ``horizon`` (default: the last count's day, rounded up)."""
    if not isinstance(outbreak, Outbreak):
        raise SpecError("outbreak", "must be an Outbreak: build it with check_outbreak(...) or boarding_school()")
    h = int(np.ceil(outbreak.days[-1])) if horizon is None else int(horizon)
    if h < 1:
        raise SpecError("horizon", f"must be a whole number of days >= 1; got {horizon!r}")
    return Model(
        name="science:sir_negative_binomial",
        numpyro_model=sir_model,
        data={**model_data(outbreak, h), "priors": dict(priors or default_priors())},
        log_likelihood=functools.partial(log_likelihood, outbreak, horizon=h),  # picklable, for SBC's worker processes
    )


# --- simulation ----------------------------------------------------------------------------


def simulate_outbreak(
    beta: float,
    gamma: float,
    phi: float,
    population: float,
    days: Any,
    rng: np.random.Generator,
    initial_infected: float = 1.0,
) -> Outbreak:
    """Daily counts drawn from the model at known parameters: ``I(t)`` by SciPy's
    ``solve_ivp`` (DOP853, ``rtol=atol=1e-10``), then NB2(``I(t)``, ``phi``) per day."""
    t = np.asarray(days, dtype=float)
    infected = reference_solution(beta, gamma, population, initial_infected, t)[:, 1]
    counts = rng.negative_binomial(phi, phi / (phi + infected))
    return check_outbreak(t, counts, population, initial_infected, label="simulated outbreak")


def reference_solution(beta: float, gamma: float, population: float, initial_infected: float, ts: Any) -> np.ndarray:
    """``(S, I, R)`` at ``ts`` by SciPy (``solve_ivp``, DOP853, ``rtol=atol=1e-10``): a solver
    independent of diffrax, shape ``(K, 3)``."""
    from scipy.integrate import solve_ivp

    def rhs(_t: float, y: np.ndarray) -> list[float]:
        infection = beta * y[0] * y[1] / population
        return [-infection, infection - gamma * y[1], gamma * y[1]]

    t = np.asarray(ts, dtype=float)
    y0 = [population - initial_infected, initial_infected, 0.0]
    solution = solve_ivp(rhs, (0.0, float(t[-1])), y0, method="DOP853", t_eval=t, rtol=1e-10, atol=1e-10)
    return solution.y.T
