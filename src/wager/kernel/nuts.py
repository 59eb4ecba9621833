"""NUTS through NumPyro: several chains, one integer seed, per-chain keys derived from it.

Each chain runs from its own key ``PRNGKey(chain_seeds[c])``, so a chain's draws
depend on the run seed and the chain's index only, not on how many chains run.
Chains run one after the other (``chain_method="sequential"``) or vectorised in
one call; the method is recorded because the two give different draws.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from wager.kernel.inference import InferenceConfig, Model, ProgressFn
from wager.kernel.posterior import Posterior
from wager.kernel.seeds import chain_seeds

EXTRA_FIELDS = ("diverging", "energy", "num_steps", "accept_prob", "adapt_state.step_size")


def compilation_cache_dir() -> Path:
    """Per-user directory for JAX's persistent compilation cache (``WAGER_JAX_CACHE`` overrides)."""
    override = os.environ.get("WAGER_JAX_CACHE")
    if override:
        return Path(override)
    base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return base / "wager" / "jax"


def configure_jax() -> dict[str, Any]:
    """Turn on float64 and the persistent compilation cache; return the numerics flags."""
    import jax

    jax.config.update("jax_enable_x64", True)
    cache = compilation_cache_dir()
    try:
        cache.mkdir(parents=True, exist_ok=True)
        jax.config.update("jax_compilation_cache_dir", str(cache))
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)
    except OSError:
        cache = None  # a read-only home: compile every time rather than fail
    return {
        "jax_enable_x64": True,
        "compilation_cache_dir": str(cache) if cache else None,
        "device": str(jax.devices()[0].platform),
    }


def run_nuts(
    model: Model, config: InferenceConfig, reason: str, progress: ProgressFn | None = None
) -> Posterior:
    """Sample ``model`` with NUTS; draws and sample stats shaped ``(chains, draws, ...)``."""
    if model.numpyro_model is None:
        raise ValueError(f"model {model.name!r} has no NumPyro model to sample")
    numerics = configure_jax()

    import jax
    from numpyro.infer import MCMC, NUTS

    seeds = chain_seeds(config.seed, config.chains)
    kernel = NUTS(
        model.numpyro_model,
        target_accept_prob=config.target_accept,
        max_tree_depth=config.max_tree_depth,
    )
    label = f"NUTS chains ({config.warmup} warmup + {config.draws} draws each)"
    if config.chain_method == "vectorized":
        mcmc = MCMC(
            kernel,
            num_warmup=config.warmup,
            num_samples=config.draws,
            num_chains=config.chains,
            chain_method="vectorized",
            progress_bar=False,
        )
        keys = jax.numpy.stack([jax.random.PRNGKey(s) for s in seeds])
        if progress:
            progress(f"{label}, {config.chains} chains vectorised", 0, 1)
        mcmc.run(keys if config.chains > 1 else keys[0], extra_fields=EXTRA_FIELDS, **dict(model.data))
        samples = {k: np.asarray(v) for k, v in mcmc.get_samples(group_by_chain=True).items()}
        extra = {k: np.asarray(v) for k, v in mcmc.get_extra_fields(group_by_chain=True).items()}
        if progress:
            progress(f"{label}, {config.chains} chains vectorised", 1, 1)
    else:
        # One chain at a time through one MCMC object: the compiled sampler is
        # reused after the first chain, and progress can be shown per chain.
        mcmc = MCMC(kernel, num_warmup=config.warmup, num_samples=config.draws, num_chains=1, progress_bar=False)
        per_chain: list[tuple[dict, dict]] = []
        for chain, seed in enumerate(seeds):
            if progress:
                progress(label, chain, config.chains)
            mcmc.run(jax.random.PRNGKey(seed), extra_fields=EXTRA_FIELDS, **dict(model.data))
            per_chain.append(
                (
                    {k: np.asarray(v) for k, v in mcmc.get_samples().items()},
                    {k: np.asarray(v) for k, v in mcmc.get_extra_fields().items()},
                )
            )
        if progress:
            progress(label, config.chains, config.chains)
        samples = {k: np.stack([c[0][k] for c in per_chain]) for k in per_chain[0][0]}
        extra = {k: np.stack([c[1][k] for c in per_chain]) for k in per_chain[0][1]}

    stats = {
        "diverging": extra["diverging"].astype(bool),
        "energy": extra["energy"],
        "n_steps": extra["num_steps"],
        # a tree of depth d takes at most 2**d - 1 leapfrog steps (Hoffman & Gelman 2014)
        "tree_depth": np.ceil(np.log2(extra["num_steps"] + 1)).astype(int),
        "acceptance_rate": extra["accept_prob"],
        "step_size": extra["adapt_state.step_size"],
    }
    return Posterior(
        draws=samples,
        engine="nuts",
        reason=reason,
        seed=config.seed,
        chain_seeds=seeds,
        sample_stats=stats,
        settings={
            "chains": config.chains,
            "draws": config.draws,
            "warmup": config.warmup,
            "target_accept": config.target_accept,
            "max_tree_depth": config.max_tree_depth,
            "chain_method": config.chain_method,
            **numerics,
        },
    )
