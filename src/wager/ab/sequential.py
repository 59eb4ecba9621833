"""Sequential A/B rules: ship B / keep A / keep testing at every look, and their simulation.

A sequential test looks at the data ``L`` times. At look ``l`` each arm has
``n_l`` visitors (equal split) and ``k_l`` conversions; a *rule* maps the
counts at one look to a decision code:

=========  ====  ===============================================
CONTINUE   0     keep testing
SHIP       1     ship B (the challenger)
KEEP       2     stop early and keep A (the control)
UNDECIDED  3     reached the last look undecided: A is kept
=========  ====  ===============================================

The test stops at the first look whose code is not ``CONTINUE``; a rule that
has not decided by the last look keeps A (``UNDECIDED``: not a ship). Only B
can be shipped, so "any ship" and "ship B" are the same event:

* **wrong ship** = shipping B when B is not truly better (``rate_b <= rate_a``;
  in an A/A test every ship is wrong);
* **power** = P(ship B) when B is truly better.

Every rule reads the posteriors through ``wager.ab.batch.compare_conversions``
with ``method="normal"`` (each ``Beta(1 + k, 1 + n - k)`` posterior replaced by
the Normal with its mean and variance), under flat ``Beta(1, 1)`` priors. Its
error in P(B > A) stays below ``0.07 / (A's conversions)``: 0.007 at 10
conversions (200 visitors at 5%), 0.0001 at 1,000 conversions.

``simulate_trial`` draws all replications of one scenario at once: per look
and arm a ``Binomial(n_l - n_{l-1}, rate)`` increment, cumulated over looks,
so each replication is one path of counts seen at every look.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, Sequence

import numpy as np

from wager.ab.batch import compare_conversions
from wager.errors import SpecError

CONTINUE, SHIP, KEEP, UNDECIDED = 0, 1, 2, 3
OUTCOMES: tuple[str, ...] = ("continue", "ship B", "keep A early", "undecided (keep A)")
"""Outcome names, indexed by decision code."""


class Rule(Protocol):
    """A sequential decision rule at one look: vectorised over replications and looks."""

    name: str

    def describe(self) -> str: ...

    def evaluate(self, successes_a: np.ndarray, n_a: np.ndarray, successes_b: np.ndarray, n_b: np.ndarray) -> np.ndarray:
        """Decision codes (``CONTINUE``, ``SHIP`` or ``KEEP``) of the broadcast shape of the counts."""
        ...


@dataclass(frozen=True)
class ChanceToWinRule:
    """Ship B as soon as P(B > A) > ``threshold``; never stops early for A.

    The rule most A/B dashboards invite: "chance to win above 95%". Checked
    at every look, it ships far more often than ``1 - threshold`` in an A/A
    test (see ``docs/benchmarks.md``).
    """

    threshold: float = 0.95
    name: str = ""

    def __post_init__(self) -> None:
        if not 0.5 <= self.threshold < 1:
            raise SpecError("threshold", f"a chance-to-win threshold must be in [0.5, 1); got {self.threshold!r}")
        if not self.name:
            object.__setattr__(self, "name", f"chance to win > {self.threshold:.6g}")

    def describe(self) -> str:
        return f"ship B at the first look where P(B > A) > {self.threshold:.6g}; otherwise keep testing; keep A at the end"

    def evaluate(self, successes_a, n_a, successes_b, n_b) -> np.ndarray:
        win = compare_conversions(successes_a, n_a, successes_b, n_b)["prob_b_beats_a"]
        return np.where(win > self.threshold, SHIP, CONTINUE).astype(np.int8)


@dataclass(frozen=True)
class ExpectedLossRule:
    """wager's rule (``wager.ab.decide.expected_loss_rule``) at every look.

    With ``loss_B = E[max(pA - pB, 0)]`` (the cost of shipping B when A was
    better) and ``loss_A = E[max(pB - pA, 0)]``: ship B when
    ``loss_B < t`` and ``loss_B <= loss_A``; else keep A (stop) when
    ``loss_A < t``; else keep testing. The threshold of caring ``t`` is
    ``threshold * E[pA]`` (``units="relative"``, as ``ABPolicy``'s default:
    1% of the control's rate) or ``threshold`` itself (``units="absolute"``,
    in conversion rate).
    """

    threshold: float = 0.01
    units: str = "relative"
    name: str = ""

    def __post_init__(self) -> None:
        if not (np.isfinite(self.threshold) and self.threshold > 0):
            raise SpecError("threshold", f"the threshold of caring must be a finite number > 0; got {self.threshold!r}")
        if self.units not in ("relative", "absolute"):
            raise SpecError("units", f"must be 'relative' or 'absolute'; got {self.units!r}")
        if not self.name:
            object.__setattr__(self, "name", f"expected loss < {self.threshold:.4g} ({self.units})")

    def describe(self) -> str:
        scale = " x E[pA]" if self.units == "relative" else ""
        return (
            f"ship B when E[loss | ship B] < {self.threshold:.4g}{scale} (and no more than E[loss | keep A]); "
            f"keep A when E[loss | keep A] < {self.threshold:.4g}{scale}; otherwise keep testing; keep A at the end"
        )

    def evaluate(self, successes_a, n_a, successes_b, n_b) -> np.ndarray:
        c = compare_conversions(successes_a, n_a, successes_b, n_b)
        loss_b, loss_a = c["expected_loss_ship_b"], c["expected_loss_keep_a"]
        if self.units == "relative":
            t = self.threshold * (np.asarray(successes_a, dtype=float) + 1) / (np.asarray(n_a, dtype=float) + 2)
        else:
            t = self.threshold
        ship = (loss_b < t) & (loss_b <= loss_a)
        return np.where(ship, SHIP, np.where(loss_a < t, KEEP, CONTINUE)).astype(np.int8)


@dataclass(frozen=True)
class LookSchedule:
    """Cumulative visitors per arm at each look, strictly increasing."""

    visitors: tuple[int, ...]

    def __post_init__(self) -> None:
        v = self.visitors
        if len(v) == 0:
            raise SpecError("visitors", "a look schedule needs at least one look")
        if any(isinstance(x, bool) or not isinstance(x, (int, np.integer)) for x in v):
            raise SpecError("visitors", "must be whole numbers of visitors per arm")
        if v[0] <= 0 or any(b <= a for a, b in zip(v, v[1:])):
            raise SpecError("visitors", f"must be positive and strictly increasing; got {list(v)[:5]}...")
        object.__setattr__(self, "visitors", tuple(int(x) for x in v))

    @classmethod
    def equally_spaced(cls, looks: int, max_visitors: int) -> "LookSchedule":
        """``looks`` looks at ``round(max_visitors * l / looks)`` visitors per arm, ``l = 1..looks``."""
        if looks < 1 or max_visitors < looks:
            raise SpecError("looks", f"need 1 <= looks <= max_visitors; got looks={looks}, max_visitors={max_visitors}")
        return cls(tuple(int(round(max_visitors * l / looks)) for l in range(1, looks + 1)))

    @property
    def looks(self) -> int:
        return len(self.visitors)

    @property
    def max_visitors(self) -> int:
        return self.visitors[-1]


@dataclass(frozen=True)
class SequentialTrial:
    """One scenario: true rates, a look schedule, and the rules judged on the same draws."""

    name: str
    rate_a: float
    rate_b: float
    schedule: LookSchedule
    rules: tuple = field(default=())

    def __post_init__(self) -> None:
        for f in ("rate_a", "rate_b"):
            r = getattr(self, f)
            if not 0 < r < 1:
                raise SpecError(f, f"a conversion rate must be strictly between 0 and 1; got {r!r}")
        names = [r.name for r in self.rules]
        if len(set(names)) != len(names):
            raise SpecError("rules", f"rule names must be unique within a trial; got {names}")
        object.__setattr__(self, "rules", tuple(self.rules))

    @property
    def b_is_better(self) -> bool:
        return self.rate_b > self.rate_a

    @property
    def lift(self) -> float:
        """The true relative lift of B over A."""
        return self.rate_b / self.rate_a - 1


def scenario_grid(rules: Sequence[Rule], schedule: LookSchedule, base_rate: float, lifts: Sequence[float]) -> list[SequentialTrial]:
    """One trial per relative lift of B over A (``0`` is the A/A test), every rule on each."""
    return [
        SequentialTrial("A/A" if lift == 0 else f"{lift:+.0%} lift", base_rate, base_rate * (1 + lift), schedule, tuple(rules))
        for lift in lifts
    ]


def simulate_trial(trial: SequentialTrial, replications: int, seed: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``replications`` independent runs of ``trial``, every rule judged on the same paths.

    Returns, per rule name, the outcome code (``SHIP``, ``KEEP`` or
    ``UNDECIDED``) and the visitors per arm at the stopping look, both shaped
    ``(replications,)``. Deterministic in ``seed``.
    """
    rng = np.random.default_rng(seed)
    n = np.asarray(trial.schedule.visitors, dtype=np.int64)
    step = np.diff(n, prepend=0)
    shape = (replications, n.size)
    ka = np.cumsum(rng.binomial(step, trial.rate_a, size=shape), axis=1)
    kb = np.cumsum(rng.binomial(step, trial.rate_b, size=shape), axis=1)
    return {rule.name: stopping(rule.evaluate(ka, n, kb, n), n) for rule in trial.rules}


def stopping(codes: np.ndarray, visitors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """First decision of each row of ``codes`` (replications x looks) and the visitors seen by then.

    A row that never decides ends ``UNDECIDED`` at the last look.
    """
    codes = np.array(codes, dtype=np.int8, copy=True)
    last = codes[:, -1]
    last[last == CONTINUE] = UNDECIDED
    first = np.argmax(codes != CONTINUE, axis=1)
    rows = np.arange(codes.shape[0])
    return codes[rows, first], np.asarray(visitors)[first]
