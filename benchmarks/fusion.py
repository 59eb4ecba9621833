"""State-space inference in JAX against filterpy, side by side.

1. Kalman filter + RTS smoother over ``--steps`` (100,000) steps of a
   constant-velocity tracking model (position measured, one step in ten
   missing): ``wager.fusion.kalman`` (jitted, float64; compilation timed apart)
   against filterpy's ``KalmanFilter.batch_filter`` + ``rts_smoother``. Target:
   >= 100x faster, identical numbers (the largest absolute difference of the
   filtered and smoothed means and covariances is reported).
2. The bootstrap particle filter, ``--particles`` (10,000) particles x
   ``--pf-steps`` (1,000) steps on the same model: the time of one run and the
   log-likelihood's Monte Carlo standard error over ``--pf-repeats`` runs
   (different keys), beside the Kalman filter's exact log-likelihood.

Times are medians over ``--rounds`` (filterpy: ``--peer-rounds``); the script
rewrites the ``fusion`` section of ``docs/benchmarks.md`` with the machine,
the date and the load average when it started.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from functools import partial
from pathlib import Path

import numpy as np

from common import machine, now, versions, write_section

SECTION = "fusion"


def tracking_model(dt: float = 0.1, q: float = 0.5, r: float = 4.0):
    from wager.fusion.kalman import LinearGaussian

    F = np.array([[1.0, dt], [0.0, 1.0]])
    Q = q * np.array([[dt**3 / 3, dt**2 / 2], [dt**2 / 2, dt]])
    return LinearGaussian(F=F, H=np.array([[1.0, 0.0]]), Q=Q, R=np.array([[r]]), m0=np.zeros(2), P0=np.diag([100.0, 10.0]))


def simulate(model, steps: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    chol = np.linalg.cholesky(model.Q)
    noise = rng.standard_normal((steps, 2)) @ chol.T
    x, xs = np.zeros(2), np.empty((steps, 2))
    for t in range(steps):
        x = model.F @ x + noise[t]
        xs[t] = x
    ys = xs[:, :1] + np.sqrt(model.R[0, 0]) * rng.standard_normal((steps, 1))
    ys[::10] = np.nan  # a fix lost in ten: predict-only steps
    return ys


def timed(fn, rounds: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(rounds):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), out


def filterpy_run(model, ys):
    from filterpy.kalman import KalmanFilter

    kf = KalmanFilter(dim_x=2, dim_z=1)
    kf.F, kf.H, kf.Q, kf.R = model.F, model.H, model.Q, model.R
    kf.x, kf.P = model.m0.copy(), model.P0.copy()
    zs = [None if np.isnan(y[0]) else y for y in ys]
    means, covs, _, _ = kf.batch_filter(zs)
    s_means, s_covs, _, _ = kf.rts_smoother(means, covs)
    return means, covs, s_means, s_covs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--peer-rounds", type=int, default=3)
    parser.add_argument("--particles", type=int, default=10_000)
    parser.add_argument("--pf-steps", type=int, default=1_000)
    parser.add_argument("--pf-repeats", type=int, default=20)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--doc", type=Path, help="rewrite this markdown file's fusion section")
    args = parser.parse_args()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")

    import jax

    from wager.kernel.nuts import configure_jax

    configure_jax()  # float64, as the tests
    from wager.fusion.kalman import kalman_filter, rts_smoother
    from wager.fusion.particle import linear_gaussian_particles, particle_filter

    model = tracking_model()
    ys = simulate(model, args.steps, args.seed)

    @jax.jit
    def smooth(y):
        filtered = kalman_filter(model, y)
        smoothed = rts_smoother(model, filtered)
        return filtered.means, filtered.covs, smoothed.means, smoothed.covs, filtered.log_likelihood

    start = time.perf_counter()
    jax.block_until_ready(smooth(ys))
    compile_s = time.perf_counter() - start
    wager_s, ours = timed(lambda: jax.block_until_ready(smooth(ys)), args.rounds)
    peer_s, theirs = timed(lambda: filterpy_run(model, ys), args.peer_rounds)
    diffs = [float(np.abs(np.asarray(a).reshape(np.shape(b)) - b).max()) for a, b in zip(ours[:4], theirs)]
    print(f"KF+RTS {args.steps} steps: wager {wager_s * 1e3:.1f} ms (compile {compile_s:.2f} s), filterpy {peer_s:.2f} s, max diff {max(diffs):.2e}")

    pf_ys = ys[: args.pf_steps]
    exact = float(kalman_filter(model, pf_ys).log_likelihood)
    particles = linear_gaussian_particles(model)
    run = jax.jit(partial(particle_filter, model=particles, n_particles=args.particles, history=False))
    key = jax.random.PRNGKey(args.seed)
    start = time.perf_counter()
    jax.block_until_ready(run(key, ys=pf_ys).log_likelihood)
    pf_compile_s = time.perf_counter() - start
    keys = jax.random.split(key, args.pf_repeats)
    estimates, times = [], []
    for k in keys:
        start = time.perf_counter()
        estimates.append(float(jax.block_until_ready(run(k, ys=pf_ys).log_likelihood)))
        times.append(time.perf_counter() - start)
    estimates = np.array(estimates)
    pf_s, sd = statistics.median(times), float(estimates.std(ddof=1))
    print(f"PF {args.particles} x {args.pf_steps}: {pf_s:.3f} s a run; log-lik mean {estimates.mean():.3f}, sd {sd:.3f}; exact {exact:.3f}")

    body = "\n".join([
        f"Measured {now()} on {machine()}; {', '.join(versions(['wager', 'jax', 'filterpy', 'numpy']))}. "
        f"Load average {load:.2f} at the start"
        + (" (other work competed for the cores, so times are upper bounds)." if load > 1.0 else " (a quiet machine)."),
        "",
        f"Constant-velocity tracking (dt = 0.1, position measured with sd 2, one step in ten without a measurement), {args.steps:,} steps, float64.",
        "",
        "| task | wager (JAX, jitted) | filterpy | ratio | max abs difference |",
        "|---|---:|---:|---:|---:|",
        f"| Kalman filter + RTS smoother, {args.steps:,} steps (median of {args.rounds} / {args.peer_rounds}) | {wager_s * 1e3:.1f} ms | {peer_s:.2f} s | "
        f"{peer_s / wager_s:.0f}x | {max(diffs):.1e} |",
        "",
        f"wager's first call compiles: {compile_s:.2f} s, once per model shape (not in the median). Largest absolute differences: "
        f"filtered means {diffs[0]:.1e}, covariances {diffs[1]:.1e}; smoothed means {diffs[2]:.1e}, covariances {diffs[3]:.1e}.",
        "",
        f"Bootstrap particle filter, {args.particles:,} particles x {args.pf_steps:,} steps (systematic resampling below ESS N/2), "
        f"{args.pf_repeats} runs with different keys: median {pf_s:.3f} s a run (compile {pf_compile_s:.2f} s apart); "
        f"log-likelihood {estimates.mean():.3f} (mean), Monte Carlo sd of one run {sd:.3f} (se of the mean {sd / np.sqrt(args.pf_repeats):.3f}); "
        f"the Kalman filter's exact value {exact:.3f}, the difference {estimates.mean() - exact:+.3f} (the log of an unbiased "
        f"estimate is biased low by about sd^2 / 2 = {sd * sd / 2:.3f}).",
    ])
    print(body)
    if args.doc:
        write_section(args.doc, SECTION, "## Results: Kalman filter and particle filter against filterpy", body)


if __name__ == "__main__":
    main()
