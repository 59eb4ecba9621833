"""Reading a user's table (CSV or parquet) at the edge, and the comma lists that name its
columns (or a list of numbers) on a command line: shared by the domains."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, Hashable

import numpy as np

from wager.errors import SpecError

if TYPE_CHECKING:
    import pandas as pd


def row_at(index: Any) -> str:
    """How a message names the row at 0-based ``index``: counted from 1, as people count the rows
    under a table's header (the first data row is row 1). Every domain names rows this way."""
    return f"row {int(index) + 1}"


def comma_items(value: object, field: str) -> object:
    """A comma-separated text as its items, stripped (``"a, b,c"``: ``["a", "b", "c"]``;
    blank text: none); anything else as given, for the schema to check. An empty item
    (``"a,,b"``) is refused as ``{field}.{index}``, not dropped: a name or a number may
    have been lost in the typing."""
    if not isinstance(value, str):
        return value
    if not value.strip():
        return []
    items = [v.strip() for v in value.split(",")]
    for i, item in enumerate(items):
        if not item:
            raise SpecError(f"{field}.{i}", f"is empty: {value!r} has nothing at position {i + 1}")
    return items


def resolve(path: str | Path, base_dir: Path | None) -> Path:
    """``path`` relative to the spec's folder (as given when absolute or there is none)."""
    p = Path(path)
    return p if p.is_absolute() or base_dir is None else base_dir / p


def finite_numbers(values: Any, field: str) -> np.ndarray:
    """``values`` as a flat float array, or ``SpecError(field, ...)`` unless every one is a finite number."""
    try:
        x = np.asarray(values, dtype=float).ravel()
    except (TypeError, ValueError) as exc:
        raise SpecError(field, f"must be numbers: {_first_non_number(values) or exc}") from None
    bad = ~np.isfinite(x)
    if bad.any():
        first = int(np.argmax(bad))
        raise SpecError(field, f"must be finite (no NaN or inf): {int(bad.sum())} bad value(s), the first at {row_at(first)} ({x[first]})")
    return x


def _first_non_number(values: Any) -> str | None:
    """Where ``values`` first holds a cell that is not a number (``row 3 has 'ten'``), or
    None where no single cell is to blame (ragged nesting, say)."""
    for index, cell in enumerate(np.asarray(values, dtype=object).ravel()):
        try:
            float(cell)
        except (TypeError, ValueError):
            return f"{row_at(index)} has {_as_shown(cell)!r}"
    return None


def labels(values: Any, field: str, what: str) -> list[Hashable]:
    """The cells of a label column (an origin, a class, a patient) as the table shows them,
    or ``SpecError(field, ...)`` naming the first row whose cell is empty.

    pandas reads a column of whole numbers with one empty cell as floats, and a
    parquet file may store them so: a whole float is given back as the integer
    (``2001``, not ``2001.0``); numpy scalars as Python's. An empty cell (NaN,
    None, blank text) would otherwise become a label of its own called ``nan``.
    """
    import pandas as pd

    cells = list(values) if isinstance(values, (list, tuple)) else list(np.asarray(values, dtype=object).ravel())
    for index, cell in enumerate(cells):
        if (isinstance(cell, str) and not cell.strip()) or (pd.api.types.is_scalar(cell) and pd.isna(cell)):
            raise SpecError(field, f"must name each row's {what}: {row_at(index)} is empty")
    return [_as_shown(cell) for cell in cells]


def _as_shown(cell: Any) -> Hashable:
    cell = cell.item() if isinstance(cell, np.generic) else cell
    return int(cell) if isinstance(cell, float) and cell.is_integer() else cell


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
        raise SpecError(field, f"could not be read as a table: {_reader_message(exc, path)}") from None
    raise SpecError(field, f"must be a .csv or .parquet file; got {path.suffix or 'no extension'}")


_FILE_LINE = re.compile(r"\bline (\d+)\b")
"""How pandas' CSV tokenizer names where it stopped: ``Expected 4 fields in line 3, saw 5``."""


def _reader_message(exc: Exception, path: Path) -> str:
    """The reader's message on one line (pandas' may end in a newline), with the file
    line it names also given as the row (``line 3`` of a file with a header is ``row 2``)
    where that row can be told for certain (``_row_of_line``)."""
    message = " ".join(str(exc).split())
    found = _FILE_LINE.search(message)
    if found is None or path.suffix.lower() not in (".csv", ".txt"):
        return message
    row = _row_of_line(path, int(found.group(1)))
    if row is None:
        return message
    return f"{message[: found.start()]}{row} ({found.group(0)} of the file){message[found.end():]}"


def _row_of_line(path: Path, line: int) -> str | None:
    """The row (``row_at``) that is the file's ``line`` (counted from 1, the header
    being line 1), or None where it cannot be told for certain: pandas skips blank
    lines, and a quoted cell may span lines, so the count holds only when no line
    up to ``line`` is blank or holds a quote."""
    if line < 2:
        return None
    with open(path, encoding="utf-8", errors="replace") as lines:
        for number, text in enumerate(lines, start=1):
            if not text.strip() or '"' in text:
                return None
            if number == line:
                return row_at(line - 2)
    return None
