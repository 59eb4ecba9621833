"""Reading a user's table (CSV or parquet) at the edge, shared by the domains."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from wager.errors import SpecError

if TYPE_CHECKING:
    import pandas as pd


def resolve(path: str | Path, base_dir: Path | None) -> Path:
    """``path`` relative to the spec's folder (as given when absolute or there is none)."""
    p = Path(path)
    return p if p.is_absolute() or base_dir is None else base_dir / p


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
