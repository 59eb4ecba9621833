"""Seeds: integers at every public boundary, child seeds derived from stable ids.

A chain's (or a task's) seed depends only on the run seed and its own id,
never on how many chains or workers there are or the order they run in.
"""

from __future__ import annotations

import numpy as np


MAX_SEED = 2**63 - 1
"""The largest seed: seeds are non-negative 64-bit signed integers."""


def check_seed(seed: object, field: str = "seed") -> int:
    """An integer seed in [0, 2**63), or ``ValueError`` naming ``field``."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise ValueError(f"{field} must be an integer, got {type(seed).__name__}")
    if not 0 <= int(seed) <= MAX_SEED:
        raise ValueError(f"{field} must be in [0, 2**63), got {seed}")
    return int(seed)


def derive_seed(seed: int, *ids: int) -> int:
    """A 32-bit child seed for the stream named by ``ids`` under ``seed``.

    Uses NumPy's ``SeedSequence`` spawn keys, so ``derive_seed(s, i)`` is the
    seed of child ``i`` whatever else is spawned.
    """
    sequence = np.random.SeedSequence(entropy=check_seed(seed), spawn_key=tuple(ids))
    return int(sequence.generate_state(1, dtype=np.uint32)[0])


def chain_seeds(seed: int, chains: int) -> tuple[int, ...]:
    """One seed per chain, chain ``c`` getting ``derive_seed(seed, c)``."""
    return tuple(derive_seed(seed, chain) for chain in range(chains))
