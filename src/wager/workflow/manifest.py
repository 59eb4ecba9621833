"""The run manifest: what went in, what came out, and on what machine.

A manifest is one canonical-JSON object with four parts:

``identity``
    Everything that changes the numbers: domain, model and its version, the
    priors, a canonical hash of the data the model conditions on (and of any
    data the decision reads beside it), the decision policy, the gate policy,
    the inference config, the seed and the derived per-chain seeds.
    ``identity_hash`` is SHA-256 over its canonical JSON, so two runs with one
    identity hash must give the same draws on the same numerics.
``environment``
    Python, platform, package versions, the numerics flags that decide whether
    draws can be bit-identical (JAX PRNG implementation, threefry
    partitioning, x64, ``XLA_FLAGS``, device, the CPU's vector instruction
    sets), the JAX compilation cache, and
    the git commit (and dirty flag) of the folder the spec lives in.
    ``numerics_fingerprint`` hashes the parts that decide bit-identity.
``outputs``
    A SHA-256 per posterior variable over its raw array bytes (with dtype and
    shape), the diagnostics, the gate verdict and the decision.
``recorded``
    Time, user and host: kept, but outside the identity hash.

``spec`` holds the validated spec itself and ``source`` where it was read
from, so ``wager replay`` can run it again.
"""

from __future__ import annotations

import dataclasses
import functools
import getpass
import hashlib
import os
import platform
import re
import socket
import subprocess
import sys
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np

from wager.kernel.priors import Prior, canonical_json

MANIFEST_VERSION = 1
PACKAGES = ("wager", "numpyro", "jax", "jaxlib", "numpy", "scipy", "arviz")


def sha256(text: str | bytes) -> str:
    return hashlib.sha256(text.encode() if isinstance(text, str) else text).hexdigest()


def canonical_array(value: Any) -> np.ndarray:
    """``value`` as a C-ordered little-endian array: the hash names the numbers,
    not the layout or byte order of the machine that held them."""
    array = np.ascontiguousarray(np.asarray(value))
    if array.dtype.byteorder == ">":
        array = array.astype(array.dtype.newbyteorder("<"))
    return array


def array_digest(value: Any) -> str:
    """SHA-256 over an array's dtype, shape and bytes in C (row) order."""
    array = canonical_array(value)
    head = f"{array.dtype.str}|{array.shape}|".encode()
    return hashlib.sha256(head + array.tobytes()).hexdigest()


def data_digest(data: Mapping[str, Any]) -> dict[str, Any]:
    """The canonical hash of the data a model conditions on.

    Column names, dtypes, shapes and bytes in row order, names sorted; priors
    passed to the model as arguments are left out (the identity holds them).
    Not a file hash: the same numbers read from CSV or parquet hash alike.
    """
    columns: dict[str, Any] = {}
    for name in sorted(data):
        value = data[name]
        if isinstance(value, Prior) or value is None:
            continue
        if isinstance(value, Mapping) and value and all(isinstance(v, Prior) for v in value.values()):
            continue  # priors handed to the model as one argument: the identity holds them
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            # a model's static layout (sizes, scales): hashed as canonical JSON
            columns[name] = {"constant": sha256(canonical_json(dataclasses.asdict(value)))}
            continue
        array = canonical_array(value)
        if array.dtype == object:
            raise TypeError(f"data column {name!r} is not numeric (dtype object); it cannot be hashed canonically")
        columns[name] = {"dtype": array.dtype.str, "shape": list(array.shape), "sha256": array_digest(array)}
    return {"sha256": sha256(canonical_json(columns)), "columns": columns}


def conditioned_data(problem: Any) -> dict[str, Any]:
    """The model's data, and any data the decision reads beside it (a problem's
    ``decision_data``: held-out labels, a backtest's returns), the latter keyed
    ``decision.NAME``. A problem without ``decision_data`` hashes as before."""
    extra = getattr(problem, "decision_data", None) or {}
    return {**problem.model.data, **{f"decision.{name}": value for name, value in extra.items()}}


def draw_digests(draws: Mapping[str, np.ndarray]) -> dict[str, str]:
    """Variable -> SHA-256 of its raw draws, shape ``(chains, draws, ...)``."""
    return {name: array_digest(draws[name]) for name in sorted(draws)}


def identity(result: Any) -> dict[str, Any]:
    """The identity section of ``result`` (a ``RunResult``)."""
    spec, problem, post = result.spec, result.problem, result.posterior
    dump = spec.model_dump(mode="json")
    return {
        "domain": dump["domain"],
        "name": dump.get("name"),
        "model": {"name": problem.model.name, "version": model_version(problem)},
        "priors": {name: prior.model_dump() for name, prior in sorted(result.priors.items())},
        "data": data_digest(conditioned_data(problem)),
        "policy": policy_of(dump),
        "gates": dump.get("gates"),
        "inference": dump.get("inference"),
        "engine": post.engine,
        "seed": post.seed,
        "chain_seeds": list(post.chain_seeds),
    }


def policy_of(spec_dump: Mapping[str, Any]) -> Any:
    """The decision policy (actions, losses, margins, thresholds) of a dumped spec."""
    return spec_dump.get("decision")


def policy_digest(policy: Any) -> str:
    return sha256(canonical_json(policy))


def model_version(problem: Any) -> str:
    """A user's model file is versioned by its bytes; a built-in model by its declared
    version (wager's own version is in the environment: an upgrade that leaves the
    model alone leaves the identity alone)."""
    digest = getattr(problem, "model_digest", None)
    if digest:
        return f"sha256:{digest}"
    return f"{problem.model.name}/{problem.model.version}"


def environment(base_dir: Path | None = None) -> dict[str, Any]:
    env = {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "versions": {name: _version(name) for name in PACKAGES},
        "numerics": numerics(),
        "git": git_state(base_dir) if base_dir is not None else None,
    }
    env["numerics_fingerprint"] = sha256(
        canonical_json({"machine": env["machine"], "system": platform.system(), "versions": env["versions"], "numerics": env["numerics"]})
    )
    return env


def numerics() -> dict[str, Any]:
    """The flags that decide whether two runs can give bit-identical draws.

    JAX is read only when this process already imported it: an exact run draws
    with NumPy's PCG64 and never pays JAX's start-up.
    """
    flags: dict[str, Any] = {"numpy_bit_generator": "PCG64", "XLA_FLAGS": os.environ.get("XLA_FLAGS", ""), "cpu": cpu_features()}
    if "jax" in sys.modules:
        import jax

        flags.update(
            jax_enable_x64=bool(jax.config.jax_enable_x64),
            jax_default_prng_impl=str(jax.config.jax_default_prng_impl),
            jax_threefry_partitionable=bool(jax.config.jax_threefry_partitionable),
            device=f"{jax.default_backend()}:{jax.devices()[0].device_kind}",
            jax_compilation_cache_dir=jax.config.jax_compilation_cache_dir,
        )
    return flags


_ISA = re.compile(
    r"^(sse\d\w*|ssse3|avx\w*|fma\d?|f16c|amx\w*|xop|gfni|vaes|vpclmulqdq"  # x86 (Linux's names)
    r"|asimd\w*|sve\w*|sme(\d|[bfi]\w*)?|fphp|bf16|i8mm|fcma|f32mm|f64mm)$"  # arm64
)
"""The CPU features that change floating-point results: the vector instruction sets XLA's and NumPy's
code is compiled or dispatched for (vector width changes a reduction's order, FMA a product's rounding)."""


@functools.lru_cache(maxsize=1)
def cpu_features() -> str:
    """This CPU's vector instruction sets, sorted: XLA compiles for the host's, so one seed on one
    version gives other draws on a CPU with other ones (an AVX-512 host and an AVX2 one, both
    x86_64). Linux reads ``/proc/cpuinfo``; elsewhere the processor's name stands in (macOS's
    brand string, "Apple M4" or an Intel model, which fixes its instruction sets)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as info:
            found = vector_isa(info)
    except OSError:
        found = None
    if found is None and sys.platform == "darwin":
        try:
            done = subprocess.run(["sysctl", "-n", "machdep.cpu.brand_string"], capture_output=True, text=True, timeout=10)
            found = done.stdout.strip() if done.returncode == 0 else None
        except (OSError, subprocess.SubprocessError):
            found = None
    return found or platform.processor() or "unknown"


def vector_isa(cpuinfo: Iterable[str]) -> str | None:
    """The vector instruction sets named on the first ``flags`` (x86) or ``Features`` (arm64) line
    of ``/proc/cpuinfo``'s text, sorted and space-separated; None without such a line."""
    for line in cpuinfo:
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            return " ".join(sorted(f for f in value.split() if _ISA.match(f)))
    return None


def git_state(folder: Path) -> dict[str, Any] | None:
    """Commit and dirty flag of the git repository holding ``folder``, if any."""

    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(["git", "-C", str(folder), *args], capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.SubprocessError):
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    if commit is None:
        return None
    status = git("status", "--porcelain", "--untracked-files=no")
    return {"commit": commit, "dirty": bool(status)}


def outputs(result: Any, diagnostics: Mapping[str, Any] | None = None) -> dict[str, Any]:
    post = result.posterior
    return {
        "draws": draw_digests(post.draws),
        "sample_stats": draw_digests(post.sample_stats) if post.sample_stats else {},
        "diagnostics": diagnostics,
        "gates": {"passed": result.gates.passed, "applicable": result.gates.applicable, "failed": [g.name for g in result.gates.failed]},
        "decision": {"status": result.status, "action": result.action, "blocked_by": list(result.blocked_by)},
    }


def build_manifest(
    result: Any,
    spec_path: Path | None = None,
    base_dir: Path | None = None,
    diagnostics: Mapping[str, Any] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The manifest of one ``RunResult``. ``extra`` adds sections outside the identity
    (the plan check, prior sensitivity)."""
    ident = identity(result)
    folder = base_dir if base_dir is not None else (spec_path.parent if spec_path else None)
    manifest = {
        "manifest_version": MANIFEST_VERSION,
        "identity_hash": sha256(canonical_json(ident)),
        "identity": ident,
        "spec": result.spec.model_dump(mode="json"),
        "source": {
            "spec_path": str(spec_path.resolve()) if spec_path else None,
            "base_dir": str(folder.resolve()) if folder else None,
        },
        "environment": environment(folder),
        "outputs": outputs(result, diagnostics),
        "recorded": {"time": datetime.now(timezone.utc).isoformat(), "user": _user(), "host": socket.gethostname()},
    }
    if extra:
        manifest.update(extra)
    # Round-trip through canonical JSON: what is stored is exactly what was hashed.
    import json

    return json.loads(canonical_json(manifest))


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"
