"""What the science tasks share on the path: priors with overrides, data paths, intervals.

Each task is one small problem class (``wager.science.sir_problem``,
``pk_problem``) with ``model``, ``priors`` and ``decide(posterior) -> Outcome``;
``wager.science.domain.prepare`` builds the one a spec's ``task`` names.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import numpy as np

from wager.errors import SpecError
from wager.kernel.priors import Prior


def with_overrides(defaults: Mapping[str, Prior], overrides: Mapping[str, Prior]) -> dict[str, Prior]:
    """The documented defaults with the spec's ``priors`` replacing them by name."""
    unknown = sorted(set(overrides) - set(defaults))
    if unknown:
        raise SpecError(f"priors.{unknown[0]}", f"not a prior of this model; its priors: {', '.join(sorted(defaults))}")
    return {**defaults, **overrides}


def resolve(path: str, base_dir: Path | None) -> Path:
    """``path`` relative to the spec's folder (as given when absolute or there is none)."""
    p = Path(path)
    return p if p.is_absolute() or base_dir is None else base_dir / p


def interval(draws: Any, mass: float = 0.9) -> list[float]:
    """The central ``mass`` interval of ``draws`` (equal tails), ``[lower, upper]``."""
    x = np.asarray(draws, dtype=float).ravel()
    tail = (1 - mass) / 2
    lo, hi = np.quantile(x, [tail, 1 - tail])
    return [float(lo), float(hi)]
