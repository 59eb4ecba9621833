"""Two-arm conversion comparisons per second on one core: wager vs gbstats.

Each comparison is one A/B test's chance to win P(B > A), expected loss of
shipping B and of keeping A, and 95% interval of the absolute lift.

* wager    ``wager.ab.batch.compare_conversions(method="normal")`` on all
           ``--tests`` count sets at once (vectorised NumPy).
* gbstats  GrowthBook's engine (PyPI ``gbstats``), one
           ``EffectBayesianABTest(ProportionStatistic, ProportionStatistic,
           EffectBayesianConfig(difference_type="absolute"))`` and its
           ``compute_result()`` per test, as its API is used, on the first
           ``--subsample`` count sets; the rate is scaled from those.

gbstats pins ``numpy<2`` and ``pandas<2``, which wager's dependencies exclude,
so it runs in its own virtual environment (``--gbstats-python``) on counts
saved to a file. Every timed run is a worker subprocess pinned to one CPU with
every thread pool set to one thread; rounds alternate the two engines. Counts
are drawn once from a fixed seed. Import and a warm-up call are not timed.

The orchestrator also compares the two engines' answers on the subsample
(and both with the exact P(B > A), Evan Miller's sum, under wager's flat
Beta(1, 1) priors), and measures the Normal approximation's error against
``method="exact"`` on a grid of counts (the numbers in
``wager.ab.batch``'s docstring).

    ../.venv-bench/bin/python throughput.py --gbstats-python ../.venv-bench/gbstats/bin/python \\
        --doc ../docs/benchmarks.md
"""

from __future__ import annotations

import os

# One core, one thread: set before NumPy (and its BLAS) is imported anywhere.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS", "VECLIB_MAXIMUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

from common import machine, now, rewrite_section, versions

CPU = 0  # the core every timed worker is pinned to


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tests", type=int, default=1_000_000, help="count sets timed with wager")
    parser.add_argument("--subsample", type=int, default=2_000, help="count sets timed with gbstats")
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds (wager times 3 calls a round)")
    parser.add_argument("--seed", type=int, default=20240101)
    parser.add_argument("--gbstats-python", type=Path, help="the Python of gbstats' environment")
    parser.add_argument("--skip-accuracy", action="store_true", help="skip the Normal-vs-exact grid (about a minute)")
    parser.add_argument("--doc", type=Path, help="rewrite this markdown file's throughput section")
    parser.add_argument("--worker", choices=["wager", "gbstats"], help=argparse.SUPPRESS)
    parser.add_argument("--counts", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--repeats", type=int, default=1, help=argparse.SUPPRESS)
    opts = parser.parse_args()

    if opts.worker == "wager":
        _wager_worker(opts.counts, opts.out, opts.repeats, opts.subsample)
    elif opts.worker == "gbstats":
        _gbstats_worker(opts.counts, opts.out, opts.repeats, opts.subsample)
    else:
        _orchestrate(opts)


# ---------------------------------------------------------------- the counts


def draw_counts(m: int, seed: int) -> dict[str, np.ndarray]:
    """``m`` A/B tests: 1,000..100,000 visitors in A, B within 5% of A, A's rate
    log-uniform on 1%..50%, B's rate A's times ``exp(Normal(0, 0.05))``."""
    rng = np.random.default_rng(seed)
    a_visitors = rng.integers(1_000, 100_001, size=m)
    b_visitors = np.round(a_visitors * rng.uniform(0.95, 1.05, size=m)).astype(np.int64)
    rate_a = np.exp(rng.uniform(np.log(0.01), np.log(0.5), size=m))
    rate_b = np.clip(rate_a * np.exp(rng.normal(0.0, 0.05, size=m)), 0.0, 1.0)
    return {
        "a_conversions": rng.binomial(a_visitors, rate_a),
        "a_visitors": a_visitors,
        "b_conversions": rng.binomial(b_visitors, rate_b),
        "b_visitors": b_visitors,
    }


# ---------------------------------------------------------------- the workers


def _pin() -> None:
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {CPU})


def _wager_worker(counts_path: Path, out: Path, repeats: int, subsample: int) -> None:
    _pin()
    from wager.ab.batch import compare_conversions

    counts = dict(np.load(counts_path))
    compare_conversions(**{k: v[:1000] for k, v in counts.items()})  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        result = compare_conversions(**counts)
        times.append(time.perf_counter() - t0)
    np.savez(out, times=np.array(times), **{k: v[:subsample] for k, v in result.items()})


def _gbstats_worker(counts_path: Path, out: Path, repeats: int, subsample: int) -> None:
    _pin()
    from gbstats.bayesian.tests import EffectBayesianABTest, EffectBayesianConfig
    from gbstats.models.statistics import ProportionStatistic

    counts = np.load(counts_path)
    rows = list(
        zip(*(counts[k][:subsample].tolist() for k in ("a_conversions", "a_visitors", "b_conversions", "b_visitors")))
    )
    config = EffectBayesianConfig(difference_type="absolute", alpha=0.05)

    def one(ka, na, kb, nb):
        return EffectBayesianABTest(
            ProportionStatistic(n=na, sum=ka), ProportionStatistic(n=nb, sum=kb), config
        ).compute_result()

    one(*rows[0])  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        results = [one(*row) for row in rows]
        times.append(time.perf_counter() - t0)
    np.savez(
        out,
        times=np.array(times),
        prob_b_beats_a=np.array([r.chance_to_win for r in results]),
        expected_loss_keep_a=np.array([r.risk[0] for r in results]),
        expected_loss_ship_b=np.array([r.risk[1] for r in results]),
        lift_low=np.array([r.ci[0] for r in results]),
        lift_high=np.array([r.ci[1] for r in results]),
        versions=np.array(json.dumps(versions(["gbstats", "numpy", "scipy", "pandas", "pydantic"]))),
    )


# ---------------------------------------------------------------- orchestration


def _orchestrate(opts: argparse.Namespace) -> None:
    if opts.gbstats_python is None:
        raise SystemExit("--gbstats-python is required (the Python of gbstats' own environment)")
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="wager-throughput-") as tmp:
        counts_path = Path(tmp) / "counts.npz"
        counts = draw_counts(opts.tests, opts.seed)
        np.savez(counts_path, **counts)
        wager_times: list[float] = []
        gb_times: list[float] = []
        for r in range(opts.rounds):
            w = _run_worker(sys.executable, "wager", counts_path, Path(tmp) / "wager.npz", 3, opts.subsample)
            g = _run_worker(str(opts.gbstats_python), "gbstats", counts_path, Path(tmp) / "gbstats.npz", 1, opts.subsample)
            wager_times += w["times"].tolist()
            gb_times += g["times"].tolist()
            print(f"round {r + 1}/{opts.rounds}: wager {w['times'].min():.3f} s / {opts.tests} tests, "
                  f"gbstats {g['times'][0]:.3f} s / {opts.subsample} tests", file=sys.stderr)
    load_after = os.getloadavg()[0]
    sub = {k: v[: opts.subsample] for k, v in counts.items()}
    accuracy = None if opts.skip_accuracy else accuracy_grid()
    report = _report(opts, wager_times, gb_times, w, g, sub, accuracy, (load_before, load_after))
    print(report)
    if opts.doc:
        rewrite_section(opts.doc, "throughput", report)


def _run_worker(python: str, engine: str, counts: Path, out: Path, repeats: int, subsample: int) -> dict:
    cmd = [python, __file__, "--worker", engine, "--counts", str(counts), "--out", str(out),
           "--repeats", str(repeats), "--subsample", str(subsample)]
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{engine} worker exited {done.returncode}:\n{done.stderr[-3000:]}")
    with np.load(out) as data:
        return {k: data[k] for k in data.files}


def _exact_prob_b_beats_a(sub: dict[str, np.ndarray]) -> np.ndarray:
    from wager.kernel.closed_form import Beta
    from wager.kernel.compare import prob_beta_greater

    return np.array([
        prob_beta_greater(Beta(1 + ka, 1 + na - ka), Beta(1 + kb, 1 + nb - kb))
        for ka, na, kb, nb in zip(sub["a_conversions"], sub["a_visitors"], sub["b_conversions"], sub["b_visitors"])
    ])


def accuracy_grid() -> dict:
    """Normal approximation vs ``method="exact"``: 7 visitor counts x 7 rates x 13 offsets of B."""
    from wager.ab.batch import compare_conversions

    visitors = np.array([1_000, 2_000, 5_000, 10_000, 20_000, 50_000, 100_000])
    rates = np.array([0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5])
    offsets = np.arange(-3.0, 3.01, 0.5)
    n, p, z = np.meshgrid(visitors, rates, offsets, indexing="ij")
    ka = np.round(n * p)
    kb = np.clip(np.round(ka + z * np.sqrt(2 * n * p * (1 - p))), 0, n)
    t0 = time.perf_counter()
    exact = compare_conversions(ka, n, kb, n, method="exact")
    exact_seconds = time.perf_counter() - t0
    normal = compare_conversions(ka, n, kb, n, method="normal")
    err = {k: np.abs(normal[k] - exact[k]) for k in normal}
    loss = np.maximum(err["expected_loss_ship_b"], err["expected_loss_keep_a"])
    ends = np.maximum(err["lift_low"], err["lift_high"])
    sd = exact["lift_sd"]
    rows = [
        (int(v), err["prob_b_beats_a"][i].max(), loss[i].max(), (loss[i] / sd[i]).max(), ends[i].max(), (ends[i] / sd[i]).max())
        for i, v in enumerate(visitors)
    ]
    win_times_conversions = (err["prob_b_beats_a"].max(axis=2) * ka[..., 0]).max()
    return {
        "rows": rows,
        "tests": int(n.size),
        "exact_seconds": exact_seconds,
        "win_range": (float(exact["prob_b_beats_a"].min()), float(exact["prob_b_beats_a"].max())),
        "win_times_conversions": float(win_times_conversions),
        "max": (err["prob_b_beats_a"].max(), loss.max(), (loss / sd).max(), ends.max(), (ends / sd).max()),
    }


# ---------------------------------------------------------------- the report


def _report(opts, wager_times, gb_times, w, g, sub, accuracy, load) -> str:
    wager_rate = opts.tests / statistics.median(wager_times)
    gb_rate = opts.subsample / statistics.median(gb_times)
    exact_win = _exact_prob_b_beats_a(sub)
    gb_versions = json.loads(str(g["versions"]))
    lines = [
        f"Measured {now()} on {machine()}; every timed run pinned to one core (CPU {CPU}), thread pools at 1.",
        f"wager environment: {', '.join(versions(['wager', 'numpy', 'scipy']))}. "
        f"gbstats environment: {', '.join(gb_versions)}.",
        f"1-minute load average {load[0]:.2f} before and {load[1]:.2f} after the rounds.",
        "",
        f"{opts.tests:,} seeded A/B tests (seed {opts.seed}: 1,000-100,000 visitors an arm, rates 1%-50%, "
        f"true lifts around 0 with 5% relative sd); gbstats on the first {opts.subsample:,}. "
        f"Medians of {len(wager_times)} wager calls and {len(gb_times)} gbstats passes, run in "
        f"{opts.rounds} alternating rounds.",
        "",
        "| engine | tests timed | median seconds (min-max) | comparisons per second (one core, median) | x gbstats |",
        "|---|---:|---:|---:|---:|",
        f"| wager `compare_conversions(method=\"normal\")` | {opts.tests:,} | {statistics.median(wager_times):.4f} "
        f"({min(wager_times):.4f}-{max(wager_times):.4f}) | {wager_rate:,.0f} | {wager_rate / gb_rate:,.0f} |",
        f"| gbstats `EffectBayesianABTest` (one object per test) | {opts.subsample:,} | {statistics.median(gb_times):.3f} "
        f"({min(gb_times):.3f}-{max(gb_times):.3f}) | {gb_rate:,.0f} | 1 |",
        "",
        f"Target >= 1,000,000 comparisons per second on one core: "
        f"{'met' if wager_rate >= 1e6 else 'NOT met'} ({wager_rate:,.0f}).",
        "",
        f"Agreement on the {opts.subsample:,} shared tests (max absolute difference):",
        "",
        "| quantity | wager vs gbstats | wager vs exact | gbstats vs exact |",
        "|---|---:|---:|---:|",
        f"| chance to win P(B > A) | {np.abs(w['prob_b_beats_a'] - g['prob_b_beats_a']).max():.2e} "
        f"| {np.abs(w['prob_b_beats_a'] - exact_win).max():.2e} | {np.abs(g['prob_b_beats_a'] - exact_win).max():.2e} |",
    ]
    for key, label in (
        ("expected_loss_ship_b", "expected loss of shipping B"),
        ("expected_loss_keep_a", "expected loss of keeping A"),
        ("lift_low", "95% interval, lower end"),
        ("lift_high", "95% interval, upper end"),
    ):
        lines.append(f"| {label} | {np.abs(w[key] - g[key]).max():.2e} | | |")
    lines += [
        "",
        "\"exact\" is Evan Miller's exact P(B > A) under flat Beta(1, 1) priors on both rates, wager's model. "
        "The engines differ in model, not in arithmetic: gbstats takes the lift as Normal around the observed "
        "difference k_B/n_B - k_A/n_A with the plug-in variance p(1 - p)/n (an improper flat prior on the lift); "
        "wager moment-matches the Beta(1 + k, 1 + n - k) posteriors, whose means sit up to 1/(n + 2) from k/n "
        "(0.001 at 1,000 visitors).",
    ]
    if accuracy is not None:
        lines += [
            "",
            f"Accuracy of `method=\"normal\"` against `method=\"exact\"` ({accuracy['tests']} tests: equal visitors, "
            "A's rate 1%, 2%, 5%, 10%, 20%, 30%, 50%, B's count placed -3..+3 sd of the difference from A's in steps "
            f"of 0.5, so the exact P(B > A) spans {accuracy['win_range'][0]:.1e}..{accuracy['win_range'][1]:.4f}); "
            "max absolute error per visitor count:",
            "",
            "| visitors an arm | chance to win | expected loss | expected loss / lift sd "
            "| interval end | interval end / lift sd |",
            "|---:|---:|---:|---:|---:|---:|",
        ]
        lines += [
            f"| {v:,} | {a:.2g} | {b:.2g} | {c:.2g} | {d:.2g} | {e:.2g} |" for v, a, b, c, d, e in accuracy["rows"]
        ]
        a, b, c, d, e = accuracy["max"]
        lines += [
            f"| all | **{a:.2g}** | **{b:.2g}** | {c:.2g} | **{d:.2g}** | {e:.2g} |",
            "",
            f"Across the grid the chance-to-win error times A's conversions is at most "
            f"{accuracy['win_times_conversions']:.3f}: the error shrinks like 1 / conversions. "
            f"The exact method took {accuracy['exact_seconds']:.0f} s for these {accuracy['tests']} tests "
            f"({accuracy['tests'] / accuracy['exact_seconds']:.1f} tests per second).",
        ]
    return "\n".join(lines)










if __name__ == "__main__":
    main()
