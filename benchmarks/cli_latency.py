"""The founding A/B question, process start to exit: wager's CLI vs PyMC vs NumPyro.

A 1100/20000 vs B 1200/20000: P(B beats A) and P(lift > 0.005). Four routes,
each a fresh subprocess timed from start to exit, run interleaved (the order
rotates each round) so that machine noise hits all of them alike:

* wager    ``wager ab --arm A=1100/20000 --arm B=1200/20000 --min-lift 0.005 --json``
           (exact conjugate path), as run by default (recorded in a registry, with
           prior sensitivity) and with ``--no-record`` (the decision alone);
* PyMC     the founding document's code verbatim (``pm.sample(3000, tune=1000)``,
           PyMC's defaults: NUTS, one chain per core);
* NumPyro  the same model with NUTS, 4 chains x (1000 warm-up + 3000 draws),
           ``chain_method="parallel"`` over 4 XLA host devices
           (``numpyro.set_host_device_count(4)``), the fastest of NumPyro's
           three chain methods on this machine.

Round 0 is the first run: PyMC gets an empty PyTensor compile directory, so it
compiles its C code; later rounds reuse it (warm). JAX keeps no compile cache
by default, so every NumPyro run compiles. Medians of the warm rounds are
compared; the first run is reported beside them.

It also runs the CLI in-process to check that the exact path never imports
JAX, and splits wager's wall time into interpreter start, imports and compute.

Run with the benchmark environment's Python (``make -C benchmarks all``):

    ../.venv-bench/bin/python cli_latency.py --rounds 7 --doc ../docs/benchmarks.md
"""

from __future__ import annotations

import argparse
import atexit
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import machine, now, rewrite_section, versions

REGISTRY_DIR = tempfile.mkdtemp(prefix="wager-bench-registry-")
atexit.register(shutil.rmtree, REGISTRY_DIR, ignore_errors=True)
ARGS = ["ab", "--arm", "A=1100/20000", "--arm", "B=1200/20000", "--min-lift", "0.005", "--json"]

# The founding document's code, verbatim, then one JSON line with its answers.
PYMC = '''
import pymc as pm

# A: 1100 conversions / 20000 visitors;  B: 1200 / 20000
with pm.Model() as ab:
    rate_a = pm.Beta("rate_a", 1, 1)                          # uninformative prior on each rate
    rate_b = pm.Beta("rate_b", 1, 1)
    pm.Binomial("obs_a", n=20000, p=rate_a, observed=1100)    # observe the real counts
    pm.Binomial("obs_b", n=20000, p=rate_b, observed=1200)
    lift = pm.Deterministic("lift", rate_b - rate_a)          # the quantity we actually care about
    idata = pm.sample(3000, tune=1000, progressbar=False)

draws = idata.posterior
p_b_better = (draws["lift"].values > 0).mean()               # P(B is better than A)
p_meaningful = (draws["lift"].values > 0.005).mean()         # P(B beats A by >0.5pp) - the business bar

import json
print(json.dumps({"p_b_better": float(p_b_better), "p_meaningful": float(p_meaningful),
                  "draws": int(draws["lift"].size)}))
'''

NUMPYRO = '''
import json
import jax
import jax.numpy as jnp
import numpyro
numpyro.set_host_device_count(4)  # NumPyro's way to run chains in parallel on CPU
import numpyro.distributions as dist
from numpyro.infer import MCMC, NUTS

def ab():
    rate_a = numpyro.sample("rate_a", dist.Beta(1.0, 1.0))
    rate_b = numpyro.sample("rate_b", dist.Beta(1.0, 1.0))
    numpyro.sample("obs_a", dist.Binomial(20000, rate_a), obs=1100)
    numpyro.sample("obs_b", dist.Binomial(20000, rate_b), obs=1200)
    numpyro.deterministic("lift", rate_b - rate_a)

mcmc = MCMC(NUTS(ab), num_warmup=1000, num_samples=3000, num_chains=4,
            chain_method="parallel", progress_bar=False)
mcmc.run(jax.random.PRNGKey(0))
lift = mcmc.get_samples()["lift"]
print(json.dumps({"p_b_better": float((lift > 0).mean()), "p_meaningful": float((lift > 0.005).mean()),
                  "draws": int(lift.size)}))
'''

# The CLI run in-process: which modules it loads, and where its time goes.
PROBE = '''
import contextlib, io, json, sys, time
t0 = time.perf_counter()
import wager.cli
t1 = time.perf_counter()

def once():
    sys.argv = ["wager"] + ARGS
    with contextlib.redirect_stdout(io.StringIO()):
        try:
            wager.cli.app()
        except SystemExit as exc:
            assert exc.code == 0, exc.code

once()
t2 = time.perf_counter()
once()
t3 = time.perf_counter()
heavy = ["jax", "jaxlib", "numpyro", "arviz", "scipy.stats", "pandas", "xarray", "matplotlib", "sqlalchemy", "h5netcdf"]
print(json.dumps({
    "import_cli_s": t1 - t0, "first_run_s": t2 - t1, "second_run_s": t3 - t2,
    "loaded": {m: m in sys.modules for m in heavy}, "modules": len(sys.modules),
}))
'''


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7, help="warm rounds after the first run")
    parser.add_argument("--doc", type=Path, help="rewrite this markdown file's cli_latency section")
    opts = parser.parse_args()

    wager_cmd = [str(Path(sys.executable).with_name("wager")), *ARGS]
    routes = {
        "wager": wager_cmd,
        "wager --no-record": [*wager_cmd, "--no-record"],
        "PyMC": [sys.executable, "-c", PYMC],
        "NumPyro": [sys.executable, "-c", NUMPYRO],
    }
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="pytensor-bench-") as compiledir:
        env = dict(_default_env(), PYTENSOR_FLAGS=f"compiledir={compiledir}")
        first = {name: _timed(name, cmd, env) for name, cmd in routes.items()}
        warm: dict[str, list[float]] = {name: [] for name in routes}
        answers = {name: result[1] for name, result in first.items()}
        names = list(routes)
        for r in range(opts.rounds):
            for name in names[r % len(names) :] + names[: r % len(names)]:
                seconds, answer = _timed(name, routes[name], env)
                warm[name].append(seconds)
                answers[name] = answer
            print(f"round {r + 1}/{opts.rounds}: " + ", ".join(f"{n} {warm[n][-1]:.2f} s" for n in names), file=sys.stderr)

    probe = _probe()
    imports = _import_profile()
    load = (load_before, os.getloadavg()[0])
    report = _report(first, warm, answers, probe, imports, load)
    print(report)
    if opts.doc:
        rewrite_section(opts.doc, "cli_latency", report)


def _default_env() -> dict[str, str]:
    """The environment with Python's default of caching bytecode (some sandboxes
    switch it off, which would make every run recompile wager's own modules)."""
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    # wager records every run: into a registry of the benchmark's own, not the user's.
    env["WAGER_DB"] = str(Path(REGISTRY_DIR) / "registry.sqlite")
    return env


def _timed(name: str, cmd: list[str], env: dict[str, str]) -> tuple[float, dict]:
    t0 = time.perf_counter()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    if done.returncode != 0:
        raise SystemExit(f"{name} exited {done.returncode}:\n{done.stderr[-3000:]}")
    return seconds, _answer(name, done.stdout)


def _answer(name: str, stdout: str) -> dict:
    if name.startswith("wager"):  # the whole of stdout is the --json result
        data = json.loads(stdout)
        b = data["arms"]["B"]
        return {"p_b_better": b["prob_beats_control"], "p_meaningful": b["prob_lift_above_margin"], "action": data["action"]}
    return json.loads(stdout.strip().splitlines()[-1])


def _probe(repeats: int = 5) -> dict:
    """Median of each part over ``repeats`` in-process runs of the CLI."""
    code = f"ARGS = {ARGS!r}\n" + PROBE
    runs = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        done = subprocess.run([sys.executable, "-c", code], env=_default_env(), capture_output=True, text=True, check=True)
        wall = time.perf_counter() - t0
        runs.append(dict(json.loads(done.stdout.strip().splitlines()[-1]), wall_s=wall))
    result = dict(runs[-1])
    for key in ("import_cli_s", "first_run_s", "second_run_s", "wall_s"):
        result[key] = statistics.median(r[key] for r in runs)
    return result


def _import_profile(top: int = 8) -> dict[str, list[tuple[str, float]]]:
    """Import time of one in-process CLI run (``python -X importtime``), two ways.

    ``trigger``: the imports the run makes itself, each with everything it
    pulls in (cumulative time). ``package``: each module's own time summed
    under its top-level package, so ``scipy`` holds every ``scipy.*`` module
    whoever imported it. One run, measured with importtime's own overhead.
    """
    code = f"ARGS = {ARGS!r}\n" + PROBE
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code], env=_default_env(), capture_output=True, text=True, check=True
    )
    trigger: list[tuple[str, float]] = []
    package: dict[str, float] = {}
    for line in done.stderr.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        own, cumulative, name = line.removeprefix("import time:").split("|")
        if name.startswith(" ") and not name.startswith("  "):  # imported by the run itself
            trigger.append((name.strip(), int(cumulative) / 1e6))
        root = name.strip().split(".")[0]
        package[root] = package.get(root, 0.0) + int(own) / 1e6
    ranked = sorted(package.items(), key=lambda t: -t[1])
    rest = sum(sec for _, sec in ranked[top:])
    return {
        "trigger": sorted(trigger, key=lambda t: -t[1])[:top],
        "package": ranked[:top] + [(f"{len(ranked) - top} other packages", rest), ("all imports", sum(package.values()))],
    }


def _report(first, warm, answers, probe, imports, load) -> str:
    med = {n: statistics.median(v) for n, v in warm.items()}
    w, d = med["wager"], med["wager --no-record"]
    lines = [
        f"Measured {now()} on {machine()}.",
        f"Versions: {', '.join(versions(['wager', 'numpy', 'scipy', 'jax', 'numpyro', 'pymc', 'pytensor']))}.",
        f"1-minute load average {load[0]:.2f} before and {load[1]:.2f} after the rounds "
        f"(the benchmark's own processes included).",
        "",
        f"Process start to exit, seconds; median of {len(warm['wager'])} warm rounds run interleaved, "
        "first run beside it.",
        "",
        "| route | first run (s) | warm median (s) | warm min-max (s) | x wager (warm) | P(B beats A) | P(lift > 0.005) |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for n, times in warm.items():
        a = answers[n]
        lines.append(
            f"| {n} | {first[n][0]:.2f} | {med[n]:.2f} | {min(times):.2f}-{max(times):.2f} | {med[n] / w:.1f} "
            f"| {a['p_b_better']:.4f} | {a['p_meaningful']:.4f} |"
        )
    def standard_errors(n: str) -> str:
        a = answers[n]
        low = (_binomial_se(a["p_b_better"], a["draws"]), _binomial_se(a["p_meaningful"], a["draws"]))
        return f"{n} from {a['draws']} draws (standard error at least {low[0]:.4f} and {low[1]:.4f}, more with autocorrelation)"

    sampled = ", ".join(standard_errors(n) for n in ("PyMC", "NumPyro"))
    lines += [
        "",
        f"wager's answers are exact (Evan Miller's sum, quadrature) and its action is \"{answers['wager'].get('action')}\". "
        f"The samplers' answers are Monte Carlo estimates: {sampled}.",
        "",
        f"Ratios on warm medians: PyMC / wager = {med['PyMC'] / w:.1f}x, NumPyro / wager = {med['NumPyro'] / w:.1f}x "
        f"(first run: PyMC / wager = {first['PyMC'][0] / first['wager'][0]:.1f}x).",
        "",
        f"Targets, for the decision alone (`--no-record`, the like-for-like route: PyMC records nothing): "
        f"wager <= 1 s wall: {'met' if d <= 1 else 'NOT met'} ({d:.2f} s); "
        f">= 10x faster than PyMC: {'met' if med['PyMC'] / d >= 10 else 'NOT met'} ({med['PyMC'] / d:.1f}x). "
        f"A default run also writes the run to the SQLite registry (manifest, draws as NetCDF) and refits "
        f"under wider and narrower priors: {w:.2f} s, {med['PyMC'] / w:.1f}x faster than PyMC.",
        "",
        "Where wager's time goes (the CLI run in-process in a subprocess; medians of 5):",
        "",
        "| part | seconds |",
        "|---|---:|",
        f"| interpreter start and exit (wall minus the parts below) | "
        f"{probe['wall_s'] - probe['import_cli_s'] - probe['first_run_s'] - probe['second_run_s']:.3f} |",
        f"| `import wager.cli` (typer, ...) | {probe['import_cli_s']:.3f} |",
        f"| first run: lazy imports + compute | {probe['first_run_s']:.3f} |",
        f"| compute alone (a second run in the same process) | {probe['second_run_s']:.3f} |",
        "",
        "Import time of that run (`python -X importtime`, which adds its own overhead), by what the run "
        "imports directly (cumulative: with everything each pulls in) and by top-level package (each "
        "module's own time, whoever imported it):",
        "",
        "| imported by the run | seconds |",
        "|---|---:|",
    ]
    lines += [f"| `{name}` | {sec:.3f} |" for name, sec in imports["trigger"]]
    lines += ["", "| package | seconds |", "|---|---:|"]
    lines += [f"| {name if ' ' in name else '`' + name + '`'} | {sec:.3f} |" for name, sec in imports["package"]]
    loaded = probe["loaded"]
    jax_free = not (loaded["jax"] or loaded["jaxlib"] or loaded["numpyro"])
    lines += [
        "",
        f"Exact path imports JAX: **{'no' if jax_free else 'YES'}** "
        f"(`sys.modules` after an in-process `wager ab` run; {probe['modules']} modules loaded; "
        + ", ".join(f"{m} {'loaded' if v else 'not loaded'}" for m, v in loaded.items())
        + ").",
    ]
    return "\n".join(lines)


def _binomial_se(p: float, draws: int) -> float:
    return (p * (1 - p) / draws) ** 0.5










if __name__ == "__main__":
    main()
