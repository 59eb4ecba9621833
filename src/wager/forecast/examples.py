"""Simulated panels with known parameters: example data and test fixtures.

``simulate_panel`` draws a panel from the forecaster's generative model,
written here a second time in plain NumPy (the state equations of
ETS(A,Ad,A), step by step), so tests that fit the JAX model to it check one
implementation against the other.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class Truth:
    """Global parameters on the model's scales (see ``wager.forecast.model``);
    group effects are drawn with the ``*_group_sd`` given here."""

    alpha_logit: float = -1.5
    beta_logit: float = -2.5
    gamma_logit: float = -2.0
    phi_logit: float = 0.0
    sigma_log_mean: float = float(np.log(0.15))
    level_mean: float = 0.0
    level_group_sd: float = 0.8
    level_sd: float = 0.3
    trend_mean: float = 0.01
    trend_sd: float = 0.005
    season_mean: tuple[float, ...] = (0.5, -0.3, 0.2)
    season_group_sd: float = 0.2
    season_sd: float = 0.05
    smoothing_group_sd: float = 0.2
    sigma_group_sd: float = 0.2
    common_gain: dict[str, float] = field(default_factory=dict)  # per grouping column; none: no common levels
    common_trend_share: float = 0.0
    common_phi: float = 0.9
    extra: dict[str, float] = field(default_factory=dict)


def simulate_panel(
    groups: dict[str, int],
    series_per_cell: int = 1,
    n_time: int = 40,
    horizon: int = 0,
    truth: Truth = Truth(),
    seed: int = 0,
    start: str = "2010-01-01",
    freq: str = "QS",
    center: float = 4.0,
    scale: float = 1.0,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A long table of ``n_time + horizon`` periods for every combination of the
    grouping columns' levels (``{"region": 3, "product": 2}``), ``series_per_cell``
    series each; values ``exp(center + scale * z)``. Returns (history, future):
    the first ``n_time`` periods and the ``horizon`` after them."""
    rng = np.random.default_rng(seed)
    period = 4
    names = list(groups)
    cells = np.array(np.meshgrid(*[np.arange(n) for n in groups.values()], indexing="ij")).reshape(len(names), -1).T
    cells = np.repeat(cells, series_per_cell, axis=0)
    n = len(cells)

    def pooled(mean: float, sd: float, shape: tuple[int, ...] = ()) -> np.ndarray:
        total = np.broadcast_to(np.asarray(mean, dtype=float), (n, *shape)).copy()
        for g, levels in enumerate(groups.values()):
            total += sd * rng.normal(size=(levels, *shape))[cells[:, g]]
        return total

    sig = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731
    alpha = sig(pooled(truth.alpha_logit, truth.smoothing_group_sd))
    beta = alpha * sig(pooled(truth.beta_logit, truth.smoothing_group_sd))
    gamma = (1 - alpha) * sig(pooled(truth.gamma_logit, truth.smoothing_group_sd))
    phi = 0.8 + 0.18 * sig(pooled(truth.phi_logit, truth.smoothing_group_sd))
    sigma = np.exp(pooled(truth.sigma_log_mean, truth.sigma_group_sd))
    level = pooled(truth.level_mean, truth.level_group_sd) + truth.level_sd * rng.normal(size=n)
    trend = truth.trend_mean + truth.trend_sd * rng.normal(size=n)
    season3 = pooled(0.0, truth.season_group_sd, (period - 1,)) + np.asarray(truth.season_mean) + truth.season_sd * rng.normal(size=(n, period - 1))
    season = np.concatenate([season3, -season3.sum(axis=1, keepdims=True)], axis=1)  # s for times 0..m-1

    # common levels and trends: one pair per level of each column named in truth.common_gain,
    # moved by the 1/sigma^2-weighted mean innovation of its series (wager.forecast.model)
    common = {name: np.zeros((groups[name], 2)) for name in truth.common_gain}
    weight = sigma**-2

    total = n_time + horizon
    z = np.empty((n, total))
    for t in range(total):
        e = sigma * rng.normal(size=n)
        shared = sum((c[:, 0] + truth.common_phi * c[:, 1])[cells[:, names.index(name)]] for name, c in common.items())
        z[:, t] = level + phi * trend + season[:, 0] + shared + e
        level = level + phi * trend + alpha * e
        trend = phi * trend + beta * e
        season = np.concatenate([season[:, 1:], (season[:, 0] + gamma * e)[:, None]], axis=1)
        for name, c in common.items():
            column = cells[:, names.index(name)]
            mean = np.bincount(column, weight * e, groups[name]) / np.bincount(column, weight, groups[name])
            gain = truth.common_gain[name]
            common[name] = np.column_stack([c[:, 0] + truth.common_phi * c[:, 1] + gain * mean, truth.common_phi * c[:, 1] + gain * truth.common_trend_share * mean])
    values = np.exp(center + scale * z)

    times = pd.date_range(start, periods=total, freq=freq)
    labels = {name: [f"{name}{i}" for i in cells[:, g]] for g, name in enumerate(names)}
    if series_per_cell > 1:
        labels["item"] = [f"item{i % series_per_cell}" for i in range(n)]
    keys = pd.DataFrame(labels)
    frame = keys.loc[keys.index.repeat(total)].reset_index(drop=True)
    frame.insert(0, "time", np.tile(times, n))
    frame["value"] = values.ravel()
    in_history = frame["time"].isin(times[:n_time])
    history = frame[in_history].reset_index(drop=True)
    future = frame[~in_history].reset_index(drop=True)
    params = dict(alpha=alpha, beta=beta, gamma=gamma, phi=phi, sigma=sigma)
    history.attrs["truth"] = params
    return history, future
