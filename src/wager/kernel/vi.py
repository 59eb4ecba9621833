"""Variational inference through NumPyro's SVI, checked before anyone decides on it.

A mean-field Normal guide (``AutoNormal``, each latent site in its own
unconstrained space, started at the prior's median) is fitted by Adam on the
ELBO with a step size decaying exponentially to a twentieth of its start. A
model may mini-batch (a subsampled ``numpyro.plate``): each step then sees a
random subset, the ELBO scaled up to the whole.
Then ``chains x draws`` independent draws from the guide, and for each the log
importance ratio ``log p(theta, y) - log q(theta)``. Pareto-smoothed importance
sampling (Yao, Vehtari, Simpson & Gelman 2018, "Yes, but did it work?")
fits a generalised Pareto to the ratios' tail: its shape ``k_hat`` says
whether the guide is close enough to the posterior for estimates from its
draws to be trusted (below 0.7), and the ``pareto_k`` gate blocks a decision
otherwise. The draws handed on are the guide's, unweighted; ``k_hat`` is the
verdict on them.

Everything is driven by one integer seed: the optimisation key and the draw
key derive from it.
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from wager.kernel.inference import InferenceConfig, Model, ProgressFn
from wager.kernel.posterior import Posterior
from wager.kernel.seeds import chain_seeds

DECAY = 0.05
"""The step size ends at ``DECAY`` times its start (exponential schedule)."""
CHUNKS = 20
"""Progress is reported this many times during the optimisation."""


def run_vi(model: Model, config: InferenceConfig, reason: str, progress: ProgressFn | None = None) -> Posterior:
    """Fit the guide, draw from it, and record the PSIS diagnostic."""
    if model.numpyro_model is None:
        raise ValueError(f"model {model.name!r} has no NumPyro model to fit")
    from wager.kernel.nuts import configure_jax

    numerics = configure_jax()

    import jax
    from jax.example_libraries.optimizers import exponential_decay
    from numpyro.infer import SVI, Trace_ELBO, init_to_median
    from numpyro.infer.autoguide import AutoNormal
    from numpyro.infer.util import log_density
    from numpyro.optim import Adam

    fn, data = model.numpyro_model, dict(model.data)
    fit_seed, draw_seed = chain_seeds(config.seed, 2)
    steps = config.vi_steps
    guide = AutoNormal(fn, init_loc_fn=init_to_median(num_samples=15), init_scale=0.05)
    optimizer = Adam(exponential_decay(config.vi_learning_rate, steps, DECAY))
    svi = SVI(fn, guide, optimizer, Trace_ELBO(num_particles=config.vi_particles))

    state = svi.init(jax.random.PRNGKey(fit_seed), **data)
    label = f"SVI ({steps} steps)"
    chunk = max(1, steps // CHUNKS)

    def run_chunk(s: Any, n: int) -> Any:
        return jax.lax.scan(lambda c, _: svi.update(c, **data), s, None, length=n)

    run_chunk = jax.jit(run_chunk, static_argnums=1)
    losses, done = [], 0
    while done < steps:
        n = min(chunk, steps - done)
        state, chunk_losses = run_chunk(state, n)
        losses.append(np.asarray(chunk_losses))
        done += n
        if progress:
            progress(label, done, steps)
    losses = np.concatenate(losses)
    if not np.isfinite(losses[-max(1, steps // 10) :]).all():
        raise FloatingPointError("the ELBO was not finite at the end of the optimisation")
    params = svi.get_params(state)

    total = config.chains * config.draws
    flat = guide.sample_posterior(jax.random.PRNGKey(draw_seed), params, sample_shape=(total,))

    # the exact joint density: a mini-batched model evaluated whole, by a guide
    # of the same parameters set up on the whole data (its plates unsubsampled)
    exact = {**data, **model.exact_overrides}
    exact_guide = guide
    if model.exact_overrides:
        from numpyro import handlers

        exact_guide = AutoNormal(fn)
        with handlers.seed(rng_seed=0):
            exact_guide(**exact)  # sets up its (unsubsampled) prototype; its parameters are substituted below

    def log_ratio(one: Mapping[str, Any]) -> Any:
        log_p, _ = log_density(fn, (), exact, one)
        log_q, _ = log_density(exact_guide, (), exact, {**params, **one})
        return log_p - log_q

    log_w = np.asarray(jax.lax.map(log_ratio, flat, batch_size=min(total, 256)))
    from wager.kernel.diagnostics import pareto_smoothed_log_weights

    finite = np.isfinite(log_w)
    k_hat = pareto_smoothed_log_weights(np.where(finite, log_w, -np.inf))[1] if finite.all() else float("inf")
    draws = {k: np.asarray(v).reshape((config.chains, config.draws) + np.shape(v)[1:]) for k, v in flat.items()}
    return Posterior(
        draws=draws,
        engine="vi",
        reason=reason,
        seed=config.seed,
        chain_seeds=(fit_seed, draw_seed),
        sample_stats={"log_importance_ratio": log_w.reshape(config.chains, config.draws)},
        settings={
            "chains": config.chains,
            "draws": config.draws,
            "guide": "AutoNormal (mean-field Normal, unconstrained space)",
            "optimizer": f"Adam, step size {config.vi_learning_rate} decaying exponentially to x{DECAY}",
            "vi_steps": steps,
            "vi_particles": config.vi_particles,
            "final_elbo_loss": float(np.mean(losses[-max(1, steps // 20) :])),
            "pareto_k": k_hat,
            **numerics,
        },
    )
