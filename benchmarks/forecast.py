"""Hierarchical forecasting on the tourism panel: wager against seasonal naive, AutoETS and Prophet.

Data: Australian domestic overnight trips (thousands), 304 quarterly series
(Region x State x Purpose), 1998Q1-2017Q4, from Tourism Research Australia as
published in the tidyverts ``tsibble`` R package (``shared/data/tourism.csv``;
``--data`` points elsewhere).

Protocol:

* Three rolling origins: fit on the first 56, 64 and 72 quarters, forecast
  the next 8 (horizon 8; test years 2012-13, 2014-15, 2016-17).
* Every method returns a predictive distribution per series and horizon:
  sample paths (draws, series, horizon) or a Normal. The point forecast is
  its median.
* MASE: |y - point| / scale, averaged over all series x horizons x origins,
  where a series' scale is its in-sample seasonal-naive MAE,
  mean |y_t - y_{t-4}| over that origin's whole training history.
* Scaled CRPS: sum of CRPS / sum of |y|, pooled over series, horizons and
  origins. CRPS of samples by the sorted-sample formula (the CRPS of their
  empirical distribution), of a Normal in closed form.
* Coverage of the central 80% and 95% intervals; wall time of fit + forecast
  for all three origins (imports excluded, compilation included, from an empty
  JAX compilation cache at the start of the run).
* Cold-start slice: the same origins, but each series keeps only its last 8
  observations before the origin (earlier values missing; the MASE scale
  still comes from the full history).
* Scaled CRPS by horizon, and (with AutoETS among the methods) a reference
  that is not a forecast: AutoETS fitted to every quarter, test quarters
  included, predicting each test quarter one step ahead (``hindsight_one_step``).

Methods:

* seasonal naive: the last season's values; predictive paths of a seasonal
  random walk, y_{t} = y_{t-4} + e, with e drawn from the series' in-sample
  seasonal differences minus their median, every path paired with its mirror
  image (so the predictive is symmetric and its median is exactly the last
  season's value).
* AutoETS: statsforecast ``AutoETS(season_length=4)``, one ``StatsForecast``
  over all series (``n_jobs`` = ``--workers``, at most 2), levels 80 and 95;
  the predictive is the Normal with the forecast mean and sd = (hi95 - lo95)
  / (2 x 1.96).
* AutoETS + MinT: the same AutoETS on every series of the hierarchy (425 with
  the totals by country, state, purpose, region and state x purpose),
  reconciled by hierarchicalforecast's MinT with a shrinkage covariance; the
  reconciled Normal of each bottom series.
* Prophet: one model per series with its defaults (future dates
  ``freq="QS"``), its 1,000 ``predictive_samples``; series fitted on a
  process pool of ``--workers``.
* wager: ``wager.forecast.forecast_panel`` on the long table, one call per
  origin, once per engine of ``--wager-engines`` (vi, nuts).

    ../.venv-bench/bin/python forecast.py [--methods snaive,autoets,mint,prophet,wager] [--json out.json] [--doc ../docs/benchmarks.md]
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import multiprocessing
import os
import tempfile
import time
import warnings
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from scipy.special import ndtr

from common import machine, now, versions, write_section
from wager.forecast.spec import FORECAST_VI_STEPS

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "tourism.csv"
KEYS = ["State", "Region", "Purpose"]
SEASON = 4
HORIZON = 8
ORIGINS = (56, 64, 72)
COLD_START = 8
LEVELS = (80, 95)
DRAWS = 1000
SECTION = "forecast"
HEADING = "## Hierarchical forecasting (tourism)"

# The targets for wager.
TARGET_MASE = 0.95
TARGET_CRPS = 0.11
TARGET_COVERAGE_POINTS = 0.03
TARGET_SECONDS = 300.0


# --- data -------------------------------------------------------------------


@dataclass(frozen=True)
class Panel:
    """The long table and the same numbers as a (series, quarters) array in ``keys``' row order."""

    frame: pd.DataFrame
    keys: pd.DataFrame
    quarters: pd.DatetimeIndex
    values: np.ndarray


@dataclass(frozen=True)
class History:
    """What a method sees at one origin: the first ``n`` quarters, hidden values NaN."""

    frame: pd.DataFrame  # long table, Quarter before the origin; Trips NaN where hidden
    keys: pd.DataFrame  # one row per series, columns KEYS
    quarters: pd.DatetimeIndex  # the n training quarters
    values: np.ndarray  # (series, n), NaN where hidden


def load_panel(path: Path) -> Panel:
    frame = pd.read_csv(path, parse_dates=["Quarter"])
    wide = frame.pivot(index=KEYS, columns="Quarter", values="Trips")
    return Panel(frame, wide.index.to_frame(index=False), pd.DatetimeIndex(wide.columns), wide.to_numpy(dtype=float))


def history(panel: Panel, n: int, cold_start: bool) -> History:
    frame = panel.frame[panel.frame["Quarter"] < panel.quarters[n]].copy()
    if cold_start:
        position_from_end = frame.sort_values("Quarter").groupby(KEYS).cumcount(ascending=False)
        frame.loc[position_from_end.index[position_from_end >= COLD_START], "Trips"] = np.nan
    wide = frame.pivot(index=KEYS, columns="Quarter", values="Trips")
    wide = wide.reindex(index=pd.MultiIndex.from_frame(panel.keys), columns=panel.quarters[:n])
    return History(frame, panel.keys, panel.quarters[:n], wide.to_numpy(dtype=float))


def series_ids(keys: pd.DataFrame) -> list[str]:
    """One string per series, for libraries that want a single id column."""
    return keys[KEYS].astype(str).agg("|".join, axis=1).tolist()


def seasonal_naive_scale(values: np.ndarray) -> np.ndarray:
    """(series,) in-sample MAE of the seasonal naive forecast: mean |y_t - y_{t-4}|."""
    return np.nanmean(np.abs(values[:, SEASON:] - values[:, :-SEASON]), axis=1)


# --- predictive distributions and scores ---------------------------------------


def crps_from_samples(samples: np.ndarray, y: np.ndarray) -> np.ndarray:
    """CRPS of the empirical distribution of ``samples`` (draws, ...) at ``y`` (...).

    CRPS = E|X - y| - E|X - X'| / 2, and with the m draws sorted,
    E|X - X'| / 2 = sum_i (2i - m - 1) x_(i) / m^2 (i = 1..m).
    """
    m = samples.shape[0]
    ordered = np.sort(samples, axis=0)
    weights = (2 * np.arange(1, m + 1) - m - 1).reshape((m,) + (1,) * (samples.ndim - 1))
    return np.abs(samples - y).mean(axis=0) - (weights * ordered).sum(axis=0) / m**2


def crps_normal(mean: np.ndarray, sd: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Closed form: sd [z (2 Phi(z) - 1) + 2 phi(z) - 1 / sqrt(pi)], z = (y - mean) / sd.

    sd = 0 (AutoETS on a series of zeros) is a point mass: CRPS = |y - mean|.
    """
    point_mass = sd == 0
    safe_sd = np.where(point_mass, 1.0, sd)
    z = (y - mean) / safe_sd
    normal = safe_sd * (z * (2 * ndtr(z) - 1) + 2 * np.exp(-0.5 * z**2) / np.sqrt(2 * np.pi) - 1 / np.sqrt(np.pi))
    return np.where(point_mass, np.abs(y - mean), normal)


@dataclass(frozen=True)
class SamplePredictive:
    paths: np.ndarray  # (draws, series, horizon)
    gates: str = ""  # wager: its gates' verdict on the posterior the paths come from

    def median(self) -> np.ndarray:
        return np.median(self.paths, axis=0)

    def interval(self, level: int) -> tuple[np.ndarray, np.ndarray]:
        tail = (1 - level / 100) / 2
        low, high = np.quantile(self.paths, [tail, 1 - tail], axis=0)
        return low, high

    def crps(self, y: np.ndarray) -> np.ndarray:
        return crps_from_samples(self.paths, y)


@dataclass(frozen=True)
class NormalPredictive:
    mean: np.ndarray  # (series, horizon)
    sd: np.ndarray

    def median(self) -> np.ndarray:
        return self.mean

    def interval(self, level: int) -> tuple[np.ndarray, np.ndarray]:
        from scipy.stats import norm

        z = norm.ppf(0.5 + level / 200)
        return self.mean - z * self.sd, self.mean + z * self.sd

    def crps(self, y: np.ndarray) -> np.ndarray:
        return crps_normal(self.mean, self.sd, y)


Predictive = SamplePredictive | NormalPredictive


def score(predictive: Predictive, actual: np.ndarray, scale: np.ndarray) -> dict[str, np.ndarray]:
    """Per series and horizon: scaled absolute error, CRPS, |y|, and whether y fell in each interval."""
    scores = {
        "scaled_error": np.abs(actual - predictive.median()) / scale[:, None],
        "crps": predictive.crps(actual),
        "abs_actual": np.abs(actual),
    }
    for level in LEVELS:
        low, high = predictive.interval(level)
        scores[f"covered_{level}"] = (low <= actual) & (actual <= high)
    return scores


def summarize(scores: list[dict[str, np.ndarray]]) -> dict[str, float]:
    """Pool per-origin scores: MASE, scaled CRPS, coverage."""
    pooled = {name: np.concatenate([s[name].ravel() for s in scores]) for name in scores[0]}
    summary = {
        "mase": float(pooled["scaled_error"].mean()),
        "scaled_crps": float(pooled["crps"].sum() / pooled["abs_actual"].sum()),
    }
    for level in LEVELS:
        summary[f"coverage_{level}"] = float(pooled[f"covered_{level}"].mean())
    return summary


def crps_by_horizon(scores: list[dict[str, np.ndarray]]) -> list[float]:
    """Scaled CRPS per horizon (1..HORIZON), pooled over series and origins."""
    crps = sum(s["crps"].sum(axis=0) for s in scores)
    size = sum(s["abs_actual"].sum(axis=0) for s in scores)
    return [float(c / a) for c, a in zip(crps, size)]


def hindsight_one_step(panel: Panel, origins: tuple[int, ...], workers: int) -> dict[str, float]:
    """A reference, not a forecast: AutoETS fitted to every quarter (the test quarters
    included), each test quarter predicted one step ahead from the quarter before it
    (statsforecast's in-sample fitted values), Normal with the series' in-sample
    residual sd. Scaled CRPS over each origin's test quarters and pooled: what one-step
    errors with hindsight parameters score, against which 1-8-step forecasts are judged."""
    from statsforecast import StatsForecast
    from statsforecast.models import AutoETS

    ids = series_ids(panel.keys)
    frame = pd.DataFrame({"unique_id": np.repeat(ids, len(panel.quarters)), "ds": np.tile(panel.quarters, len(ids)), "y": panel.values.ravel()})
    model = StatsForecast(models=[AutoETS(season_length=SEASON)], freq="QS", n_jobs=min(workers, 2))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        model.forecast(df=frame, h=1, fitted=True)
    fitted = model.forecast_fitted_values().pivot(index="unique_id", columns="ds", values="AutoETS").reindex(ids).to_numpy()
    sd = np.nanstd(panel.values[:, SEASON:] - fitted[:, SEASON:], axis=1)[:, None]
    crps, size = {}, {}
    for n in origins:
        window = slice(n, n + HORIZON)
        label = quarter_label(panel.quarters[n])
        y = panel.values[:, window]
        crps[label] = crps_normal(fitted[:, window], np.broadcast_to(sd, y.shape), y).sum()
        size[label] = np.abs(y).sum()
    return {**{k: float(crps[k] / size[k]) for k in crps}, "pooled": float(sum(crps.values()) / sum(size.values()))}


# --- methods -----------------------------------------------------------------------


@dataclass(frozen=True)
class Settings:
    seed: int
    workers: int
    tick: Callable[[int], None]  # called with the number of series just finished


def align(paths: np.ndarray, their_keys: pd.DataFrame, our_keys: pd.DataFrame) -> np.ndarray:
    """Reorder ``paths``' series axis from ``their_keys``' row order to ``our_keys``'."""
    theirs = pd.MultiIndex.from_frame(their_keys[KEYS].astype(str))
    if theirs.has_duplicates:
        raise ValueError("forecast keys: a series appears more than once")
    rows = theirs.get_indexer(pd.MultiIndex.from_frame(our_keys[KEYS].astype(str)))
    if (rows < 0).any():
        missing = our_keys[KEYS].iloc[np.flatnonzero(rows < 0)[:3]].to_dict("records")
        raise ValueError(f"forecast keys: {int((rows < 0).sum())} series missing, e.g. {missing}")
    return paths[:, rows, :]


def seasonal_naive(past: History, settings: Settings) -> SamplePredictive:
    rng = np.random.default_rng(settings.seed)
    values = past.values
    series = values.shape[0]
    half = DRAWS // 2
    paths = np.empty((DRAWS, series, HORIZON))
    for i in range(series):
        differences = values[i, SEASON:] - values[i, :-SEASON]
        errors = differences[~np.isnan(differences)]
        errors = errors - np.median(errors)
        draws = rng.choice(errors, size=(half, HORIZON))
        draws = np.concatenate([draws, -draws])  # each path and its mirror image
        path = np.empty((DRAWS, HORIZON))
        for h in range(HORIZON):
            before = values[i, h - SEASON] if h < SEASON else path[:, h - SEASON]
            path[:, h] = before + draws[:, h]
        paths[:, i, :] = path
    settings.tick(series)
    return SamplePredictive(paths)


def normal_from_95(wide: pd.DataFrame, column: str) -> NormalPredictive:
    """The Normal with a Nixtla forecast's mean (``column``) and sd = (hi95 - lo95) / (2 x 1.96)."""
    from scipy.stats import norm

    sd = (wide[f"{column}-hi-95"].to_numpy() - wide[f"{column}-lo-95"].to_numpy()) / (2 * norm.ppf(0.975))
    return NormalPredictive(wide[column].to_numpy(), sd)


def auto_ets(past: History, settings: Settings) -> NormalPredictive:
    from statsforecast import StatsForecast
    from statsforecast.models import AutoETS

    ids = series_ids(past.keys)
    frame = past.frame.dropna(subset=["Trips"])
    frame = pd.DataFrame({"unique_id": series_ids(frame), "ds": frame["Quarter"].to_numpy(), "y": frame["Trips"].to_numpy()})
    model = StatsForecast(models=[AutoETS(season_length=SEASON)], freq="QS", n_jobs=min(settings.workers, 2))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        forecast = model.forecast(df=frame, h=HORIZON, level=list(LEVELS))
    wide = forecast.pivot(index="unique_id", columns="ds").reindex(ids)
    if wide.isna().any().any():
        raise ValueError("AutoETS: some series got no forecast")
    settings.tick(len(ids))
    return normal_from_95(wide, "AutoETS")


HIERARCHY = [["Country"], ["Country", "State"], ["Country", "Purpose"], ["Country", "State", "Region"], ["Country", "State", "Purpose"], ["Country", "State", "Region", "Purpose"]]
"""The tourism hierarchy's levels, as hierarchicalforecast's ``aggregate`` names them (the
tidyverts book's: country, states, purposes, regions, state x purpose, and the series)."""


def auto_ets_mint(past: History, settings: Settings) -> NormalPredictive:
    """AutoETS on all 425 series of the hierarchy, reconciled by MinT (shrinkage covariance
    of the in-sample one-step errors); the Normal predictive of the series at the bottom."""
    from hierarchicalforecast.core import HierarchicalReconciliation
    from hierarchicalforecast.methods import MinTrace
    from hierarchicalforecast.utils import aggregate
    from statsforecast import StatsForecast
    from statsforecast.models import AutoETS

    frame = past.frame.dropna(subset=["Trips"]).assign(Country="Australia").rename(columns={"Quarter": "ds", "Trips": "y"})
    frame["ds"] = pd.to_datetime(frame["ds"])
    y, s, tags = aggregate(frame[["Country", *KEYS, "ds", "y"]], HIERARCHY)
    model = StatsForecast(models=[AutoETS(season_length=SEASON)], freq="QS", n_jobs=min(settings.workers, 2))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        base = model.forecast(df=y, h=HORIZON, fitted=True, level=[95])
        reconciled = HierarchicalReconciliation([MinTrace(method="mint_shrink")]).reconcile(
            Y_hat_df=base, Y_df=model.forecast_fitted_values(), S_df=s, tags=tags, level=[95], intervals_method="normality",
        )
    ids = ["/".join(["Australia", *map(str, row)]) for row in past.keys[["State", "Region", "Purpose"]].itertuples(index=False)]
    wide = reconciled.pivot(index="unique_id", columns="ds").reindex(ids)
    column = "AutoETS/MinTrace_method-mint_shrink"
    if wide[column].isna().any().any():
        raise ValueError("AutoETS + MinT: some series got no forecast")
    settings.tick(len(ids))
    return normal_from_95(wide, column)


def _quiet_prophet() -> None:
    """Silence cmdstanpy's and Prophet's logging (and, in a worker, Prophet's pandas warnings)."""
    for name in ("cmdstanpy", "prophet"):
        logger = logging.getLogger(name)
        logger.addHandler(logging.NullHandler())  # with a handler present, cmdstanpy adds none of its own
        logger.setLevel(logging.ERROR)
        logger.propagate = False
    logging.getLogger("prophet.plot").disabled = True  # its one message: plotly is not installed
    if multiprocessing.parent_process() is not None:
        warnings.simplefilter("ignore")


def _prophet_one(task: tuple[np.ndarray, np.ndarray, int]) -> np.ndarray:
    """Fit one series; (draws, horizon) predictive samples."""
    from prophet import Prophet

    quarters, values, seed = task
    np.random.seed(seed)  # Prophet draws its predictive samples from NumPy's global generator
    model = Prophet().fit(pd.DataFrame({"ds": quarters, "y": values}))
    future = model.make_future_dataframe(periods=HORIZON, freq="QS", include_history=False)
    return model.predictive_samples(future)["yhat"].T


def prophet(past: History, settings: Settings) -> SamplePredictive:
    tasks = []
    for i, row in enumerate(past.values):
        seen = ~np.isnan(row)
        tasks.append((past.quarters[seen].to_numpy(), row[seen], settings.seed * 100_003 + i))
    samples = []
    context = multiprocessing.get_context("spawn")  # JAX or numba threads may already run in this process
    with ProcessPoolExecutor(settings.workers, mp_context=context, initializer=_quiet_prophet) as pool:
        for paths in pool.map(_prophet_one, tasks, chunksize=4):
            samples.append(paths)
            settings.tick(1)
    return SamplePredictive(np.stack(samples, axis=1))


def wager_method(engine: str) -> Callable[[History, Settings], SamplePredictive]:
    def run(past: History, settings: Settings) -> SamplePredictive:
        from wager.forecast import forecast_panel

        result = forecast_panel(
            past.frame, time="Quarter", groups=["State", "Region", "Purpose"], value="Trips", horizon=HORIZON, engine=engine,
            seed=settings.seed, **(NUTS_SETTINGS if engine == "nuts" else {}),
        )
        paths = np.asarray(result.paths, dtype=float)
        if paths.ndim != 3 or paths.shape[2] != HORIZON:
            raise ValueError(f"wager ({engine}): paths of shape {paths.shape}, expected (draws, series, {HORIZON})")
        settings.tick(len(past.keys))
        failed = [f"{g.name} {g.value:.3g}" for g in result.gates.failed]
        verdict = "passed" if not failed else "blocked: " + ", ".join(failed)
        return SamplePredictive(align(paths, result.keys, past.keys), verdict)

    return run


@dataclass(frozen=True)
class Method:
    name: str
    forecast: Callable[[History, Settings], Predictive]
    modules: tuple[str, ...]  # imported before the clock starts
    description: str  # for the report


WAGER_ENGINES = {"vi": "wager (SVI)", "nuts": "wager (NUTS)"}
NUTS_SETTINGS: dict = {}
"""NUTS settings for the benchmark (``--nuts-chains``, ``--nuts-draws``): wager's defaults
(4 chains x 1000 + 1000) over 304 series take hours on 2 cores."""


def methods(names: list[str], wager_engines: list[str], workers: int) -> list[Method]:
    snaive = (
        "the last season's values; predictive paths of a seasonal random walk whose steps are the series' in-sample "
        "seasonal differences minus their median, resampled, each path paired with its mirror image (a symmetric "
        "predictive whose median is the last season's value)"
    )
    ets = (
        f"statsforecast `AutoETS(season_length=4)`, one `StatsForecast(n_jobs={min(workers, 2)})` over all series; "
        "Normal predictive with the forecast mean and sd = (hi95 - lo95) / (2 x 1.96)"
    )
    mint = (
        "statsforecast `AutoETS(season_length=4)` on all 425 series of the hierarchy (Australia, states, purposes, regions, "
        "state x purpose, and the 304 series), reconciled by hierarchicalforecast's `MinTrace(method='mint_shrink')` "
        "(Wickramasuriya, Athanasopoulos & Hyndman 2019), intervals by its `normality` method; Normal predictive at the bottom level"
    )
    prophet_text = f"one `Prophet()` per series with its defaults, its {DRAWS} `predictive_samples`; series fitted on {workers} worker processes"
    wager_text = "`wager.forecast.forecast_panel` on the long table (groups State, Region, Purpose), engine `{}`, one call per origin"
    known = {
        "snaive": [Method("seasonal naive", seasonal_naive, (), snaive)],
        "autoets": [Method("AutoETS", auto_ets, ("statsforecast", "statsforecast.models"), ets)],
        "mint": [Method("AutoETS + MinT", auto_ets_mint, ("statsforecast", "hierarchicalforecast.methods"), mint)],
        "prophet": [Method("Prophet", prophet, ("prophet",), prophet_text)],
        "wager": [Method(WAGER_ENGINES.get(e, e), wager_method(e), ("wager.forecast",), wager_text.format(e) + (f" ({NUTS_SETTINGS['chains']} chains x {NUTS_SETTINGS['warmup']} warmup + {NUTS_SETTINGS['draws']} draws, run side by side on wager's pool of chain threads, target_accept 0.9, warm-started from ADVI: {FORECAST_VI_STEPS} Adam steps, chains starting at guide draws, the first mass matrix the guide's variances)" if e == "nuts" else f" ({FORECAST_VI_STEPS} Adam steps, 4000 draws)")) for e in wager_engines],
    }
    unknown = sorted(set(names) - set(known))
    if unknown:
        raise SystemExit(f"--methods: unknown {unknown}; choose from {sorted(known)}")
    bad_engines = sorted(set(wager_engines) - set(WAGER_ENGINES))
    if bad_engines:
        raise SystemExit(f"--wager-engines: unknown {bad_engines}; choose from {sorted(WAGER_ENGINES)}")
    return [m for name in names for m in known[name]]


# --- the run -----------------------------------------------------------------------


SLICES = {"full": False, "cold_start": True}


def evaluate(panel: Panel, method: Method, cold_start: bool, origins: tuple[int, ...], settings: Settings) -> dict:
    scores, per_origin, seconds = [], [], 0.0
    for n in origins:
        past = history(panel, n, cold_start)
        started = time.perf_counter()
        predictive = method.forecast(past, settings)
        elapsed = time.perf_counter() - started
        seconds += elapsed
        actual = panel.values[:, n : n + HORIZON]
        origin_scores = score(predictive, actual, seasonal_naive_scale(panel.values[:, :n]))
        scores.append(origin_scores)
        per_origin.append({
            "train_quarters": n, "first_test_quarter": quarter_label(panel.quarters[n]), "seconds": elapsed,
            "gates": getattr(predictive, "gates", ""), **summarize([origin_scores]),
        })
    return {**summarize(scores), "seconds": seconds, "per_origin": per_origin, "crps_by_horizon": crps_by_horizon(scores)}


def quarter_label(day: pd.Timestamp) -> str:
    return f"{day.year}Q{day.quarter}"


def run(panel: Panel, chosen: list[Method], origins: tuple[int, ...], seed: int, workers: int, quiet: bool, slices: tuple[str, ...] = tuple(SLICES)) -> dict[str, dict]:
    results: dict[str, dict] = {m.name: {} for m in chosen}
    columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()]
    with Progress(*columns, console=Console(stderr=True), disable=quiet) as progress:
        for method in chosen:
            for slice_name in slices:
                cold_start = SLICES[slice_name]
                task = progress.add_task(f"{method.name}, {slice_name.replace('_', ' ')}", total=len(panel.keys) * len(origins))
                settings = Settings(seed, workers, lambda k, task=task: progress.advance(task, k))
                results[method.name][slice_name] = evaluate(panel, method, cold_start, origins, settings)
    return results


# --- the report --------------------------------------------------------------------


def met(ok: bool) -> str:
    return "met" if ok else "**not met**"


def targets(name: str, results: dict[str, dict]) -> list[tuple[str, str, str]]:
    """(target, measured, met?) rows for one wager row."""
    full, cold = results[name]["full"], results[name].get("cold_start")
    rows = [
        (f"MASE <= {TARGET_MASE}", f"{full['mase']:.3f}", met(full["mase"] <= TARGET_MASE)),
        (f"scaled CRPS <= {TARGET_CRPS}", f"{full['scaled_crps']:.4f}", met(full["scaled_crps"] <= TARGET_CRPS)),
    ]
    for level in LEVELS:
        coverage = full[f"coverage_{level}"]
        rows.append((f"{level}% coverage within {TARGET_COVERAGE_POINTS * 100:.0f} points of {level}%", f"{coverage:.3f}", met(abs(coverage - level / 100) <= TARGET_COVERAGE_POINTS)))
    rows.append((f"total time <= {TARGET_SECONDS:.0f} s", f"{full['seconds']:.1f} s", met(full["seconds"] <= TARGET_SECONDS)))
    if "Prophet" in results:
        prophet_seconds = results["Prophet"]["full"]["seconds"]
        rows.append(("total time below Prophet's", f"{full['seconds']:.1f} s vs {prophet_seconds:.1f} s", met(full["seconds"] < prophet_seconds)))
    else:
        rows.append(("total time below Prophet's", "Prophet not run", "not assessed"))
    if cold is None:
        rows.append(("cold-start scaled CRPS below AutoETS's", "cold start not run", "not assessed"))
    elif "AutoETS" in results:
        ets = results["AutoETS"]["cold_start"]["scaled_crps"]
        rows.append(("cold-start scaled CRPS below AutoETS's", f"{cold['scaled_crps']:.4f} vs {ets:.4f}", met(cold["scaled_crps"] < ets)))
    else:
        rows.append(("cold-start scaled CRPS below AutoETS's", "AutoETS not run", "not assessed"))
    return rows


def report(panel: Panel, chosen: list[Method], results: dict[str, dict], origins: tuple[int, ...], seed: int, workers: int, reference: dict[str, float] | None = None) -> str:
    packages = ["wager", "numpy", "pandas", "scipy", "jax", "numpyro", "statsforecast", "hierarchicalforecast", "prophet", "cmdstanpy"]
    tests = ", ".join(f"{quarter_label(panel.quarters[n])}-{quarter_label(panel.quarters[n + HORIZON - 1])}" for n in origins)
    lines = [
        f"Measured {now()} on {machine()}; {', '.join(versions(packages))}. Seed {seed}, {workers} workers.",
        "",
        f"Data: Australian domestic overnight trips (thousands), {len(panel.keys)} quarterly series (Region x State x Purpose), "
        f"{quarter_label(panel.quarters[0])}-{quarter_label(panel.quarters[-1])}; source: Tourism Research Australia, as published "
        "in the tidyverts `tsibble` R package.",
        "",
        f"Protocol (`benchmarks/forecast.py`): rolling origins after {', '.join(map(str, origins))} quarters, horizon {HORIZON} "
        f"(test quarters {tests}). Point forecast = the predictive median. MASE: |y - point| over the series' in-sample "
        "seasonal-naive MAE (period 4, that origin's whole training history), averaged over all series x horizons x origins. "
        "Scaled CRPS: sum of CRPS / sum of |y|, pooled. Coverage of the central 80% and 95% intervals. Seconds: fit + forecast "
        f"wall time for all origins (imports excluded, compilation included, from an empty JAX compilation cache at the start of the run). Cold start: each series keeps only its last "
        f"{COLD_START} observations before the origin (earlier values missing); its MASE keeps the full-history scale.",
        "",
        "Methods:",
        "",
        *[f"* **{m.name}**: {m.description}." for m in chosen],
        "",
        f"Targets for wager: MASE <= {TARGET_MASE}; scaled CRPS <= {TARGET_CRPS}; 80% and 95% coverage within "
        f"{TARGET_COVERAGE_POINTS * 100:.0f} points of nominal; total time below Prophet's and <= {TARGET_SECONDS / 60:.0f} minutes "
        f"for all origins on this machine (the full-history slice); cold-start scaled CRPS below AutoETS's.",
        "",
        "| method | MASE | scaled CRPS | 80% coverage | 95% coverage | seconds |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, r in results.items():
        f = r["full"]
        lines.append(f"| {name} | {f['mase']:.3f} | {f['scaled_crps']:.4f} | {f['coverage_80']:.3f} | {f['coverage_95']:.3f} | {f['seconds']:.1f} |")
    lines += [
        "",
        "Per origin (full history; the issue's AutoETS reference, MASE 0.986 and coverage 0.75 / 0.89, is AutoETS at the last origin):",
        "",
        "| method | test quarters from | MASE | scaled CRPS | 80% coverage | 95% coverage | seconds | wager's gates |",
        "|---|---|---:|---:|---:|---:|---:|---|",
    ]
    for name, r in results.items():
        for o in r["full"]["per_origin"]:
            lines.append(
                f"| {name} | {o['first_test_quarter']} | {o['mase']:.3f} | {o['scaled_crps']:.4f} | {o['coverage_80']:.3f} | "
                f"{o['coverage_95']:.3f} | {o['seconds']:.1f} | {o['gates'] or '-'} |"
            )
    lines += [
        "",
        "Scaled CRPS by horizon (full history, pooled over origins; every origin's first test quarter is a Q1):",
        "",
        "| method | " + " | ".join(f"h={h}" for h in range(1, HORIZON + 1)) + " |",
        "|---|" + "---:|" * HORIZON,
    ]
    for name, r in results.items():
        lines.append(f"| {name} | " + " | ".join(f"{c:.4f}" for c in r["full"]["crps_by_horizon"]) + " |")
    if reference is not None:
        per_origin = ", ".join(f"{k} {v:.4f}" for k, v in reference.items() if k != "pooled")
        lines += [
            "",
            f"Reference, not a forecast (`hindsight_one_step`): AutoETS fitted to all {len(panel.quarters)} quarters, test quarters "
            "included, each test quarter predicted one step ahead from the quarter before it (its in-sample fitted values), "
            f"Normal with the series' in-sample residual sd: scaled CRPS {reference['pooled']:.4f} over the test quarters "
            f"(per window from {per_origin}).",
        ]
    lines += [
        "",
        f"Cold start (last {COLD_START} observations per series):",
        "",
        "| method | MASE | scaled CRPS | 80% coverage | 95% coverage | seconds |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, r in results.items():
        if "cold_start" not in r:
            lines.append(f"| {name} | not run | | | | |")
            continue
        c = r["cold_start"]
        lines.append(f"| {name} | {c['mase']:.3f} | {c['scaled_crps']:.4f} | {c['coverage_80']:.3f} | {c['coverage_95']:.3f} | {c['seconds']:.1f} |")
    wager_rows = [m.name for m in chosen if "wager.forecast" in m.modules]
    lines += ["", "Targets:", ""]
    if not wager_rows:
        lines.append("wager was not run in this measurement: targets not assessed.")
    else:
        lines += ["| target | " + " | ".join(wager_rows) + " |", "|---|" + "---|" * len(wager_rows)]
        per_row = [targets(name, results) for name in wager_rows]
        for i, (target, _, _) in enumerate(per_row[0]):
            lines.append(f"| {target} | " + " | ".join(f"{rows[i][1]}: {rows[i][2]}" for rows in per_row) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA, help="the tourism CSV (Quarter, Region, State, Purpose, Trips)")
    parser.add_argument("--methods", default="snaive,autoets,mint,prophet,wager", help="comma-separated: snaive, autoets, mint, prophet, wager")
    parser.add_argument("--wager-engines", default="vi", help="comma-separated: vi, nuts (each its own row)")
    parser.add_argument("--origins", default=",".join(map(str, ORIGINS)), help="training lengths in quarters")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workers", type=int, default=2, help="statsforecast n_jobs (at most 2) and Prophet's process pool")
    parser.add_argument("--json", type=Path, help="write the raw numbers to this file")
    parser.add_argument("--doc", type=Path, help="rewrite this markdown file's forecast section")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.add_argument("--nuts-chains", type=int, default=2, help="NUTS chains (run side by side on wager's pool of chain threads)")
    parser.add_argument("--nuts-draws", type=int, default=300, help="NUTS warmup and kept draws per chain")
    parser.add_argument("--slices", default=",".join(SLICES), help=f"comma-separated: {', '.join(SLICES)}")
    parser.add_argument("--section", default=SECTION, help="marker name of the docs section (one per kind of run)")
    parser.add_argument("--heading", default=HEADING, help="heading of the docs section")
    args = parser.parse_args()
    # wager keeps compiled XLA programs in a persistent cache; an empty one per run makes the
    # first origin pay the whole compilation, as on a fresh machine (later origins may reuse it)
    os.environ.setdefault("WAGER_JAX_CACHE", tempfile.mkdtemp(prefix="wager-jax-"))
    NUTS_SETTINGS.update(chains=args.nuts_chains, draws=args.nuts_draws, warmup=args.nuts_draws, chain_method="sequential", target_accept=0.9)

    chosen = methods([m for m in args.methods.split(",") if m], [e for e in args.wager_engines.split(",") if e], args.workers)
    origins = tuple(int(n) for n in args.origins.split(","))
    slices = tuple(x for x in args.slices.split(",") if x)
    if not slices or set(slices) - set(SLICES):
        raise SystemExit(f"--slices: choose from {', '.join(SLICES)}")
    panel = load_panel(args.data)
    if max(origins) + HORIZON > len(panel.quarters) or min(origins) <= COLD_START:
        raise SystemExit(f"--origins: each must leave {HORIZON} test quarters and exceed {COLD_START}")
    _quiet_prophet()
    for module in {m for method in chosen for m in method.modules}:
        importlib.import_module(module)  # fail now, not after the other methods have run

    results = run(panel, chosen, origins, args.seed, args.workers, args.quiet, slices)
    reference = hindsight_one_step(panel, origins, args.workers) if "autoets" in args.methods.split(",") else None
    body = report(panel, chosen, results, origins, args.seed, args.workers, reference)
    print(body)
    if args.json:
        meta = {"measured": now(), "machine": machine(), "seed": args.seed, "workers": args.workers, "origins": list(origins), "horizon": HORIZON}
        args.json.write_text(json.dumps({**meta, "methods": results, "hindsight_one_step": reference}, indent=1))
    if args.doc:
        write_section(args.doc, args.section, args.heading, body)


if __name__ == "__main__":
    main()
