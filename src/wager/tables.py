"""Reading a user's table (CSV or parquet) at the edge, shared by the domains."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from wager.errors import SpecError

if TYPE_CHECKING:
    import pandas as pd


def row_at(index: Any) -> str:
    """How a message names the row at 0-based ``index``: counted from 1, as people count the rows
    under a table's header (the first data row is row 1). Every domain names rows this way."""
    return f"row {int(index) + 1}"


def resolve(path: str | Path, base_dir: Path | None) -> Path:
    """``path`` relative to the spec's folder (as given when absolute or there is none)."""
    p = Path(path)
    return p if p.is_absolute() or base_dir is None else base_dir / p


def finite_numbers(values: Any, field: str) -> np.ndarray:
    """``values`` as a flat float array, or ``SpecError(field, ...)`` unless every one is a finite number."""
    try:
        x = np.asarray(values, dtype=float).ravel()
    except (TypeError, ValueError) as exc:
        raise SpecError(field, f"must be numbers: {exc}") from None
    bad = ~np.isfinite(x)
    if bad.any():
        first = int(np.argmax(bad))
        raise SpecError(field, f"must be finite (no NaN or inf): {int(bad.sum())} bad value(s), the first at {row_at(first)} ({x[first]})")
    return x


def read_table(path: str | Path, field: str = "data.path") -> "pd.DataFrame":
    """Read a CSV or parquet file, or raise ``SpecError`` naming ``field``."""
    import pandas as pd

    path = Path(path)
    if not path.is_file():
        raise SpecError(field, f"no such file: {path}")
    try:
        if path.suffix.lower() in (".parquet", ".pq"):
            return pd.read_parquet(path)
        if path.suffix.lower() in (".csv", ".txt"):
            return pd.read_csv(path)
    except Exception as exc:  # the reader's own message is the useful part
        raise SpecError(field, f"could not be read as a table: {exc}") from None
    raise SpecError(field, f"must be a .csv or .parquet file; got {path.suffix or 'no extension'}")
