"""The fusion domain on the shared path: a drive -> the model -> where am I, and whether to act on it.

``prepare`` reads (or simulates) the accelerometer and GPS columns, checks them
at the edge and builds ``FusionProblem``: its ``model`` learns the two noise
levels by NUTS through the Kalman filter over the fixes
(``wager.fusion.tracking``); ``decide`` reads the posterior's state at the last
sample. Per posterior draw ``s`` the position there is ``N(m_s, sd_s^2)``, so
with ``x_hat = mean_s m_s`` (the estimate one would act on)::

    P(|x - x_hat| <= tol) = mean_s [Phi((x_hat + tol - m_s) / sd_s) - Phi((x_hat - tol - m_s) / sd_s)]

(exact given the draws; its Monte Carlo error is the per-draw terms' MCSE),
and the credible interval solves ``mean_s Phi((q - m_s) / sd_s) = p``. The
action is ``act`` when that probability exceeds the threshold, else ``wait``.
The report's trajectory: the RTS smoother over every accelerometer sample for
``trajectory_draws`` draws, its Gaussian mixture's central bands.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Mapping, Optional

import numpy as np

from wager.errors import SpecError
from wager.fusion import tracking
from wager.fusion.spec import FusionSpec, PositionPolicy
from wager.fusion.validate import check_controls, check_measurements
from wager.kernel.digits import fmt, fmt_prob
from wager.kernel.inference import Model
from wager.kernel.outcome import Outcome
from wager.kernel.posterior import Posterior
from wager.kernel.priors import Prior, with_overrides
from wager.kernel.seeds import derive_seed
from wager.tables import row_at

MAX_POINTS = 600
"""Points of the report's trajectory (the JSON's size); the filter runs over every sample."""
BAND_SAMPLES = 40
"""Draws per posterior draw and time from its Gaussian, for the mixture's band quantiles."""


@dataclass
class FusionProblem:
    accel: np.ndarray
    """Accelerometer samples ``(T,)``, m/s^2."""
    gps: np.ndarray
    """GPS positions ``(T,)``, m; NaN between fixes and in dropouts."""
    rate: float
    gps_every: int
    policy: PositionPolicy
    bias_walk: float = 0.001
    prior_overrides: Mapping[str, Prior] = field(default_factory=dict)
    trajectory_draws: int = 50
    truth: Optional[tracking.Drive] = None
    source: str = "data"

    @cached_property
    def matrices(self) -> tracking.TrackMatrices:
        return tracking.matrices(self.rate, self.gps_every)

    @cached_property
    def priors(self) -> dict[str, Prior]:
        merged = with_overrides(tracking.default_priors(), self.prior_overrides)
        for name in tracking.INITIAL:
            if merged[name].family != "normal":
                raise SpecError(f"priors.{name}", "must be a normal prior: it is the Kalman filter's starting mean and variance")
        return merged

    @property
    def fixes(self) -> np.ndarray:
        """The GPS column at the fix rows ``(T / gps_every,)``."""
        return self.gps[self.gps_every - 1 :: self.gps_every]

    @cached_property
    def model(self) -> Model:
        m = self.matrices
        data = {
            "gps": np.ascontiguousarray(self.fixes), "drive": tracking.drive(m, self.accel),
            "Fk": m.Fk, "A": m.A, "W": m.W, "dt": m.dt, "bias_walk": float(self.bias_walk), "priors": self.priors,
        }
        return Model(name="fusion:gps_accelerometer", numpyro_model=tracking.tracking_model, data=data)

    def decide(self, posterior: Posterior) -> Outcome:
        from wager.kernel.diagnostics import mcse_mean

        p = self.policy
        pos, pos_sd = posterior["position"], posterior["position_sd"]
        vel, vel_sd = posterior["velocity"], posterior["velocity_sd"]
        estimate = float(pos.mean())
        within = _normal_cdf((estimate + p.tolerance - pos) / pos_sd) - _normal_cdf((estimate - p.tolerance - pos) / pos_sd)
        prob = float(within.mean())
        prob_se = mcse_mean(within, independent=posterior.independent)
        tail = (1 - p.level) / 2
        lo, hi = (_mixture_quantile(pos, pos_sd, q) for q in (tail, 1 - tail))
        vlo, vhi = (_mixture_quantile(vel, vel_sd, q) for q in (tail, 1 - tail))
        pos_se = mcse_mean(pos, independent=posterior.independent)
        action = "act" if prob > p.threshold else "wait"
        seconds = self.accel.size / self.rate
        level = f"{p.level:.0%}"
        half, vhalf = (hi - lo) / 2, (vhi - vlo) / 2
        observed = int(np.isfinite(self.fixes).sum())
        why = (
            f"P(position within {p.tolerance:g} m of the estimate) = {fmt_prob(prob, prob_se)} "
            + (f"exceeds the threshold {p.threshold:g}: act on the estimate" if action == "act" else f"does not exceed the threshold {p.threshold:g}: wait for a better fix")
        )
        lines = [
            f"Where am I (t = {seconds:g} s): position {fmt(estimate, max(pos_se, 0.05))} m, +-{half:.2g} m ({level} credible interval "
            f"{lo:.1f} to {hi:.1f} m); velocity {float(vel.mean()):.2f} m/s, +-{vhalf:.2g} m/s.",
            f"{why}.",
            f"Fused {self.accel.size:,} accelerometer samples at {self.rate:g} Hz with {observed} of {self.fixes.size} GPS fixes "
            f"(one every {self.gps_every} samples); noise learned by {'NUTS' if posterior.engine == 'nuts' else 'variational inference' if posterior.engine == 'vi' else posterior.engine}: accelerometer sd {_median(posterior, 'accel_sd'):.3g} m/s^2, "
            f"GPS sd {_median(posterior, 'gps_sd'):.3g} m (posterior medians).",
        ]
        summary: dict[str, Any] = {
            "why": why,
            "source": self.source,
            "time": seconds,
            "position": {"mean": estimate, "mean_se": pos_se, "lo": lo, "hi": hi, "level": p.level, "plus_minus": half},
            "velocity": {"mean": float(vel.mean()), "lo": vlo, "hi": vhi, "level": p.level, "plus_minus": vhalf},
            "within_tolerance": {"tolerance": p.tolerance, "threshold": p.threshold, "probability": prob, "se": prob_se},
            "noise": {name: _interval(posterior, name, p.level) for name in tracking.NOISE},
            "data": {"samples": int(self.accel.size), "rate": self.rate, "gps_every": self.gps_every, "fixes": int(self.fixes.size), "fixes_observed": observed},
            "trajectory": self._trajectory(posterior),
            "lines": lines,
        }
        if self.truth is not None:
            error = estimate - float(self.truth.position[-1])
            summary["truth"] = {"position": float(self.truth.position[-1]), "velocity": float(self.truth.velocity[-1]), "position_error": error}
            lines.append(f"Simulated truth: position {self.truth.position[-1]:.1f} m (the estimate is off by {error:+.2f} m).")
        return Outcome(action=action, summary=summary, lines=lines)

    def _trajectory(self, posterior: Posterior) -> dict[str, Any]:
        """Smoothed position and velocity with their central bands at up to ``MAX_POINTS`` times."""
        n = posterior.chains * posterior.draws_per_chain
        pick = np.unique(np.linspace(0, n - 1, min(self.trajectory_draws, n)).round().astype(int))
        every = max(1, math.ceil(self.accel.size / MAX_POINTS))
        usable = (self.accel.size // every) * every
        means, sds = tracking.trajectory(
            self.matrices, self.accel[:usable], self.gps[:usable], posterior.flat("accel_sd")[pick], posterior.flat("gps_sd")[pick],
            self.bias_walk, self.priors, every,
        )
        rng = np.random.default_rng(derive_seed(posterior.seed, 2))
        tail = (1 - self.policy.level) / 2
        out: dict[str, Any] = {
            "time": ((np.arange(means.shape[1]) + 1) * every / self.rate).tolist(), "draws": int(pick.size), "level": self.policy.level,
        }
        for i, name in ((0, "position"), (1, "velocity")):
            sample = means[:, :, i, None] + sds[:, :, i, None] * rng.standard_normal(means.shape[:2] + (BAND_SAMPLES,))
            flat = sample.transpose(1, 0, 2).reshape(means.shape[1], -1)
            lo, hi = np.quantile(flat, [tail, 1 - tail], axis=1)
            out[name] = {"mean": means[:, :, i].mean(axis=0).tolist(), "lo": lo.tolist(), "hi": hi.tolist()}
        fix_rows = np.flatnonzero(np.isfinite(self.gps))
        out["gps"] = {"time": ((fix_rows + 1) / self.rate).tolist(), "position": self.gps[fix_rows].tolist()}
        if self.truth is not None:
            keep = slice(every - 1, usable, every)
            out["truth"] = {"position": self.truth.position[keep].tolist(), "velocity": self.truth.velocity[keep].tolist()}
        return out


def _normal_cdf(z: np.ndarray) -> np.ndarray:
    from scipy.special import ndtr

    return ndtr(z)


def _mixture_quantile(means: np.ndarray, sds: np.ndarray, q: float) -> float:
    """The ``q`` quantile of the equal-weight mixture of ``N(means_s, sds_s^2)``."""
    from scipy.optimize import brentq

    m, s = np.ravel(means), np.ravel(sds)
    lo, hi = float((m - 10 * s).min()), float((m + 10 * s).max())
    return float(brentq(lambda x: float(_normal_cdf((x - m) / s).mean()) - q, lo, hi, xtol=1e-10))


def _median(posterior: Posterior, name: str) -> float:
    return float(np.median(posterior.flat(name)))


def _interval(posterior: Posterior, name: str, level: float) -> dict[str, float]:
    tail = (1 - level) / 2
    lo, median, hi = np.quantile(posterior.flat(name), [tail, 0.5, 1 - tail])
    return {"median": float(median), "lo": float(lo), "hi": float(hi)}


def prepare(spec: FusionSpec, base_dir: Path | None = None, frame: Any = None) -> FusionProblem:
    """The problem of ``spec``: a simulated drive, a table at ``data.path``, or ``frame`` passed in."""
    source, truth = spec.data, None
    if frame is None and source.simulate is not None:
        sim = source.simulate
        truth = tracking.simulate_drive(
            sim.seconds, source.rate, source.gps_every, accel_sd=sim.accel_sd, gps_sd=sim.gps_sd, bias=sim.bias,
            bias_walk=spec.model.bias_walk, speed=sim.speed, dropouts=[tuple(d) for d in sim.dropouts], seed=sim.seed,
        )
        accel, gps, where = truth.accel, truth.gps, f"simulated drive (seed {sim.seed})"
    else:
        if frame is None:
            from wager.tables import read_table, resolve

            assert source.path is not None
            frame = read_table(resolve(source.path, base_dir), "data.path")
            where = source.path
        else:
            where = "a table passed in"
        for column, name in ((source.accel, "data.accel"), (source.gps, "data.gps")):
            if column not in frame.columns:
                raise SpecError(name, f"no column {column!r}; columns: {', '.join(map(str, frame.columns))}")
        try:
            accel, gps = (np.asarray(frame[c], dtype=float) for c in (source.accel, source.gps))
        except (TypeError, ValueError):
            raise SpecError("data", "the accel and gps columns must hold numbers (empty cells for no fix)") from None
    return check_drive(spec, accel, gps, truth, where)


def check_drive(spec: FusionSpec, accel: np.ndarray, gps: np.ndarray, truth: Optional[tracking.Drive], where: str) -> FusionProblem:
    """Check the columns at the edge: the accelerometer finite, fixes only on every
    ``gps_every``-th row, a missing fix (NaN) only if ``allow_missing`` is declared."""
    k = spec.data.gps_every
    accel = check_controls("data.accel", accel, accel.size, 1)[:, 0]
    if accel.size % k != 0 or accel.size < 2 * k:
        raise SpecError("data.gps_every", f"the {accel.size} samples must be a whole number (at least 2) of stretches of {k} samples, each ending in a fix")
    between = np.ones(accel.size, dtype=bool)
    between[k - 1 :: k] = False
    if np.isfinite(gps[between]).any():
        row = int(np.flatnonzero(between & np.isfinite(gps))[0])
        raise SpecError("data.gps", f"{row_at(row)} has a fix between fix rows: fixes fall on every {k}th row (rows {k}, {2 * k}, ...), NaN elsewhere")
    fixes = check_measurements("data.gps", gps[k - 1 :: k], 1, spec.data.allow_missing, rows=np.arange(k - 1, accel.size, k))
    if np.isfinite(fixes).sum() < 2:
        raise SpecError("data.gps", "needs at least 2 GPS fixes to learn the noise levels")
    problem = FusionProblem(
        accel=accel, gps=np.asarray(gps, dtype=float), rate=spec.data.rate, gps_every=k, policy=spec.decision,
        bias_walk=spec.model.bias_walk, prior_overrides=dict(spec.priors), trajectory_draws=spec.trajectory_draws,
        truth=truth, source=where,
    )
    problem.priors  # unknown or ill-shaped prior overrides are bad input: raise now, before inference
    return problem
