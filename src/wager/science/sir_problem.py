"""The sir task: enough beds for an outbreak's peak?

The SIR model (``wager.science.sir``) is fitted to the daily counts of people ill.
For each posterior draw, ``per_draw`` paths of daily counts are simulated from the
negative binomial around the fitted curve ``I(t)`` on days ``1..horizon``; the peak
bed need of a path is its largest daily count. The decision: open extra beds when
``P(peak > capacity) > max_risk``, else hold. The beds that bring the risk down to
``max_risk`` (the ``1 - max_risk`` quantile of the peak) are reported either way:
what a public-health officer plans a ward with.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from wager.errors import SpecError
from wager.kernel.diagnostics import chain_quantile_se, mcse_mean, quantile_se
from wager.kernel.digits import fmt, fmt_percent
from wager.kernel.inference import Model
from wager.kernel.outcome import Outcome
from wager.kernel.posterior import Posterior
from wager.kernel.priors import Prior, with_overrides
from wager.kernel.seeds import derive_seed
from wager.science import sir
from wager.science.problem import interval
from wager.science.spec import SirSpec
from wager.tables import read_table, resolve

QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)
"""The fitted curve's bands in the report: 50% and 90%."""


@dataclass
class SirProblem:
    outbreak: sir.Outbreak
    capacity: int
    max_risk: float = 0.1
    horizon: int = 14
    per_draw: int = 10
    prior_overrides: Mapping[str, Prior] = field(default_factory=dict)
    source: str = "outbreak"

    @cached_property
    def priors(self) -> dict[str, Prior]:
        return with_overrides(sir.default_priors(), self.prior_overrides)

    @cached_property
    def model(self) -> Model:
        return sir.build_model(self.outbreak, self.priors, self.horizon)

    def peaks(self, posterior: Posterior) -> tuple[np.ndarray, np.ndarray]:
        """Simulated daily counts ``(chains, draws, per_draw, horizon)`` and their peaks
        ``(chains, draws, per_draw)``, from a stream derived from the run's seed."""
        rng = np.random.default_rng(derive_seed(posterior.seed, 1))
        mean = np.asarray(posterior["infected"], dtype=float)[:, :, None, :]
        phi = (1.0 / np.asarray(posterior["phi_inv"], dtype=float))[:, :, None, None]
        shape = mean.shape[:2] + (self.per_draw, mean.shape[-1])
        paths = rng.negative_binomial(np.broadcast_to(phi, shape), np.broadcast_to(phi / (phi + mean), shape))
        return paths, paths.max(axis=-1)

    def decide(self, posterior: Posterior) -> Outcome:
        paths, peak = self.peaks(posterior)
        over = (peak > self.capacity).mean(axis=-1)  # (chains, draws)
        risk = float(over.mean())
        risk_se = mcse_mean(over, independent=posterior.independent)
        flat = peak.reshape(-1)
        beds = float(np.quantile(flat, 1 - self.max_risk))
        q = 1 - self.max_risk
        beds_se = float(quantile_se(flat, q) if posterior.independent else chain_quantile_se(flat, q, posterior.chains))
        act = risk > self.max_risk
        action = "open extra beds" if act else "hold"
        infected = np.asarray(posterior["infected"], dtype=float).reshape(-1, self.horizon)
        days = np.arange(1, self.horizon + 1)
        peak_day = days[np.argmax(infected, axis=1)]
        r0, recovery = posterior.flat("R0"), posterior.flat("recovery_time")
        r0_se = mcse_mean(posterior["R0"], posterior.independent)
        rt_se = mcse_mean(posterior["recovery_time"], posterior.independent)
        counted = paths.reshape(-1, self.horizon)
        summary: dict[str, Any] = {
            "task": "sir",
            "why": (
                f"the chance that the peak bed need exceeds the {self.capacity} beds is "
                f"{fmt_percent(risk, risk_se)}, {'above' if act else 'within'} the {fmt_percent(self.max_risk)} accepted"
            ),
            "source": self.source,
            "population": self.outbreak.population,
            "capacity": self.capacity,
            "max_risk": self.max_risk,
            "risk": risk,
            "risk_se": risk_se,
            "beds_needed": beds,
            "beds_needed_se": beds_se,
            "peak": {"mean": float(flat.mean()), "interval_90": interval(flat, 0.9), "day_median": float(np.median(peak_day)),
                     "day_interval_90": interval(peak_day, 0.9)},
            "R0": {"mean": float(r0.mean()), "mean_se": r0_se, "sd": float(r0.std(ddof=1)), "interval_90": interval(r0, 0.9)},
            "recovery_time": {"mean": float(recovery.mean()), "mean_se": rt_se, "sd": float(recovery.std(ddof=1)),
                              "interval_90": interval(recovery, 0.9), "units": "days"},
            "curve": {
                "days": days.tolist(),
                "infected": {f"{q:g}": row.tolist() for q, row in zip(QUANTILES, np.quantile(infected, QUANTILES, axis=0))},
                "predictive": {f"{q:g}": row.tolist() for q, row in zip((0.05, 0.95), np.quantile(counted, (0.05, 0.95), axis=0))},
                "observed_days": self.outbreak.days.tolist(),
                "observed": self.outbreak.counts.tolist(),
            },
            "paths": int(flat.size),
        }
        lo, hi = summary["R0"]["interval_90"]
        lines = [
            f"{self.outbreak.label}: {self.outbreak.counts.size} daily counts in a population of {self.outbreak.population:,.0f}; "
            f"R0 = beta / gamma is {fmt(float(r0.mean()), r0_se)} (90% interval {lo:.2f} to {hi:.2f}), people stay ill "
            f"{fmt(float(recovery.mean()), rt_se)} days on average.",
            f"Peak bed need up to day {self.horizon}: {flat.mean():.0f} on average (90% interval {summary['peak']['interval_90'][0]:.0f} "
            f"to {summary['peak']['interval_90'][1]:.0f}), around day {np.median(peak_day):.0f}.",
            f"P(peak > {self.capacity} beds) = {fmt_percent(risk, risk_se)} (MC error {fmt_percent(risk_se)}); accepted risk "
            f"{fmt_percent(self.max_risk)}; {beds:.0f} beds keep the risk there.",
        ]
        warnings = []
        if abs(risk - self.max_risk) < 2 * risk_se:
            warnings.append(
                f"the risk {fmt_percent(risk, risk_se)} is within two Monte Carlo errors of the accepted {fmt_percent(self.max_risk)}: "
                "more draws would settle the decision"
            )
        summary["lines"] = lines
        return Outcome(action=action, summary=summary, lines=lines, warnings=warnings)


def prepare(spec: SirSpec, base_dir: Path | None = None, table: Any = None) -> SirProblem:
    """The outbreak (shipped, a file, or ``table`` passed in), checked, and the horizon."""
    source = spec.data
    if source.sample == "boarding_school" and table is None:
        outbreak = sir.boarding_school()
        where = "the 1978 boarding-school outbreak (BMJ, 4 March 1978)"
    else:
        if table is None:
            table = read_table(resolve(source.path or "", base_dir), "data.path")
        for column in (source.day, source.count):
            if column not in table.columns:
                raise SpecError("data.path", f"no column {column!r}; columns: {', '.join(map(str, table.columns))}")
        if source.population is None:
            raise SpecError("data.population", "is required with a table of counts: the number of people at risk (> 0)")
        population = source.population
        try:
            outbreak = sir.check_outbreak(table[source.day], table[source.count], population, source.initial_infected,
                                          label=str(source.path or "outbreak"))
        except SpecError as exc:
            column = {"days": source.day, "counts": source.count}.get(exc.field)
            field = "data.path" if column else f"data.{exc.field}"
            raise SpecError(field, f"column {column!r} {exc.rule}" if column else exc.rule) from None
        where = str(source.path)
    if source.through_day is not None:
        keep = outbreak.days <= source.through_day
        if not keep.any():
            raise SpecError("data.through_day", f"keeps no counts: the first is on day {outbreak.days[0]:g}")
        outbreak = sir.Outbreak(outbreak.days[keep], outbreak.counts[keep], outbreak.population, outbreak.initial_infected,
                                f"{outbreak.label}, through day {source.through_day:g}")
    last = int(np.ceil(outbreak.days[-1]))
    horizon = spec.horizon if spec.horizon is not None else last
    if horizon < last:
        raise SpecError("horizon", f"must reach the last count's day ({last}); got {horizon}")
    return SirProblem(
        outbreak=outbreak, capacity=spec.decision.capacity, max_risk=spec.decision.max_risk, horizon=horizon,
        per_draw=spec.per_draw, prior_overrides=dict(spec.priors), source=where,
    )
