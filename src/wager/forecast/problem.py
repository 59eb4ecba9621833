"""A panel forecast as a problem on the shared path: the model for the engines,
forecast distributions from the posterior, and the decisions on them.

``ForecastProblem.paths(posterior)`` runs the model forward from (an evenly
thinned subset of) the posterior draws, one sample path per draw and series,
on the data's scale. Quantiles, aggregates and decisions all read those paths,
so a total is the sum of its parts draw by draw (coherent), and an order is
the critical-fractile quantile of the same distribution the bands show.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any, Mapping

import numpy as np

from wager.forecast.data import Panel, choose_transform, transform
from wager.forecast.decide import capacity, newsvendor
from wager.forecast.model import LIKELIHOODS, Layout, check_seasonality, default_priors, forecast_model
from wager.kernel.diagnostics import chain_quantile_se, quantile_se
from wager.kernel.digits import fmt
from wager.kernel.inference import Model
from wager.kernel.outcome import Outcome
from wager.kernel.posterior import Posterior
from wager.kernel.priors import Prior, with_overrides

NUTS_MAX_SERIES = 40
"""``engine="auto"`` runs NUTS up to this many series and SVI above it."""
BATCH_ABOVE, BATCH = 1000, 256
"""SVI mini-batches ``BATCH`` series per step when a panel has more than ``BATCH_ABOVE``."""
MARGINAL_EFFECTS_MAX = 512
"""For NUTS, the Normal likelihood integrates the group effects of the initial states'
means out (``Layout.marginal_effects``) up to this many effects: one Cholesky factor
of that size per gradient. Above it, with mini-batches, or for SVI they are sampled.
The two forms are the same model; integrating out removes a funnel NUTS diverges in,
while for SVI it only costs time (tourism, 352 effects: 123 s against 63 s for three
origins, the same CRPS), as the mean-field guide covers the effects either way."""
COMMON_LEVELS = ("auto", "on", "off")
"""Whether the panel model adds common levels and trends shared by each group's series
(``Layout.common``). ``auto`` turns them on for panels of more than ``NUTS_MAX_SERIES``
series (those ``engine: auto`` fits by SVI; the rule reads the panel, not the engine),
not mini-batched, with a Normal or Student-t likelihood.
On tourism (304 series, three origins) they took scaled CRPS from 0.1355 to 0.127
(benchmarks/forecast.py). Below that size ``auto`` keeps each series' initial states
integrated out in closed form, which NUTS's geometry on small panels relies on; the
common states need them sampled."""
QUANTILES = (0.025, 0.1, 0.25, 0.5, 0.75, 0.9, 0.975)
PATH_DRAWS = 1000
"""Forecast paths are drawn from at most this many posterior draws (evenly thinned)."""
CHUNK = 100
"""Posterior draws run forward at once (bounds memory)."""
TIME_BUCKET = 16
"""The time axis is padded to a multiple of this many periods (masked out, so
nothing changes but the program's shape): rolling origins and refits within one
bucket reuse one compiled fit and forecast, at the cost of at most 15 idle steps
of the filter."""
SERIES_PARAMETERS = ("alpha", "beta", "gamma", "phi", "sigma")
FORWARD_SITES = ("paths", *SERIES_PARAMETERS)


def thinned(chains: int, per_chain: int, most: int) -> np.ndarray:
    """Indices into ``chains x per_chain`` draws (chain after chain) keeping at most
    ``most``: the same evenly spaced positions in every chain, so what is kept is still
    ``chains`` chains of equal length."""
    keep = max(1, min(per_chain, most // chains))
    within = np.linspace(0, per_chain - 1, keep).round().astype(int)
    return (np.arange(chains)[:, None] * per_chain + within[None, :]).ravel()


_FORWARD: OrderedDict[tuple, Any] = OrderedDict()
FORWARDS_KEPT = 8
"""How many compiled forward functions a process keeps (least recently used dropped first)."""


def forward(constants: Mapping[str, Any]) -> Any:
    """The forecast model run forward from a chunk of draws (``numpyro.infer.Predictive``)
    as one jitted function of ``(key, draws, arrays)``, made once per process for the
    same constants, so panels of one padded shape share its compilation. Draws go one
    after another inside it: on CPU that measured about twice as fast as vectorising
    over them."""
    import jax
    from numpyro.infer import Predictive

    from wager.kernel.nuts import _Bound, _constants_key

    key = _constants_key(constants)
    if key not in _FORWARD:
        model = _Bound(forecast_model, dict(constants))

        def run(key: Any, draws: Mapping[str, Any], arrays: Mapping[str, Any]) -> dict[str, Any]:
            return Predictive(model, posterior_samples=draws, return_sites=list(FORWARD_SITES), parallel=False)(key, **arrays)

        _FORWARD[key] = jax.jit(run)
        while len(_FORWARD) > FORWARDS_KEPT:
            _FORWARD.popitem(last=False)
    _FORWARD.move_to_end(key)
    return _FORWARD[key]


@dataclass(frozen=True)
class Newsvendor:
    under: float
    over: float


@dataclass(frozen=True)
class CapacityPolicy:
    level: float
    unit_cost: float = 0.0
    shortage_cost: float = 0.0


@dataclass
class ForecastProblem:
    """Everything the shared path needs from a forecast, built from a ``Panel``."""

    panel: Panel
    likelihood: str = "normal"
    transform: str = "auto"
    prior_overrides: Mapping[str, Prior] = field(default_factory=dict)
    newsvendor: Newsvendor | None = None
    capacity: CapacityPolicy | None = None
    seed: int = 0
    batch: int | None = None  # SVI series per step; None: BATCH when over BATCH_ABOVE series, else all
    harmonics: int = 0  # Fourier harmonics of the seasonal cycle; 0: seasonal states (wager.forecast.model)
    engine: str = "auto"  # the engine asked for: NUTS gets the group effects integrated out (MARGINAL_EFFECTS_MAX)
    sample_effects: bool = False  # sample the group effects even where they could be integrated out (to compare the forms)
    common_levels: str = "auto"  # auto | on | off: common levels and trends per group (COMMON_LEVELS)

    def __post_init__(self) -> None:
        if self.likelihood not in LIKELIHOODS:
            from wager.errors import SpecError

            raise SpecError("likelihood", f"must be one of {', '.join(LIKELIHOODS)}; got {self.likelihood!r}")
        check_seasonality(self.harmonics, self.panel.period)
        if self.common_levels not in COMMON_LEVELS:
            from wager.errors import SpecError

            raise SpecError("common_levels", f"must be one of {', '.join(COMMON_LEVELS)}; got {self.common_levels!r}")
        self.common  # a contradiction (counts, mini-batches) is an error now, before anything runs
        counts = self.likelihood in ("negbin", "zinb")
        self.transform, self.transform_reason = choose_transform(self.panel.values, self.transform, counts)
        self.standard  # values too large for the model's scale are an error now, too

    @cached_property
    def layout(self) -> Layout:
        codes, levels = self.panel.group_index()
        layout = Layout(
            period=self.panel.period,
            groups=self.panel.groups,
            levels=levels,
            likelihood=self.likelihood,
            transform=self.transform,
            regressors=self.panel.regressors,
            harmonics=self.harmonics,
        )
        common, _ = self.common
        nuts = self.engine == "nuts" or (self.engine == "auto" and self.vi_reason is None)
        marginal = nuts and not common and not self.sample_effects and self.likelihood == "normal" and self.svi_batch is None and layout.n_effects <= MARGINAL_EFFECTS_MAX
        return replace(layout, marginal_effects=marginal, common=common)

    @cached_property
    def common(self) -> tuple[bool, str]:
        """Whether the model has common levels and trends per group, and why (``COMMON_LEVELS``)."""
        from wager.errors import SpecError

        n = self.panel.n_series
        counts = self.likelihood in ("negbin", "zinb")
        batched = self._batch_size is not None
        if self.common_levels == "off":
            return False, "off, as asked"
        if self.common_levels == "on":
            if counts:
                raise SpecError("common_levels", f"on is for the normal and student_t likelihoods; the {self.likelihood} likelihood has no common levels (set common_levels: off)")
            if self.batch is not None and self.batch < n:
                raise SpecError("common_levels", "on needs every series in each SVI step (the common levels tie them together); remove batch or set common_levels: off")
            return True, "on, as asked"
        if counts:
            return False, f"off: the {self.likelihood} likelihood has none"
        if n <= NUTS_MAX_SERIES:
            return False, f"off: {n} series (<= {NUTS_MAX_SERIES}), whose initial states stay integrated out in closed form, as NUTS on small panels needs"
        if batched:
            return False, f"off: {n} series are fitted in mini-batches of {self._batch_size}, which keep the series independent"
        return True, f"on: {n} series (> {NUTS_MAX_SERIES}) share levels and trends with their groups"

    @property
    def vi_reason(self) -> str | None:
        """Why ``engine="auto"`` runs SVI on this panel, or ``None`` where it runs NUTS."""
        n = self.panel.n_series
        if n <= NUTS_MAX_SERIES:
            return None
        return f"{n} series (> {NUTS_MAX_SERIES}): NUTS over this many series' parameters takes too long, so SVI, gated by PSIS Pareto-k"

    @cached_property
    def _batch_size(self) -> int | None:
        """Series per SVI step by the panel's size and ``batch`` alone, or ``None`` for the whole panel."""
        n = self.panel.n_series
        batch = self.batch if self.batch is not None else (BATCH if n > BATCH_ABOVE else None)
        return batch if batch is not None and batch < n else None

    @cached_property
    def svi_batch(self) -> int | None:
        """Series per SVI step, or ``None`` for the whole panel (always with common levels,
        which tie every series' filter to the others')."""
        return None if self.common_levels == "on" else self._batch_size

    @cached_property
    def standard(self) -> tuple[float, float]:
        """The centre and scale of the model's standardised scale: the transformed
        data's median and sd (counts: the log mean count, and 1). ``SpecError`` where
        either is not a finite number: values near the largest float (1e300) overflow
        their sum or their squares, and the model could not be put on a scale."""
        from wager.errors import SpecError

        observed = self.panel.values[self.panel.observed]
        with np.errstate(over="ignore", invalid="ignore"):  # an overflow is refused below, not warned of
            if self.likelihood in ("negbin", "zinb"):
                center, scale = float(np.log(max(observed.mean(), 1e-3))), 1.0
            else:
                t = transform(observed, self.transform)
                center, scale = float(np.median(t)), float(np.std(t)) or 1.0
        if not (np.isfinite(center) and np.isfinite(scale)):
            raise SpecError(
                "data.value",
                f"column {self.panel.value!r} holds values too large to model on the {self.transform} scale "
                f"(their {'mean' if not np.isfinite(center) else 'spread'} is not a finite number); "
                "rescale the column (in thousands or millions, say)",
            )
        return center, scale

    @cached_property
    def priors(self) -> dict[str, Prior]:
        return with_overrides(default_priors(self.layout), self.prior_overrides)

    def arrays(self) -> dict[str, Any]:
        """The model's keyword data, the time axis padded to a multiple of ``TIME_BUCKET``."""
        values, mask = self.panel.values, self.panel.observed
        layout = self.layout
        center, scale = self.standard
        if layout.counts:
            z = np.where(mask, values, 0.0)
        else:
            z = np.where(mask, (transform(np.where(mask, values, 1.0), self.transform) - center) / scale, 0.0)
        n_series, n_time = z.shape
        padding = -n_time % TIME_BUCKET
        data: dict[str, Any] = {
            "z": np.pad(z, ((0, 0), (0, padding))),
            "mask": np.pad(mask.astype(float), ((0, 0), (0, padding))),
            "groups": self.panel.group_index()[0],
            "standard": np.array([center, scale]),
            "end": np.array(n_time),
            "layout": layout,
            "priors": self.priors,
        }
        if self.panel.regressors:  # the future's values follow the data's last period; padding after them
            data["x"] = np.pad(self.panel.x, ((0, 0), (0, padding), (0, 0)))
        return data

    @cached_property
    def model(self) -> Model:
        data = self.arrays()
        if self.svi_batch is not None:
            data["batch"] = int(self.svi_batch)  # NUTS refuses a subsampled plate: mini-batching is for SVI only
        return Model(
            # version 2: zero-sum effects on the smoothing rates and the noise scale; 3: common levels;
            # 4: NUTS chains start at prior draws (``nuts_init``), so runs of 3 no longer regenerate bit for bit
            name=f"forecast:{self.likelihood}", numpyro_model=forecast_model, data=data, version="4",
            vi_reason=self.vi_reason, exact_overrides={"batch": None} if "batch" in data else {},
            nuts_init=self.nuts_init,
        )

    @property
    def nuts_init(self) -> str:
        """Where NUTS chains start (``Model.nuts_init``). A panel ``auto`` hands to SVI, NUTS
        asked for anyway: an ADVI warm start, since from a unit mass matrix warmup runs at the
        tree-depth limit. Otherwise a prior draw each: a uniform start on (-2, 2) puts the trend,
        of prior sd 0.1, at up to two panel sds a period, where simulated panels' likelihoods
        were as small as exp(-1e14), and one chain in ten shrank its step size to nothing
        (docs/benchmarks.md). Except with common levels, whose NUTS fits keep the uniform start:
        with prior starts their SBC (tests/test_forecast_sbc.py, seed 1, 50 fits at target 0.8,
        most of them divergent) failed on a series' initial trend, with uniform starts it passes."""
        if self.vi_reason is not None:
            return "vi"
        return "uniform" if self.layout.common else "prior"

    # --- validation (``wager validate``) ------------------------------------------

    def simulate(self, seed: int) -> Any:
        """A panel from the model's prior predictive and its true parameters, for SBC
        (``wager.forecast.prior_predictive``: the model's own forecast mode, run from an empty history)."""
        from wager.forecast.prior_predictive import simulate

        return simulate(self, seed)

    def prior_predictive(self, seed: int = 0) -> tuple[str, np.ndarray, np.ndarray]:
        """The panel's observed values on the model's scale and the same entries of panels
        simulated from the priors alone (``wager.forecast.prior_predictive.prior_panels``),
        named by the value column and that scale, for ``wager validate``'s prior predictive check."""
        from wager.forecast.prior_predictive import prior_panels

        return (f"{self.panel.value} on the model's scale", *prior_panels(self, seed))

    def predictive_check(self, config: Any, seed: int = 0, progress: Any = None, origins: int = 4) -> Any:
        """Leave-future-out PIT of one-step forecasts at the last ``origins`` periods (exact refits)."""
        from wager.forecast.validation import lfo_pit

        return lfo_pit(self, config, origins=origins, seed=seed, progress=progress)

    # --- forecast distributions ------------------------------------------------

    @cached_property
    def _forward(self) -> tuple[dict[str, Any], Any]:
        """The model's array data, and the model run forward from a chunk of draws
        (``forward``)."""
        from wager.kernel.nuts import split_data

        arrays, constants = split_data(self.arrays())
        return arrays, forward({**constants, "horizon": self.panel.horizon})


    def paths(self, posterior: Posterior, max_draws: int = PATH_DRAWS, seed: int | None = None) -> np.ndarray:
        """Sample paths ``(draws, series, horizon)`` on the data's scale."""
        return self.forecast(posterior, max_draws, seed)["paths"]

    def forecast(self, posterior: Posterior, max_draws: int = PATH_DRAWS, seed: int | None = None) -> dict[str, np.ndarray]:
        """The model run forward from (at most ``max_draws``, evenly thinned)
        posterior draws: ``paths`` ``(draws, series, horizon)`` on the data's
        scale, and each series' ``alpha``, ``beta``, ``gamma``, ``phi`` and
        ``sigma`` ``(draws, series)``."""
        import jax

        pick = thinned(posterior.chains, posterior.draws_per_chain, max_draws)
        flat = {k: posterior.flat(k)[pick] for k in posterior.draws}
        arrays, run = self._forward
        key = jax.random.PRNGKey(self.seed if seed is None else seed)
        parts: dict[str, list[np.ndarray]] = {s: [] for s in FORWARD_SITES}
        for start in range(0, len(pick), CHUNK):
            # every chunk CHUNK draws long (the last padded by repeats, then cut), so one compilation serves all
            take = np.minimum(np.arange(start, start + CHUNK), len(pick) - 1)
            out = run(jax.random.fold_in(key, start), {k: v[take] for k, v in flat.items()}, arrays)
            keep = min(CHUNK, len(pick) - start)
            for s in FORWARD_SITES:
                parts[s].append(np.asarray(out[s])[:keep])
        result = {s: np.concatenate(v) for s, v in parts.items()}
        if not np.isfinite(result["paths"]).all():
            raise FloatingPointError("a forecast path is not finite")
        return result

    def aggregates(self, paths: np.ndarray) -> dict[str, tuple[list[str], np.ndarray]]:
        """Sums of paths up the hierarchy: per level of each grouping column, and the total.
        Each value is ``(labels, paths (draws, levels, horizon))``."""
        out = {"total": (["total"], paths.sum(axis=1, keepdims=True))}
        for column in self.panel.groups:
            labels = self.panel.keys[column].to_numpy()
            names = sorted(set(labels))
            out[column] = (names, np.stack([paths[:, labels == n].sum(axis=1) for n in names], axis=1))
        return out

    # --- the decision ---------------------------------------------------------

    def decide(self, posterior: Posterior) -> Outcome:
        paths = self.paths(posterior)
        return self.outcome(paths, chains=None if posterior.independent else posterior.chains)

    def outcome(self, paths: np.ndarray, chains: int | None = None) -> Outcome:
        """The forecast summary and decisions from ``paths``; ``chains``: the paths come
        from that many Markov chains, chain after chain (``thinned``), and Monte Carlo
        errors go through their effective sample size (``None``: independent draws)."""
        panel = self.panel

        def se(x: np.ndarray, p: float) -> np.ndarray:
            return quantile_se(x, p) if chains is None else chain_quantile_se(x, p, chains)

        labels = panel.labels()
        horizon = [f"{t:%Y-%m-%d}" for t in panel.future]
        q = np.quantile(paths, QUANTILES, axis=0)  # (quantiles, series, horizon)
        se_median = se(paths, 0.5)
        history = panel.observed.sum(axis=1)
        recent = panel.values[:, -int(np.ceil(3 * panel.period)) :]  # the last three seasons, for fan charts
        series = []
        for i, label in enumerate(labels):
            series.append({
                "series": dict(zip(panel.groups, panel.keys.iloc[i].tolist())),
                "observations": int(history[i]),
                "history": [None if np.isnan(v) else float(v) for v in recent[i]],
                "quantiles": {f"{p:g}": q[j, i].tolist() for j, p in enumerate(QUANTILES)},
            })
        summary: dict[str, Any] = {
            "horizon": horizon,
            "frequency": panel.freq,
            "period": panel.period,
            "seasonality": self.layout.seasonality(),
            "group_effects": "integrated out" if self.layout.marginal_effects else "sampled",
            "common_levels": self.common[1],
            "likelihood": self.likelihood,
            "transform": self.transform,
            "transform_reason": self.transform_reason,
            "forecast_draws": int(paths.shape[0]),
            "value": panel.value,
            "history_total": np.nansum(recent, axis=0).tolist(),
            "series": series,
        }
        aggregates = self.aggregates(paths)
        summary["aggregates"] = {
            name: [
                {"label": lab, "quantiles": {f"{p:g}": np.quantile(agg[:, j], p, axis=0).tolist() for p in QUANTILES}}
                for j, lab in enumerate(names)
            ]
            for name, (names, agg) in aggregates.items()
        }
        lines = [
            f"Forecast of {panel.n_series} series, {panel.horizon} periods ahead ({horizon[0]} to {horizon[-1]}), "
            f"{paths.shape[0]} sample paths each; {self.transform_reason}; seasonality: {self.layout.seasonality()}.",
        ]
        first = aggregates["total"][1][:, 0, 0]  # the total in the first forecast period, per draw
        (lo, lo_se), (med, med_se), (hi, hi_se) = ((float(np.quantile(first, p)), float(se(first, p))) for p in (0.1, 0.5, 0.9))
        lines.append(
            f"Total {panel.value} in the first period: {fmt(med, med_se)} "
            f"(80% interval {fmt(lo, lo_se)} to {fmt(hi, hi_se)})."
        )
        cold = np.flatnonzero(history == 0)
        if len(cold):
            lines.append(f"{len(cold)} series without history {'gets' if len(cold) == 1 else 'get'} the forecast their place in the hierarchy implies: {', '.join(labels[i] for i in cold[:5])}.")
        action = "forecast"
        if self.newsvendor is not None:
            orders = newsvendor(paths, self.newsvendor.under, self.newsvendor.over, chains)
            summary["newsvendor"] = {
                "under": self.newsvendor.under,
                "over": self.newsvendor.over,
                "critical_fractile": orders.fractile,
                "orders": [
                    {"series": labels[i], "quantity": orders.quantity[i].tolist(), "expected_cost": orders.expected_cost[i].tolist(), "expected_cost_se": orders.cost_se[i].tolist()}
                    for i in range(panel.n_series)
                ],
                "total_expected_cost": float(orders.expected_cost.sum()),
            }
            lines.append(
                f"Order the {orders.fractile:.3g} quantile of each series' demand (under-stock {self.newsvendor.under:g}, "
                f"over-stock {self.newsvendor.over:g} per unit); expected cost over all series and periods "
                f"{fmt(float(orders.expected_cost.sum()), float(np.sqrt((orders.cost_se**2).sum())))}."
            )
            action = "order"
        if self.capacity is not None:
            cap = capacity(paths, self.capacity.level, self.capacity.unit_cost, self.capacity.shortage_cost, chains)
            summary["capacity"] = {
                "level": cap.level,
                "unit_cost": self.capacity.unit_cost,
                "shortage_cost": self.capacity.shortage_cost,
                "per_series": [
                    {"series": labels[i], "capacity": cap.capacity[i].tolist(), "expected_cost": cap.expected_cost[i].tolist(),
                     "expected_shortfall": cap.expected_shortfall[i].tolist(), "exceed_probability": cap.exceed_probability[i].tolist()}
                    for i in range(panel.n_series)
                ],
            }
            lines.append(f"Capacity at the {cap.level:g} quantile of each series' demand; expected cost {fmt(float(cap.expected_cost.sum()), float(np.sqrt((cap.cost_se**2).sum())))}.")
            if action == "forecast":
                action = "provision"
        summary["median_se_max"] = float(se_median.max())
        return Outcome(action=action, summary=summary, lines=lines)

