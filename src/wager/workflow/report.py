"""Reports from a run record: plain language, JSON, and one self-contained HTML file.

Every report reads only the record (``run_id``, ``created_at``, ``manifest``,
``result`` and, for the HTML plots, ``netcdf()``), so a report can be written
for any run in the registry, long after it ran, without running anything.

Numbers people read carry only the digits their Monte Carlo error supports
(``wager.kernel.digits``): an exact (closed-form) expected loss shows three
significant digits, a NUTS one shows the decimal place of twice its MCSE.

``plain_report``  lines of prose for a non-statistician, the decision first;
``json_report``   the same facts for machines (JSON-safe: no NaN);
``html_report``   one HTML file with the plots inline (``wager.workflow.report_html``).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

from wager.kernel.digits import decimals_for, fmt, fmt_percent
from wager.workflow.record import jsonable

COUNTED = ("conversions per visitor", "events per visitor")
"""Units small enough per visitor that people read them better per 100, 1,000 ... visitors."""

MAX_VARIABLES = 6
"""Posterior quantities a report-only run (no actions) describes in its plain lines."""

GATE_WORDS = {
    "r_hat": "R-hat",
    "ess_bulk": "bulk effective sample size",
    "ess_tail": "tail effective sample size",
    "divergences": "divergent transitions",
    "e_bfmi": "E-BFMI",
    "tree_depth": "transitions at the maximum tree depth",
    "pareto_k": "Pareto k",
    "mcse": "Monte Carlo error",
}


@dataclass(frozen=True)
class ActionRow:
    """One action of the decision: its expected loss and chance of being best, with MCSEs (0 when exact)."""

    action: str
    expected_loss: float
    expected_loss_mcse: float
    prob_best: float | None
    prob_best_mcse: float
    chosen: bool


# --- numbers as people read them ---------------------------------------------------


def percent(p: float, se: float = 0.0) -> str:
    """A probability as a percentage; never rounds a probability below 1 up to "100%"."""
    text = fmt_percent(p, se)
    shown = float(text.rstrip("%"))
    if shown >= 100 and p < 1:
        return "> " + fmt_percent(1 - 10 ** -(_places(text) + 2), 0.0, _places(text))
    if shown <= 0 and p > 0:
        return "< " + fmt_percent(10 ** -(_places(text) + 2), 0.0, _places(text))
    return text


def _places(text: str) -> int:
    return len(text.rstrip("%").partition(".")[2])


def number(value: float | None, se: float = 0.0) -> str:
    """``value`` with the digits ``se`` supports. Exact values below 1e-5 read in scientific
    notation (3 significant digits), and those below 1e-12 read "0"."""
    if value is None or not math.isfinite(value):
        return "n/a"
    if se <= 0 and abs(value) < 1e-12:
        return "0"
    if se <= 0 and abs(value) < 1e-5:
        return f"{value:.2e}"
    return fmt(value, se)


def signed(value: float, decimals: int) -> str:
    return f"{value:+.{decimals}f}"


def interval_decimals(values: list[float], se: float) -> int:
    """Decimals for a median and its interval: what ``se`` supports, else 3 significant
    digits of the largest of them (an exact interval)."""
    if se > 0:
        return decimals_for(se)
    return decimals_for(0.0, max((abs(v) for v in values), default=0.0))


def per_visitors(value: float, se: float, units: str) -> str:
    """``9.29 per 10,000 visitors`` for a small per-visitor quantity, else ``""``."""
    if units not in COUNTED or not (0 < abs(value) < 0.1):
        return ""
    scale = 100
    while abs(value) * scale < 1 and scale < 10**8:
        scale *= 10
    return f"{fmt(value * scale, se * scale)} per {scale:,} visitors"


# --- what the record says ----------------------------------------------------------


def sensitivity_of(record: Any) -> dict[str, Any] | None:
    """The prior-sensitivity report, from the result (newer runs) or the manifest."""
    value = record.result.get("sensitivity", record.manifest.get("sensitivity"))
    return value if isinstance(value, Mapping) else None


def plan_of(record: Any) -> tuple[bool, dict[str, Any] | None]:
    """(whether the run checked for a plan at all, the plan check or None)."""
    for where in (record.result, record.manifest):
        if "plan" in where:
            value = where["plan"]
            return True, value if isinstance(value, Mapping) else None
    return False, None


def action_rows(result: Mapping[str, Any]) -> list[ActionRow]:
    """The decision's actions, in the order the spec declares them."""
    if result.get("domain") == "ab" and "arms" in result:
        control = result.get("control")
        chosen = _ab_chosen_arm(result)
        rows = []
        for name, arm in result["arms"].items():
            rows.append(
                ActionRow(
                    action=("keep " if name == control else "ship ") + name,
                    expected_loss=arm["expected_loss"],
                    expected_loss_mcse=arm.get("expected_loss_mcse", 0.0),
                    prob_best=arm.get("prob_best"),
                    prob_best_mcse=arm.get("prob_best_mcse", 0.0),
                    chosen=name == chosen,
                )
            )
        return rows
    decision = result.get("decision")
    if isinstance(decision, Mapping) and decision.get("actions"):
        return [
            ActionRow(
                action=a["name"],
                expected_loss=a["expected_loss"],
                expected_loss_mcse=a.get("expected_loss_mcse", 0.0),
                prob_best=a.get("prob_best"),
                prob_best_mcse=a.get("prob_best_mcse", 0.0),
                chosen=result.get("status") == "decided" and a["name"] == result.get("action"),
            )
            for a in decision["actions"]
        ]
    return []


def _ab_chosen_arm(result: Mapping[str, Any]) -> str | None:
    if result.get("status") != "decided" or result.get("verdict") == "keep_testing":
        return None
    return result.get("arm")


def loss_units(record: Any) -> str:
    """The units expected losses are in: the A/B metric's, or those the decision declares."""
    result = record.result
    if result.get("units"):
        return str(result["units"])
    for decision in (result.get("decision"), record.manifest.get("spec", {}).get("decision")):
        if isinstance(decision, Mapping) and decision.get("units"):
            return str(decision["units"])
    return "the units of the loss expressions"


def credible_mass(record: Any) -> float:
    """The credible mass of the run's intervals: the A/B policy's, or the custom domain's 94%."""
    result = record.result
    if "interval_mass" in result:
        return float(result["interval_mass"])
    if result.get("domain") == "model":
        from wager.custom.domain import INTERVAL

        return round(INTERVAL[1] - INTERVAL[0], 12)
    decision = record.manifest.get("spec", {}).get("decision") or {}
    return float(decision.get("credible_mass", 0.95)) if isinstance(decision, Mapping) else 0.95


def margin_phrase(result: Mapping[str, Any]) -> str:
    """``0.005 conversions per visitor`` or ``2.0% of current``."""
    m = float(result.get("min_lift", 0.0))
    if result.get("lift") == "relative":
        return f"{m:.1%} of {result.get('control')}"
    return f"{m:.4g} {result.get('units', '')}".strip()


def lift_se(result: Mapping[str, Any], arm: str) -> tuple[float, float]:
    """Monte Carlo errors of an arm's (absolute, relative) lift over the control: the
    arms' mean MCSEs combined (0 for an exact run)."""
    arms, control = result["arms"], result["control"]
    se = math.hypot(arms[arm].get("mean_mcse", 0.0), arms[control].get("mean_mcse", 0.0))
    base = abs(arms[control]["mean"])
    return se, (se / base if base > 0 else 0.0)


def decision_sentence(record: Any) -> str:
    """The one sentence the report leads with."""
    result = record.result
    if result.get("status") != "decided":
        return "No action is recommended: " + blocked_reason(result)
    action = result.get("action")
    why = result.get("why")
    if result.get("domain") == "ab" or why:
        return f"Decision: {action}" + (f" — {why}." if why else ".")
    decision = result.get("decision")
    if not isinstance(decision, Mapping):
        return f"Decision: {action} — the spec declares no actions, so this run reports the posterior only."
    return f"Decision: {action} — the action with the lowest expected loss."


def blocked_reason(result: Mapping[str, Any]) -> str:
    """Why a blocked run recommends nothing, in one clause."""
    checks = result.get("gates", {}).get("checks", [])
    failed = [g for g in checks if not g.get("passed")]
    if failed:
        return f"the posterior failed {len(failed)} of {len(checks)} convergence checks, so its numbers cannot be trusted to decide."
    if result.get("warnings"):
        return "a check on the data failed (below), so no posterior can be trusted to decide."
    blocked = ", ".join(result.get("blocked_by") or []) or "a failed check"
    return f"the run was blocked by {blocked}."


def blocked_details(result: Mapping[str, Any]) -> list[str]:
    """The failed checks, one sentence each, with their values and thresholds, and what to
    do about each where the run recorded it (``remedy``; runs before it have none)."""
    failed = [g for g in result.get("gates", {}).get("checks", []) if not g.get("passed")]
    lines = [f"Failed: {gate_phrase(g)}." + (f" What to do: {g['remedy']}." if g.get("remedy") else "") for g in failed]
    return lines + [str(w) for w in result.get("warnings") or []]


def gate_phrase(gate: Mapping[str, Any]) -> str:
    """``R-hat 1.193 (tau), must be < 1.01``."""
    name = GATE_WORDS.get(gate["name"], gate["name"])
    where = f" ({gate['where']})" if gate.get("where") else ""
    return f"{name} {diagnostic(gate['value'])}{where}, must be {gate['rule']} {gate['threshold']:g}"


def diagnostic(value: float | None) -> str:
    """A diagnostic (R-hat, ESS, a count): four significant digits, counts as integers."""
    if value is None or not math.isfinite(value):
        return "n/a"
    if float(value).is_integer():
        return str(int(value))
    return fmt(value, 0.0, 4)


def gate_verdict(result: Mapping[str, Any]) -> str:
    gates = result.get("gates") or {}
    if not gates:
        return ""
    if not gates.get("applicable", True):
        note = gates.get("note") or "the posterior is exact"
        return f"Convergence checks do not apply: {note}."
    checks = gates.get("checks", [])
    if gates.get("passed"):
        return f"All {len(checks)} convergence checks passed ({', '.join(GATE_WORDS.get(g['name'], g['name']) for g in checks)})."
    failed = [g["name"] for g in checks if not g.get("passed")]
    return f"Convergence checks FAILED: {', '.join(GATE_WORDS.get(n, n) for n in failed)}."


# --- the plain-language report ----------------------------------------------------


def plain_report(record: Any) -> list[str]:
    """Lines of prose for a non-statistician: the decision, how probable it is that it is
    best, each action's expected loss in the user's units, the credible interval, what
    would flip it, prior sensitivity, the gate verdict and the plan check."""
    result = record.result
    lines = [decision_sentence(record)]
    question = (result.get("decision") or {}).get("question") if isinstance(result.get("decision"), Mapping) else None
    if question:
        lines.append(f"The question: {question}")
    if result.get("status") == "decided":
        if result.get("domain") == "ab" and "arms" in result:
            lines += _ab_lines(record)
        elif action_rows(result):
            lines += _action_lines(record)
        lines += _interval_lines(record) if result.get("domain") != "ab" else []
        lines += [str(line) for line in result.get("lines") or []]  # a domain's own sentences (risk)
        flips = flip_lines(record)
        if flips:
            lines.append("What would change the decision: " + " ".join(flips))
    else:
        lines += blocked_details(result)
        lines.append("Nothing in this report is a recommendation; the numbers are kept only to diagnose the problem.")
    sensitivity = sensitivity_of(record)
    if sensitivity:
        headline = str(sensitivity.get("headline") or sensitivity.get("reason") or "not assessed.")
        lines.append(headline if headline.startswith("Prior sensitivity") else f"Prior sensitivity: {headline}")
    verdict = gate_verdict(result)
    if verdict and (result.get("gates") or {}).get("passed", True):
        lines.append(verdict)
    checked, plan = plan_of(record)
    if plan is not None:
        lines.append(plan_line(plan))
    elif checked:
        lines.append("No decision plan was recorded before the data (`wager plan` fixes one in advance).")
    if result.get("status") == "decided":
        lines += [f"Warning: {w}" for w in result.get("warnings") or []]
    return lines


def _ab_lines(record: Any) -> list[str]:
    result = record.result
    arms, control, units = result["arms"], result["control"], result.get("units", "")
    mass = credible_mass(record)
    rows = action_rows(result)
    chosen = next((r for r in rows if r.chosen), None)
    margin = float(result.get("min_lift", 0.0))
    counted = f" (a challenger counts as better only by more than {margin_phrase(result)})" if margin > 0 else ""
    if chosen is not None and chosen.prob_best is not None:
        lines = [f"Probability that '{chosen.action}' is the best choice{counted}: {percent(chosen.prob_best, chosen.prob_best_mcse)}."]
    else:
        chances = ", ".join(f"{r.action} {percent(r.prob_best, r.prob_best_mcse)}" for r in rows if r.prob_best is not None)
        lines = [f"No choice is clearly best yet. Probability each is the best choice{counted}: {chances}."]
    losses = []
    for r in rows:
        text = f"{r.action} {number(r.expected_loss, r.expected_loss_mcse)}"
        scaled = per_visitors(r.expected_loss, r.expected_loss_mcse, units)
        losses.append(text + (f" ({scaled})" if scaled else ""))
    threshold = result.get("threshold")
    tail = f" The threshold of caring is {number(threshold)}." if threshold is not None else ""
    lines.append(f"Expected loss of each choice, in {units} given up if it turns out to be the wrong one: {'; '.join(losses)}.{tail}")
    for name, arm in arms.items():
        if name == control:
            continue
        beats, above = arm.get("prob_beats_control"), arm.get("prob_lift_above_margin")
        sentence = f"{name} beats {control} with probability {percent(beats, arm.get('prob_beats_control_mcse', 0.0))}"
        if margin > 0 and above is not None:
            sentence += f"; its lift clears the {margin_phrase(result)} margin with probability {percent(above, arm.get('prob_lift_above_margin_mcse', 0.0))}"
        lines.append(sentence + ".")
        se_abs, se_rel = lift_se(result, name)
        lift = arm["lift_absolute"]
        d = interval_decimals([lift["median"], *lift["interval"]], se_abs)
        lo, hi = lift["interval"]
        sentence = (
            f"Lift of {name} over {control}: {signed(lift['median'], d)} {units} "
            f"({mass:.0%} credible interval {signed(lo, d)} to {signed(hi, d)})"
        )
        rel = arm.get("lift_relative")
        if rel:
            r = interval_decimals([100 * rel["median"], *(100 * v for v in rel["interval"])], 100 * se_rel)
            sentence += f", or {signed(100 * rel['median'], r)}% ({signed(100 * rel['interval'][0], r)}% to {signed(100 * rel['interval'][1], r)}%)"
        lines.append(sentence + ".")
    if result.get("indifferent"):
        lines.append("The best two choices are indistinguishable within Monte Carlo error.")
    return lines


def _action_lines(record: Any) -> list[str]:
    result = record.result
    rows = action_rows(result)
    units = loss_units(record)
    chosen = next((r for r in rows if r.chosen), None)
    lines = []
    if chosen is not None and chosen.prob_best is not None:
        lines.append(f"Probability that '{chosen.action}' is the best action: {percent(chosen.prob_best, chosen.prob_best_mcse)}.")
    losses = "; ".join(f"{r.action} {number(r.expected_loss, r.expected_loss_mcse)}" for r in rows)
    lines.append(f"Expected loss of each action, in {units}: {losses}.")
    decision = result.get("decision") or {}
    if decision.get("indifferent"):
        lines.append("The best two actions are indistinguishable within Monte Carlo error.")
    return lines


def decision_variables(result: Mapping[str, Any]) -> list[str]:
    """Posterior quantities the declared losses read (``theta[0]`` in ``5 - theta[0]``)."""
    table = result.get("posterior") or {}
    decision = result.get("decision")
    if not isinstance(decision, Mapping):
        return []
    text = " ".join(str(a.get("loss", "")) for a in decision.get("actions", []))
    found = []
    for key in table:
        pattern = re.escape(key) if "[" in key else rf"(?<![\w.]){re.escape(key)}(?![\w\[])"
        if re.search(pattern, text):
            found.append(key)
    return found


def _interval_lines(record: Any) -> list[str]:
    result = record.result
    table = result.get("posterior") or {}
    mass = credible_mass(record)
    lines = []
    keys = decision_variables(result) if isinstance(result.get("decision"), Mapping) else list(table)[:MAX_VARIABLES]
    for key in keys:
        row = table[key]
        d = decimals_for(row.get("mean_mcse", 0.0), row["mean"])
        lo, hi = row["interval"]
        lines.append(f"{key} is {fmt(row['mean'], row.get('mean_mcse', 0.0))} on average ({mass:.0%} credible interval {lo:.{d}f} to {hi:.{d}f}).")
    return lines


def flip_lines(record: Any) -> list[str]:
    """What would flip the decision, in the domain's own sentences (``result["flips"]``)."""
    result = record.result
    if result.get("status") != "decided":
        return []
    return [str(s) for s in result.get("flips") or []]


def plan_line(plan: Mapping[str, Any]) -> str:
    when = str(plan.get("planned_at", ""))[:19].replace("T", " ")
    if plan.get("matches"):
        return f"The decision policy matches plan {plan.get('plan_id')}, recorded {when} UTC before the data."
    changes = "; ".join(
        f"{c.get('path') or c.get('section')}: {c.get('old')!r} -> {c.get('new')!r}" for c in plan.get("changes", [])
    )
    return f"Warning: the decision policy DIFFERS from plan {plan.get('plan_id')} (recorded {when} UTC): {changes}."


# --- JSON -----------------------------------------------------------------------------


def json_report(record: Any) -> dict[str, Any]:
    """The report for machines: the decision, the plain lines, the result, the identity
    hash, prior sensitivity and the plan check. JSON-safe (NaN and infinities are null)."""
    result = record.result
    checked, plan = plan_of(record)
    rows = action_rows(result)
    report = {
        "run_id": record.run_id,
        "created_at": record.created_at,
        "identity_hash": record.manifest.get("identity_hash"),
        "status": result.get("status"),
        "action": result.get("action"),
        "decision": {
            "sentence": decision_sentence(record),
            "status": result.get("status"),
            "action": result.get("action"),
            "blocked_by": list(result.get("blocked_by") or []),
            "units": loss_units(record) if rows else None,
            "actions": [
                {
                    "action": r.action,
                    "expected_loss": r.expected_loss,
                    "expected_loss_mcse": r.expected_loss_mcse,
                    "prob_best": r.prob_best,
                    "prob_best_mcse": r.prob_best_mcse,
                    "chosen": r.chosen,
                }
                for r in rows
            ],
            "flips": flip_lines(record),
        },
        "summary": plain_report(record),
        "sensitivity": sensitivity_of(record),
        "plan": plan if checked else None,
        "result": result,
    }
    return jsonable(report)


# --- HTML -----------------------------------------------------------------------------


def html_report(record: Any, validations: Sequence[Mapping[str, Any]] = ()) -> str:
    """One self-contained HTML page (inline CSS, inline plots, no script, no URL);
    ``validations``: the run's recorded ``wager validate`` verdicts, newest first."""
    from wager.workflow.report_html import render

    return render(record, validations)


def write_html_report(record: Any, path: str | Path, validations: Sequence[Mapping[str, Any]] = ()) -> Path:
    """Write ``html_report(record)`` to ``path``: see ``write_text``."""
    return write_text(path, html_report(record, validations))


def write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` to ``path`` (folders made as needed), atomically: written beside
    it first, then renamed; a failed write leaves no partial file. A link is written
    through to the file it names, not replaced."""
    path = Path(path)
    if path.is_symlink():
        path = path.resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    try:
        partial.write_text(text, encoding="utf-8")
        partial.replace(path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return path
