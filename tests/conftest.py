"""Shared test fixtures."""

from __future__ import annotations

import os

# Keep JAX's compilation cache inside the test session's temp space and on the CPU.
os.environ.setdefault("JAX_PLATFORMS", "cpu")
