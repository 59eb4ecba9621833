"""Choosing a dose: the probability that a new patient's concentration stays in the
therapeutic window, per candidate dose, from the population posterior.

For each posterior draw ``s`` and each of ``per_draw`` simulated new patients, fresh
random effects give ``ka``, ``CL``, ``V`` and the absorption lag; their concentration curve per unit dose,
``c(t)``, is evaluated on a grid over the time span that must stay in the window
(``regimen``):

- ``steady_state``: a dose every ``interval`` hours, long enough to reach steady state;
  the whole dosing interval ``0 <= t <= interval`` (trough at the ends, peak inside).
- ``single``: one dose at time 0; the hours ``start..end`` after it.

Concentration is linear in the dose, so a patient stays in ``[low, high]`` under dose
``D`` exactly when ``low / min c <= D <= high / max c``: each simulated patient gives an
interval of acceptable doses, and ``P(D) = P(low / min c <= D <= high / max c)``, read
for every candidate from one simulation (common random numbers, so the differences
between candidates carry less Monte Carlo noise than the probabilities themselves).
The window is on the true concentration ``C(t)``, without the assay error.

``P(D)`` rises while more patients clear the trough and falls once more overshoot the
peak. The recommended dose is the lowest candidate whose probability meets the
target: the least drug that gives the target share of patients a concentration in
the window. Its Monte Carlo standard error is that of the mean of per-draw averages,
through the chains' effective sample size.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np

from wager.science.pk import EFFECTS, lagged_concentration, rates, steady_state_concentration

GRID = 97
"""Points of the time grid each curve's minimum and maximum are taken over."""


@dataclass(frozen=True)
class DoseWindow:
    """Simulated new patients' acceptable doses, ``(chains, draws, per_draw)`` each:
    the smallest dose that keeps ``C`` at or above ``low`` (``lowest``) and the largest
    that keeps it at or below ``high`` (``highest``; an empty interval when below ``lowest``)."""

    lowest: np.ndarray
    highest: np.ndarray

    def probability(self, dose: float) -> float:
        inside = (self.lowest <= dose) & (dose <= self.highest)
        return float(inside.mean())

    def probability_se(self, dose: float, independent: bool = False) -> float:
        from wager.kernel.diagnostics import mcse_mean

        inside = ((self.lowest <= dose) & (dose <= self.highest)).mean(axis=-1)
        return mcse_mean(inside, independent=independent)


def time_grid(regimen: str, interval: float, start: float, end: float, points: int = GRID) -> np.ndarray:
    """The hours the window applies to: ``0..interval`` at steady state, ``start..end`` after one dose."""
    if regimen == "steady_state":
        return np.linspace(0.0, interval, points)
    return np.linspace(start, end, points)


def new_patients(draws: Mapping[str, np.ndarray], rng: np.random.Generator, per_draw: int) -> dict[str, np.ndarray]:
    """``ka``, ``ke``, ``v``, ``tlag`` of ``per_draw`` new patients per posterior draw, shape
    ``(chains, draws, per_draw)``: the population's typical values times fresh log-normal
    random effects (``omega_*``), combined as in the model (``wager.science.pk.rates``)."""
    chains, n = np.shape(draws["log_cl_pop"])[:2]
    out = {}
    for name in EFFECTS:
        z = rng.standard_normal((chains, n, per_draw))
        out[name] = np.exp(np.asarray(draws[f"log_{name}_pop"])[..., None] + np.asarray(draws[f"omega_{name}"])[..., None] * z)
    ka, ke, v = rates(out["ka"], out["cl"], out["v"])
    return {"ka": ka, "ke": ke, "v": v, "tlag": out["tlag"]}


def unit_dose_curves(patients: Mapping[str, np.ndarray], times: np.ndarray, regimen: str, interval: float) -> np.ndarray:
    """Concentration per unit dose at ``times`` ``(K,)`` for each patient: shape ``(..., K)``."""
    ka, ke, v, tlag = (np.asarray(patients[k])[..., None] for k in ("ka", "ke", "v", "tlag"))
    if regimen == "steady_state":
        return steady_state_concentration(times, 1.0, ka, ke, v, interval, tlag)
    return lagged_concentration(times, 1.0, ka, ke, v, tlag)


def dose_window(
    draws: Mapping[str, np.ndarray],
    rng: np.random.Generator,
    *,
    low: float,
    high: float,
    regimen: str,
    interval: float = 12.0,
    start: float = 0.0,
    end: float = 24.0,
    per_draw: int = 20,
) -> DoseWindow:
    """Each simulated new patient's interval of doses that keep ``C`` within ``[low, high]``
    over the regimen's time span."""
    patients = new_patients(draws, rng, per_draw)
    times = time_grid(regimen, interval, start, end)
    lowest = np.empty(patients["ka"].shape)
    highest = np.empty(patients["ka"].shape)
    for c in range(lowest.shape[0]):  # a chain at a time: (draws, per_draw, K) stays small
        curves = unit_dose_curves({k: v[c] for k, v in patients.items()}, times, regimen, interval)
        with np.errstate(divide="ignore"):
            lowest[c] = np.where(curves.min(axis=-1) > 0, low / curves.min(axis=-1), np.inf)
        highest[c] = high / curves.max(axis=-1)
    return DoseWindow(lowest=lowest, highest=highest)


@dataclass(frozen=True)
class DoseChoice:
    """Per candidate dose (in the order given): the probability in the window and its MCSE;
    ``chosen``: the lowest candidate meeting ``target`` (``None``: none does)."""

    doses: tuple[float, ...]
    probability: tuple[float, ...]
    probability_se: tuple[float, ...]
    target: float
    chosen: float | None

    def rows(self) -> list[dict[str, Any]]:
        return [
            {"dose": d, "probability": p, "probability_se": se, "meets_target": p >= self.target, "chosen": d == self.chosen}
            for d, p, se in zip(self.doses, self.probability, self.probability_se)
        ]


def choose_dose(window: DoseWindow, doses: Sequence[float], target: float, independent: bool = False) -> DoseChoice:
    """``P(in window)`` for each candidate and the lowest candidate with ``P >= target``."""
    ordered = tuple(sorted(float(d) for d in doses))
    probability = tuple(window.probability(d) for d in ordered)
    se = tuple(window.probability_se(d, independent) for d in ordered)
    chosen = next((d for d, p in zip(ordered, probability) if p >= target), None)
    return DoseChoice(doses=ordered, probability=probability, probability_se=se, target=float(target), chosen=chosen)


def predictive_band(
    draws: Mapping[str, np.ndarray],
    rng: np.random.Generator,
    times: np.ndarray,
    quantiles: Sequence[float] = (0.05, 0.25, 0.5, 0.75, 0.95),
    per_draw: int = 4,
) -> dict[str, list[float]]:
    """Quantiles over new patients of the single-dose concentration per unit dose at ``times``
    (the report's band), keyed by the quantile as text."""
    curves = unit_dose_curves(new_patients(draws, rng, per_draw), times, "single", 0.0)
    q = np.quantile(curves.reshape(-1, times.size), quantiles, axis=0)
    return {f"{p:g}": row.tolist() for p, row in zip(quantiles, q)}
