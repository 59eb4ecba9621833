"""Replay a recorded run from its manifest and verify it regenerates.

The spec stored in the manifest runs again through the shared path. Then:

1. the identity hash must match: same data (canonical hash), priors, policy,
   inference config and seeds. If it does not, the inputs changed (say, the
   data file was edited) and the replay names what changed;
2. when the numerics fingerprint matches (same platform, package versions and
   numerics flags), every posterior variable's draw hash must be identical:
   verified **bit-identical**;
3. otherwise bit-identity is not promised, and every posterior mean must agree
   within ``k`` Monte Carlo standard errors of the difference,
   ``|m_old - m_new| <= k * sqrt(mcse_old^2 + mcse_new^2)``: verified
   **within k MCSE**;
4. the decision (status and action) must be the same.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from wager.kernel.diagnostics import mcse_mean
from wager.kernel.inference import ProgressFn
from wager.workflow.diff import Change, diff_manifests
from wager.workflow.manifest import build_manifest
from wager.workflow.netcdf import read_netcdf

DEFAULT_K = 4.0
"""Four standard errors: a false alarm on one mean has probability ~6e-5."""


@dataclass(frozen=True)
class Replay:
    run_id: str
    agrees: bool
    verified: str | None
    """``"bit-identical"``, ``"within k MCSE"`` or ``None`` when the replay disagrees."""
    fingerprint_matches: bool
    identity_matches: bool
    input_changes: tuple[Change, ...] = ()
    mismatches: tuple[str, ...] = field(default_factory=tuple)
    old_decision: dict[str, Any] = field(default_factory=dict)
    new_decision: dict[str, Any] = field(default_factory=dict)
    k: float = DEFAULT_K
    result: Any = field(default=None, repr=False, compare=False)
    """The replayed ``RunResult``."""

    def lines(self) -> list[str]:
        out = []
        if self.agrees:
            how = "bit-identical draws (numerics fingerprint matches)" if self.verified == "bit-identical" else (
                f"posterior means within {self.k:g} Monte Carlo standard errors "
                "(numerics fingerprint differs, so bit-identity is not expected)"
            )
            out.append(f"Replay of run {self.run_id} AGREES: {how}; same decision ({self.new_decision.get('action') or self.new_decision.get('status', 'none')}).")
        else:
            out.append(f"Replay of run {self.run_id} DISAGREES.")
            if not self.identity_matches:
                out.append("Its inputs changed since it was recorded:")
                out += [f"  {c.describe()}" for c in self.input_changes]
            out += [f"  {m}" for m in self.mismatches]
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "agrees": self.agrees,
            "verified": self.verified,
            "fingerprint_matches": self.fingerprint_matches,
            "identity_matches": self.identity_matches,
            "input_changes": [c.to_json() for c in self.input_changes],
            "mismatches": list(self.mismatches),
            "decision": {"recorded": self.old_decision, "replayed": self.new_decision},
            "k": self.k,
        }


def replay(record: Any, k: float = DEFAULT_K, progress: ProgressFn | None = None) -> Replay:
    """Run ``record`` (a ``RunRecord``) again and compare."""
    from wager.workflow.pipeline import run
    from wager.workflow.specs import parse_spec

    old = record.manifest
    base_dir = old["source"].get("base_dir")
    spec = parse_spec(old["spec"])
    result = run(spec, base_dir=Path(base_dir) if base_dir else None, progress=progress)
    new = build_manifest(result, base_dir=Path(base_dir) if base_dir else None)

    identity_matches = old["identity_hash"] == new["identity_hash"]
    fingerprint_matches = old["environment"]["numerics_fingerprint"] == new["environment"]["numerics_fingerprint"]
    old_decision, new_decision = old["outputs"]["decision"], new["outputs"]["decision"]
    common = dict(
        run_id=record.run_id, fingerprint_matches=fingerprint_matches, identity_matches=identity_matches,
        old_decision=old_decision, new_decision=new_decision, k=k, result=result,
    )
    if not identity_matches:
        found = diff_manifests(old, new)
        input_changes = tuple(c for section in ("data", "priors", "policy", "gates", "inference", "seed", "engine", "model") for c in found.get(section, []))
        return Replay(agrees=False, verified=None, input_changes=input_changes, **common)

    if fingerprint_matches:
        verified = "bit-identical"
        mismatches = _hash_mismatches(old["outputs"]["draws"], new["outputs"]["draws"])
    else:
        verified = "within k MCSE"
        mismatches = _mcse_mismatches(read_netcdf(record.netcdf())["posterior"], result.posterior, k)
    if (old_decision.get("status"), old_decision.get("action")) != (new_decision.get("status"), new_decision.get("action")):
        mismatches.append(
            f"decision: recorded {old_decision.get('status')} {old_decision.get('action')!r}, "
            f"replayed {new_decision.get('status')} {new_decision.get('action')!r}"
        )
    agrees = not mismatches
    return Replay(agrees=agrees, verified=verified if agrees else None, mismatches=tuple(mismatches), **common)


def _hash_mismatches(old: dict[str, str], new: dict[str, str]) -> list[str]:
    out = []
    for name in sorted(set(old) | set(new)):
        if old.get(name) != new.get(name):
            out.append(f"draws of {name!r}: hash {str(old.get(name))[:12]} recorded, {str(new.get(name))[:12]} replayed")
    return out


def _mcse_mismatches(old_draws: dict[str, np.ndarray], posterior: Any, k: float) -> list[str]:
    out = []
    independent = posterior.independent
    for name in sorted(set(old_draws) | set(posterior.draws)):
        if name not in old_draws or name not in posterior.draws:
            out.append(f"variable {name!r} is in only one of the two runs")
            continue
        a, b = np.asarray(old_draws[name], float), np.asarray(posterior.draws[name], float)
        if a.shape != b.shape:
            out.append(f"draws of {name!r}: shape {a.shape} recorded, {b.shape} replayed")
            continue
        a2, b2 = a.reshape(a.shape[:2] + (-1,)), b.reshape(b.shape[:2] + (-1,))
        for i in range(a2.shape[-1]):
            gap = abs(a2[..., i].mean() - b2[..., i].mean())
            se = float(np.hypot(mcse_mean(a2[..., i], independent), mcse_mean(b2[..., i], independent)))
            if not gap <= k * se and gap > 0:
                where = name if a2.shape[-1] == 1 else f"{name}[{i}]"
                out.append(f"mean of {where}: recorded {a2[..., i].mean():.6g}, replayed {b2[..., i].mean():.6g}, gap {gap:.3g} > {k:g} x MCSE {se:.3g}")
    return out
