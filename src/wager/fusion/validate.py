"""Input checks at the edge, in NumPy, before anything is traced.

The filters are traced JAX functions and cannot raise on values: a covariance
that is not positive definite gives NaNs, a measurement of the wrong length a
shape error deep inside ``lax.scan``. These checks say instead which field is
wrong and what it must satisfy (``wager.errors.SpecError``), and return the
arrays as float64 NumPy arrays.
"""

from __future__ import annotations

from typing import Any, Optional

import numpy as np

from wager.errors import SpecError
from wager.fusion.kalman import LinearGaussian
from wager.tables import row_at

SYMMETRY_TOLERANCE = 1e-9
"""Largest ``|A - A^T|`` accepted, relative to ``max |A|``: covariances built in floating point
are symmetric to rounding, not exactly."""


def check_matrix(field: str, value: Any, shape: tuple[int, ...]) -> np.ndarray:
    """``value`` as a finite float array of exactly ``shape``."""
    try:
        a = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        raise SpecError(field, f"must be an array of numbers of shape {shape}") from None
    if a.shape != shape:
        raise SpecError(field, f"must have shape {shape} to match the model's dimensions; got {a.shape}")
    if not np.all(np.isfinite(a)):
        raise SpecError(field, "must be finite (no NaN or infinity)")
    return a


def check_covariance(field: str, value: Any, dim: int, allow_singular: bool = False) -> np.ndarray:
    """A ``(dim, dim)`` covariance: finite, symmetric and positive definite (or, with
    ``allow_singular``, semidefinite: a process noise that drives only some states)."""
    a = check_matrix(field, value, (dim, dim))
    scale = max(float(np.abs(a).max()), np.finfo(float).tiny)
    if float(np.abs(a - a.T).max()) > SYMMETRY_TOLERANCE * scale:
        raise SpecError(field, "must be a symmetric covariance matrix")
    smallest = float(np.linalg.eigvalsh(a).min())
    if allow_singular:
        if smallest < -SYMMETRY_TOLERANCE * scale:
            raise SpecError(field, f"must be positive semidefinite; its smallest eigenvalue is {smallest:.3g}")
        return a
    try:
        np.linalg.cholesky(a)
    except np.linalg.LinAlgError:
        raise SpecError(field, f"must be positive definite; its smallest eigenvalue is {smallest:.3g}") from None
    return a


def check_measurements(field: str, value: Any, dim: int, allow_missing: bool, rows: Any = None) -> np.ndarray:
    """Measurements ``(T, dim)`` (``(T,)`` when ``dim == 1``): finite, or NaN where a
    measurement is missing if ``allow_missing``; infinity never. ``rows`` (default
    ``0..T-1``) are the 0-based rows of the user's table the measurements came from,
    so that a message names the row the user sees."""
    try:
        y = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        raise SpecError(field, "must be an array of numbers (NaN for a missing measurement)") from None
    if y.ndim == 1 and dim == 1:
        y = y[:, None]
    if y.ndim != 2 or y.shape[1] != dim:
        raise SpecError(field, f"must have shape (T, {dim}): one row per time step, one column per measured quantity; got {y.shape}")
    if y.shape[0] == 0:
        raise SpecError(field, "must hold at least one time step")
    rows = np.arange(y.shape[0]) if rows is None else np.asarray(rows)
    if np.any(np.isinf(y)):
        raise SpecError(field, f"must not be infinite (NaN marks a missing one): {row_at(rows[np.argmax(np.isinf(y).any(axis=1))])} holds infinity")
    missing = np.isnan(y).any(axis=1)
    if missing.any() and not allow_missing:
        raise SpecError(
            field,
            f"has NaN (missing) measurements in {int(missing.sum())} row(s), the first at {row_at(rows[np.argmax(missing)])}, "
            "and this model does not allow missing measurements (declare them allowed to skip them)",
        )
    return y


def check_controls(field: str, value: Any, steps: int, dim: int) -> np.ndarray:
    """Control inputs ``(steps, dim)`` (``(steps,)`` when ``dim == 1``), finite: a control is never missing."""
    u = np.asarray(value, dtype=float)
    if u.ndim == 1 and dim == 1:
        u = u[:, None]
    if u.shape == (steps, dim) and not np.all(np.isfinite(u)):
        raise SpecError(field, f"must be finite (no NaN or infinity): {row_at(np.argmax(~np.isfinite(u).all(axis=1)))} is not")
    return check_matrix(field, u, (steps, dim))


def linear_gaussian(
    F: Any, H: Any, Q: Any, R: Any, m0: Any, P0: Any, B: Optional[Any] = None, where: str = "model"
) -> LinearGaussian:
    """A checked ``LinearGaussian``: dimensions read off ``F`` ``(dx, dx)`` and ``H`` ``(dz, dx)``,
    ``R`` and ``P0`` positive definite, ``Q`` positive semidefinite. Fields are named
    ``{where}.F`` ... ``{where}.B``."""
    F_ = np.asarray(F, dtype=float)
    if F_.ndim != 2 or F_.shape[0] != F_.shape[1] or F_.shape[0] == 0:
        raise SpecError(f"{where}.F", f"must be a square (dx, dx) matrix; got shape {F_.shape}")
    dx = F_.shape[0]
    H_ = np.asarray(H, dtype=float)
    if H_.ndim != 2 or H_.shape[1] != dx:
        raise SpecError(f"{where}.H", f"must have shape (dz, {dx}) to match F; got {H_.shape}")
    dz = H_.shape[0]
    B_ = None
    if B is not None:
        B_ = np.asarray(B, dtype=float)
        B_ = B_[:, None] if B_.ndim == 1 else B_
        check_matrix(f"{where}.B", B_, (dx, B_.shape[1] if B_.ndim == 2 else 0))
    return LinearGaussian(
        F=check_matrix(f"{where}.F", F_, (dx, dx)),
        H=check_matrix(f"{where}.H", H_, (dz, dx)),
        Q=check_covariance(f"{where}.Q", Q, dx, allow_singular=True),
        R=check_covariance(f"{where}.R", R, dz),
        m0=check_matrix(f"{where}.m0", m0, (dx,)),
        P0=check_covariance(f"{where}.P0", P0, dx),
        B=B_,
    )
