"""What the risk tasks share on the path: priors with overrides, input errors named
by the spec's field, the loss distribution every task hands the report, and the
NUTS fit every risk model's ``fit_nuts`` runs (``fit_by_nuts``).

Each task is one small problem class (``wager.risk.reserve_problem``,
``var_problem``, ``threshold_problem``, ``claims_problem``) with ``model``,
``priors`` and ``decide(posterior) -> Outcome``; ``wager.risk.domain.prepare``
builds the one a spec's ``task`` names.
"""

from __future__ import annotations

import math
from contextlib import contextmanager
from typing import Any, Iterator, Mapping, TypedDict, Unpack

import numpy as np

from wager.errors import SpecError
from wager.kernel.digits import decimals_for
from wager.kernel.inference import InferenceConfig, Model, ProgressFn, infer
from wager.kernel.posterior import Posterior

BINS = 40
"""Bars of the loss histogram the report draws."""
CLIP = 0.0005
"""The histogram spans the 0.05% to 99.95% quantiles (and the tail measures): a few
extreme draws of a heavy tail would otherwise squeeze every other bar into one."""


class NutsSettings(TypedDict, total=False):
    """The NUTS settings a risk module's ``fit_nuts`` takes as keywords: fields of
    ``wager.kernel.inference.InferenceConfig``, and a progress callback."""

    chains: int
    warmup: int
    draws: int
    seed: int
    target_accept: float
    progress: ProgressFn | None


NUTS_DEFAULTS: NutsSettings = {"chains": 2, "warmup": 500, "draws": 500, "seed": 20240101}
"""What a direct call of ``fit_nuts`` runs unless told otherwise: lighter than a spec's
defaults (``InferenceConfig``: four chains of 1000), enough for the modules' own checks."""


def fit_by_nuts(model: Model, **settings: Unpack[NutsSettings]) -> Posterior:
    """The posterior of ``model`` by NUTS (``wager.kernel.inference.infer``), with
    ``NUTS_DEFAULTS`` where ``settings`` say nothing; an unknown setting is refused
    by ``InferenceConfig``."""
    config = {**NUTS_DEFAULTS, **settings}
    progress = config.pop("progress", None)
    return infer(model, InferenceConfig(engine="nuts", **config), progress)


@contextmanager
def reading(field: str, **fields: str) -> Iterator[None]:
    """Name the spec's ``field`` in a ``SpecError`` a risk module raises about its own
    argument: ``data.path: triangle has a hole at ...``; an argument that is a spec field
    of its own is named as ``fields`` map it (``column="data.column"``)."""
    try:
        yield
    except SpecError as exc:
        if exc.field in fields:
            raise SpecError(fields[exc.field], exc.rule) from None
        raise SpecError(field, f"{exc.field} {exc.rule}" if exc.field else exc.rule) from None


def amount(value: float, se: float = 0.0, exact_digits: int = 4) -> str:
    """``value`` with the digits ``se`` supports (``wager.kernel.digits``), thousands
    separated; where the error is tens or more, the integer digits it leaves
    uncertain are rounded away too (``52,135`` with an error of 300 reads ``52,100``).
    An exact value (``se == 0``) keeps ``exact_digits`` significant digits, and all of
    its integer digits."""
    if not np.isfinite(value):
        return str(value)
    if se > 0 and 2 * se >= 10:
        return f"{round(value, -math.floor(math.log10(2 * se))):,.0f}"
    return f"{value:,.{decimals_for(se, value, exact_digits)}f}"


def loss_distribution(
    label: str,
    units: str,
    losses: np.ndarray,
    level: float,
    var: float,
    tvar: float,
    plug_in: Mapping[str, Any] | None = None,
    se: Mapping[str, float] | None = None,
    bins: int = BINS,
) -> dict[str, Any]:
    """The report's block: a histogram of the simulated ``losses`` (``bins`` bars from the
    0.05% to the 99.95% quantile, widened to show the tail measures), their mean, the
    VaR and TVaR at ``level`` with Monte Carlo standard errors ``se`` (keys ``mean``,
    ``var``, ``tvar``; 0 where not given), and the plug-in's figures (``{"mean", "var",
    "tvar", "label"}``, optionally ``var_se``, ``tvar_se``) or ``None``. ``outside``
    counts the draws left off either end."""
    x = np.asarray(losses, dtype=float).ravel()
    marks = [var, tvar] + ([plug_in["var"], plug_in["tvar"]] if plug_in else [])
    lo = min(float(np.quantile(x, CLIP)), *marks)
    hi = max(float(np.quantile(x, 1 - CLIP)), *marks)
    if not hi > lo:
        lo, hi = lo - 0.5, hi + 0.5
    hi += 0.02 * (hi - lo)  # TVaR on the last edge still gets a bar
    counts, edges = np.histogram(x, bins=bins, range=(lo, hi))
    return {
        "label": label,
        "units": units,
        "draws": int(x.size),
        "histogram": {"edges": edges.tolist(), "counts": counts.tolist(), "outside": [int((x < lo).sum()), int((x > hi).sum())]},
        "mean": float(x.mean()),
        "level": float(level),
        "var": float(var),
        "tvar": float(tvar),
        "se": {k: float((se or {}).get(k, 0.0)) for k in ("mean", "var", "tvar")},
        "plug_in": dict(plug_in) if plug_in else None,
    }


def mean_mcse(values: np.ndarray, chains: int, per_draw: int) -> float:
    """MCSE of the mean of ``values`` ``(chains * draws * per_draw,)``, simulated
    ``per_draw`` at a time from each posterior draw, chains in order: the MCSE of the
    per-draw means through the chains' effective sample size."""
    from wager.kernel.diagnostics import mcse_mean

    per = np.asarray(values, dtype=float).reshape(chains, -1, per_draw).mean(axis=-1)
    return mcse_mean(per, independent=False)
