"""Bring your own model: the domain's part of the shared path.

``prepare`` loads the user's NumPyro model function from its file and the data
from CSV / JSON / the spec, then traces the model once (``seed`` + ``trace``
handlers) to check that the spec and the model agree before any sampling:

* the model's arguments are the data's columns (plus ``priors``);
* every prior the model looks up (``priors["tau"]``) is declared in the spec,
  and every declared prior is looked up;
* every loss reads only posterior variables (latent or deterministic sites)
  and gives one number per draw.

``decide`` reports posterior summaries (mean with its Monte Carlo standard
error, sd, the 94% equal-tailed interval between the 3% and 97% quantiles),
and, when the spec declares actions, the Bayes action
``argmin_a E[L(a, theta) | y]`` with each action's expected loss (and MCSE) and
``P(a has the smallest loss | y)``.
"""

from __future__ import annotations

import hashlib
import importlib.util
import inspect
import json
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

from wager.custom.spec import CustomSpec, check_array, check_loss, evaluate_loss, model_reference
from wager.errors import SpecError
from wager.kernel.decision import Action, decide
from wager.kernel.diagnostics import mcse_mean
from wager.kernel.digits import decimals_for, fmt, fmt_percent
from wager.kernel.inference import Model
from wager.kernel.outcome import Outcome
from wager.kernel.posterior import Posterior
from wager.kernel.priors import Prior
from wager.tables import resolve, row_at

INTERVAL = (0.03, 0.97)
"""The reported 94% equal-tailed credible interval (ArviZ's default mass)."""
MAX_LINES = 30
"""Posterior elements listed in prose; the JSON summary has all of them."""


# --- priors, looked up by name inside the model ------------------------------


class PriorLookup(Mapping):
    """``priors["tau"]`` -> the NumPyro distribution of the spec's prior ``tau``.

    Records which names were asked for, so ``prepare`` can check that the spec
    and the model agree.
    """

    def __init__(self, priors: Mapping[str, Prior]) -> None:
        self._priors = dict(priors)
        self.used: set[str] = set()
        self.handed_out: list[tuple[str, Any]] = []  # (name, distribution), for trace_prior_sites

    def __getitem__(self, name: str) -> Any:
        if name not in self._priors:
            declared = ", ".join(sorted(self._priors)) or "none"
            raise SpecError(
                f"priors.{name}",
                f"the model asks for a prior named {name!r} that the spec does not declare (declared: {declared})",
            )
        self.used.add(name)
        distribution = self._priors[name].to_numpyro()
        self.handed_out.append((name, distribution))
        return distribution

    def __contains__(self, name: object) -> bool:
        return name in self._priors

    def get(self, name: str, default: Any = None) -> Any:
        return self[name] if name in self._priors else default

    def __iter__(self) -> Iterator[str]:
        return iter(self._priors)

    def __len__(self) -> int:
        return len(self._priors)


class ModelWithPriors:
    """The NumPyro model the engines run: ``model(**data)`` calls the user's
    ``function(**data, priors=PriorLookup(priors))``.

    Picklable (for spawned worker processes): it carries the file path and the
    function's name, and loads the function again where it is unpickled.
    """

    def __init__(
        self, path: Path, function: str, priors: Mapping[str, Prior], loaded: Callable[..., Any] | None = None
    ) -> None:
        self.path = str(path)
        self.function = function
        self.priors = dict(priors)
        self._loaded = loaded

    def __call__(self, *args: Any, **data: Any) -> Any:
        if self._loaded is None:
            self._loaded = load_function(Path(self.path), self.function)
        return self._loaded(*args, **data, priors=PriorLookup(self.priors))

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_loaded": None}


# --- loading the model and the data -----------------------------------------


def load_function(path: Path, function: str) -> Callable[..., Any]:
    """The function ``function`` defined in the Python file ``path``."""
    if not path.is_file():
        raise SpecError("model", f"no such file: {path}")
    module_name = "wager_user_model_" + hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:16]
    module_spec = importlib.util.spec_from_file_location(module_name, path)
    if module_spec is None or module_spec.loader is None:
        raise SpecError("model", f"{path} cannot be loaded as a Python module")
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[module_name] = module  # dataclasses and pickling in the file look themselves up here
    try:
        module_spec.loader.exec_module(module)
    except SyntaxError as exc:
        sys.modules.pop(module_name, None)
        raise SpecError("model", f"{path.name}, line {exc.lineno}: syntax error: {exc.msg}") from None
    except Exception as exc:  # the user's file failed to import: its own message is the useful part
        sys.modules.pop(module_name, None)
        raise SpecError("model", f"importing {path.name} failed: {type(exc).__name__}: {exc}") from None
    except SystemExit as exc:
        sys.modules.pop(module_name, None)
        raise exit_refused(f"importing {path.name}", exc) from None
    fn = getattr(module, function, None)
    if fn is None:
        defined = sorted(n for n, v in vars(module).items() if inspect.isfunction(v) and v.__module__ == module_name)
        raise SpecError("model", f"{path.name} has no function {function!r} (it defines: {', '.join(defined) or 'none'})")
    if not callable(fn):
        raise SpecError("model", f"{function!r} in {path.name} is not a function")
    return fn


def exit_refused(doing: str, exc: SystemExit) -> SpecError:
    """The error for user code that called ``sys.exit``: it would otherwise end
    wager itself, with the user's exit code and no word of why."""
    return SpecError("model", f"{doing} called sys.exit({exc.code!r}); a model file must define the model, not end the program")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object's pairs as a dict, refusing a repeated name (``json`` alone keeps the last)."""
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"the name {key!r} appears twice in one object")
        out[key] = value
    return out


def load_data(data: str | Mapping[str, Any], base_dir: Path | None = None) -> dict[str, np.ndarray]:
    """Name -> array: CSV columns, the entries of a JSON object, or the inline mapping.

    Whole numbers stay integers (counts, group indices); anything else is float64.
    """
    if not isinstance(data, str):
        return {name: _as_array(value) for name, value in data.items()}
    path = resolve(data, base_dir)
    if not path.is_file():
        raise SpecError("data", f"no such file: {path}")
    if path.suffix.lower() == ".json":
        try:
            payload = json.loads(path.read_text(encoding="utf-8"), object_pairs_hook=_unique_keys)
        except (ValueError, UnicodeDecodeError) as exc:
            raise SpecError("data", f"{path.name} is not valid JSON: {exc}") from None
        if not isinstance(payload, dict) or not payload:
            raise SpecError("data", f"{path.name} must hold a JSON object mapping names to numbers or lists")
        for name, value in payload.items():
            check_array(value, f"data.{name}")
        return {name: _as_array(value) for name, value in payload.items()}
    import pandas as pd

    try:
        frame = pd.read_csv(path)
    except Exception as exc:  # the reader's own message is the useful part
        raise SpecError("data", f"{path.name} could not be read as CSV: {exc}") from None
    if frame.empty:
        raise SpecError("data", f"{path.name} has no rows")
    columns = {}
    for column in frame.columns:
        if not pd.api.types.is_numeric_dtype(frame[column]) or pd.api.types.is_bool_dtype(frame[column]):
            raise SpecError(f"data.{column}", "every column must be numeric")
        values = frame[column].to_numpy()
        if not np.all(np.isfinite(values)):
            raise SpecError(f"data.{column}", f"{row_at(np.flatnonzero(~np.isfinite(values))[0])} is missing or not finite")
        columns[str(column)] = _as_array(values)
    return columns


def _as_array(value: Any) -> np.ndarray:
    array = np.asarray(value)
    if array.dtype.kind in "iu":
        return array.astype(np.int64)
    return array.astype(np.float64)



def check_arguments(fn: Callable[..., Any], function: str, data: Mapping[str, Any]) -> None:
    """The model takes ``priors`` and exactly the data's names (those with defaults may be left out)."""
    params = inspect.signature(fn).parameters
    named = [p for p in params.values() if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    takes_any = any(p.kind == p.VAR_KEYWORD for p in params.values())
    if "priors" not in params and not takes_any:
        raise SpecError("model", f"{function}() must take a keyword argument 'priors' (where it looks up the spec's priors by name)")
    if "priors" in data:
        raise SpecError("data", "'priors' is reserved for the spec's priors; rename that column")
    arguments = [p.name for p in named if p.name != "priors"]
    missing = [p.name for p in named if p.name != "priors" and p.default is p.empty and p.name not in data]
    if missing:
        raise SpecError("data", f"{function}() takes {', '.join(arguments)}; the data has no {', '.join(repr(m) for m in missing)} (it has {', '.join(data)})")
    extra = [name for name in data if name not in arguments]
    if extra and not takes_any:
        raise SpecError("data", f"{', '.join(repr(e) for e in extra)} in the data is not an argument of {function}() (it takes {', '.join(arguments)})")


# --- prepare ----------------------------------------------------------------


@dataclass(frozen=True)
class CustomProblem:
    """What the shared path runs: the model, its priors, and how to decide."""

    spec: CustomSpec
    model: Model
    priors: dict[str, Prior]
    variables: dict[str, tuple[int, ...]]
    """Posterior variable -> its shape in one draw."""
    model_digest: str
    """SHA-256 of the model file's bytes: a changed model changes the record."""

    def decide(self, posterior: Posterior) -> Outcome:
        return outcome(self, posterior)

    @cached_property
    def prior_sites(self) -> dict[str, tuple[str, ...]]:
        """Prior name -> the latent sites drawn from it (for prior sensitivity; traces the model once)."""
        wrapped = self.model.numpyro_model
        assert isinstance(wrapped, ModelWithPriors)
        fn = wrapped._loaded or load_function(Path(wrapped.path), wrapped.function)
        return trace_prior_sites(fn, self.model.data, self.priors)


def prepare(spec: CustomSpec, base_dir: Path | None = None) -> CustomProblem:
    """Load the model and the data, check them against the spec by one traced run."""
    file, function = model_reference(spec.model)
    path = resolve(file, base_dir)
    fn = load_function(path, function)
    data = load_data(spec.data, base_dir)
    check_arguments(fn, function, data)
    variables = trace_variables(fn, function, data, spec.priors)
    if spec.decision is not None:
        for i, action in enumerate(spec.decision.actions):
            check_loss(action.loss, variables, f"decision.actions[{i}].loss")
    return CustomProblem(
        spec=spec,
        model=Model(name=f"model:{path.name}:{function}", numpyro_model=ModelWithPriors(path, function, spec.priors, fn), data=data, exact=None),
        priors=dict(spec.priors),
        variables=variables,
        model_digest=hashlib.sha256(path.read_bytes()).hexdigest(),
    )


def trace_variables(
    fn: Callable[..., Any], function: str, data: Mapping[str, np.ndarray], priors: Mapping[str, Prior]
) -> dict[str, tuple[int, ...]]:
    """Run the model once under ``seed`` + ``trace``; its posterior variables and their shapes."""
    from wager.kernel.nuts import configure_jax

    configure_jax()  # float64, as the sampler will run it
    from numpyro import handlers

    lookup = PriorLookup(priors)

    def model(**kwargs: Any) -> Any:
        return fn(**kwargs, priors=lookup)

    from numpyro.infer import init_to_uniform

    try:  # latents take uniform values in unconstrained space, so an improper (unsampleable) prior traces too
        trace = handlers.trace(handlers.substitute(handlers.seed(model, rng_seed=0), substitute_fn=init_to_uniform)).get_trace(**data)
    except SpecError:
        raise
    except Exception as exc:  # the user's model failed on this data: its own message is the useful part
        said = f": {exc}" if str(exc) else ""
        raise SpecError("model", f"{function}() failed on the data: {type(exc).__name__}{said}") from None
    except SystemExit as exc:
        raise exit_refused(f"running {function}()", exc) from None
    unused = sorted(set(priors) - lookup.used)
    if unused:
        raise SpecError(f"priors.{unused[0]}", f"declared but the model never uses it (it never looks up priors[{unused[0]!r}])")
    variables = {
        name: tuple(np.shape(site["value"]))
        for name, site in trace.items()
        if (site["type"] == "sample" and not site["is_observed"]) or site["type"] == "deterministic"
    }
    if not any(site["type"] == "sample" and not site["is_observed"] for site in trace.values()):
        raise SpecError("model", f"{function}() has no latent variable to infer (no numpyro.sample without obs=)")
    return variables


def trace_prior_sites(
    fn: Callable[..., Any], data: Mapping[str, np.ndarray], priors: Mapping[str, Prior]
) -> dict[str, tuple[str, ...]]:
    """Prior name -> the latent sample sites drawn from it, by one traced run.

    A site counts when its distribution is the very one ``priors[name]`` handed
    out, or that one expanded by a plate, ``.expand`` or ``.to_event`` (which
    sum the same log density over more elements), and the site's log density is
    not rescaled. A prior handed out more often than it reaches sites that way
    (transformed, masked, used in a ``factor``) is left out: its draws cannot be
    reweighted by its density, so prior sensitivity refits instead.
    """
    from numpyro import handlers
    from numpyro.distributions import ExpandedDistribution, Independent

    from wager.kernel.nuts import configure_jax

    configure_jax()
    lookup = PriorLookup(priors)
    trace = handlers.trace(handlers.seed(lambda **kw: fn(**kw, priors=lookup), rng_seed=0)).get_trace(**data)
    handed = {id(d): name for name, d in lookup.handed_out}
    found: dict[str, list[str]] = {}
    for site_name, site in trace.items():
        if site["type"] != "sample" or site["is_observed"] or site.get("scale") is not None:
            continue
        d = site["fn"]
        while id(d) not in handed and isinstance(d, (ExpandedDistribution, Independent)):
            d = d.base_dist
        if id(d) in handed:
            found.setdefault(handed[id(d)], []).append(site_name)
    times = {name: sum(1 for n, _ in lookup.handed_out if n == name) for name in found}
    return {name: tuple(sites) for name, sites in found.items() if len(sites) == times[name]}


# --- decide -----------------------------------------------------------------


def outcome(problem: CustomProblem, posterior: Posterior) -> Outcome:
    """Posterior summaries, and the Bayes action when the spec declares actions."""
    spec = problem.spec
    table = posterior_table(posterior)
    summary: dict[str, Any] = {"model": spec.model, "model_digest": problem.model_digest, "interval_mass": round(INTERVAL[1] - INTERVAL[0], 12), "posterior": table}
    lines = [f"{spec.name}: posterior mean ± sd and 94% interval of each variable."]
    lines += [_describe(name, row) for name, row in list(table.items())[:MAX_LINES]]
    if len(table) > MAX_LINES:
        lines.append(f"... and {len(table) - MAX_LINES} more (see --json).")
    if spec.decision is None:
        summary["decision"] = None
        return Outcome(action="report", summary=summary, lines=lines)
    decision_summary, decision_lines = decide_actions(spec, posterior)
    summary["decision"] = decision_summary
    summary["flips"] = decision_summary.get("flips", [])
    return Outcome(action=decision_summary["best"], summary=summary, lines=decision_lines + lines)


def posterior_table(posterior: Posterior) -> dict[str, dict[str, float]]:
    """Per scalar element (``theta[0]`` ...): mean, its MCSE, sd and the 94% interval."""
    table: dict[str, dict[str, float]] = {}
    for name, x in posterior.draws.items():
        x = np.asarray(x, dtype=float)
        for index in np.ndindex(*x.shape[2:]):
            element = x[(slice(None), slice(None)) + index]
            label = name + (f"[{','.join(map(str, index))}]" if index else "")
            lo, hi = np.quantile(element, INTERVAL)
            table[label] = {
                "mean": float(element.mean()),
                "mean_mcse": mcse_mean(element, posterior.independent),
                "sd": float(element.std(ddof=1)),
                "interval": [float(lo), float(hi)],
            }
    return table


def _describe(name: str, row: Mapping[str, Any]) -> str:
    # the spread and the interval are shown to the decimals the mean's MCSE supports
    d = decimals_for(row["mean_mcse"], row["mean"])
    lo, hi = row["interval"]
    return f"  {name}: {fmt(row['mean'], row['mean_mcse'])} ± {row['sd']:.{d}f} (94% interval {lo:.{d}f} to {hi:.{d}f})"


def decide_actions(spec: CustomSpec, posterior: Posterior) -> tuple[dict[str, Any], list[str]]:
    """Expected loss, its MCSE and ``prob_best`` per action; the Bayes action."""
    assert spec.decision is not None
    actions = spec.decision.actions
    losses = {}
    for i, action in enumerate(actions):
        field = f"decision.actions[{i}].loss"
        value = evaluate_loss(action.loss, posterior.draws, field)
        bad = int(np.sum(~np.isfinite(value)))
        if bad:
            raise SpecError(field, f"is not finite in {bad} of {value.size} posterior draws (e.g. the log of a non-positive number)")
        losses[action.name] = np.array(value, dtype=float)
    decision = decide([Action(a.name, lambda _draws, v=losses[a.name]: v) for a in actions], posterior.draws, posterior.independent)
    winner = np.argmin(np.stack([losses[a.name] for a in actions]), axis=0)
    rows = []
    for i, action in enumerate(actions):
        s = decision[action.name]
        rows.append(
            {
                "name": action.name,
                "loss": action.loss,
                "expected_loss": s.expected_loss,
                "expected_loss_mcse": s.mcse,
                "prob_best": s.prob_best,
                "prob_best_mcse": mcse_mean((winner == i).astype(float), posterior.independent),
            }
        )
    payload = {
        "question": spec.decision.question,
        "best": decision.best,
        "runner_up": decision.runner_up,
        "gap": decision.gap,
        "gap_mcse": decision.gap_mcse,
        "indifferent": decision.indifferent,
        "method": decision.method,
        "actions": rows,
    }
    lines = [f"Question: {spec.decision.question}"] if spec.decision.question else []
    lines.append(f"Decision: {decision.best} (the lowest expected loss).")
    for row in rows:
        lines.append(
            f"  {row['name']}: expected loss {fmt(row['expected_loss'], row['expected_loss_mcse'])} "
            f"(Monte Carlo error {row['expected_loss_mcse']:.2g}); best in "
            f"{fmt_percent(row['prob_best'], row['prob_best_mcse'])} of posterior draws."
        )
    if decision.indifferent:
        lines.append(
            f"The gap to {decision.runner_up} ({fmt(decision.gap, decision.gap_mcse)}) is within twice its Monte Carlo error "
            f"({decision.gap_mcse:.2g}): on these draws the two are indistinguishable."
        )
    if decision.runner_up is not None:
        flip = (
            f"It flips to {decision.runner_up} if {decision.runner_up}'s expected loss fell by more than "
            f"{fmt(decision.gap, decision.gap_mcse)} (the gap between the two), or {decision.best}'s rose by as much."
        )
        payload["flips"] = [flip]
        lines.append(f"What would flip it: {flip[:1].lower()}{flip[1:]}")
    return payload, lines
