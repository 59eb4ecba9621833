"""NUTS chains one at a time against chains on a pool of threads, on the example specs.

wager runs "sequential" NUTS chains as independent calls of one compiled
program, on a pool of one thread per CPU (``wager.kernel.nuts``; XLA releases
the GIL while a program runs). This benchmark measures what that buys on the
machine it runs on, and checks that it changes no draw.

Protocol: each example spec of ``examples/`` whose inference runs NUTS is
prepared once and fitted once to compile its chain (excluded from the timings).
Then ``--rounds`` rounds each time ``infer`` with ``WAGER_CHAIN_THREADS=1``
(chains one after the other, as before the pool) and with the pool (one thread
per CPU, at most one per chain; one in all for a program whose LAPACK calls are
big enough for jaxlib to spread over XLA's thread pool, which deadlocks two
executions at once: ``wager.kernel.nuts.pool_safe``), in alternating order; the table gives the
medians, their ratio, and whether every draw of every site was the same bits in
both modes. The specs' own chains, warmup and draws are used.

    ../.venv-bench/bin/python chains.py [--rounds 5] [--doc ../docs/benchmarks.md]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from common import machine, now, versions, write_section

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
SPECS = ("eight_schools_noncentered.yaml", "forecast_stores.yaml", "science_sir.yaml", "science_pk.yaml", "risk_var.yaml", "risk_claims.yaml", "risk_reserve.yaml")
SECTION, HEADING = "chains", "## Results: NUTS chains on a pool of threads"


def prepared(name: str):
    """The spec's NUTS model and inference settings, or ``None`` when its engine is not NUTS."""
    from wager.kernel.inference import choose_engine
    from wager.workflow.pipeline import domain_prepare
    from wager.workflow.specs import load_spec

    spec = load_spec(EXAMPLES / name)
    problem = domain_prepare(spec)(spec, base_dir=EXAMPLES)
    engine, _ = choose_engine(problem.model, spec.inference.engine)
    return (problem.model, spec.inference) if engine == "nuts" else None


def timed(model, config, threads: str | None) -> tuple[float, dict[str, np.ndarray]]:
    from wager.kernel.inference import infer
    from wager.kernel.nuts import CHAIN_THREADS_VARIABLE

    if threads is None:
        os.environ.pop(CHAIN_THREADS_VARIABLE, None)
    else:
        os.environ[CHAIN_THREADS_VARIABLE] = threads
    started = time.perf_counter()
    posterior = infer(model, config)
    return time.perf_counter() - started, posterior.draws


def threads_used(model, config) -> int:
    """The threads the pool gives this model's chains: one unless its program is ``pool_safe``."""
    from wager.kernel.nuts import _CHAINS, chain_threads

    safe = [shareable for key, chain in _CHAINS.items() if key[0] is model.numpyro_model for _, shareable in chain._executables.values()]
    return chain_threads(config.chains) if safe and all(safe) else 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--specs", default=",".join(SPECS), help="comma-separated file names under examples/")
    parser.add_argument("--doc", type=Path, help="rewrite this markdown file's chains section")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args()

    rows = []
    names = [s for s in args.specs.split(",") if s]
    columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()]
    with Progress(*columns, console=Console(stderr=True), disable=args.quiet) as progress:
        task = progress.add_task("specs", total=len(names) * (1 + 2 * args.rounds))
        for name in names:
            found = prepared(name)
            if found is None:
                progress.advance(task, 1 + 2 * args.rounds)
                continue
            model, config = found
            progress.update(task, description=name)
            _, reference = timed(model, config, None)  # compiles the chain
            progress.advance(task)
            seconds: dict[str, list[float]] = {"one": [], "pool": []}
            same = True
            for r in range(args.rounds):
                order = (("one", "1"), ("pool", None)) if r % 2 == 0 else (("pool", None), ("one", "1"))
                for mode, threads in order:
                    elapsed, draws = timed(model, config, threads)
                    seconds[mode].append(elapsed)
                    same &= all(np.array_equal(draws[k], reference[k]) for k in reference)
                    progress.advance(task)
            one, pool = statistics.median(seconds["one"]), statistics.median(seconds["pool"])
            rows.append((name, config, threads_used(model, config), one, pool, same))

    lines = [
        f"Measured {now()} on {machine()}; {', '.join(versions(['wager', 'jax', 'jaxlib', 'numpyro']))}.",
        "",
        f"`benchmarks/chains.py`: each example spec whose inference runs NUTS, its own chains, warmup and draws; "
        f"wall seconds of `infer` (compiled beforehand), median of {args.rounds} rounds per mode, the modes alternating.",
        "",
        "| spec | chains x (warmup + draws) | threads | one at a time (s) | pool of threads (s) | speed-up | same draws |",
        "|---|---|---:|---:|---:|---:|---|",
    ]
    for name, config, threads, one, pool, same in rows:
        lines.append(
            f"| {name} | {config.chains} x ({config.warmup} + {config.draws}) | {threads} | {one:.2f} | {pool:.2f} | "
            f"{one / pool:.2f}x | {'yes' if same else '**no**'} |"
        )
    text = "\n".join(lines)
    print(text)
    if args.doc:
        write_section(args.doc, SECTION, HEADING, text)


if __name__ == "__main__":
    main()
