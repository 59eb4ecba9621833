"""NUTS through NumPyro: several chains, one integer seed, per-chain keys derived from it.

Each chain runs from its own key ``PRNGKey(chain_seeds[c])``, so a chain's draws
depend on the run seed and the chain's index only, not on how many chains run.
Chains run one after the other (``chain_method="sequential"``) or vectorised in
one call; the method is recorded because the two give different draws.
"Sequential" chains are independent calls of one compiled program, so they run
on a pool of threads, one per CPU (``WAGER_CHAIN_THREADS``; XLA releases the GIL
while a program runs): on two cores four chains take the time of two, and the
draws are the same bits as one after the other. A program whose LAPACK calls
(a Cholesky, say) are big enough for jaxlib to spread over XLA's thread pool runs
its chains one at a time instead: two such calls at once deadlock (``pool_safe``).
Workers of a fan-out run one thread each (``wager.executors.worker_env``):
there the parallelism is the workers'.

**One compiled chain per model.** wager drives NumPyro's NUTS kernel
(``numpyro.infer.hmc.hmc`` with ``initialize_model(..., dynamic_args=True)``)
itself: one jitted function runs a whole chain (initial point by
``init_to_uniform`` or a draw from the prior, as ``Model.nuts_init`` says;
warmup with step-size and diagonal mass-matrix adaptation; then the kept
draws, constrained), with the data's arrays as its arguments and
everything else (priors, Python numbers, strings) bound into the model. The
compiled chain is kept per model function, constants and sampler settings, so
fitting the same model to new data of the same shapes (SBC, replays,
monitoring, rolling forecast origins) neither traces nor compiles again.
``MCMC.run`` in NumPyro 0.22 compiles its sampling loop again on every call
and never frees the old code: 64 MB per fit of the revenue model, enough to
kill a worker process after a few dozen SBC simulations.

A model that reads an array's values in Python (``int(n)``,
``if y.sum() > 0``) cannot take its data as traced arguments; it is compiled
with its data as constants, once per fit and not kept. Which way a model runs
depends on the model only, so a run and its replay take the same path and
give the same bits.
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np

from wager.kernel.inference import InferenceConfig, Model, ProgressFn
from wager.kernel.posterior import Posterior
from wager.kernel.seeds import chain_seeds



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

    seeds = chain_seeds(config.seed, config.chains)
    data = {**model.data, **model.exact_overrides}  # NUTS needs the exact density: no mini-batches
    arrays, constants = split_data(data)
    # the chain's prototype (the unconstrained layout) is read off the first data it sees: shapes are part of the key
    shapes = tuple(sorted((k, np.shape(v), str(np.asarray(v).dtype)) for k, v in arrays.items()))
    key = (model.numpyro_model, _constants_key(constants), _settings(config), shapes, model.nuts_init)
    warm = _warm_start(model, config, seeds, progress) if model.nuts_init == "vi" else None
    starts = None if warm is None else warm[0]
    traced = key not in _UNTRACEABLE
    if traced:
        try:
            chain = _compiled_chain(key, model.numpyro_model, constants, arrays, config, model.nuts_init)
            samples, extra = _sample(chain, config, seeds, arrays, progress, starts)
        except jax.errors.JAXTypeError:
            _UNTRACEABLE.add(key)
            traced = False
    if not traced:
        # the model reads its data's values in Python: bind them as constants
        chain = _Chain(model.numpyro_model, data, {}, config, model.nuts_init)
        samples, extra = _sample(chain, config, seeds, {}, progress, starts)

    stats = {
        "diverging": extra["diverging"].astype(bool),
        "energy": extra["energy"],
        "n_steps": extra["num_steps"],
        # a tree of depth d takes at most 2**d - 1 leapfrog steps (Hoffman & Gelman 2014)
        "tree_depth": np.ceil(np.log2(extra["num_steps"] + 1)).astype(int),
        "acceptance_rate": extra["accept_prob"],
        "step_size": extra["step_size"],
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
            "data_as_arguments": traced,
            "init": COLD_STARTS[model.nuts_init] if warm is None else warm[1],
            **numerics,
        },
    )


COLD_STARTS = {
    "uniform": "uniform on (-2, 2) in unconstrained space; unit diagonal mass matrix",
    "prior": "each chain at its own draw from the prior; unit diagonal mass matrix",
}
"""Where chains start without a warm start (``Model.nuts_init``), in words for the record."""

WARM_START_STREAM = 7_351
"""``derive_seed`` stream of a warm start's ADVI fit and starting draws (apart from the chain seeds)."""


def _warm_start(
    model: Model, config: InferenceConfig, seeds: list[int], progress: ProgressFn | None
) -> tuple[tuple[dict[str, np.ndarray], np.ndarray], str]:
    """Where each chain starts, and its first diagonal inverse mass matrix, from an ADVI fit
    (``Model.nuts_init == "vi"``): like PyMC's ``init="advi+adapt_diag"``.

    On a model of a thousand parameters whose posterior scales span orders of
    magnitude (the 304-series forecast panel: variances from 1e-5 to 1), a chain
    from the unit mass matrix spends its warmup at the tree-depth limit. The
    guide's variances put every coordinate on its own scale from the first
    step, so warmup adapts from there. Each chain starts at its own draw from
    the guide (different points, so R-hat can still see chains that disagree).
    The guide is fitted from a seed derived from the run's, so the run stays a
    function of its seed. Returns ``((starts (chains, ...) per site, inverse
    mass matrix (D,)), description)``.
    """
    from jax.flatten_util import ravel_pytree

    from wager.kernel.seeds import derive_seed
    from wager.kernel.vi import fit_guide

    guide = fit_guide(model, config, derive_seed(config.seed, WARM_START_STREAM, 0), progress)
    rng = np.random.default_rng(derive_seed(config.seed, WARM_START_STREAM, 1))
    starts = {
        k: guide.loc[k][None] + guide.scale[k][None] * rng.standard_normal((len(seeds), *np.shape(guide.loc[k])))
        for k in guide.loc
    }
    inverse_mass = np.asarray(ravel_pytree({k: v**2 for k, v in guide.scale.items()})[0])
    what = (
        f"ADVI warm start ({guide.steps} Adam steps, final loss {guide.final_elbo_loss:.6g}): each chain starts at "
        "its own draw from the guide; the diagonal mass matrix starts at the guide's variances"
    )
    return (starts, inverse_mass), what


def _sample(
    chain: "_Chain", config: InferenceConfig, seeds: list[int], arrays: Mapping[str, Any], progress: ProgressFn | None,
    starts: tuple[dict[str, np.ndarray], np.ndarray] | None = None,
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Run every chain; draws and stats stacked ``(chains, draws, ...)``. ``starts``: each
    chain's unconstrained starting point (stacked per site) and the first inverse mass
    matrix (``_warm_start``); ``None`` starts where ``Model.nuts_init`` says (``COLD_STARTS``), at unit mass."""
    import jax

    label = f"NUTS chains ({config.warmup} warmup + {config.draws} draws each)"
    keys = [jax.random.PRNGKey(s) for s in seeds]
    if config.chain_method == "vectorized":
        if progress:
            progress(f"{label}, {config.chains} chains vectorised", 0, 1)
        if starts is None:
            samples, extra = chain.vectorized(jax.numpy.stack(keys), arrays, None)
        else:
            samples, extra = chain.vectorized_from(jax.numpy.stack(keys), arrays, starts)
        if progress:
            progress(f"{label}, {config.chains} chains vectorised", 1, 1)
        return _numpy(samples), _numpy(extra)

    def run(index: int) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        start = None if starts is None else ({k: v[index] for k, v in starts[0].items()}, starts[1])
        samples, extra = chain.one(keys[index], arrays, start)
        return _numpy(samples), _numpy(extra)

    if progress:
        progress(label, 0, config.chains)
    _, shareable = chain.compile(keys[0], arrays, None if starts is None else ({k: v[0] for k, v in starts[0].items()}, starts[1]))
    threads = chain_threads(config.chains) if shareable else 1
    per_chain: list[Any] = [None] * config.chains
    with ThreadPoolExecutor(max_workers=threads) as pool:
        pending = {pool.submit(run, index): index for index in range(config.chains)}
        for done, finished in enumerate(as_completed(pending), start=1):
            per_chain[pending[finished]] = finished.result()
            if progress:
                progress(label, done, config.chains)
    samples = {k: np.stack([c[0][k] for c in per_chain]) for k in per_chain[0][0]}
    extra = {k: np.stack([c[1][k] for c in per_chain]) for k in per_chain[0][1]}
    return samples, extra


CHAIN_THREADS_VARIABLE = "WAGER_CHAIN_THREADS"


def available_cpus() -> int:
    """The CPUs this process may run on (its affinity mask where the system has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def chain_threads(chains: int) -> int:
    """Threads that run sequential chains: ``WAGER_CHAIN_THREADS`` if set (fan-out workers
    set 1), else one per CPU this process may use; never more than the chains.
    ``SpecError`` naming the variable unless it is a whole number of at least 1."""
    value = os.environ.get(CHAIN_THREADS_VARIABLE, "").strip()
    if not value:
        return max(1, min(chains, available_cpus()))
    if not value.isdigit() or int(value) < 1:
        from wager.errors import SpecError

        raise SpecError(CHAIN_THREADS_VARIABLE, f"must be a whole number of threads, at least 1; got {value!r}")
    return min(chains, int(value))


POOL_SAFE_CUSTOM_CALLS = frozenset({"xla_ffi_python_cpu_callback"})
"""Custom calls a program may always make and still run beside another execution of itself."""

LAPACK_INLINE_WORK = 100_000
"""Work (batch x jaxlib's flop estimate per matrix) below which a LAPACK call is pool-safe:
half of the 200,000 below which jaxlib's CPU kernels run a batch on the calling thread.
Above it, jaxlib 0.10 splits the batch over XLA's intra-op thread pool and blocks on
it, and two executions waiting at once deadlock (jaxlib ``GetLapackBatchChunkSize``
and ``ParallelBatchMap``; on 2 cores and jaxlib 0.10.2, 590 10 x 10 Cholesky factors
ran 3,000 times on two threads, 620 hung; so did the LCL reserving model). One
matrix (a batch of 1) always runs inline."""

_LAPACK_COST = {
    "potrf": lambda rows, cols: rows**3 // 3,  # Cholesky
    "trsm": lambda rows, cols: rows * cols * max(rows, cols),  # triangular solve, either side
    "getrf": lambda rows, cols: rows * cols * min(rows, cols),  # LU
}
_CUSTOM_CALL = re.compile(r'custom_call_target="([^"]+)"(?:, operand_layout_constraints=\{((?:[^{}]|\{[^{}]*\})*)\})?')
_SHAPE = re.compile(r"\w+\[([\d,]*)\]")


def _lapack_inline(target: str, operands: str) -> bool:
    """Whether jaxlib runs this LAPACK call on the calling thread (``LAPACK_INLINE_WORK``)."""
    kernel = re.fullmatch(r"lapack_([sdcz])(\w+?)_ffi", target)
    if kernel is None or not operands:
        return False
    shapes = [tuple(int(d) for d in dims.split(",") if d) for dims in _SHAPE.findall(operands)]
    matrix = shapes[-1]  # the factored matrix, or a solve's right-hand side
    if len(matrix) < 2:
        return False
    batch = int(np.prod(matrix[:-2], dtype=np.int64))
    if batch == 1:
        return True
    cost = _LAPACK_COST.get(kernel.group(2))
    if cost is None:
        return False
    work = batch * cost(*matrix[-2:]) * (3 if kernel.group(1) in "cz" else 1)
    return work < LAPACK_INLINE_WORK


def pool_safe(executable: Any) -> bool:
    """Whether a compiled chain may run on several threads at once: its custom calls are
    all in ``POOL_SAFE_CUSTOM_CALLS`` or LAPACK calls small enough to run inline."""
    for line in executable.as_text().splitlines():
        for target, operands in _CUSTOM_CALL.findall(line):
            if target not in POOL_SAFE_CUSTOM_CALLS and not _lapack_inline(target, operands):
                return False
    return True


def _numpy(tree: Mapping[str, Any]) -> dict[str, np.ndarray]:
    return {k: np.asarray(v) for k, v in tree.items()}


# --- compiled chains, kept per model ------------------------------------------


def split_data(data: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The model's keyword data as (numeric arrays, which become arguments of the compiled chain; the rest)."""
    arrays, constants = {}, {}
    for name, value in data.items():
        if isinstance(value, np.ndarray) and value.dtype.kind in "biuf":
            arrays[name] = value
        else:
            constants[name] = value
    return arrays, constants


UNEVALUABLE = (
    "the model's log density is not finite at any of the 100 starting points tried: the data hold values "
    "far outside the model's scale (e.g. 1e300) or values the model gives zero probability, or the model itself is "
    "undefined there (a NaN of its own making)"
)
"""Why NumPyro found no starting point: the model cannot be evaluated on this data."""
MODEL_NAN = "the model's own arithmetic is undefined there (0 * inf, a NaN constant, a square root of a negative)"
"""What a log density NaN everywhere inference looked says about the model."""


def _unevaluable(bound: Callable, example: Mapping[str, Any]) -> Exception:
    """The error for a model NumPyro found no finite starting point of: a log density NaN at the
    starting points is the model's own arithmetic (``model``), an infinite one the data's (``data``),
    as ``wager.kernel.vi.unevaluable`` tells them apart."""
    import jax
    from numpyro.infer.util import find_valid_initial_params, init_to_uniform

    from wager.errors import SpecError

    (_, energy, _), _ = find_valid_initial_params(jax.random.PRNGKey(0), bound, init_strategy=init_to_uniform, model_kwargs=dict(example))
    if np.isnan(energy):
        return SpecError("model", "its log density is NaN at every one of the 100 starting points tried: " + MODEL_NAN)
    return SpecError("data", UNEVALUABLE)


class _Chain:
    """One NUTS chain of a model as a jitted function of ``(rng_key, arrays)``.

    ``one`` runs a chain; ``vectorized`` runs a chain per key in one call.
    Tracing happens on the first call; a call with arrays of the same shapes
    and dtypes reuses the compiled code. ``compile`` traces and compiles ``one``
    for a cold or a warm start ahead of time, under a lock: NumPyro's effect
    handlers live on one global stack, so two threads must never trace at once,
    and the chains that threads then run share the one executable.
    """

    def __init__(
        self, fn: Callable, constants: Mapping[str, Any], example: Mapping[str, Any], config: InferenceConfig, init: str = "uniform"
    ) -> None:
        import jax
        from numpyro.infer.hmc import hmc
        from numpyro.infer.initialization import init_to_sample
        from numpyro.infer.util import ParamInfo, find_valid_initial_params, init_to_uniform, initialize_model

        bound = _Bound(fn, dict(constants))
        try:
            prototype, potential_gen, postprocess_gen, _ = initialize_model(
                jax.random.PRNGKey(0), bound, model_kwargs=dict(example), dynamic_args=True
            )
        except RuntimeError as exc:
            if "Cannot find valid initial parameters" not in str(exc):
                raise
            raise _unevaluable(bound, example) from None
        init_kernel, sample_kernel = hmc(potential_fn_gen=potential_gen, algo="NUTS")
        warmup, draws = config.warmup, config.draws
        cold_start = init_to_sample if init == "prior" else init_to_uniform  # COLD_STARTS

        def run_chain(rng_key: Any, arrays: Mapping[str, Any], start: Any = None) -> tuple[dict, dict]:
            key_init, key_run = jax.random.split(rng_key)
            if start is None:
                # a finite starting point (z, potential energy, gradient); if none is found in 100 tries
                # the chain diverges from its first step and the gates block the run
                found, _ = find_valid_initial_params(
                    key_init, bound, init_strategy=cold_start, model_kwargs=arrays, prototype_params=prototype.z
                )
                params, inverse_mass = ParamInfo(*found), None
            else:  # a warm start: the point and the first diagonal inverse mass matrix are given
                z, inverse_mass = start
                energy, grad = jax.value_and_grad(potential_gen(**arrays))(z)
                params = ParamInfo(z, energy, grad)
            state = init_kernel(
                params,
                num_warmup=warmup,
                inverse_mass_matrix=inverse_mass,
                target_accept_prob=config.target_accept,
                max_tree_depth=config.max_tree_depth,
                model_kwargs=arrays,
                rng_key=key_run,
            )
            step = lambda state, _: (sample_kernel(state, model_kwargs=arrays), None)  # noqa: E731
            state, _ = jax.lax.scan(step, state, None, length=warmup)

            def keep(state: Any, _: Any) -> tuple[Any, tuple]:
                state = sample_kernel(state, model_kwargs=arrays)
                fields = {
                    "diverging": state.diverging,
                    "energy": state.energy,
                    "num_steps": state.num_steps,
                    "accept_prob": state.accept_prob,
                    "step_size": state.adapt_state.step_size,
                }
                return state, (state.z, fields)

            _, (z, extra) = jax.lax.scan(keep, state, None, length=draws)
            constrained = jax.vmap(postprocess_gen(**arrays))(z)
            return constrained, extra

        self._jitted = jax.jit(run_chain)
        self._executables: dict[bool, tuple[Any, bool]] = {}  # cold or warm start: (executable, pool_safe)
        self._lock = threading.Lock()
        self.vectorized = jax.jit(jax.vmap(run_chain, in_axes=(0, None, None)))
        self.vectorized_from = jax.jit(jax.vmap(run_chain, in_axes=(0, None, (0, None))))

    def compile(self, rng_key: Any, arrays: Mapping[str, Any], start: Any = None) -> tuple[Any, bool]:
        """The executable of ``one`` for arguments shaped like these (a cold start, or a
        warm one), and whether it may run on several threads at once (``pool_safe``)."""
        warm = start is not None
        with self._lock:
            if warm not in self._executables:
                executable = self._jitted.lower(rng_key, arrays, start).compile()
                self._executables[warm] = (executable, pool_safe(executable))
            return self._executables[warm]

    def one(self, rng_key: Any, arrays: Mapping[str, Any], start: Any = None) -> tuple[dict, dict]:
        """One chain: its constrained draws and sample statistics."""
        executable, _ = self.compile(rng_key, arrays, start)
        return executable(rng_key, arrays, start)


_CHAINS: OrderedDict[tuple, _Chain] = OrderedDict()
_UNTRACEABLE: set[tuple] = set()
_CHAINS_LOCK = threading.Lock()
CHAINS_KEPT = 8
"""How many compiled chains a process keeps (least recently used dropped first)."""


def _compiled_chain(
    key: tuple, fn: Callable, constants: Mapping[str, Any], arrays: Mapping[str, Any], config: InferenceConfig, init: str
) -> _Chain:
    with _CHAINS_LOCK:
        chain = _CHAINS.get(key)
        if chain is not None:
            _CHAINS.move_to_end(key)
            return chain
    chain = _Chain(fn, constants, arrays, config, init)
    with _CHAINS_LOCK:
        _CHAINS[key] = chain
        while len(_CHAINS) > CHAINS_KEPT:
            _CHAINS.popitem(last=False)
    return chain


def _settings(config: InferenceConfig) -> tuple:
    return (config.warmup, config.draws, config.target_accept, config.max_tree_depth)


def _constants_key(constants: Mapping[str, Any]) -> tuple:
    """A key that tells constants apart: arrays by their bytes (``repr`` elides long ones), the rest by ``repr``."""
    out = []
    for name, value in sorted(constants.items()):
        if isinstance(value, np.ndarray):
            digest = hashlib.sha256(np.ascontiguousarray(value).tobytes()).hexdigest()
            out.append((name, str(value.dtype), value.shape, digest))
        else:
            out.append((name, repr(value)))
    return tuple(out)


@dataclass(frozen=True)
class _Bound:
    """``fn`` with its constant keyword data bound; called with the array data."""

    fn: Callable
    constants: Mapping[str, Any]

    def __call__(self, **arrays: Any) -> Any:
        return self.fn(**arrays, **self.constants)
