"""From a posterior to an action: expected loss, the Bayes action, and how sure.

An ``Action`` carries a loss: a vectorised function of posterior draws
(``draws[name]`` shaped ``(chains, draws, ...)``) returning one loss per draw,
shape ``(chains, draws)``. Then

    expected_loss(a) = E[L(a, theta)]          (Monte Carlo mean, with its MCSE)
    bayes action     = argmin_a expected_loss(a)
    prob_best(a)     = P(a has the smallest loss | data)

The gap between the best two actions is compared with its own Monte Carlo
error (the MCSE of the per-draw difference, which shares the draws' correlation):
when the gap is within ``z`` of those errors the verdict is *indifferent*.
Closed forms, where a domain has them, enter through ``decide_closed_form``
and have no Monte Carlo error.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

import numpy as np

from wager.kernel.diagnostics import mcse_mean

LossFn = Callable[[Mapping[str, np.ndarray]], np.ndarray]


@dataclass(frozen=True)
class Action:
    name: str
    loss: LossFn


@dataclass(frozen=True)
class ActionSummary:
    name: str
    expected_loss: float
    mcse: float
    prob_best: float


@dataclass(frozen=True)
class Decision:
    """The Bayes action among ``actions`` and how clearly it wins.

    ``gap`` = expected loss of the runner-up minus that of the best (>= 0);
    ``gap_mcse`` its Monte Carlo standard error (0 for closed forms).
    """

    actions: tuple[ActionSummary, ...]
    best: str
    runner_up: str | None
    gap: float
    gap_mcse: float
    indifferent: bool
    method: str

    def __getitem__(self, name: str) -> ActionSummary:
        for a in self.actions:
            if a.name == name:
                return a
        raise KeyError(name)


def decide(
    actions: Sequence[Action],
    draws: Mapping[str, np.ndarray],
    independent: bool,
    z: float = 2.0,
) -> Decision:
    """Monte Carlo decision over ``actions`` from posterior ``draws``.

    ``independent`` says whether draws are iid (exact engine) or a Markov chain,
    which sets how Monte Carlo errors are computed.
    """
    if len(actions) < 1:
        raise ValueError("a decision needs at least one action")
    losses = {}
    for action in actions:
        value = np.asarray(action.loss(draws), dtype=float)
        if value.ndim != 2:
            raise ValueError(
                f"loss of action {action.name!r} must return one value per draw, shape (chains, draws); got {value.shape}"
            )
        if not np.all(np.isfinite(value)):
            raise ValueError(f"loss of action {action.name!r} is not finite for every draw")
        losses[action.name] = value
    stacked = np.stack([losses[a.name] for a in actions])  # (actions, chains, draws)
    winner = np.argmin(stacked, axis=0)
    summaries = tuple(
        ActionSummary(
            name=a.name,
            expected_loss=float(losses[a.name].mean()),
            mcse=mcse_mean(losses[a.name], independent),
            prob_best=float(np.mean(winner == i)),
        )
        for i, a in enumerate(actions)
    )
    order = sorted(summaries, key=lambda s: s.expected_loss)
    best = order[0]
    if len(order) == 1:
        return Decision(summaries, best.name, None, float("inf"), 0.0, False, "monte carlo")
    second = order[1]
    diff = losses[second.name] - losses[best.name]
    gap = float(diff.mean())
    gap_mcse = mcse_mean(diff, independent)
    return Decision(
        actions=summaries,
        best=best.name,
        runner_up=second.name,
        gap=gap,
        gap_mcse=gap_mcse,
        indifferent=bool(gap <= z * gap_mcse),
        method="monte carlo",
    )


def decide_closed_form(expected_loss: Mapping[str, float], prob_best: Mapping[str, float]) -> Decision:
    """A decision whose expected losses and probabilities are exact (no Monte Carlo error)."""
    summaries = tuple(
        ActionSummary(name=n, expected_loss=float(expected_loss[n]), mcse=0.0, prob_best=float(prob_best[n]))
        for n in expected_loss
    )
    order = sorted(summaries, key=lambda s: s.expected_loss)
    if len(order) == 1:
        return Decision(summaries, order[0].name, None, float("inf"), 0.0, False, "closed form")
    gap = order[1].expected_loss - order[0].expected_loss
    return Decision(summaries, order[0].name, order[1].name, gap, 0.0, gap <= 0.0, "closed form")


# --- losses -----------------------------------------------------------------
# Each builder returns a LossFn. ``quantity`` maps draws to the scalar the loss
# is written in, shape (chains, draws).

Quantity = Callable[[Mapping[str, np.ndarray]], np.ndarray]


def opportunity_losses(values: Mapping[str, Quantity]) -> list[Action]:
    """Linear (opportunity) loss: choosing ``a`` loses ``max_b value_b - value_a`` per draw.

    The A/B loss: ship an arm, lose whatever a better arm would have earned.
    """
    names = list(values)

    def loss_of(name: str) -> LossFn:
        def loss(draws: Mapping[str, np.ndarray]) -> np.ndarray:
            v = np.stack([np.asarray(values[n](draws), dtype=float) for n in names])
            return v.max(axis=0) - v[names.index(name)]

        return loss

    return [Action(n, loss_of(n)) for n in names]


def asymmetric_linear(quantity: Quantity, point: float, under: float, over: float) -> LossFn:
    """Committing to ``point`` costs ``under`` per unit the quantity exceeds it and
    ``over`` per unit it falls short. Bayes point: the ``under / (under + over)``
    posterior quantile (see ``bayes_point``)."""

    def loss(draws):
        q = np.asarray(quantity(draws), dtype=float)
        return under * np.maximum(q - point, 0) + over * np.maximum(point - q, 0)

    return loss


def linear(quantity: Quantity, point: float, cost: float = 1.0) -> LossFn:
    """``cost * |quantity - point|``. Bayes point: the posterior median."""
    return asymmetric_linear(quantity, point, cost, cost)


def zero_one(event: Callable[[Mapping[str, np.ndarray]], np.ndarray], cost_if_event: float, cost_otherwise: float = 0.0) -> LossFn:
    """An action that costs ``cost_if_event`` when ``event`` holds, else ``cost_otherwise``.

    With two actions (act: costs ``c_fp`` when the event fails; wait: costs
    ``c_fn`` when it holds) the Bayes rule acts when ``P(event) > c_fp / (c_fp + c_fn)``.
    """

    def loss(draws):
        e = np.asarray(event(draws), dtype=bool)
        return np.where(e, cost_if_event, cost_otherwise).astype(float)

    return loss


def bayes_point(samples: np.ndarray, under: float, over: float) -> float:
    """Closed-form Bayes point under asymmetric linear loss: the ``under/(under+over)`` quantile."""
    return float(np.quantile(np.asarray(samples, dtype=float).ravel(), under / (under + over)))
