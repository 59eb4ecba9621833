"""Variational inference (ADVI), checked before anyone decides on it.

The guide is a mean-field Normal over the model's latent sites, each mapped to
unconstrained space by its support's bijection (Kucukelbir et al. 2017,
"Automatic Differentiation Variational Inference"): ``theta = loc + scale *
eps``, ``eps ~ N(0, I)``, one flat vector of ``D`` coordinates. It starts at
the prior's mean (``init_to_mean``; its median where the mean is not finite,
as a half-Cauchy's is not), or at whichever of ten points uniform on (-2, 2) in
unconstrained space (Stan's and NumPyro's start) has a higher log density than
that centre (``START_CANDIDATES``: a vague prior's centre can lie far from any
data), with ``scale = 0.05``, and is fitted by
Adam on the negative ELBO, ``E_q[U(theta)] - sum(log scale) - D/2 (1 + log 2
pi)``, where ``U`` is NumPyro's potential energy (minus the log joint density
of the unconstrained parameters, Jacobians included); the step size decays
exponentially to a twentieth of its start. A model may mini-batch (a
subsampled ``numpyro.plate`` around its likelihood): each step then sees a
random subset, the likelihood scaled up to the whole. Latent sites must live
outside a subsampled plate, so that the guide's shape does not depend on the
batch.

Then ``chains x draws`` independent draws from the guide, and for each the log
importance ratio ``log p(theta, y) - log q(theta)`` with the exact (whole-data)
density. Pareto-smoothed importance sampling (Yao, Vehtari, Simpson & Gelman
2018, "Yes, but did it work?") fits a generalised Pareto to the ratios' tail:
its shape ``k_hat`` says whether the guide is close enough to the posterior for
estimates weighted by the smoothed ratios to be trusted (below 0.7), and the
``pareto_k`` gate blocks a decision otherwise. Where the weights are trusted,
the draws handed on are resampled by them (systematic resampling), so the
estimates every domain makes from plain draws are the PSIS-weighted ones:
between 0.5 and 0.7 the guide's own draws can be visibly off (eight schools'
tau: mean 2.9 against 3.6). A draw picked ``m`` times appears ``m`` times
in a row, so the chains' ESS, and with it every Monte Carlo error, counts the
repeats, as it counts a Markov chain that stays put. Otherwise the guide's own
draws are handed on, and ``k_hat`` is the verdict on them.

The optimisation runs in float32 (JAX's ``enable_x64(False)``, thread-local):
Adam's gradient noise is orders of magnitude above float32 rounding, and on CPU
a step of the 304-series forecast model measured about 1.4x faster and its
compilation half as long. The draws and their log ratios, which the gate reads,
are float64. Where float32's loss is not finite at the end (data of 1e20, whose
squares overflow it), the fit runs again in float64. Where that diverges too (a
step size too large), the guide kept is the last one reached through finite
losses, the step recorded: PSIS judges it like any other, and data the model
cannot evaluate at all are bad input.

Everything here is a pure function of ``(key, arrays)`` under ``jax.jit``,
made once per model, constant data and array shapes and kept (like NUTS's
compiled chains): a second fit of the same model on data of the same shapes
compiles nothing, and JAX's persistent cache serves a new process. Everything
is driven by one integer seed: the optimisation key and the draw key derive
from it.
"""

from __future__ import annotations

import threading
import warnings
from collections import OrderedDict
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Mapping

import numpy as np

from wager.errors import SpecError
from wager.kernel.diagnostics import RELIABLE_K, pareto_smoothed_log_weights
from wager.kernel.inference import InferenceConfig, Model, ProgressFn
from wager.kernel.posterior import Posterior
from wager.kernel.seeds import chain_seeds

DECAY = 0.05
"""The step size ends at ``DECAY`` times its start (exponential schedule)."""
CHUNKS = 20
"""Progress is reported this many times during the optimisation."""
INIT_SCALE = 0.05
"""The guide's starting scale in every unconstrained coordinate."""
START_CANDIDATES = 10
"""Points drawn uniformly on (-START_RADIUS, START_RADIUS) in unconstrained space (NumPyro's and Stan's
initialisation), besides the prior's centre, whose log density is compared to the centre's: the guide
starts at the highest. A vague prior's centre can lie where the data put almost no mass (a Gamma(1, 0.001)
rate starts at 1000 against a posterior near 0.3): there the gradients are huge, Adam's memory of them
shrinks its later steps, and 3,000 steps ended at 8 instead of 0.3 (30,000 were needed)."""
START_RADIUS = 2.0
RATIO_BATCH = 1
"""Draws whose exact log density is evaluated at once: one at a time measured about 3x faster on CPU
than 256 vectorised (8 s against 23 s for 4,000 draws of the 304-series forecast model), and it bounds memory."""
FITS_KEPT = 8
"""How many compiled fits a process keeps (least recently used dropped first)."""


def run_vi(model: Model, config: InferenceConfig, reason: str, progress: ProgressFn | None = None) -> Posterior:
    """Fit the guide, draw from it, and record the PSIS diagnostic."""
    if model.numpyro_model is None:
        raise ValueError(f"model {model.name!r} has no NumPyro model to fit")
    from wager.kernel.nuts import configure_jax

    numerics = configure_jax()

    import jax

    fit_seed, draw_seed, resample_seed = chain_seeds(config.seed, 3)

    def attempt(arrays: Mapping[str, Any], constants: Mapping[str, Any]) -> tuple[_Optimum, dict, np.ndarray]:
        fit, found = _optimise(model, config, fit_seed, progress, arrays, constants)
        flat, log_w = fit.draw(found.state, jax.random.PRNGKey(draw_seed), arrays)
        return found, flat, np.asarray(log_w)

    found, flat, log_w = _traceable(model, attempt)
    finite = np.isfinite(log_w)
    if not finite.any():
        raise unevaluable(log_w)
    smoothed, k_hat = pareto_smoothed_log_weights(log_w) if finite.all() else (None, float("inf"))
    # Below RELIABLE_K the draws are resampled by their weights. With fewer than about 2,200 draws PSIS's bound,
    # 1 - 1/log10(S), is lower and the pareto_k gate holds the fit to it, yet the weighted draws are still the
    # better estimate below 0.7.
    resampled = smoothed is not None and k_hat < RELIABLE_K
    picked = systematic_resample(np.exp(smoothed), np.random.default_rng(resample_seed)) if resampled else np.arange(log_w.size)
    shape = (config.chains, config.draws)
    draws = {k: np.asarray(v)[picked].reshape(shape + np.shape(v)[1:]) for k, v in flat.items()}
    return Posterior(
        draws=draws,
        engine="vi",
        reason=reason,
        seed=config.seed,
        chain_seeds=(fit_seed, draw_seed, resample_seed),
        sample_stats={"log_importance_ratio": log_w[picked].reshape(shape)},
        settings={
            "chains": config.chains,
            "draws": config.draws,
            "guide": "mean-field Normal in unconstrained space (ADVI)",
            "optimizer": f"Adam, step size {config.vi_learning_rate} decaying exponentially to x{DECAY}",
            "vi_steps": config.vi_steps,
            "vi_particles": config.vi_particles,
            **found.settings(),
            "pareto_k": k_hat,
            "draws_are": (
                f"the guide's, resampled by their Pareto-smoothed importance weights ({np.unique(picked).size} distinct)"
                if resampled
                else "the guide's own, unweighted (the importance weights are not reliable)"
            ),
            **numerics,
        },
    )


def systematic_resample(weights: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """As many indices as ``weights`` (normalised), each picked in proportion to its weight by
    systematic resampling (one uniform offset, evenly spaced points): non-decreasing, so the copies of
    one draw are adjacent."""
    n = weights.size
    points = (rng.random() + np.arange(n)) / n
    return np.minimum(np.searchsorted(np.cumsum(weights), points, side="right"), n - 1)


UNEVALUABLE = (
    "the model's log density is not finite anywhere the variational fit looked (its start, every step, the guide's "
    "draws): the data hold values far outside the model's scale (e.g. 1e300) or values the model gives zero probability, "
    "or the model itself is undefined there (a NaN of its own making)"
)
"""Why no variational fit exists: the model cannot be evaluated on this data."""


def unevaluable(values: np.ndarray) -> SpecError:
    """The error for a density not finite anywhere the fit looked: NaN everywhere is the model's own
    arithmetic (0 * inf, a NaN constant, a square root of a negative), named ``model``; an infinite
    density somewhere is the data's (an overflow, a value outside the support), named ``data``."""
    from wager.kernel.nuts import MODEL_NAN

    if np.isnan(values).all():
        return SpecError("model", f"its log density is NaN everywhere the variational fit looked (its start, every step, the guide's draws): {MODEL_NAN}")
    return SpecError("data", UNEVALUABLE)


@dataclass(frozen=True)
class _Optimum:
    """Where the optimisation ended: the guide's ``state`` after ``steps`` Adam steps, the ``losses`` of
    every step taken, the ``precision`` it ran in, and the ``start`` it began at (0: the prior's centre,
    ``i``: the ``i``-th uniform candidate). ``diverged_at``: the first step whose loss was not
    finite when the run ended with non-finite losses; the state is then the last one reached through
    finite losses only (``steps``), which PSIS judges like any other guide."""

    state: Any
    losses: np.ndarray
    steps: int
    precision: str
    start: int
    diverged_at: int | None = None

    @property
    def final_loss(self) -> float:
        kept = self.losses[: self.steps]
        return float(np.mean(kept[-max(1, len(kept) // 20) :])) if kept.size else float("nan")

    def settings(self) -> dict[str, Any]:
        """What a posterior records about the optimisation."""
        out: dict[str, Any] = {
            "final_elbo_loss": self.final_loss,
            "optimisation_precision": self.precision,
            "guide_start": (
                "the prior's centre" if self.start == 0
                else f"uniform draw {self.start} of {START_CANDIDATES} on (-{START_RADIUS:g}, {START_RADIUS:g}) in unconstrained space, "
                "where the log density was higher than at the prior's centre"
            ),
        }
        if self.diverged_at is not None:
            out["elbo_not_finite_from_step"] = self.diverged_at
            out["guide_from_step"] = self.steps
        return out


UNTRACEABLE = (
    "variational inference here cannot trace this model: {error} (a latent's support that depends on another "
    "latent, such as Uniform(0, s) with s sampled, needs engine nuts)"
)


def _traceable(model: Model, attempt: Callable[[Mapping[str, Any], Mapping[str, Any]], Any]) -> Any:
    """``attempt(arrays, constants)`` with the model's numeric data as traced arrays; if the model reads their
    values in Python (``int(g.max())``), again with every datum a constant, as ``wager.kernel.nuts`` does
    (then with no traced array at all, which ``_optimise`` runs in float64 only: JAX's float32 mode mixes
    int32 with a NumPy int64 constant used as an index)."""
    import jax

    from wager.kernel.nuts import split_data

    try:
        return attempt(*split_data(model.data))
    except jax.errors.JAXTypeError:
        pass
    try:
        return attempt({}, dict(model.data))
    except jax.errors.JAXTypeError as error:
        raise SpecError("model", UNTRACEABLE.format(error=type(error).__name__)) from None


def _optimise(
    model: Model, config: InferenceConfig, seed: int, progress: ProgressFn | None, arrays: Mapping[str, Any], constants: Mapping[str, Any]
) -> tuple["_Fit", _Optimum]:
    """Fit the guide by ``config.vi_steps`` Adam steps from ``seed``, in float32; if its loss is not finite
    at the end, again in float64 (wider range: data of 1e20 overflow float32's squares), and if it still
    is not, keep the last state reached through finite losses only (see ``_Optimum``)."""
    fit = _compiled_fit(model.numpyro_model, constants, dict(model.exact_overrides), arrays, config)
    why = "float32's loss was not finite" if arrays else "the model reads its data in Python"
    for x64 in (False, True) if arrays else (True,):
        found = _adam(fit, arrays, config.vi_steps, seed, x64, progress, why)
        if found.diverged_at is None:
            return fit, found
    if not np.isfinite(found.losses).any():
        raise unevaluable(found.losses)
    return fit, found


def _adam(fit: "_Fit", arrays: Mapping[str, Any], steps: int, seed: int, x64: bool, progress: ProgressFn | None, why: str = "") -> _Optimum:
    """``steps`` Adam steps in chunks (progress after each), remembering the last state whose every loss was finite."""
    import jax

    precision = f"float64 ({why})" if x64 else "float32 (draws and log ratios float64)"
    label = f"SVI ({steps} steps{', float64' if x64 else ''})"
    chunk = max(1, steps // CHUNKS)
    state, start = fit.init(jax.random.PRNGKey(seed), arrays, x64)
    kept, kept_at, losses, done = state, 0, [], 0
    while done < steps:
        n = min(chunk, steps - done)
        state, chunk_losses = fit.run(state, arrays, n, x64)
        losses.append(np.asarray(chunk_losses, dtype=float))
        done += n
        if kept_at == done - n and np.isfinite(losses[-1]).all():
            kept, kept_at = state, done
        if progress:
            progress(label, done, steps)
        if not np.isfinite(losses[-1]).any() and not fit.finite(state):
            break  # the guide's parameters are NaN or inf: no step can bring them back
    losses = np.concatenate(losses)
    start = int(start)
    if np.isfinite(losses[-max(1, steps // 10) :]).all():
        return _Optimum(state, losses, steps, precision, start)
    return _Optimum(kept, losses, kept_at, precision, start, diverged_at=int(np.flatnonzero(~np.isfinite(losses))[0]))


@dataclass(frozen=True)
class Guide:
    """A fitted mean-field guide in unconstrained space: each latent site's ``loc`` and ``scale``."""

    loc: dict[str, np.ndarray]
    scale: dict[str, np.ndarray]
    steps: int
    final_elbo_loss: float


def fit_guide(model: Model, config: InferenceConfig, seed: int, progress: ProgressFn | None = None) -> Guide:
    """ADVI's guide for ``model`` (``config.vi_steps`` steps from ``seed``), without draws or PSIS:
    what a NUTS warm start needs (``wager.kernel.nuts``)."""
    from wager.kernel.nuts import configure_jax

    configure_jax()

    def attempt(arrays: Mapping[str, Any], constants: Mapping[str, Any]) -> tuple["_Fit", _Optimum]:
        return _optimise(model, config, seed, progress, arrays, constants)

    fit, found = _traceable(model, attempt)
    loc, scale = fit.moments(found.state)
    return Guide(
        loc={k: np.asarray(v, dtype=float) for k, v in loc.items()},
        scale={k: np.asarray(v, dtype=float) for k, v in scale.items()},
        steps=found.steps,
        final_elbo_loss=found.final_loss,
    )


class _Fit:
    """ADVI for one model as jitted functions of ``(key, arrays)``.

    ``init(key, arrays)`` gives the state (Adam's state over ``(loc, rho)``,
    ``scale = softplus(rho)``; a key; the step count); ``run(state, arrays, n)``
    takes ``n`` Adam steps and returns the new state and the losses;
    ``draw(state, key, arrays)`` gives the guide's constrained draws and their
    log importance ratios under the exact model; ``finite(state)`` whether the
    guide's parameters are all finite.
    """

    def __init__(self, fn: Callable, constants: Mapping[str, Any], overrides: Mapping[str, Any], example: Mapping[str, Any], config: InferenceConfig) -> None:
        import jax
        import jax.numpy as jnp
        from jax.example_libraries.optimizers import adam, exponential_decay
        from jax.flatten_util import ravel_pytree
        from numpyro import handlers
        from numpyro.infer.util import constrain_fn, potential_energy

        from wager.kernel.nuts import _Bound

        model = _Bound(fn, dict(constants))
        exact = _Bound(fn, {**constants, **overrides})
        transforms, shapes, batched, derived = _latent_sites(model, example)
        if batched and _latent_sites(exact, example)[2]:
            raise SpecError("model", "it subsamples its data (a plate with subsample_size) and nothing turns that off for the whole-data density the Pareto-k check needs: drop subsample_size")
        _, unravel = ravel_pytree({k: jnp.zeros(s) for k, s in shapes.items()})
        dim = sum(int(np.prod(s)) for s in shapes.values())
        particles, total = config.vi_particles, config.chains * config.draws
        opt_init, opt_update, opt_params = adam(exponential_decay(config.vi_learning_rate, config.vi_steps, DECAY))

        def unconstrained(values: Mapping[str, Any]) -> Any:
            return ravel_pytree({k: transforms[k].inv(values[k]) for k in shapes})[0]

        def init(key: Any, arrays: Mapping[str, Any]) -> tuple[Any, Any]:
            key_init, key_run = jax.random.split(key)
            seeded = handlers.substitute(handlers.seed(model, key_init), substitute_fn=_prior_centre)
            trace = handlers.trace(seeded).get_trace(**arrays)
            centre = unconstrained({k: trace[k]["value"] for k in shapes})
            spread = jax.random.uniform(jax.random.fold_in(key_init, 1), (START_CANDIDATES, dim), minval=-START_RADIUS, maxval=START_RADIUS)
            candidates = jnp.concatenate([centre[None], spread.astype(centre.dtype)])
            # one at a time, as the draws' ratios are: the whole data's density, eleven times, in the memory of one
            energy = jax.lax.map(lambda t: potential_energy(exact, (), arrays, unravel(t)), candidates)
            start = jnp.argmin(jnp.where(jnp.isnan(energy), jnp.inf, energy))  # the centre (0) on ties, and where none is finite
            rho = jnp.full(dim, np.log(np.expm1(INIT_SCALE)))  # softplus(rho) = INIT_SCALE
            return _strong((opt_init((candidates[start], rho)), key_run, jnp.zeros((), dtype=jnp.int32))), start

        def loss(guide: Any, key: Any, arrays: Mapping[str, Any]) -> Any:
            loc, rho = guide
            scale = jax.nn.softplus(rho)
            key_eps, key_model = jax.random.split(key)
            theta = loc + scale * jax.random.normal(key_eps, (particles, dim))
            if batched:  # the plate draws its subsample from the seed; a whole-data model needs none
                energy = jax.vmap(lambda t, k: potential_energy(handlers.seed(model, k), (), arrays, unravel(t)))(
                    theta, jax.random.split(key_model, particles)
                )
            else:
                energy = jax.vmap(lambda t: potential_energy(model, (), arrays, unravel(t)))(theta)
            return energy.mean() - jnp.log(scale).sum() - 0.5 * dim * (1.0 + np.log(2 * np.pi))

        def run(state: Any, arrays: Mapping[str, Any], n: int) -> Any:
            def step(carry: Any, _: Any) -> Any:
                opt, key, i = carry
                key, sub = jax.random.split(key)
                value, grad = jax.value_and_grad(loss)(opt_params(opt), sub, arrays)
                return (opt_update(i, grad, opt), key, i + 1), value

            state, values = jax.lax.scan(step, state, None, length=n)
            return _strong(state), values

        def draw(state: Any, key: Any, arrays: Mapping[str, Any]) -> tuple[dict, Any]:
            loc, rho = opt_params(state[0])
            scale = jax.nn.softplus(rho)
            eps = jax.random.normal(key, (total, dim))
            theta = loc + scale * eps
            log_q = (-0.5 * eps**2 - jnp.log(scale) - 0.5 * np.log(2 * np.pi)).sum(axis=1)
            def one(t: Any) -> tuple[Any, dict]:
                params = unravel(t)
                energy = potential_energy(exact, (), arrays, params)
                if not derived:
                    return energy, {}
                values = constrain_fn(exact, (), arrays, params, return_deterministic=True)
                return energy, {k: values[k] for k in derived}

            energy, deterministic = jax.lax.map(one, theta, batch_size=min(total, RATIO_BATCH))
            constrained = jax.vmap(lambda t: {k: transforms[k](v) for k, v in unravel(t).items()})(theta)
            return {**constrained, **deterministic}, -energy - log_q

        init_jit, run_jit = jax.jit(init), jax.jit(run, static_argnums=2)

        def init_in(key: Any, arrays: Mapping[str, Any], x64: bool = False) -> Any:
            with jax.enable_x64(x64), _quiet_float32(x64):
                return init_jit(key, arrays)

        def run_in(state: Any, arrays: Mapping[str, Any], n: int, x64: bool = False) -> Any:
            with jax.enable_x64(x64), _quiet_float32(x64):
                return run_jit(state, arrays, n)

        def moments(state: Any) -> tuple[dict, dict]:
            loc, rho = opt_params(state[0])
            return unravel(loc), unravel(jax.nn.softplus(rho))

        def finite(state: Any) -> bool:
            loc, rho = opt_params(state[0])
            return bool(np.isfinite(np.asarray(loc)).all() and np.isfinite(np.asarray(rho)).all())

        self.init, self.run = init_in, run_in
        self.draw = jax.jit(draw)
        self.moments, self.finite = moments, finite


@contextmanager
def _quiet_float32(x64: bool) -> Iterator[None]:
    """In float32, what float32 does is expected, not news: data beyond its range become inf when
    cast (the retry in float64 is for that), and a model's float64 requests are truncated (JAX warns)."""
    if x64:
        yield
        return
    with np.errstate(over="ignore"), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Explicitly requested dtype", category=UserWarning)
        yield


def _prior_centre(site: Mapping[str, Any]) -> Any:
    """Where the guide starts for ``site``: its prior's mean, or its median where the mean is not finite
    (a half-Cauchy's is infinite, a Cauchy's undefined); NumPyro's ``init_to_mean`` would start at inf."""
    import jax.numpy as jnp
    from numpyro.infer import init_to_mean, init_to_median

    mean = init_to_mean(site)
    if mean is None:
        return None
    return jnp.where(jnp.isfinite(mean), mean, init_to_median(site))


def _strong(tree: Any) -> Any:
    """The tree with no weakly typed leaves, so every chunk's call sees the same
    signature and reuses one compilation."""
    import jax

    return jax.tree_util.tree_map(lambda a: jax.lax.convert_element_type(a, a.dtype), tree)


def _latent_sites(model: Callable, example: Mapping[str, Any]) -> tuple[dict, dict, bool, tuple[str, ...]]:
    """Each latent site's bijection to unconstrained space and its unconstrained
    shape, whether the model mini-batches (has a subsampled plate), and its
    deterministic sites (which the draws carry, as NUTS's do), read off one
    abstract trace of the model (nothing is compiled; sites that cannot be
    sampled, such as an improper flat prior, take a uniform value)."""
    import jax
    from numpyro import handlers
    from numpyro.distributions.transforms import biject_to
    from numpyro.infer import init_to_uniform

    found: dict[str, tuple[Any, tuple[int, ...], frozenset[str]]] = {}
    subsampled: set[str] = set()
    derived: list[str] = []

    def probe(arrays: Mapping[str, Any]) -> int:
        seeded = handlers.substitute(handlers.seed(model, jax.random.PRNGKey(0)), substitute_fn=init_to_uniform)
        trace = handlers.trace(seeded).get_trace(**arrays)
        for name, site in trace.items():
            if site["type"] == "deterministic":
                derived.append(name)
            if site["type"] == "plate" and site["args"][1] is not None and site["args"][1] < site["args"][0]:
                subsampled.add(name)
            if site["type"] != "sample" or site["is_observed"]:
                continue
            if site["fn"].support.is_discrete:
                raise SpecError("model", f"latent site {name!r} is discrete: variational inference here needs continuous latents (sum it out in the model)")
            transform = biject_to(site["fn"].support)
            plates = frozenset(f.name for f in site["cond_indep_stack"])
            found[name] = (transform, tuple(transform.inverse_shape(site["value"].shape)), plates)
        return 0

    jax.eval_shape(probe, dict(example))
    inside = [name for name, (_, _, plates) in found.items() if plates & subsampled]
    if inside:
        raise SpecError("model", f"latent site {inside[0]!r} is inside a subsampled plate: keep latents outside the mini-batched likelihood")
    return {k: t for k, (t, _, _) in found.items()}, {k: s for k, (_, s, _) in found.items()}, bool(subsampled), tuple(derived)


_FITS: OrderedDict[tuple, _Fit] = OrderedDict()
_FITS_LOCK = threading.Lock()


def _compiled_fit(fn: Callable, constants: Mapping[str, Any], overrides: Mapping[str, Any], arrays: Mapping[str, Any], config: InferenceConfig) -> _Fit:
    from wager.kernel.nuts import _constants_key

    shapes = tuple(sorted((k, np.shape(v), str(np.asarray(v).dtype)) for k, v in arrays.items()))
    settings = (config.vi_steps, config.vi_learning_rate, config.vi_particles, config.chains * config.draws)
    key = (fn, _constants_key(constants), _constants_key(overrides), shapes, settings)
    with _FITS_LOCK:
        fit = _FITS.get(key)
        if fit is not None:
            _FITS.move_to_end(key)
            return fit
    fit = _Fit(fn, constants, overrides, arrays, config)
    with _FITS_LOCK:
        _FITS[key] = fit
        while len(_FITS) > FITS_KEPT:
            _FITS.popitem(last=False)
    return fit
