"""An insurance book's data: the frequency table and the claims table, validated
at the edge (``check_portfolio``).

A *frequency table*, one row per class and period (or per policy group):
the class label, the exposure ``E_r > 0`` (policy-years, vehicle-years...) and
the claim count ``n_r`` (an integer >= 0); a class may have many rows. A
*claims table*: the class label and the amount ``y_i > 0`` of each claim, in
currency units; it may cover a different window than the counts (closed claims
of several years, say). Every class in the claims table must be in the
frequency table; a class with no claims takes its severity from the pool.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Hashable, Sequence

import numpy as np

from wager.errors import SpecError
from wager.tables import finite_numbers, labels, row_at


@dataclass(frozen=True)
class Portfolio:
    """A validated frequency table and claims table (``check_portfolio`` builds one).

    ``classes``: the labels, in order of first appearance in the frequency table;
    ``row_class``, ``exposure``, ``counts``: the frequency table's rows ``(R,)``
    (class index, exposure, claim count); ``claim_class``, ``amounts``: the
    claims table ``(K,)`` (class index, amount).
    """

    classes: tuple[Hashable, ...]
    row_class: np.ndarray
    exposure: np.ndarray
    counts: np.ndarray
    claim_class: np.ndarray
    amounts: np.ndarray

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    def class_exposure(self) -> np.ndarray:
        """Total exposure per class ``(C,)``."""
        return np.bincount(self.row_class, weights=self.exposure, minlength=self.n_classes)

    def typical_exposure(self) -> np.ndarray:
        """Mean exposure of a class's rows ``(C,)``: one typical period of each class."""
        rows = np.bincount(self.row_class, minlength=self.n_classes)
        return self.class_exposure() / rows

    def severity_statistics(self) -> dict[str, np.ndarray]:
        """Per class ``(C,)``: claim count ``n``, mean of ``log y`` and sum of squared
        deviations about it; and ``sum log y`` (the lognormal's Jacobian), a scalar."""
        log_y = np.log(self.amounts)
        n = np.bincount(self.claim_class, minlength=self.n_classes).astype(float)
        total = np.bincount(self.claim_class, weights=log_y, minlength=self.n_classes)
        mean = np.divide(total, n, out=np.zeros_like(total), where=n > 0)
        squares = np.bincount(self.claim_class, weights=(log_y - mean[self.claim_class]) ** 2, minlength=self.n_classes)
        return {"n_claims": n, "mean_log_amount": mean, "ss_log_amount": squares, "sum_log_amount": np.asarray(log_y.sum())}


def check_portfolio(
    classes: Sequence[Hashable],
    exposure: Any,
    counts: Any,
    claim_classes: Sequence[Hashable],
    amounts: Any,
) -> Portfolio:
    """The frequency table (``classes``, ``exposure``, ``counts``, one entry per row)
    and the claims table (``claim_classes``, ``amounts``, one per claim), validated.

    ``SpecError`` names the field: ``exposure`` (finite, > 0), ``counts`` (whole
    numbers >= 0), ``claims.amount`` (finite, > 0), ``claims.class`` (each label
    in the frequency table), ``classes`` (one label per row).
    """
    row_labels = labels(classes, "classes", "class")
    e = finite_numbers(exposure, "exposure")
    if not row_labels:
        raise SpecError("classes", "the frequency table needs at least one row")
    if e.size != len(row_labels):
        raise SpecError("exposure", f"needs one value per frequency-table row ({len(row_labels)}), got {e.size}")
    if np.any(e <= 0):
        bad = int(np.argmax(e <= 0))
        raise SpecError("exposure", f"must be > 0 (policy-years or similar): {row_at(bad)} has {e[bad]:g}")
    n = finite_numbers(counts, "counts")
    if n.size != len(row_labels):
        raise SpecError("counts", f"needs one value per frequency-table row ({len(row_labels)}), got {n.size}")
    if np.any((n < 0) | (n != np.round(n))):
        bad = int(np.argmax((n < 0) | (n != np.round(n))))
        raise SpecError("counts", f"must be whole numbers >= 0 (claims counted): {row_at(bad)} has {n[bad]:g}")
    index: dict[Hashable, int] = {}
    for label in row_labels:
        index.setdefault(label, len(index))
    claim_labels = labels(claim_classes, "claims.class", "class")
    y = finite_numbers(amounts, "claims.amount")
    if y.size != len(claim_labels):
        raise SpecError("claims.amount", f"needs one amount per claim ({len(claim_labels)} class labels), got {y.size}")
    if y.size == 0:
        raise SpecError("claims.amount", "needs at least one claim to estimate severity")
    if np.any(y <= 0):
        bad = int(np.argmax(y <= 0))
        raise SpecError("claims.amount", f"must be > 0 (a claim's cost, in currency): {row_at(bad)} has {y[bad]:g}")
    unknown = [label for label in dict.fromkeys(claim_labels) if label not in index]
    if unknown:
        raise SpecError("claims.class", f"every claim's class must be in the frequency table; not there: {', '.join(map(repr, unknown[:5]))}")
    return Portfolio(
        classes=tuple(index),
        row_class=np.asarray([index[label] for label in row_labels], dtype=np.int64),
        exposure=e,
        counts=np.round(n).astype(np.int64),
        claim_class=np.asarray([index[label] for label in claim_labels], dtype=np.int64),
        amounts=y,
    )
