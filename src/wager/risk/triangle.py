"""A cumulative paid-loss development triangle, validated at the edge.

``C[w, d]`` is the cumulative paid loss of accident (origin) year ``w =
0..n-1`` at development period ``d = 0..n-1``, observed where ``w + d <= n - 1``
(the upper-left triangle and its latest diagonal) and NaN below. The reserve is
what is still to be paid: ``R = sum_w (U_w - L_w)`` with ``U_w = C[w, n-1]`` the
ultimate and ``L_w = C[w, n-1-w]`` the latest diagonal. Development beyond the
triangle's last column (a tail) is not modelled.

A triangle comes as an array, a pandas DataFrame, a ``chainladder.Triangle``
(``as_triangle``) or one of ``chainladder``'s samples (``bundled_triangle``);
every observed cell must be finite and positive, since the models take logs
(``wager.risk.reserving``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from wager.errors import SpecError

MIN_ORIGINS = 3
"""Fewest origins (rows) a triangle may have: with two, each development factor rests on one ratio."""
BUNDLED = ("raa", "genins", "ukmotor", "abc", "m3ir5", "mw2008", "mw2014", "mortgage")
"""``chainladder`` samples that are one square cumulative triangle (``chainladder.load_sample``)."""


@dataclass(frozen=True)
class LossTriangle:
    """A validated cumulative loss triangle.

    ``losses`` is ``(n, n)``: origins down, development periods across, NaN
    below the latest diagonal. ``origins`` and ``developments`` label its rows
    and columns.
    """

    losses: np.ndarray
    origins: tuple[str, ...]
    developments: tuple[str, ...]

    @property
    def size(self) -> int:
        """``n``, the number of origins (and of development periods)."""
        return self.losses.shape[0]

    @property
    def observed(self) -> np.ndarray:
        """``(n, n)`` booleans: ``w + d <= n - 1``."""
        w, d = np.indices(self.losses.shape)
        return w + d <= self.size - 1

    @property
    def latest(self) -> np.ndarray:
        """``(n,)`` the latest diagonal ``C[w, n-1-w]``: paid to date per origin."""
        n = self.size
        return self.losses[np.arange(n), n - 1 - np.arange(n)]


def as_triangle(triangle: Any, origins: Sequence[Any] | None = None, developments: Sequence[Any] | None = None) -> LossTriangle:
    """A ``LossTriangle`` from a 2-D array (with ``origins``, default ``1..n``, and
    ``developments``, default ``1..n``), a pandas DataFrame (origins from its index,
    developments from its columns), a ``chainladder.Triangle`` (one index and column;
    converted to cumulative) or a ``LossTriangle``; ``origins`` and ``developments``
    replace the labels any of these carry.

    Raises ``SpecError("triangle", ...)`` unless the triangle is square with at
    least ``MIN_ORIGINS`` origins, finite and positive where observed (logs of
    every observed cell are taken), NaN below the latest diagonal and without
    holes above it; ``SpecError("origins", ...)`` unless there is one distinct
    label per origin (``"developments"`` likewise per development period). A bad
    cell is named by its origin and development labels, as the user's table shows them.
    """
    if isinstance(triangle, LossTriangle):
        values, labels, development_labels = triangle.losses, triangle.origins, triangle.developments
    elif type(triangle).__module__.startswith("chainladder"):
        values, labels, development_labels = _from_chainladder(triangle)
    else:
        labels, development_labels = None, None
        if hasattr(triangle, "index") and hasattr(triangle, "columns"):  # a pandas DataFrame
            labels = [str(o) for o in triangle.index]
            development_labels = [str(c) for c in triangle.columns]
            triangle = triangle.to_numpy()
        try:
            values = np.array(triangle, dtype=float)
        except (TypeError, ValueError) as exc:
            raise SpecError("triangle", f"must be numbers (cumulative paid losses, NaN below the diagonal): {exc}") from None
    if origins is not None:
        labels = [str(o) for o in origins]
    if developments is not None:
        development_labels = [str(d) for d in developments]
    n = _check_shape(values)
    labels = _labels("origins", "origin", labels, range(1, n + 1), n)
    development_labels = _labels("developments", "development period", development_labels, range(1, n + 1), n)
    _check_cells(values, labels, development_labels)
    return LossTriangle(losses=values, origins=labels, developments=development_labels)


def _labels(field: str, what: str, given: Sequence[str] | None, default: range, n: int) -> tuple[str, ...]:
    labels = tuple(str(x) for x in (given if given is not None else default))
    if len(labels) != n:
        raise SpecError(field, f"must give one label per {what}: the triangle has {n} {what}s, got {len(labels)} labels")
    if len(set(labels)) != n:
        raise SpecError(field, "must be distinct labels")
    return labels


def _check_shape(values: np.ndarray) -> int:
    if values.ndim != 2:
        raise SpecError("triangle", f"must be 2-D (origins x development periods), got shape {values.shape}")
    n, m = values.shape
    if n != m:
        raise SpecError("triangle", f"must be square (as many development periods as origins), got {n} origins x {m} periods")
    if n < MIN_ORIGINS:
        raise SpecError("triangle", f"must have at least {MIN_ORIGINS} origins, got {n}")
    return n


def _check_cells(values: np.ndarray, origins: Sequence[str], developments: Sequence[str]) -> None:
    n = values.shape[0]

    def cell(w: int, d: int) -> str:
        return f"origin {origins[w]}, development {developments[d]}"

    present = ~np.isnan(values)
    for w in range(n):
        row = present[w]
        k = int(np.argmin(row)) if not row.all() else n  # observed prefix length
        if row[k:].any():
            raise SpecError("triangle", f"has a hole at {cell(w, k)}: NaN before an observed value in the same row")
        if k < n - w:
            raise SpecError("triangle", f"has a hole at {cell(w, k)}: NaN inside the observed upper-left triangle (origin {origins[w]} must be observed up to development {developments[n - 1 - w]})")
        if k > n - w:
            raise SpecError("triangle", f"has a value below the latest diagonal at {cell(w, n - w)}: must be NaN (origin {origins[w]} is observed up to development {developments[n - 1 - w]})")
    observed = values[present]
    if not np.isfinite(observed).all():
        w, d = np.argwhere(present & ~np.isfinite(values))[0]
        raise SpecError("triangle", f"must be finite: {cell(w, d)} is {values[w, d]}")
    if (observed < 0).any():
        w, d = np.argwhere(present & (values < 0))[0]
        raise SpecError("triangle", f"cumulative losses must be >= 0: {cell(w, d)} is {values[w, d]:g}")
    if (observed == 0).any():
        w, d = np.argwhere(present & (values == 0))[0]
        raise SpecError("triangle", f"must be > 0 where observed (the model takes logs): {cell(w, d)} is 0")


def _from_chainladder(triangle: Any) -> tuple[np.ndarray, list[str], list[str]]:
    if triangle.shape[:2] != (1, 1):
        raise SpecError("triangle", f"must be one chainladder triangle (one index, one column), got shape {triangle.shape}; select one, e.g. tri['paid']")
    if not triangle.is_cumulative:
        triangle = triangle.incr_to_cum()
    values = np.asarray(triangle.values, dtype=float)[0, 0]
    return values, [str(o) for o in triangle.origin], [str(d) for d in triangle.development]


def bundled_triangle(name: str, column: str | None = None) -> LossTriangle:
    """A sample triangle shipped with ``chainladder`` (``chainladder.load_sample``).

    One-triangle samples: ``raa`` (RAA general liability, 1981-1990, Mack 1994),
    ``genins`` (Taylor & Ashe 1983, Mack 1993), ``ukmotor`` (UK motor,
    Christofides 1990, 7 x 7), ``abc``, ``m3ir5``, ``mw2008``, ``mw2014``,
    ``mortgage``. Samples with several columns (``usaa``, ``mcl``, ...) need
    ``column`` (e.g. ``"paid"``) and one index.
    """
    import chainladder as cl  # imported here: only this helper and the Mack peer need it

    try:
        tri = cl.load_sample(name)
    except Exception:
        raise SpecError("name", f"must name a chainladder sample, e.g. one of {', '.join(BUNDLED)}; got {name!r}") from None
    if column is not None:
        if column not in list(tri.columns):
            raise SpecError("column", f"must be one of {', '.join(map(repr, tri.columns))}; got {column!r}")
        tri = tri[column]
    return as_triangle(tri)
