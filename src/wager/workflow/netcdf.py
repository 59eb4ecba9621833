"""Posterior draws as an ArviZ InferenceData NetCDF file, written without ArviZ.

The registry stores every run's draws in ArviZ's on-disk layout (a NetCDF-4
file with one group per InferenceData group: ``posterior``, ``sample_stats``;
dimensions ``chain``, ``draw``, ``<var>_dim_<i>``), so ``az.from_netcdf`` opens
it. Writing it through ArviZ and xarray would cost an exact run seconds of
imports for a millisecond of work; h5netcdf writes the same layout directly.
No timestamps are written, so one posterior always gives the same bytes and
the content address (SHA-256 of the bytes) deduplicates.
"""

from __future__ import annotations

import io
from typing import Mapping

import numpy as np

from wager.kernel.posterior import Posterior

GROUPS = ("posterior", "sample_stats")


def posterior_netcdf(posterior: Posterior) -> bytes:
    """The NetCDF bytes of ``posterior``'s draws and sample statistics."""
    import h5netcdf

    buffer = io.BytesIO()
    with h5netcdf.File(buffer, "w", track_order=True) as nc:
        nc.attrs["engine"] = posterior.engine
        nc.attrs["seed"] = int(posterior.seed)
        nc.attrs["inference_library"] = "wager"
        _write_group(nc.create_group("posterior"), posterior.draws)
        if posterior.sample_stats:
            _write_group(nc.create_group("sample_stats"), posterior.sample_stats)
    return buffer.getvalue()


def _write_group(group, arrays: Mapping[str, np.ndarray]) -> None:
    first = np.asarray(next(iter(arrays.values())))
    chains, draws = first.shape[:2]
    for name, size in (("chain", chains), ("draw", draws)):
        group.dimensions[name] = size
        group.create_variable(name, (name,), data=np.arange(size, dtype=np.int64))
    for name, value in arrays.items():
        array = np.asarray(value)
        dims = ["chain", "draw"]
        for i, size in enumerate(array.shape[2:]):
            dim = f"{name}_dim_{i}"
            group.dimensions[dim] = size
            group.create_variable(dim, (dim,), data=np.arange(size, dtype=np.int64))
            dims.append(dim)
        if array.dtype == bool:
            # NetCDF has no boolean type; xarray's convention restores it on read.
            variable = group.create_variable(name, tuple(dims), data=array.astype(np.int8))
            variable.attrs["dtype"] = "bool"
        else:
            group.create_variable(name, tuple(dims), data=array)


def read_netcdf(data: bytes) -> dict[str, dict[str, np.ndarray]]:
    """Group -> variable -> array, read back without ArviZ (shapes ``(chain, draw, ...)``)."""
    import h5netcdf

    out: dict[str, dict[str, np.ndarray]] = {}
    with h5netcdf.File(io.BytesIO(data), "r") as nc:
        for group_name in GROUPS:
            if group_name not in nc.groups:
                continue
            group = nc.groups[group_name]
            arrays = {}
            for name, variable in group.variables.items():
                if name in group.dimensions:
                    continue
                array = np.asarray(variable[...])
                if variable.attrs.get("dtype") == "bool":
                    array = array.astype(bool)
                arrays[name] = array
            out[group_name] = arrays
    return out
