"""Operating characteristics of decision rules by simulation, fanned out on an executor.

A domain supplies a *simulator*, a picklable module-level function

    simulate(scenario, replications, seed) -> {rule name: (outcome codes, sample sizes)}

that runs ``replications`` independent replications of one ``scenario`` and
judges every rule of the scenario on the same draws (common random numbers).
Outcome codes are small integers naming ``outcomes[code]``; sample sizes are
whole numbers (say, visitors per arm at the stopping look).

Replications are drawn in *blocks* of ``block`` replications; each block is
one ``Task`` whose seed is ``derive_seed(seed, STREAM, scenario, block)``: it
depends on the scenario's position and the block's number only, so results
are the same whatever the executor, the number of workers or the order the
tasks run in, and a run with more replications extends (does not redraw) a
run with fewer.

Every reported number comes with its Monte Carlo standard error, over ``R``
independent replications:

* a rate ``p = count / R``: ``sqrt(p (1 - p) / R)`` (binomial);
* the expected sample size ``mean(N)``: ``sd(N) / sqrt(R)`` (``sd`` with ``R - 1``).

``calibrate`` searches a rule's parameter so that the rate of an outcome
under one scenario (the wrong-ship rate in an A/A test) stays at or below a
declared target with a margin of ``margin`` standard errors.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from wager.kernel.inference import ProgressFn
from wager.kernel.seeds import check_seed, derive_seed
from wager.workflow.fanout import Executor, SerialExecutor, Task

STREAM = 6  # keeps operating-characteristics seeds apart from other fanned-out work

Simulator = Callable[[Any, int, int], Mapping[str, tuple[np.ndarray, np.ndarray]]]


@dataclass(frozen=True)
class Measured:
    """A Monte Carlo estimate and its standard error."""

    value: float
    mcse: float


def rate_estimate(count: int, replications: int) -> Measured:
    """``count / R`` with its binomial standard error ``sqrt(p (1 - p) / R)``."""
    p = count / replications
    return Measured(p, math.sqrt(p * (1 - p) / replications))


def mean_estimate(total: int, total_sq: int, replications: int) -> Measured:
    """The mean of ``R`` values from their sum and sum of squares, with ``sd / sqrt(R)``.

    Sums of whole numbers are Python integers, so the variance is exact
    before the final division.
    """
    n = replications
    mean = total / n
    if n < 2:
        return Measured(mean, math.nan)
    variance = (total_sq * n - total * total) / (n * (n - 1))
    return Measured(mean, math.sqrt(max(variance, 0.0) / n))


@dataclass(frozen=True)
class Tally:
    """What one rule did over some replications of one scenario."""

    replications: int
    counts: tuple[int, ...]  # replications ending in each outcome, indexed by code
    size_sum: int
    size_sq_sum: int

    def __add__(self, other: "Tally") -> "Tally":
        return Tally(
            self.replications + other.replications,
            tuple(a + b for a, b in zip(self.counts, other.counts)),
            self.size_sum + other.size_sum,
            self.size_sq_sum + other.size_sq_sum,
        )


@dataclass(frozen=True)
class Characteristics:
    """One rule under one scenario: outcome rates and expected sample size, with MCSE."""

    scenario: str
    rule: str
    outcomes: tuple[str, ...]
    tally: Tally

    @property
    def replications(self) -> int:
        return self.tally.replications

    def rate(self, outcome: str) -> Measured:
        """P(the replication ends in ``outcome``)."""
        if outcome not in self.outcomes:
            raise KeyError(f"outcome {outcome!r} is not one of {self.outcomes}")
        return rate_estimate(self.tally.counts[self.outcomes.index(outcome)], self.replications)

    @property
    def expected_sample_size(self) -> Measured:
        return mean_estimate(self.tally.size_sum, self.tally.size_sq_sum, self.replications)


@dataclass(frozen=True)
class _Block:
    simulate: Simulator
    scenario: Any
    replications: int
    outcomes: int


def _run_block(task: Task) -> dict[str, Tally]:
    """One block of replications, reduced to a tally per rule (module level: picklable)."""
    b: _Block = task.payload
    out = {}
    for rule, (codes, sizes) in b.simulate(b.scenario, b.replications, task.seed).items():
        sizes = np.asarray(sizes, dtype=np.int64)
        counts = np.bincount(np.asarray(codes, dtype=np.int64), minlength=b.outcomes)
        out[rule] = Tally(b.replications, tuple(int(c) for c in counts), int(sizes.sum()), int((sizes * sizes).sum()))
    return out


def operating_characteristics(
    simulate: Simulator,
    scenarios: Sequence[Any],
    outcomes: Sequence[str],
    replications: int,
    seed: int,
    executor: Executor | None = None,
    block: int = 1000,
    progress: ProgressFn | None = None,
    names: Sequence[str] | None = None,
) -> list[dict[str, Characteristics]]:
    """Every rule under every scenario, ``replications`` times each.

    Returns one ``{rule name: Characteristics}`` per scenario, in order.
    ``names`` labels the scenarios (default: each scenario's ``name``
    attribute, else its position).
    """
    seed = check_seed(seed)
    if replications < 1:
        raise ValueError(f"replications must be >= 1, got {replications}")
    if block < 1:
        raise ValueError(f"block must be >= 1, got {block}")
    executor = executor or SerialExecutor()
    tasks, owner = [], []
    for s, scenario in enumerate(scenarios):
        for b, start in enumerate(range(0, replications, block)):
            payload = _Block(simulate, scenario, min(block, replications - start), len(outcomes))
            tasks.append(Task(index=len(tasks), seed=derive_seed(seed, STREAM, s, b), payload=payload))
            owner.append(s)
    results = executor.map(_run_block, tasks, progress=progress, label="replication blocks")
    totals: list[dict[str, Tally]] = [{} for _ in scenarios]
    for s, tallies in zip(owner, results):
        for rule, tally in tallies.items():
            totals[s][rule] = totals[s][rule] + tally if rule in totals[s] else tally
    labels = list(names) if names is not None else [str(getattr(sc, "name", i)) for i, sc in enumerate(scenarios)]
    return [
        {rule: Characteristics(labels[s], rule, tuple(outcomes), t) for rule, t in totals[s].items()}
        for s in range(len(scenarios))
    ]


@dataclass(frozen=True)
class Calibration:
    """The parameter ``calibrate`` chose and what it was chosen on."""

    parameter: float
    outcome: str
    target: float
    margin: float
    characteristics: Characteristics  # at ``parameter``, on the calibration draws
    history: tuple[tuple[float, float, float], ...] = field(default=())  # (parameter, rate, mcse) tried

    @property
    def bound(self) -> float:
        """The rate plus ``margin`` standard errors: at or below ``target`` by construction."""
        r = self.characteristics.rate(self.outcome)
        return r.value + self.margin * r.mcse


def calibrate(
    simulate: Simulator,
    scenario_at: Callable[[float], Any],
    outcome: str,
    outcomes: Sequence[str],
    target: float,
    low: float,
    high: float,
    replications: int,
    seed: int,
    executor: Executor | None = None,
    margin: float = 2.0,
    log_scale: bool = True,
    rtol: float = 1e-3,
    max_steps: int = 60,
    block: int = 1000,
) -> Calibration:
    """The largest parameter in ``[low, high]`` whose ``outcome`` rate + ``margin`` MCSE <= ``target``.

    ``scenario_at(parameter)`` builds the scenario with the one rule being
    calibrated; the rate must not decrease as the parameter grows (a larger
    threshold of caring ships more). Bisection (on the log of the parameter
    when ``log_scale``) until the bracket is ``rtol`` wide, each step on the
    same draws (common random numbers: same ``seed``, same blocks), so the
    estimated rate is a deterministic function of the parameter.
    """
    if not 0 < target < 1:
        raise ValueError(f"target must be strictly between 0 and 1, got {target}")
    if not 0 < low < high:
        raise ValueError(f"need 0 < low < high, got low={low}, high={high}")
    history: list[tuple[float, float, float]] = []

    def measure(theta: float) -> tuple[bool, Characteristics]:
        (res,) = operating_characteristics(simulate, [scenario_at(theta)], outcomes, replications, seed, executor, block)
        if len(res) != 1:
            raise ValueError(f"scenario_at must build a scenario with exactly one rule; got {list(res)}")
        (ch,) = res.values()
        r = ch.rate(outcome)
        history.append((theta, r.value, r.mcse))
        return r.value + margin * r.mcse <= target, ch

    ok_low, ch_low = measure(low)
    if not ok_low:
        raise ValueError(f"low={low}: the {outcome!r} rate is already above the target {target} (+ {margin} MCSE); lower it")
    ok_high, ch_high = measure(high)
    if ok_high:
        return Calibration(high, outcome, target, margin, ch_high, tuple(history))
    lo, hi, best = low, high, ch_low
    for _ in range(max_steps):
        if (math.log(hi / lo) if log_scale else (hi - lo) / hi) <= rtol:
            break
        mid = math.sqrt(lo * hi) if log_scale else (lo + hi) / 2
        ok, ch = measure(mid)
        if ok:
            lo, best = mid, ch
        else:
            hi = mid
    return Calibration(lo, outcome, target, margin, best, tuple(history))


# ------------------------------------------------------------ A/B sequential rules


def calibrate_ab_rule(
    rule_at: Callable[[float], Any],
    schedule: Any,
    base_rate: float,
    max_wrong_ship: float = 0.05,
    low: float = 1e-5,
    high: float = 0.1,
    replications: int = 20_000,
    seed: int = 0,
    executor: Executor | None = None,
    margin: float = 2.0,
    block: int = 1000,
) -> Calibration:
    """A sequential A/B rule's parameter (``rule_at(parameter)`` builds the rule) chosen so that
    the A/A test (both arms at ``base_rate``, looks at ``schedule``) ships B at most
    ``max_wrong_ship`` of the time: estimated rate + ``margin`` MCSE <= ``max_wrong_ship``.

    See ``wager.ab.sequential`` for the rules and ``calibrate`` for the search.
    """
    from wager.ab.sequential import OUTCOMES, SequentialTrial, simulate_trial

    return calibrate(
        simulate_trial,
        lambda t: SequentialTrial("A/A", base_rate, base_rate, schedule, (rule_at(t),)),
        "ship B",
        OUTCOMES,
        max_wrong_ship,
        low,
        high,
        replications,
        seed,
        executor,
        margin=margin,
        block=block,
    )
