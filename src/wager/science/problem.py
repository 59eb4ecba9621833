"""What the science tasks share on the path: intervals.

Each task is one small problem class (``wager.science.sir_problem``,
``pk_problem``) with ``model``, ``priors`` and ``decide(posterior) -> Outcome``;
``wager.science.domain.prepare`` builds the one a spec's ``task`` names.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def interval(draws: Any, mass: float = 0.9) -> list[float]:
    """The central ``mass`` interval of ``draws`` (equal tails), ``[lower, upper]``."""
    x = np.asarray(draws, dtype=float).ravel()
    tail = (1 - mass) / 2
    lo, hi = np.quantile(x, [tail, 1 - tail])
    return [float(lo), float(hi)]
