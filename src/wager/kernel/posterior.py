"""One posterior type for every engine.

Draws carry chain and draw dimensions: ``draws[name].shape == (chains, draws,
*event_shape)``. ``sample_stats`` hold the sampler's per-draw statistics
(``diverging``, ``energy``, ``tree_depth`` ...) with shape ``(chains, draws)``;
an exact engine has none. ``exact`` holds the closed-form posterior when the
engine had one, so decisions can use closed forms instead of draws.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

from wager.kernel.conjugate import ExactPosterior


@dataclass(frozen=True)
class Posterior:
    draws: Mapping[str, np.ndarray]
    engine: str
    reason: str
    seed: int
    chain_seeds: tuple[int, ...]
    sample_stats: Mapping[str, np.ndarray] = field(default_factory=dict)
    exact: ExactPosterior | None = None
    settings: Mapping[str, Any] = field(default_factory=dict)

    @property
    def chains(self) -> int:
        return next(iter(self.draws.values())).shape[0]

    @property
    def draws_per_chain(self) -> int:
        return next(iter(self.draws.values())).shape[1]

    @property
    def independent(self) -> bool:
        """True when the draws are independent (exact engine), not a Markov chain."""
        return self.exact is not None

    def __getitem__(self, name: str) -> np.ndarray:
        return self.draws[name]

    def flat(self, name: str) -> np.ndarray:
        """Draws of ``name`` with chains pooled: shape ``(chains * draws, *event_shape)``."""
        x = self.draws[name]
        return x.reshape((-1,) + x.shape[2:])

    def to_inference_data(self) -> Any:
        """ArviZ ``InferenceData`` with ``posterior`` and (for samplers) ``sample_stats``."""
        from wager.kernel.diagnostics import to_inference_data

        return to_inference_data(self)
