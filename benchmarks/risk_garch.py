"""GARCH(1,1)-t VaR backtest on the S&P 500: NUTS refits against arch's maximum likelihood.

The S&P 500 daily closes bundled with ``arch`` (``arch.data.sp500``, 1999-2018),
as percentage log returns. For every day after the first ``--window`` days,
a one-day 99% VaR forecast from a GARCH(1,1) with Student-t innovations fitted
to the ``--window`` days before it, refitted every ``--refit-every`` days
(between refits the variance recursion rolls forward with the last fit's
parameters): by wager (``wager.risk.garch.rolling_backtest``, NUTS, the
posterior predictive VaR, parameter uncertainty included) and by ``arch``
(``arch_model(..., dist="t").fit()``, the plug-in VaR at the estimates).

Reported side by side, from one run: wall time of all fits (compilation
included, from an empty JAX cache), seconds per refit, the exceptions, the
Kupiec and Christoffersen tests and the Basel zone (``wager.risk.backtest``),
and the days on which the two disagree about an exception.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from common import machine, now, versions, write_section

SECTION = "risk_garch"


def sp500_returns() -> tuple[np.ndarray, list[str]]:
    from arch.data import sp500

    close = sp500.load()["Adj Close"]
    r = 100 * np.diff(np.log(close.to_numpy()))
    return r, [f"{d:%Y-%m-%d}" for d in close.index[1:]]


def row(name: str, run, seconds: float, level: float) -> tuple[str, dict]:
    from wager.risk.backtest import backtest

    whole = backtest(run.losses, run.var, level)
    last = backtest(run.losses[-250:], run.var[-250:], level)
    stats = {
        "seconds": seconds, "refits": int(len(run.refits)), "per_refit": seconds / max(1, len(run.refits)),
        "days": whole.n_days, "exceptions": whole.n_exceptions, "expected": whole.expected_exceptions,
        "kupiec_p": whole.pof_p_value, "christoffersen_p": whole.independence_p_value, "cc_p": whole.conditional_coverage_p_value,
        "zone_last_250": last.zone, "exceptions_last_250": last.n_exceptions, "divergences": run.divergences,
        "mean_var": float(np.mean(run.var)),
    }
    line = (
        f"| {name} | {seconds:.1f} | {stats['refits']} | {stats['per_refit']:.2f} | {whole.n_exceptions} | {whole.expected_exceptions:.1f} | "
        f"{whole.pof_p_value:.3f} | {whole.independence_p_value:.3f} | {whole.conditional_coverage_p_value:.3f} | "
        f"{last.zone} ({last.n_exceptions}) | {stats['mean_var']:.3f} |"
    )
    return line, stats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--window", type=int, default=1000, help="days each fit sees")
    parser.add_argument("--refit-every", type=int, default=60, help="days between refits")
    parser.add_argument("--level", type=float, default=0.99)
    parser.add_argument("--chains", type=int, default=2)
    parser.add_argument("--draws", type=int, default=300, help="NUTS warmup and kept draws per chain")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--doc", type=Path, help="rewrite this markdown file's risk_garch section")
    args = parser.parse_args()
    os.environ.setdefault("WAGER_JAX_CACHE", tempfile.mkdtemp(prefix="wager-jax-"))

    from wager.risk.garch import rolling_backtest

    r, dates = sp500_returns()
    runs = {}
    for engine in ("ml", "nuts"):
        start = time.perf_counter()
        runs[engine] = rolling_backtest(
            r, args.window, args.refit_every, args.level, engine,
            chains=args.chains, warmup=args.draws, draws=args.draws, seed=args.seed,
        )
        runs[engine] = (runs[engine], time.perf_counter() - start)
        print(engine, f"{runs[engine][1]:.1f} s")

    lines, stats = [], {}
    for engine, name in (("nuts", "wager (NUTS, predictive VaR)"), ("ml", "arch (maximum likelihood, plug-in VaR)")):
        line, stats[engine] = row(name, *runs[engine], args.level)
        lines.append(line)
    nuts, ml = runs["nuts"][0], runs["ml"][0]
    hit_nuts, hit_ml = nuts.losses > nuts.var, ml.losses > ml.var
    only_ml, only_nuts = int((hit_ml & ~hit_nuts).sum()), int((hit_nuts & ~hit_ml).sum())
    ratio = stats["nuts"]["seconds"] / stats["ml"]["seconds"]
    first, last_day = dates[nuts.days[0]], dates[nuts.days[-1]]
    body = "\n".join([
        f"Measured {now()} on {machine()}; {', '.join(versions(['wager', 'jax', 'numpyro', 'arch']))}. Seed {args.seed}.",
        "",
        f"S&P 500 daily percentage log returns (bundled with `arch`); one-day {args.level:.0%} VaR forecast for each of the "
        f"{nuts.days.size} days {first} to {last_day}, each from a GARCH(1,1)-t fitted to the {args.window} days before it, "
        f"refitted every {args.refit_every} days. wager: NUTS, {args.chains} chains x ({args.draws} warm-up + {args.draws} draws) "
        "per refit, VaR of the posterior predictive. arch: `arch_model(mean='Constant', vol='GARCH', dist='t')`, plug-in VaR.",
        "",
        "| method | seconds (whole backtest) | refits | seconds per refit | exceptions | expected | Kupiec p | Christoffersen p | cond. coverage p | Basel zone, last 250 days (exceptions) | mean VaR (%) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|",
        *lines,
        "",
        f"wager's backtest took {ratio:.0f}x arch's time ({stats['nuts']['seconds']:.0f} s against {stats['ml']['seconds']:.1f} s). "
        f"Exceptions: wager {stats['nuts']['exceptions']}, arch {stats['ml']['exceptions']} "
        f"(difference {stats['nuts']['exceptions'] - stats['ml']['exceptions']:+d}); on {only_ml} days only arch's VaR was exceeded, "
        f"on {only_nuts} days only wager's. NUTS divergences over all refits: {nuts.divergences}.",
    ])
    print(body)
    if args.doc:
        write_section(args.doc, SECTION, "## Results: GARCH-t VaR backtest on the S&P 500", body)


if __name__ == "__main__":
    main()
