"""Leave-future-out calibration of a panel forecast.

A forecast is judged on data it has not seen. ``lfo_pit`` refits the model at
each of the last ``origins`` periods using only the data before it, forecasts
one period ahead, and takes the probability integral transform of what was
then observed: ``PIT = P(y_rep < y) + U P(y_rep = y)`` over the sample paths
(randomised for ties, so counts work too). Exact refits, not the PSIS
approximation of Bürkner, Gabry & Vehtari (2020, "Approximate leave-future-out
cross-validation for Bayesian time series models"): the forecast model
integrates its states out, so refits are the honest and simple route.

Under a calibrated forecaster the PIT values are uniform; the test is the ECDF
simultaneous band of ``wager.kernel.calibration`` (Säilynoja et al. 2022) on
the values binned to a grid of 100, and the coverage of the central 50/80/95%
one-step intervals is reported beside it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from wager.kernel.inference import InferenceConfig, ProgressFn, infer

LEVELS = (0.5, 0.8, 0.95)
GRID = 100


@dataclass(frozen=True)
class LfoPit:
    values: np.ndarray  # PIT of every observed one-step-ahead value, all origins pooled
    origins: tuple[str, ...]
    passed: bool
    max_ecdf_difference: float
    coverage: dict[str, float]

    def lines(self) -> list[str]:
        cover = ", ".join(f"{k}: {v:.2f}" for k, v in self.coverage.items())
        verdict = "uniform within the 95% simultaneous band" if self.passed else "NOT uniform (outside the 95% simultaneous band)"
        return [
            f"leave-future-out PIT of {self.values.size} one-step forecasts at {len(self.origins)} origins "
            f"({self.origins[0]} to {self.origins[-1]}): {verdict}; max ECDF difference {self.max_ecdf_difference:.3f}",
            f"one-step interval coverage: {cover}",
        ]

    def to_json(self) -> dict[str, Any]:
        """The predictive check's record (the HTML report plots ``lfo_pit``)."""
        return {
            "checks": [],
            "lfo_pit": {
                "origins": list(self.origins),
                "values": self.values.tolist(),
                "passed": self.passed,
                "max_ecdf_difference": self.max_ecdf_difference,
                "coverage": self.coverage,
            },
        }


def lfo_pit(problem: Any, config: InferenceConfig, origins: int = 4, seed: int = 0, alpha: float = 0.05, progress: ProgressFn | None = None) -> LfoPit:
    """Refit ``problem`` (a ``ForecastProblem``) at each of its last ``origins`` periods."""
    from wager.kernel.calibration import rank_uniformity

    panel = problem.panel
    n = len(panel.times)
    if not (1 <= origins < n - panel.period):
        raise ValueError(f"origins must be in 1..{n - panel.period - 1} for {n} periods")
    rng = np.random.default_rng(seed)
    values, hits, labels = [], {f"{lev:g}": [] for lev in LEVELS}, []
    for k, cut in enumerate(range(n - origins, n)):
        past = replace(problem, panel=panel.truncated(cut, 1), newsvendor=None, capacity=None)
        if progress:
            progress("leave-future-out refits", k, origins)
        posterior = infer(past.model, config, None)
        paths = past.paths(posterior)[:, :, 0]  # (draws, series)
        y = panel.values[:, cut]
        seen = ~np.isnan(y)
        below = (paths[:, seen] < y[seen]).mean(axis=0)
        ties = (paths[:, seen] == y[seen]).mean(axis=0)
        values.append(below + rng.random(seen.sum()) * ties)
        for lev in LEVELS:
            lo, hi = np.quantile(paths[:, seen], [(1 - lev) / 2, (1 + lev) / 2], axis=0)
            hits[f"{lev:g}"].append((y[seen] >= lo) & (y[seen] <= hi))
        labels.append(f"{panel.times[cut]:%Y-%m-%d}")
    if progress:
        progress("leave-future-out refits", origins, origins)
    pit = np.clip(np.concatenate(values), 0.0, 1.0)
    test = rank_uniformity(np.minimum((pit * GRID).astype(np.int64), GRID - 1), GRID - 1, alpha)
    return LfoPit(
        values=pit,
        origins=tuple(labels),
        passed=test.passed,
        max_ecdf_difference=test.max_ecdf_difference,
        coverage={k: float(np.concatenate(v).mean()) for k, v in hits.items()},
    )
