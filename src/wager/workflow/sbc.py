"""Simulation-based calibration (SBC) of any wager model and engine.

Talts et al. (2018), "Validating Bayesian inference algorithms with
simulation-based calibration"; Modrák et al. (2023), "Simulation-based
calibration checking for Bayesian computation: the choice of test quantities
shapes sensitivity". Each of ``N`` simulations:

1. draws ``theta ~ p(theta)`` and ``y ~ p(y | theta)`` from the model's prior
   predictive;
2. fits the model to ``y`` with the engine under test;
3. keeps ``L`` (``thin_to``) posterior draws and ranks the true value among
   them, for every scalar parameter element and for the test quantity
   ``log p(y | theta)`` (the log-likelihood, evaluated at the true ``theta``
   and at each draw).

A correct engine gives ranks uniform on ``0..L``; the ECDF simultaneous band
(``wager.kernel.calibration``) tests that per quantity.

**Family-wise level.** A model has many quantities (eight schools: 19). Each
is tested at ``alpha / m`` (Bonferroni over the ``m`` quantities), so a
correct engine fails ``SBCResult.passed`` with probability at most ``alpha``
whatever the number of parameters.

**Simulating data.** A problem may supply ``simulate(seed) -> Simulation``
(the true values and the kernel ``Model`` built on the simulated data); that
is used as is. Otherwise:

* A/B problems are simulated here in NumPy from the metric's generative story
  (priors as the spec resolves them): conversions ``Binomial(n, p)``, events
  ``Poisson(n * rate)``, per-visitor values ``Normal(mean, variance)`` reduced
  to the arm's mean and sd, and for revenue ``Binomial(n, p)`` buyers with
  ``LogNormal(mu, sigma)`` spend reduced to the sums the spec takes. The
  simulated arms replace the spec's (``model_copy``: unvalidated, so an arm
  with fewer than two buyers is kept, as SBC must not condition on the data),
  and ``build_model`` rebuilds the model with its exact update and NumPy
  log-likelihood. This is an implementation independent of the NumPyro model,
  so SBC also checks that the two tell the same story.
* Any other problem (``domain: model``) is run once through NumPyro's
  ``uncondition`` handler (``predictive.replicating``, which also expands a
  likelihood written without a plate to its data's shape) with its own data: every observed site is sampled
  instead of observed, which works even when the model reads shapes from the
  data (``len(y)``). Each simulated site replaces the data entry that was
  passed as its ``obs=`` (found by identity, else by name). A likelihood
  written with ``numpyro.factor`` has no site to simulate: such a model needs a
  ``simulate`` hook.

**Draws.** Exact engines: one chain of exactly ``L`` independent draws. NUTS:
``chains x draws`` pooled and thinned evenly to ``L`` (default 2 x 250 -> 99,
a spacing of about 5; NUTS on a well-conditioned model has a much shorter
autocorrelation time, so the kept draws are near independent). Override with
``inference={"chains": ..., "warmup": ..., "draws": ...}``.

Every simulation is a ``Task`` with the seed ``derive_seed(seed, SBC_STREAM, i)``
and a module-level task function, so any executor gives the same result.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np
from pydantic import BaseModel

from wager.errors import CheckNotApplicable
from wager.kernel.calibration import Simulation, Uniformity, rank_of, rank_uniformity, thin
from wager.kernel.inference import InferenceConfig, Model, ProgressFn, choose_engine, infer
from wager.kernel.posterior import Posterior
from wager.kernel.priors import Prior
from wager.kernel.seeds import check_seed, derive_seed
from wager.workflow.fanout import Executor, SerialExecutor, Task, make_tasks

SBC_STREAM = 5_812
"""``derive_seed`` stream of SBC simulations (apart from chain seeds and other fan-outs)."""
LOG_LIKELIHOOD = "log_likelihood"
"""Name of the test quantity ``log p(y_sim | theta)``."""
NUTS_DEFAULTS = {"chains": 2, "warmup": 500, "draws": 250}
"""Reduced NUTS settings per simulation (before thinning to ``thin_to``)."""

FitFn = Callable[[Model, InferenceConfig], Posterior]
"""The engine under test: ``fit(model, config) -> Posterior`` (default ``wager.kernel.inference.infer``)."""


@dataclass(frozen=True)
class SBCJob:
    """What every simulation shares (picklable: it travels to worker processes)."""

    problem: Any
    config: InferenceConfig
    thin_to: int
    fit: FitFn | None = None


@dataclass(frozen=True)
class Replication:
    """One simulation's ranks (quantity -> rank in ``0..thin_to``) and how its fit went."""

    index: int
    seed: int
    ranks: Mapping[str, int]
    engine: str
    divergences: int
    seconds: float


@dataclass(frozen=True)
class QuantityCalibration:
    name: str
    ranks: np.ndarray
    uniformity: Uniformity

    @property
    def passed(self) -> bool:
        return self.uniformity.passed


@dataclass(frozen=True)
class SBCResult:
    """Per-quantity rank tests; ``passed`` when every quantity's ECDF stays in its band."""

    model: str
    engine: str
    simulations: int
    thin_to: int
    seed: int
    alpha: float
    quantities: Mapping[str, QuantityCalibration]
    replications: tuple[Replication, ...]
    settings: Mapping[str, Any] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return not self.failed_quantities

    @property
    def failed_quantities(self) -> tuple[str, ...]:
        return tuple(name for name, q in self.quantities.items() if not q.passed)

    @property
    def alpha_per_quantity(self) -> float:
        return self.alpha / max(1, len(self.quantities))

    @property
    def divergent_simulations(self) -> int:
        return sum(1 for r in self.replications if r.divergences)

    @classmethod
    def from_json(cls, document: Mapping[str, Any]) -> "SBCResult":
        """The result again from ``to_json()`` (ranks re-tested; per-simulation details are not kept)."""
        alpha, quantities = document["alpha"], document["quantities"]
        per_quantity = alpha / max(1, len(quantities))
        rebuilt = {}
        for name, q in quantities.items():
            ranks = np.asarray(q["ranks"], dtype=np.int64)
            rebuilt[name] = QuantityCalibration(name, ranks, rank_uniformity(ranks, document["thin_to"], per_quantity))
        return cls(
            model=document["model"], engine=document["engine"], simulations=document["simulations"], thin_to=document["thin_to"],
            seed=document["seed"], alpha=alpha, quantities=rebuilt, replications=(), settings=document.get("settings", {}),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "engine": self.engine,
            "simulations": self.simulations,
            "thin_to": self.thin_to,
            "seed": self.seed,
            "alpha": self.alpha,
            "alpha_per_quantity": self.alpha_per_quantity,
            "passed": self.passed,
            "failed_quantities": list(self.failed_quantities),
            "divergent_simulations": self.divergent_simulations,
            "seconds": sum(r.seconds for r in self.replications),
            "settings": dict(self.settings),
            "quantities": {
                name: {
                    "passed": q.passed,
                    "max_ecdf_difference": q.uniformity.max_ecdf_difference,
                    # no test below 10 simulations (one bin): null, as strict JSON has no NaN
                    "chi2_p_value": q.uniformity.chi2_p_value if np.isfinite(q.uniformity.chi2_p_value) else None,
                    "chi2_bins": q.uniformity.bins,
                    "ranks": q.ranks.tolist(),
                }
                for name, q in self.quantities.items()
            },
        }

    def lines(self) -> list[str]:
        verdict = "passed" if self.passed else f"FAILED ({', '.join(self.failed_quantities)})"
        out = [
            f"Simulation-based calibration of {self.model} ({self.engine}): {verdict}.",
            f"  {self.simulations} simulations, ranks among {self.thin_to} posterior draws; each quantity's ECDF "
            f"tested against a simultaneous band at level {self.alpha_per_quantity:.2g} "
            f"(family-wise {self.alpha} over {len(self.quantities)} quantities).",
        ]
        if self.divergent_simulations:
            out.append(f"  {self.divergent_simulations} of {self.simulations} fits had divergent transitions.")
        for name, q in self.quantities.items():
            mark = "ok  " if q.passed else "FAIL"
            out.append(
                f"  {mark} {name}: max |ECDF - uniform| {q.uniformity.max_ecdf_difference:.3f}, "
                + (f"chi-square p {q.uniformity.chi2_p_value:.2g} ({q.uniformity.bins} bins)" if q.uniformity.bins > 1 else "too few simulations for a chi-square test")
            )
        return out


MIN_SIMULATIONS = 10
"""The fewest simulations ``wager validate --sbc`` runs: 10 fill two bins of the chi-square
test at 5 ranks a bin; fewer test nothing worth reading."""
MAX_SIMULATIONS = 100_000
"""The most ``wager validate --sbc`` runs (a bound, not a budget: each is a full fit)."""


def sbc(
    spec_or_problem: BaseModel | Any,
    simulations: int,
    seed: int,
    executor: Executor | None = None,
    thin_to: int = 99,
    progress: ProgressFn | None = None,
    engine: str = "auto",
    fit: FitFn | None = None,
    inference: Mapping[str, Any] | None = None,
    alpha: float = 0.05,
    base_dir: str | Path | None = None,
) -> SBCResult:
    """Run ``simulations`` SBC replications of a spec's (or prepared problem's) model.

    ``engine`` picks the engine as ``InferenceConfig.engine`` does; ``fit``
    replaces ``infer`` (to calibrate another engine, or a deliberately broken
    one). ``inference`` overrides the per-simulation ``InferenceConfig`` fields.
    """
    seed = check_seed(seed)
    if simulations < 1:
        raise ValueError(f"simulations must be >= 1, got {simulations}")
    if thin_to < 1:
        raise ValueError(f"thin_to must be >= 1, got {thin_to}")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    problem = _prepare(spec_or_problem, base_dir)
    model = problem.model
    chosen, _ = choose_engine(model, engine)
    config = sbc_config(problem, chosen, thin_to, inference)
    job = SBCJob(problem=problem, config=config, thin_to=thin_to, fit=fit)
    tasks = make_tasks(seed, SBC_STREAM, [job] * simulations)
    runner = executor if executor is not None else SerialExecutor()
    replications = tuple(runner.map(run_replication, tasks, progress, label="SBC simulations"))
    names = list(replications[0].ranks)
    per_quantity = alpha / len(names)
    quantities = {}
    for name in names:
        ranks = np.array([r.ranks[name] for r in replications], dtype=np.int64)
        quantities[name] = QuantityCalibration(name, ranks, rank_uniformity(ranks, thin_to, per_quantity))
    settings = {k: getattr(config, k) for k in ("engine", "chains", "draws", "warmup", "target_accept", "max_tree_depth", "chain_method")}
    if fit is not None:
        settings["fit"] = getattr(fit, "__qualname__", repr(fit))
    return SBCResult(
        model=model.name,
        engine=chosen,
        simulations=simulations,
        thin_to=thin_to,
        seed=seed,
        alpha=alpha,
        quantities=quantities,
        replications=replications,
        settings=settings,
    )


def _prepare(spec_or_problem: Any, base_dir: str | Path | None) -> Any:
    if isinstance(spec_or_problem, BaseModel):
        from wager.workflow.pipeline import domain_prepare

        return domain_prepare(spec_or_problem)(spec_or_problem, base_dir=Path(base_dir) if base_dir else None)
    return spec_or_problem


def sbc_config(problem: Any, engine: str, thin_to: int, overrides: Mapping[str, Any] | None = None) -> InferenceConfig:
    """The per-simulation inference settings: the spec's, with SBC's draw counts.

    The seed here is a placeholder; each simulation sets its own.
    """
    spec = getattr(problem, "spec", None)
    base = getattr(spec, "inference", None) or InferenceConfig()
    if engine == "exact":
        sizes: dict[str, Any] = {"chains": 1, "draws": max(thin_to, 10), "warmup": 0}
    else:
        sizes = dict(NUTS_DEFAULTS)
    sizes.update(overrides or {})
    config = base.model_copy(update={"engine": engine, **sizes})
    config = InferenceConfig.model_validate(config.model_dump())  # overrides are validated too
    if config.chains * config.draws < thin_to:
        raise ValueError(f"{config.chains} chains x {config.draws} draws cannot be thinned to {thin_to}")
    return config


def run_replication(task: Task) -> Replication:
    """One SBC simulation (module level: it runs in spawned processes and Ray workers)."""
    job: SBCJob = task.payload
    start = time.perf_counter()
    simulation = simulate(job.problem, derive_seed(task.seed, 0))
    config = job.config.model_copy(update={"seed": derive_seed(task.seed, 1)})
    posterior = (job.fit or infer)(simulation.model, config)
    kept = {name: thin(posterior.flat(name), job.thin_to) for name in simulation.truth if name in posterior.draws}
    missing = sorted(set(simulation.truth) - set(kept))
    if missing:
        raise ValueError(f"the posterior has no draws of {', '.join(missing)}")
    rng = np.random.default_rng(derive_seed(task.seed, 2))
    ranks: dict[str, int] = {}
    for name, draws in kept.items():
        truth = np.asarray(simulation.truth[name], dtype=float)
        element_ranks = rank_of(truth, draws, rng)
        for index in np.ndindex(*truth.shape):
            ranks[_label(name, index)] = int(element_ranks[index])
    true_ll = log_likelihood(simulation.model, {k: np.asarray(v)[None, None] for k, v in simulation.truth.items()})
    draws_ll = log_likelihood(simulation.model, {k: v[None] for k, v in kept.items()})
    ranks[LOG_LIKELIHOOD] = int(rank_of(true_ll.reshape(()), draws_ll.reshape(-1), rng))
    divergences = int(np.sum(posterior.sample_stats["diverging"])) if "diverging" in posterior.sample_stats else 0
    return Replication(task.index, task.seed, ranks, posterior.engine, divergences, time.perf_counter() - start)


def _label(name: str, index: tuple[int, ...]) -> str:
    return name + (f"[{','.join(map(str, index))}]" if index else "")


def log_likelihood(model: Model, draws: Mapping[str, np.ndarray]) -> np.ndarray:
    """``log p(data | theta)`` per draw, shape ``(chains, draws)``.

    The model's NumPy ``log_likelihood`` when it has one; otherwise NumPyro's
    ``log_likelihood`` summed over observed sites and their elements.
    """
    if model.log_likelihood is not None:
        return np.asarray(model.log_likelihood(draws), dtype=float)
    from numpyro.infer import log_likelihood as numpyro_log_likelihood

    from wager.kernel.nuts import configure_jax

    configure_jax()
    shape = next(iter(draws.values())).shape[:2]
    flat = {k: np.asarray(v).reshape((-1,) + np.shape(v)[2:]) for k, v in draws.items()}
    sites = numpyro_log_likelihood(model.numpyro_model, flat, batch_ndims=1, **dict(model.data))
    total = sum(np.asarray(v, dtype=float).reshape(v.shape[0], -1).sum(axis=1) for v in sites.values())
    return np.asarray(total).reshape(shape)


# --- simulating from the prior predictive ------------------------------------


def simulate(problem: Any, seed: int) -> Simulation:
    """True values and the model on data simulated from the prior predictive."""
    hook = getattr(problem, "simulate", None)
    if hook is not None:
        return hook(seed)
    from wager.ab.domain import ABProblem

    if isinstance(problem, ABProblem):
        return simulate_ab(problem, seed)
    return simulate_numpyro(problem.model, seed)


def simulate_numpyro(model: Model, seed: int) -> Simulation:
    """One run of the NumPyro model with every observed site sampled, in its data's shape
    (``wager.workflow.predictive.replicating``)."""
    from wager.workflow.predictive import replicating

    from wager.kernel.nuts import configure_jax

    configure_jax()
    import jax
    from numpyro import handlers
    from numpyro.distributions.distribution import Unit

    if model.numpyro_model is None:
        raise ValueError(f"model {model.name!r} has no NumPyro model to simulate from")
    data = dict(model.data)
    trace = handlers.trace(replicating(handlers.seed(model.numpyro_model, jax.random.PRNGKey(seed)))).get_trace(**data)
    truth: dict[str, np.ndarray] = {}
    simulated = dict(data)
    for name, site in trace.items():
        if site["type"] == "deterministic":
            truth[name] = np.asarray(site["value"])
        if site["type"] != "sample":
            continue
        if not site["infer"].get("was_observed"):
            truth[name] = np.asarray(site["value"])
            continue
        if isinstance(site["fn"], Unit):
            raise CheckNotApplicable(
                f"model {model.name!r} adds {name!r} with numpyro.factor: SBC cannot simulate that data (a domain gives its problem a simulate(seed) hook)"
            )
        key = _data_key(name, site["infer"]["obs"], data)
        simulated[key] = np.asarray(site["value"]).astype(np.asarray(data[key]).dtype)
    if not any(site["type"] == "sample" and site["infer"].get("was_observed") for site in trace.values()):
        raise CheckNotApplicable(f"model {model.name!r} observes none of its data: SBC has nothing to simulate")
    # a domain's NumPy log_likelihood is bound to the data it was built on: NumPyro's, on the simulated data, replaces it
    return Simulation(truth=truth, model=replace(model, data=simulated, log_likelihood=None))


def _data_key(site: str, obs: Any, data: Mapping[str, Any]) -> str:
    for key, value in data.items():
        if value is obs:
            return key
    if site in data:
        return site
    raise CheckNotApplicable(f"the model observes {site!r}, which is none of its data entries: SBC cannot put simulated data there (pass the data as obs=, or name the site after it)")


def draw_prior(prior: Prior, rng: np.random.Generator, size: int | tuple[int, ...]) -> np.ndarray:
    """Independent draws from a one-parameter-family ``prior`` in NumPy (SciPy's parameterisations)."""
    from scipy import stats

    p = prior.params
    frozen = {
        "beta": lambda: stats.beta(p.get("alpha"), p.get("beta")),
        "gamma": lambda: stats.gamma(p.get("shape"), scale=1 / p.get("rate", 1.0)),
        "normal": lambda: stats.norm(p.get("loc"), p.get("scale")),
        "half_normal": lambda: stats.halfnorm(scale=p.get("scale")),
        "lognormal": lambda: stats.lognorm(p.get("scale"), scale=np.exp(p.get("loc", 0.0))),
        "student_t": lambda: stats.t(p.get("df"), p.get("loc"), p.get("scale")),
        "cauchy": lambda: stats.cauchy(p.get("loc"), p.get("scale")),
        "half_cauchy": lambda: stats.halfcauchy(scale=p.get("scale")),
        "exponential": lambda: stats.expon(scale=1 / p.get("rate", 1.0)),
        "inverse_gamma": lambda: stats.invgamma(p.get("shape"), scale=p.get("scale")),
        "uniform": lambda: stats.uniform(p.get("low"), p.get("high", 0.0) - p.get("low", 0.0)),
    }
    if prior.family not in frozen:
        raise ValueError(f"no sampler for the {prior.family} prior")
    return np.asarray(frozen[prior.family]().rvs(size=size, random_state=rng), dtype=float)


def simulate_ab(problem: Any, seed: int) -> Simulation:
    """An A/B problem's arms re-simulated from its metric's priors (same visitors per arm)."""
    from wager.ab.models import build_model, priors_for
    from wager.ab.spec import Arm

    spec = problem.spec
    priors = priors_for(spec)
    rng = np.random.default_rng(seed)
    arms = spec.arms
    n = np.array([a.visitors for a in arms])
    k = len(arms)
    truth: dict[str, np.ndarray]
    if spec.metric == "conversion":
        rate = draw_prior(priors["rate"], rng, k)
        conversions = rng.binomial(n, rate)
        truth = {"rate": rate}
        new = [Arm(name=a.name, visitors=a.visitors, conversions=int(c)) for a, c in zip(arms, conversions)]
    elif spec.metric == "count":
        rate = draw_prior(priors["rate"], rng, k)
        events = rng.poisson(n * rate)
        truth = {"rate": rate}
        new = [Arm(name=a.name, visitors=a.visitors, events=int(e)) for a, e in zip(arms, events)]
    elif spec.metric == "mean":
        p = priors["mean"].params
        variance = draw_prior(Prior(family="inverse_gamma", params={"shape": p["shape"], "scale": p["scale"]}, why="part", source="part"), rng, k)
        mean = rng.normal(p["loc"], np.sqrt(variance / p["kappa"]))
        values = [rng.normal(m, np.sqrt(v), size) for m, v, size in zip(mean, variance, n)]
        truth = {"mean": mean, "variance": variance}
        new = [Arm(name=a.name, visitors=a.visitors, mean=float(np.mean(x)), sd=float(np.std(x, ddof=1))) for a, x in zip(arms, values)]
    elif spec.metric == "revenue":
        purchase_rate = draw_prior(priors["purchase_rate"], rng, k)
        mu = draw_prior(priors["log_spend_mean"], rng, k)
        sigma = draw_prior(priors["log_spend_sd"], rng, k)
        buyers = rng.binomial(n, purchase_rate)
        new = []
        for a, m, s, b in zip(arms, mu, sigma, buyers):
            logs = rng.normal(m, s, int(b))
            spend = np.exp(logs)
            new.append(
                Arm(
                    name=a.name, visitors=a.visitors, purchasers=int(b),
                    revenue=float(spend.sum()), revenue_sq=float(np.sum(spend**2)),
                    log_revenue=float(logs.sum()), log_revenue_sq=float(np.sum(logs**2)),
                )
            )
        truth = {
            "purchase_rate": purchase_rate,
            "log_spend_mean": mu,
            "log_spend_sd": sigma,
            "revenue_per_visitor": purchase_rate * np.exp(mu + sigma**2 / 2),
        }
    else:  # pragma: no cover
        raise ValueError(f"unknown metric {spec.metric!r}")
    # model_copy skips check_arms on purpose: SBC must keep every simulated data set
    return Simulation(truth=truth, model=build_model(spec.model_copy(update={"arms": new})))
