"""Sample-ratio mismatch: did the traffic split come out as designed?

Pearson's chi-square goodness of fit of the arms' visitor counts against the
designed split, ``k - 1`` degrees of freedom. A p-value below ``alpha``
(default 0.001, the industry convention; Fabijan et al., KDD 2019) flags a
broken assignment: the comparison is not trustworthy whatever its posterior.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
from scipy import special


@dataclass(frozen=True)
class SRMCheck:
    chi2: float
    dof: int
    p_value: float
    alpha: float
    expected_split: tuple[float, ...]

    @property
    def flagged(self) -> bool:
        return self.p_value < self.alpha


def srm_check(visitors: Sequence[int], expected_split: Sequence[float] | None = None, alpha: float = 0.001) -> SRMCheck:
    observed = np.asarray(visitors, dtype=float)
    split = np.ones_like(observed) if expected_split is None else np.asarray(expected_split, dtype=float)
    split = split / split.sum()
    expected = observed.sum() * split
    chi2 = float(np.sum((observed - expected) ** 2 / expected))
    dof = observed.size - 1
    return SRMCheck(chi2, dof, float(special.chdtrc(dof, chi2)), alpha, tuple(float(s) for s in split))
