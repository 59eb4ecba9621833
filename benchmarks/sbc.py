"""Full-size simulation-based calibration of the built-in models.

N simulations (default 200) per model, ranks among 99 posterior draws: the
exact A/B models (conversion, count, mean) on the examples' arm sizes, and the
NUTS models, the revenue model and the non-centered eight schools example
(``--nuts N``, default 200; 0 skips them), fanned out on a process pool of
``--workers`` (each worker compiles a model's sampler once and reuses it).
Prints each result's lines and the wall time; ``--json`` writes the results
(ranks included) to a file.

    .venv/bin/python benchmarks/sbc.py --simulations 200 --nuts 200 --seed 1 [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import yaml

from common import machine, now, rewrite_section, versions
from wager.ab.spec import ABSpec
from wager.custom.spec import CustomSpec
from wager.executors import make_executor
from wager.workflow.sbc import sbc

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

WHY = {"why": "a proper prior, so the prior predictive can be simulated", "source": "benchmark"}


def specs() -> dict[str, ABSpec]:
    return {
        # the founding example's arm sizes, default Beta(1, 1) prior
        "conversion": ABSpec(metric="conversion", arms=[{"name": "A", "visitors": 20000, "conversions": 1}, {"name": "B", "visitors": 20000, "conversions": 1}]),
        # the three-arm count example's sizes, default Gamma(1/2, 0.1) prior (Jeffreys', made proper)
        "count": ABSpec(metric="count", arms=[{"name": n, "visitors": 8000, "events": 1} for n in ("current", "grid", "carousel")]),
        # the default NIG prior is nearly improper (its prior predictive overflows): a proper one
        "mean": ABSpec(
            metric="mean",
            arms=[{"name": "A", "visitors": 500, "mean": 0.0, "sd": 1.0}, {"name": "B", "visitors": 500, "mean": 0.0, "sd": 1.0}],
            priors={"mean": {"family": "normal_inverse_gamma", "params": {"loc": 0, "kappa": 0.1, "shape": 3, "scale": 2}, **WHY}},
        ),
    }


def revenue_spec() -> ABSpec:
    spends = np.array([1.0, 2.0])  # two purchases; SBC simulates its own, at these sizes
    arm = {
        "visitors": 400, "purchasers": 2, "revenue": spends.sum(), "revenue_sq": np.sum(spends**2),
        "log_revenue": np.log(spends).sum(), "log_revenue_sq": np.sum(np.log(spends) ** 2),
    }
    return ABSpec(
        metric="revenue",
        arms=[{"name": "A", **arm}, {"name": "B", **arm}],
        priors={
            "log_spend_mean": {"family": "normal", "params": {"loc": 3, "scale": 1}, **WHY},
            "log_spend_sd": {"family": "half_normal", "params": {"scale": 1}, **WHY},
        },
    )


def eight_schools_spec() -> CustomSpec:
    return CustomSpec.model_validate(yaml.safe_load((EXAMPLES / "eight_schools_noncentered.yaml").read_text()))


def report(out: dict, seed: int) -> str:
    lines = [
        f"Measured {now()} on {machine()}; {', '.join(versions(['wager', 'numpy', 'scipy', 'jax', 'numpyro']))}. Seed {seed}.",
        "",
        "| model | engine | simulations | quantities | passed | largest max abs(ECDF - uniform) | seconds |",
        "|---|---|---:|---:|---|---:|---:|",
    ]
    for name, r in out.items():
        worst = max(q["max_ecdf_difference"] for q in r["quantities"].values())
        lines.append(
            f"| {name} | {r['engine']} | {r['simulations']} | {len(r['quantities'])} | {'yes' if r['passed'] else '**no**'} "
            f"| {worst:.3f} | {r['wall_seconds']:.1f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--simulations", type=int, default=200)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--nuts", type=int, default=200, help="simulations of each NUTS model (0: skip them)")
    parser.add_argument("--workers", type=int, default=2, help="process-pool workers for the NUTS models")
    parser.add_argument("--json", default=None)
    parser.add_argument("--doc", type=Path, help="rewrite this markdown file's sbc section")
    args = parser.parse_args()
    runs = [(name, spec, args.simulations, None) for name, spec in specs().items()]
    if args.nuts:
        pool = make_executor("process", workers=args.workers)
        runs += [("revenue", revenue_spec(), args.nuts, pool), ("eight schools (non-centered)", eight_schools_spec(), args.nuts, pool)]
    out = {}
    for name, spec, n, executor in runs:
        start = time.perf_counter()
        result = sbc(spec, simulations=n, seed=args.seed, executor=executor, base_dir=EXAMPLES)
        seconds = time.perf_counter() - start
        print("\n".join(result.lines()))
        print(f"  {name}: {n} simulations in {seconds:.1f} s ({seconds / n:.3f} s each)\n")
        out[name] = {**result.to_json(), "wall_seconds": seconds}
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1)
    if args.doc:
        rewrite_section(args.doc, "sbc", report(out, args.seed))
    failed = [name for name, r in out.items() if not r["passed"]]
    raise SystemExit(1 if failed else 0)


if __name__ == "__main__":
    main()
