"""What a domain's decision step returns to the shared path."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Outcome:
    """The recommended ``action`` (``None``: no action recommended), a JSON-ready
    ``summary`` for machines, and plain-language ``lines`` for people."""

    action: str | None
    summary: dict[str, Any]
    lines: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
