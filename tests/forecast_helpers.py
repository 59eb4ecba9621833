"""What the forecast tests share: the CRPS of a sample predictive."""

from __future__ import annotations

import numpy as np


def crps(samples: np.ndarray, obs: np.ndarray) -> np.ndarray:
    """CRPS of a sample predictive (Gneiting & Raftery 2007, eq. 20, sorted form)."""
    s = np.sort(samples, axis=0)
    n = s.shape[0]
    i = np.arange(1, n + 1).reshape((-1,) + (1,) * (s.ndim - 1))
    return np.mean(np.abs(s - obs[None]), axis=0) - np.sum((2 * i - n - 1) * s, axis=0) / n**2
