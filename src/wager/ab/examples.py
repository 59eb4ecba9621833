"""Built-in example data."""

from __future__ import annotations

FOUNDING_EXAMPLE = {
    "name": "founding example: A 1100/20000 vs B 1200/20000, margin 0.005",
    "metric": "conversion",
    "arms": [
        {"name": "A", "visitors": 20000, "conversions": 1100},
        {"name": "B", "visitors": 20000, "conversions": 1200},
    ],
    "decision": {"min_lift": 0.005},
}
"""The A/B test of the founding document: is B worth shipping over A when only a
lift above half a percentage point pays for the change?"""
