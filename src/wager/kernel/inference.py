"""Engines behind one interface: ``infer(model, config) -> Posterior``.

A domain hands the kernel a ``Model``: a NumPyro model function with its data,
and, where the model is conjugate, an exact update. ``engine="auto"`` takes the
exact path whenever the model admits one and records which engine ran and why.
JAX and NumPyro are imported only on the sampling path.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Any, Callable, Literal, Mapping

import numpy as np
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from wager.kernel.conjugate import ExactPosterior
from wager.kernel.posterior import Posterior
from wager.kernel.seeds import MAX_SEED, chain_seeds


def not_a_boolean(value: Any) -> Any:
    """YAML's ``true`` is not a count or a seed: pydantic would read it as 1 (a pydantic
    before-validator; ``wager.ab.spec.Count`` refuses booleans with it too)."""
    if isinstance(value, bool):
        raise ValueError(f"must be a whole number, not {str(value).lower()}")
    return value


Whole = Annotated[int, BeforeValidator(not_a_boolean)]


class InferenceConfig(BaseModel):
    """How to run inference. Part of a run's identity."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    engine: Literal["auto", "exact", "nuts", "vi"] = "auto"
    seed: Whole = Field(default=20240101, ge=0, le=MAX_SEED)
    chains: Whole = Field(default=4, ge=1, le=64)
    draws: Whole = Field(default=1000, ge=10, le=1_000_000)
    warmup: Whole = Field(default=1000, ge=0, le=1_000_000)
    target_accept: float = Field(default=0.8, gt=0, lt=1)
    max_tree_depth: Whole = Field(default=10, ge=1, le=20)
    # NumPyro's "vectorized" and "sequential" give different draws for one key.
    chain_method: Literal["sequential", "vectorized"] = "sequential"
    # variational inference (engine "vi"): optimisation steps, Adam's first step size, ELBO particles
    vi_steps: Whole = Field(default=3000, ge=10, le=1_000_000)
    vi_learning_rate: float = Field(default=0.02, gt=0, le=1)
    vi_particles: Whole = Field(default=1, ge=1, le=64)


@dataclass(frozen=True)
class Model:
    """What a domain gives the engines.

    ``numpyro_model(**data)`` is the generative model for samplers. ``exact``,
    when present, returns the closed-form posterior. ``observed`` is kept for
    predictive checks and InferenceData. ``version`` is part of a run's
    identity: bump it when a built-in model's mathematics changes.
    ``log_likelihood(draws)``, when present, is the data's log-likelihood at each
    posterior draw, shape ``(chains, draws)``, in NumPy: diagnostics (power-scaling
    sensitivity) then need neither JAX nor a NumPyro trace. ``vi_reason``, when
    set, makes ``engine="auto"`` run variational inference and says why (a
    domain sets it for problems too large for NUTS in reasonable time).
    ``exact_overrides`` replace keyword data where the model's exact density is
    needed: a model that mini-batches under SVI (``{"batch": 256}`` in ``data``)
    gives ``{"batch": None}`` here, and the PSIS check evaluates it whole.
    ``nuts_init`` says where NUTS chains start: ``"uniform"`` on (-2, 2) in the
    unconstrained space (Stan's default); ``"prior"`` each at its own draw from
    the prior, for models whose parameters' scales differ so much that a
    uniform start lands where the likelihood is astronomically small (a trend of
    two panel sds a period where the prior says 0.1), and warmup can collapse the
    step size there for good; ``"vi"`` warm-starts from an ADVI fit (each chain
    at a draw from the guide, the mass matrix at its variances): for models large
    enough that warmup from a unit mass matrix runs at the tree-depth limit.
    """

    name: str
    numpyro_model: Callable[..., None] | None = None
    data: Mapping[str, Any] = field(default_factory=dict)
    exact: Callable[[], ExactPosterior] | None = None
    version: str = "1"
    log_likelihood: Callable[[Mapping[str, np.ndarray]], np.ndarray] | None = None
    vi_reason: str | None = None
    exact_overrides: Mapping[str, Any] = field(default_factory=dict)
    nuts_init: Literal["uniform", "prior", "vi"] = "uniform"


class EngineError(RuntimeError):
    """The requested engine cannot run this model."""


ProgressFn = Callable[[str, int, int], None]
"""``progress(label, done, total)``: called as inference advances."""


def infer(model: Model, config: InferenceConfig, progress: ProgressFn | None = None) -> Posterior:
    """Run the engine ``config.engine`` selects on ``model``."""
    engine, reason = choose_engine(model, config.engine)
    if engine == "exact":
        return run_exact(model, config, reason)
    if engine == "vi":
        from wager.kernel.vi import run_vi

        return run_vi(model, config, reason, progress)
    from wager.kernel.nuts import run_nuts

    return run_nuts(model, config, reason, progress)


def choose_engine(model: Model, requested: str) -> tuple[str, str]:
    """The engine to run and why, in words for the record."""
    if requested == "exact":
        if model.exact is None:
            raise EngineError(f"model {model.name!r} has no exact (conjugate) update; use nuts")
        return "exact", "requested: exact conjugate update"
    if requested in ("nuts", "vi"):
        if model.numpyro_model is None:
            raise EngineError(f"model {model.name!r} has no NumPyro model to {'sample' if requested == 'nuts' else 'fit'}")
        return requested, f"requested: {'NUTS' if requested == 'nuts' else 'variational inference (gated by PSIS Pareto-k)'}"
    if model.exact is not None:
        return "exact", "auto: the model is conjugate, so the exact update is cheapest and has no sampling error in its closed forms"
    if model.numpyro_model is None:
        raise EngineError(f"model {model.name!r} has neither an exact update nor a NumPyro model")
    if model.vi_reason:
        return "vi", f"auto: {model.vi_reason}"
    return "nuts", "auto: no conjugate form for this model, so NUTS (gated by convergence diagnostics)"


def run_exact(model: Model, config: InferenceConfig, reason: str) -> Posterior:
    """Independent draws from the closed-form posterior, one NumPy stream per chain."""
    assert model.exact is not None
    exact = model.exact()
    seeds = chain_seeds(config.seed, config.chains)
    per_chain = [exact.sample(np.random.default_rng(s), (config.draws,)) for s in seeds]
    names = per_chain[0].keys()
    draws = {name: np.stack([chain[name] for chain in per_chain]) for name in names}
    return Posterior(
        draws=draws,
        engine="exact",
        reason=reason,
        seed=config.seed,
        chain_seeds=seeds,
        exact=exact,
        settings={"chains": config.chains, "draws": config.draws, "sampler": "numpy.random.Generator(PCG64)"},
    )
