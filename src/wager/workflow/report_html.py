"""The HTML report: one self-contained file, readable on a phone.

Inline CSS, plots as inline SVG data URIs (``wager.workflow.report_plots``), no
script and no URL of any kind, so the file opens offline, in a mail client or
an archive, and looks the same in ten years. Every string that came from a
user (names, priors' justifications, paths) is escaped. Numbers come from the
same helpers as the plain report, with the digits their Monte Carlo error
supports.
"""

from __future__ import annotations

import html
import json
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from wager.kernel.digits import decimals_for, fmt
from wager.workflow import report as words
from wager.workflow import report_plots as plots

MAX_PLOTS = 24
"""Posterior variables plotted (a panel each); vectors count once."""

CSS = """
:root{--ink:#1f2933;--muted:#616e7c;--line:#e4e7eb;--bg:#f5f7fa;--card:#fff;--accent:#2f5d8a;
--ok:#1e7b4d;--okbg:#e8f5ee;--warn:#8d5a00;--warnbg:#fff5dc;--bad:#b42318;--badbg:#fdecea}
*{box-sizing:border-box}
html{-webkit-text-size-adjust:100%;text-size-adjust:100%}
body{margin:0;background:var(--bg);color:var(--ink);
font:16px/1.55 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif}
main{max-width:1000px;margin:0 auto;padding:20px 16px 40px}
header{margin:8px 0 16px}
h1{font-size:1.6rem;line-height:1.25;margin:0 0 6px;overflow-wrap:anywhere}
h2{font-size:1.2rem;margin:0 0 12px}
h3{font-size:1rem;margin:18px 0 8px}
p{margin:0 0 10px}
.meta{color:var(--muted);font-size:.9rem;overflow-wrap:anywhere}
section{background:var(--card);border:1px solid var(--line);border-radius:12px;padding:18px 22px;margin:16px 0}
.decision{font-size:1.3rem;font-weight:650;line-height:1.35;margin:0 0 14px;padding:14px 16px;border-radius:8px;
border-left:6px solid var(--accent);background:#eef3f8;overflow-wrap:anywhere}
.decision.act{border-color:var(--ok);background:var(--okbg)}
.decision.wait{border-color:var(--warn);background:var(--warnbg)}
.decision.blocked{border-color:var(--bad);background:var(--badbg);color:#7a1a12}
.question{color:var(--muted);font-style:italic}
.kpis{display:grid;grid-template-columns:repeat(auto-fit,minmax(190px,1fr));gap:12px;margin:0 0 14px}
.kpi{border:1px solid var(--line);border-radius:8px;padding:10px 12px;min-width:0}
.kpi .label{display:block;font-size:.78rem;color:var(--muted);text-transform:uppercase;letter-spacing:.04em}
.kpi .value{display:block;font-size:1.3rem;font-weight:650;font-variant-numeric:tabular-nums;overflow-wrap:anywhere}
.kpi .sub{display:block;font-size:.85rem;color:var(--muted)}
ul.plain{margin:0;padding-left:1.2em}
ul.plain li{margin:0 0 6px}
.figs{display:grid;grid-template-columns:repeat(auto-fit,minmax(300px,1fr));gap:8px 20px}
figure{margin:0 0 12px;min-width:0}
figure img{display:block;max-width:100%;height:auto}
figcaption{font-size:.85rem;color:var(--muted);margin-top:4px}
.table-wrap{overflow-x:auto;-webkit-overflow-scrolling:touch;margin:0 0 12px;max-width:100%}
table{border-collapse:collapse;width:100%;font-size:.92rem}
th,td{text-align:left;padding:7px 10px;border-bottom:1px solid var(--line);vertical-align:top}
th{font-size:.78rem;color:var(--muted);text-transform:uppercase;letter-spacing:.03em;font-weight:600}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
td.num{white-space:nowrap}
tr.chosen td{background:#f0f6fc;font-weight:600}
.pass{color:var(--ok);font-weight:600}
.fail{color:var(--bad);font-weight:700}
.note{color:var(--muted);font-size:.92rem}
.badge{display:inline-block;padding:1px 8px;border-radius:999px;font-size:.8rem;font-weight:600}
.badge.ok{background:var(--okbg);color:var(--ok)}
.badge.bad{background:var(--badbg);color:var(--bad)}
code,.hash,pre{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace}
code,.hash{font-size:.85em;overflow-wrap:anywhere}
.hash{word-break:break-all}
pre{overflow:auto;background:#f3f4f6;border-radius:8px;padding:12px;font-size:.78rem;line-height:1.4;max-height:520px;margin:8px 0 0}
details{margin:10px 0 0}
summary{cursor:pointer;font-weight:600}
dl.kv{display:grid;grid-template-columns:max-content minmax(0,1fr);gap:4px 14px;margin:0 0 12px;font-size:.92rem}
dl.kv dt{color:var(--muted)}
dl.kv dd{margin:0;overflow-wrap:anywhere;min-width:0}
footer{color:var(--muted);font-size:.82rem;text-align:center;margin-top:24px}
@media (max-width:640px){
main{padding:10px 8px 28px}
section{padding:14px 12px;border-radius:10px;margin:12px 0}
h1{font-size:1.3rem}
.decision{font-size:1.12rem;padding:12px}
.figs{grid-template-columns:minmax(0,1fr)}
.kpis{grid-template-columns:repeat(2,minmax(0,1fr));gap:8px}
.kpi{padding:8px 10px}
.kpi .label{font-size:.68rem}
.kpi .value{font-size:1.1rem}
.kpi .sub{font-size:.78rem}
dl.kv{grid-template-columns:minmax(0,1fr)}
dl.kv dd{margin-bottom:6px}
table.stack thead{display:none}
table.stack,table.stack tbody,table.stack tr,table.stack td{display:block;width:100%}
table.stack tr{border-bottom:1px solid var(--line);padding:6px 0}
table.stack td{border:0;padding:3px 0;text-align:left}
table.stack td:empty{display:none}
table.stack td:first-child{font-weight:650}
table.stack.compact td[data-label]{display:flex;gap:12px;align-items:baseline}
table.stack.compact td[data-label]::before{flex:0 0 46%;display:block}
h2{font-size:1.1rem}
table.stack td[data-label]::before{content:attr(data-label);display:block;font-size:.72rem;color:var(--muted);
text-transform:uppercase;letter-spacing:.04em}
}
"""


def esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def table(
    headers: Sequence[str], rows: Iterable[Sequence[Any]], numeric: Iterable[int] = (), stack: str = "", row_classes: Sequence[str] | None = None
) -> str:
    """An HTML table in a horizontally scrolling box. On a phone, ``stack="cards"`` shows each
    row as a card of labelled lines, ``stack="compact"`` as label-value pairs side by side.
    Cells are escaped unless given as ``Raw``."""
    numeric = set(numeric)
    head = "".join(f'<th{" class=num" if i in numeric else ""} scope="col">{esc(h)}</th>' for i, h in enumerate(headers))
    body = []
    for r, row in enumerate(rows):
        cls = f' class="{row_classes[r]}"' if row_classes and row_classes[r] else ""
        cells = "".join(
            f'<td{" class=num" if i in numeric else ""} data-label="{esc(headers[i])}">{cell if isinstance(cell, Raw) else esc(cell)}</td>'
            for i, cell in enumerate(row)
        )
        body.append(f"<tr{cls}>{cells}</tr>")
    kind = {"cards": ' class="stack"', "compact": ' class="stack compact"'}.get(stack, "")
    return f'<div class="table-wrap"><table{kind}><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table></div>'


class Raw(str):
    """Markup already escaped."""


def kv(pairs: Iterable[tuple[str, Any]]) -> str:
    items = "".join(f"<dt>{esc(k)}</dt><dd>{v if isinstance(v, Raw) else esc(v)}</dd>" for k, v in pairs if v not in (None, ""))
    return f'<dl class="kv">{items}</dl>'


def figure(uri: str, alt: str, caption: str = "") -> str:
    cap = f"<figcaption>{esc(caption)}</figcaption>" if caption else ""
    return f'<figure><img src="{uri}" alt="{esc(alt)}">{cap}</figure>'


def section(ident: str, title: str, body: str) -> str:
    return f'<section id="{ident}" aria-labelledby="{ident}-h"><h2 id="{ident}-h">{esc(title)}</h2>{body}</section>'


# --- the page -------------------------------------------------------------------------


def render(record: Any, validations: Sequence[Mapping[str, Any]] = ()) -> str:
    """The page; ``validations`` are the run's recorded ``wager validate`` verdicts, newest first."""
    result, manifest = record.result, record.manifest
    draws = _draws(record)
    name = result.get("name") or manifest.get("identity", {}).get("name") or "wager run"
    parts = [
        _summary(record),
        _losses(record),
        _lifts(record, draws),
        _fans(record),
        _risk(record),
        _fusion(record),
        _science(record),
        _posteriors(record, draws),
        _diagnostics(record),
        _priors(record),
        _sensitivity(record),
        _plan(record),
        _validation(validations),
        _manifest(record),
    ]
    engine = (result.get("inference") or {}).get("engine", "")
    version = (manifest.get("environment", {}).get("versions") or {}).get("wager") or ""
    meta = f"Run <span class=hash>{esc(record.run_id)}</span> · recorded {esc(str(record.created_at)[:19].replace('T', ' '))} UTC · domain {esc(result.get('domain', ''))} · engine {esc(engine)}"
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta name="color-scheme" content="light">'
        '<link rel="icon" href="data:,">'
        f"<title>{esc(name)} — wager report</title><style>{CSS}</style></head><body><main>"
        f'<header><h1>{esc(name)}</h1><p class="meta">{meta}</p></header>'
        + "".join(p for p in parts if p)
        + f"<footer>wager {esc(version)} · report regenerated from the run record; nothing was re-run.</footer>"
        "</main></body></html>\n"
    )


def _draws(record: Any) -> dict[str, np.ndarray]:
    from wager.workflow.netcdf import read_netcdf

    return read_netcdf(record.netcdf()).get("posterior", {})


def _decision_class(result: Mapping[str, Any]) -> str:
    if result.get("status") != "decided":
        return "blocked"
    if result.get("verdict") == "keep_testing" or result.get("action") == "report":
        return "wait"
    return "act"


def _summary(record: Any) -> str:
    result = record.result
    lines = words.plain_report(record)
    sentence, rest = lines[0], lines[1:]
    question = (result.get("decision") or {}).get("question") if isinstance(result.get("decision"), Mapping) else None
    rest = [line for line in rest if not (question and line.endswith(question))]
    body = f'<p id="decision" class="decision {_decision_class(result)}">{esc(sentence)}</p>'
    if question:
        body += f'<p class="question">{esc(question)}</p>'
    body += _kpis(record)
    body += '<ul class="plain">' + "".join(f"<li>{esc(line)}</li>" for line in rest) + "</ul>"
    return section("summary", "Decision in plain words", body)


def _kpis(record: Any) -> str:
    result = record.result
    cards = []
    if result.get("status") != "decided":
        failed = [g for g in (result.get("gates") or {}).get("checks", []) if not g.get("passed")]
        if failed:
            cards.append(("Failed checks", f"{len(failed)} of {len(result['gates']['checks'])}", ", ".join(words.GATE_WORDS.get(g["name"], g["name"]) for g in failed)))
        cards.append(("Recommended action", "none", "the posterior cannot be trusted"))
    else:
        rows = words.action_rows(result)
        chosen = next((r for r in rows if r.chosen), None)
        if chosen is not None and chosen.prob_best is not None:
            cards.append(("Chance it is the best action", words.percent(chosen.prob_best, chosen.prob_best_mcse), chosen.action))
            cards.append(("Its expected loss", words.number(chosen.expected_loss, chosen.expected_loss_mcse), words.loss_units(record)))
        elif rows:
            best = min(rows, key=lambda r: r.expected_loss)
            cards.append(("Smallest expected loss", words.number(best.expected_loss, best.expected_loss_mcse), f"{best.action}, {words.loss_units(record)}"))
        if result.get("domain") == "ab" and result.get("threshold") is not None:  # a risk threshold run's is a block of its own
            cards.append(("Threshold of caring", words.number(result["threshold"]), result.get("units", "")))
        cards += _best_lift(record)
        decision = result.get("decision")
        if isinstance(decision, Mapping) and decision.get("runner_up"):
            cards.append(("Gap to the runner-up", words.number(decision["gap"], decision.get("gap_mcse", 0.0)), decision["runner_up"]))
    engine = (result.get("inference") or {}).get("engine")
    if engine:
        gates = result.get("gates") or {}
        verdict = "exact: no sampling error" if engine == "exact" else "passed every convergence check" if gates.get("passed") else "failed its convergence checks"
        cards.append(("Inference", str(engine), verdict))
    return '<div class="kpis">' + "".join(
        f'<div class="kpi"><span class="label">{esc(k)}</span><span class="value">{esc(v)}</span><span class="sub">{esc(s)}</span></div>' for k, v, s in cards
    ) + "</div>"


def _best_lift(record: Any) -> list[tuple[str, str, str]]:
    """Cards for the leading challenger: its lift on the margin's scale, and its chance to clear the margin."""
    result = record.result
    if result.get("domain") != "ab" or "arms" not in result:
        return []
    control = result["control"]
    challengers = [n for n in result["arms"] if n != control]
    if not challengers:
        return []
    name = result.get("arm") if result.get("arm") in challengers else min(challengers, key=lambda n: result["arms"][n]["expected_loss"])
    arm = result["arms"][name]
    mass = words.credible_mass(record)
    rel = arm.get("lift_relative")
    if result.get("lift") == "relative" and rel:
        se = 100 * words.lift_se(result, name)[1]
        d = words.interval_decimals([100 * rel["median"], *(100 * v for v in rel["interval"])], se)
        lo, hi = rel["interval"]
        card = (f"Lift of {name} over {control}", f"{words.signed(100 * rel['median'], d)}%", f"{mass:.0%} interval {words.signed(100 * lo, d)}% to {words.signed(100 * hi, d)}%")
    else:
        lift = arm["lift_absolute"]
        d = words.interval_decimals([lift["median"], *lift["interval"]], words.lift_se(result, name)[0])
        lo, hi = lift["interval"]
        card = (f"Lift of {name} over {control}", words.signed(lift["median"], d), f"{mass:.0%} interval {words.signed(lo, d)} to {words.signed(hi, d)}")
    cards = [card]
    above = arm.get("prob_lift_above_margin")
    if above is not None and float(result.get("min_lift", 0.0)) > 0:
        cards.append((f"Chance {name} clears the margin", words.percent(above, arm.get("prob_lift_above_margin_mcse", 0.0)), f"margin {words.margin_phrase(result)}"))
    return cards


def _losses(record: Any) -> str:
    result = record.result
    rows = words.action_rows(result)
    if not rows or result.get("status") != "decided":
        return ""
    units = words.loss_units(record)
    caring = result.get("threshold") if result.get("domain") == "ab" else None  # an A/B test's threshold of caring
    uri = plots.loss_plot(
        [r.action for r in rows], [r.expected_loss for r in rows], [r.expected_loss_mcse for r in rows], [r.chosen for r in rows], caring, units
    )
    sampled = any(r.expected_loss_mcse > 0 for r in rows)
    headers = ["Action", "Expected loss", "Chance it is best"] + (["Monte Carlo error"] if sampled else [])
    body = []
    for r in rows:
        row = [r.action, words.number(r.expected_loss, r.expected_loss_mcse), words.percent(r.prob_best, r.prob_best_mcse) if r.prob_best is not None else "n/a"]
        if sampled:
            row.append(f"± {r.expected_loss_mcse:.1g}")
        body.append(row)
    note = (
        f"Expected loss, in {units}: what choosing the action gives up, on average over the posterior, when another action turns out better. "
        + ("Whiskers are ±2 Monte Carlo standard errors. " if sampled else "Computed in closed form: no Monte Carlo error. ")
        + ("The dashed line is the threshold of caring: an action is taken only when its expected loss is below it." if caring is not None else "")
    )
    content = figure(uri, "Expected loss of each action", "") + table(headers, body, numeric=range(1, len(headers)), row_classes=["chosen" if r.chosen else "" for r in rows])
    return section("losses", "Expected loss of each action", content + f'<p class="note">{esc(note)}</p>')


def _lifts(record: Any, draws: Mapping[str, np.ndarray]) -> str:
    result = record.result
    if result.get("domain") != "ab" or "arms" not in result or result.get("status") != "decided":
        return ""
    from wager.ab.models import VALUE

    names, control = list(result["arms"]), result["control"]
    relative = result.get("lift") == "relative"
    margin = float(result.get("min_lift", 0.0))
    mass = words.credible_mass(record)
    value = draws.get(VALUE.get(result.get("metric", ""), ""))
    figs = []
    ci = names.index(control)
    for i, name in enumerate(names):
        if name == control or value is None or value.ndim != 3 or value.shape[-1] != len(names):
            continue
        x, c = value[..., i], value[..., ci]
        lift = x / c - 1 if relative else x - c
        arm = result["arms"][name]
        above = arm.get("prob_lift_above_margin")
        caption = f"{'relative' if relative else 'absolute'} lift of {name} over {control}" + ("" if relative else f" ({result.get('units', '')})")
        uri = plots.lift_plot(f"{name} vs {control}", lift, margin, relative, caption)
        text = f"P(lift > margin) = {words.percent(above, arm.get('prob_lift_above_margin_mcse', 0.0))}" if above is not None else ""
        figs.append(figure(uri, f"Lift of {name} over {control}", f"Green: the part of the distribution above the margin. {text}."))
    headers = ["Arm", "Posterior mean", f"{mass:.0%} interval", "P(beats control)", "P(lift > margin)", "Lift (median)", f"Lift {mass:.0%} interval"]
    rows = []
    for name, arm in result["arms"].items():
        se = arm.get("mean_mcse", 0.0)
        d = words.interval_decimals([arm["mean"], *arm["interval"]], se)
        row = [name + (" (control)" if name == control else ""), f"{arm['mean']:.{d}f}", f"{arm['interval'][0]:.{d}f} to {arm['interval'][1]:.{d}f}"]
        if name == control:
            row += ["", "", "", ""]
        else:
            se_abs, se_rel = words.lift_se(result, name)
            lift = arm["lift_relative"] if relative and arm.get("lift_relative") else arm["lift_absolute"]
            scale, s = (100.0, 100 * se_rel) if lift is arm.get("lift_relative") and relative else (1.0, se_abs)
            ld = words.interval_decimals([scale * lift["median"], *(scale * v for v in lift["interval"])], s)
            pct = "%" if scale == 100 else ""
            row += [
                words.percent(arm["prob_beats_control"], arm.get("prob_beats_control_mcse", 0.0)),
                words.percent(arm["prob_lift_above_margin"], arm.get("prob_lift_above_margin_mcse", 0.0)),
                words.signed(scale * lift["median"], ld) + pct,
                f"{words.signed(scale * lift['interval'][0], ld)}{pct} to {words.signed(scale * lift['interval'][1], ld)}{pct}",
            ]
        rows.append(row)
    data = _arm_data(record)
    intro = (
        f"Each challenger against {esc(control)}; the dashed line is the margin a lift must clear "
        f"({esc(words.margin_phrase(result))}) to be worth acting on; the dotted line is no lift."
    )
    body = f'<p class="note">{intro}</p>' + (f'<div class="figs">{"".join(figs)}</div>' if figs else '<p class="note">The draws of this run are not available to plot.</p>')
    body += "<h3>Arms</h3>" + table(headers, rows, numeric=range(1, 7), stack="compact") + data
    return section("lift", "Lift against the margin", body)


FANS = 9
"""Series drawn as fan charts, besides the total (the JSON holds every series)."""


def _fans(record: Any) -> str:
    """Fan charts of a forecast: the total, then the largest series."""
    result = record.result
    if result.get("domain") != "forecast" or "series" not in result:
        return ""
    future, units = result["horizon"], result.get("value", "value")
    total = result["aggregates"]["total"][0]
    figs = [figure(plots.fan_plot("Total", result.get("history_total", []), future, total["quantiles"], units), "Fan chart of the total")]
    ranked = sorted(result["series"], key=lambda s: -s["quantiles"]["0.5"][0])
    for item in ranked[:FANS]:
        label = " / ".join(str(v) for v in item["series"].values())
        figs.append(figure(plots.fan_plot(label, item.get("history", []), future, item["quantiles"], units), f"Fan chart of {label}"))
    note = (
        f"The last observed values, then the forecast median with its central 50%, 80% and 95% bands; the total is the sum "
        f"of the series' sample paths, so it is coherent with them. The total and the {min(FANS, len(ranked))} largest of "
        f"{len(ranked)} series are drawn; the JSON report holds every series and grouping level."
    )
    return section("forecast", "Forecast", f'<p class="note">{esc(note)}</p><div class="figs">{"".join(figs)}</div>')


def _risk(record: Any) -> str:
    """A risk task's loss distribution with its VaR and TVaR (and the plug-in's VaR) marked,
    the Bayesian figures beside the plug-in's (or Mack's), and the task's own tables."""
    result = record.result
    block = result.get("loss_distribution")
    if result.get("domain") != "risk" or not isinstance(block, Mapping) or result.get("status") != "decided":
        return ""
    from wager.risk.problem import amount

    level = f"{block['level']:g}"
    plug = block.get("plug_in") or {}
    note = (
        f"{block['label']}: {block['draws']:,} draws from the posterior predictive, in {block['units']}. "
        f"The solid line is the {level} VaR (the draws beyond it shaded), the dash-dotted line the TVaR, the mean loss beyond it"
        + (f"; the dashed line is the VaR of the plug-in: {plug.get('label', 'point estimates')}." if plug else ".")
    )
    uri = plots.loss_distribution_plot(dict(block))
    body = f'<p class="note">{esc(note)}</p>' + figure(uri, f"Loss distribution with the {level} VaR and TVaR marked", "")
    peer = "Mack" if result.get("task") == "reserve" else "Plug-in"
    se = block.get("se") or {}
    rows = [
        ["Mean", amount(block["mean"], se.get("mean", 0.0)), amount(plug["mean"], 0.0, 3) if "mean" in plug else ""],
        [f"VaR {level}", amount(block["var"], se.get("var", 0.0)), amount(plug["var"], plug.get("var_se", 0.0), 3) if plug else "n/a"],
        [f"TVaR {level}", amount(block["tvar"], se.get("tvar", 0.0)), amount(plug["tvar"], plug.get("tvar_se", 0.0), 3) if plug else "n/a"],
    ]
    body += table(["", "Posterior predictive", peer], rows, numeric=(1, 2), stack="compact")
    body += _risk_tables(result)
    return section("risk", "Loss distribution and capital", body)


def _risk_tables(result: Mapping[str, Any]) -> str:
    """The task's own figures: per origin (reserve), the backtest (var), the held-out
    pricing (threshold), per class (claims)."""
    from wager.risk.problem import amount

    task, out = result.get("task"), ""
    if task == "reserve":
        mack, bayes = result["mack"], result["reserve"]
        out += kv([("Bayesian reserve (mean, sd)", f"{amount(bayes['mean'], bayes.get('mean_se', 0.0))}, {amount(bayes['sd'])}"),
                   ("Mack reserve (standard error)", f"{amount(mack['reserve'])} ({amount(mack['se'])})")])
        rows = [[o["origin"], amount(o["latest"]), amount(o["ultimate_mean"]), amount(o["reserve_mean"]), amount(o["reserve_sd"]),
                 amount(o["mack_reserve"]), amount(o["mack_se"])] for o in result.get("origins", [])]
        out += "<h3>By origin</h3>" + table(["Origin", "Paid to date", "Ultimate", "Reserve", "SD", "Mack reserve", "Mack SE"], rows, numeric=range(1, 7), stack="compact")
    elif task == "var" and result.get("backtest"):
        b = result["backtest"]
        rows = [
            ["Days forecast", str(b["days"])],
            ["Exceptions (expected)", f"{b['exceptions']} ({b['expected_exceptions']:.3g})"],
            ["Kupiec proportion of failures", f"LR {b['kupiec']:.3g}, p = {b['kupiec_p_value']:.3f}"],
            ["Christoffersen independence", f"LR {b['christoffersen']:.3g}, p = {b['christoffersen_p_value']:.3f}"],
            ["Conditional coverage", f"LR {b['conditional_coverage']:.3g}, p = {b['conditional_coverage_p_value']:.3f}"],
            ["Basel traffic light", b["zone"]],
        ]
        out += (f"<h3>Backtest</h3><p class=\"note\">{esc(b['engine'])} fits on {b['window']}-day windows, refitted every "
                f"{b['refit_every']} days ({b['refits']} fits).</p>") + table(["Test", "Result"], rows, stack="compact")
    elif task == "threshold":
        t, h = result["threshold"], result["holdout"]
        lo, hi = h["optimal_threshold"]["interval"]
        rows = [
            ["Bayes threshold c_fp / (c_fp + c_fn)", f"{t['bayes_threshold']:.4g}"],
            [f"Declined of {t['applicants']} {t['scored']}", str(t["declined"])],
            [f"Held-out cost per applicant at the Bayes threshold ({h['applicants']} applicants)", f"{h['cost_at_bayes']:.4g}"],
            ["Held-out cost per applicant at 0.5", f"{h['cost_at_half']:.4g}"],
            ["Saving per applicant (standard error)", f"{h['saving']:.3g} ({h['saving_se']:.2g})"],
            ["Best threshold on the held-out applicants, 90% posterior interval", f"{lo:.3f} to {hi:.3f}"],
        ]
        out += "<h3>Threshold</h3>" + table(["", "Value"], rows, stack="compact")
    elif task == "claims":
        rows = [[c["class"], amount(c["exposure"], 0.0, 3), f"{c['rate_mean']:.4g}", amount(c["mean_severity"], 0.0, 3), amount(c["expected_loss"], 0.0, 3)]
                for c in result.get("classes", [])]
        out += "<h3>By class</h3>" + table(["Class", "Exposure", "Claim rate", "Mean claim", "Expected loss"], rows, numeric=range(1, 5), stack="compact")
    return out


def _fusion(record: Any) -> str:
    """A fusion run's answer to "where am I, plus or minus how much": the smoothed position
    (minus its mean, so the band shows) and velocity with their credible bands, and the figures."""
    result = record.result
    block = result.get("trajectory")
    if result.get("domain") != "fusion" or not isinstance(block, Mapping) or result.get("status") != "decided":
        return ""
    level = f"{block.get('level', 0.95):.0%}"
    pos, vel, tol = result["position"], result["velocity"], result["within_tolerance"]
    note = (
        f"The RTS smoother over every accelerometer sample for {block['draws']} posterior draws of the noise levels; "
        f"the band is the {level} central interval of their mixture. The position is drawn minus its posterior mean: "
        "the band is metres wide along a track hundreds of metres long."
    )
    figs = [
        figure(plots.trajectory_plot(dict(block), "position", "m", residual=True), f"Position with its {level} credible band"),
        figure(plots.trajectory_plot(dict(block), "velocity", "m/s"), f"Velocity with its {level} credible band"),
    ]
    rows = [
        ["Position now", f"{pos['mean']:.1f} m ± {pos['plus_minus']:.2g} m ({pos['lo']:.1f} to {pos['hi']:.1f})"],
        ["Velocity now", f"{vel['mean']:.2f} m/s ± {vel['plus_minus']:.2g} m/s"],
        [f"P(within {tol['tolerance']:g} m), threshold {tol['threshold']:g}", fmt(tol["probability"], tol["se"])],
    ]
    for name, label in (("accel_sd", "Accelerometer noise sd (m/s²)"), ("gps_sd", "GPS noise sd (m)")):
        n = result["noise"][name]
        rows.append([label, f"{n['median']:.3g} ({n['lo']:.3g} to {n['hi']:.3g})"])
    if result.get("truth"):
        rows.append(["Simulated truth: position, error of the estimate", f"{result['truth']['position']:.1f} m, {result['truth']['position_error']:+.2f} m"])
    body = f'<p class="note">{esc(note)}</p><div class="figs">{"".join(figs)}</div>' + table(["", "Value"], rows, stack="compact")
    return section("fusion", "Where am I, plus or minus how much", body)


def _science(record: Any) -> str:
    """A science task's fit beside its data and its decision: the SIR curve with credible and
    predictive bands, the counts and the beds (sir); the concentration curves and the
    probability in the therapeutic window per candidate dose (pk)."""
    result = record.result
    if result.get("domain") != "science" or result.get("status") != "decided":
        return ""
    if result.get("task") == "sir" and isinstance(result.get("curve"), Mapping):
        r0, rt, peak = result["R0"], result["recovery_time"], result["peak"]
        note = (
            f"Dots: people counted ill each day. Line and bands: the fitted I(t) of the SIR ODE, posterior median with 50% and 90% "
            f"credible bands; grey: the 90% posterior predictive band of the daily counts (negative binomial). "
            f"The peak bed need is the largest daily count of each of {result['paths']:,} simulated paths."
        )
        fig = figure(plots.epidemic_plot(dict(result["curve"]), result.get("capacity")), "Fitted epidemic curve with credible bands and the counts")
        rows = [
            ["R0 = beta / gamma (90% interval)", f"{fmt(r0['mean'], r0['mean_se'])} ({r0['interval_90'][0]:.2f} to {r0['interval_90'][1]:.2f})"],
            ["Days ill, 1 / gamma (90% interval)", f"{fmt(rt['mean'], rt['mean_se'])} ({rt['interval_90'][0]:.2f} to {rt['interval_90'][1]:.2f})"],
            ["Peak bed need (90% interval)", f"{peak['mean']:.0f} ({peak['interval_90'][0]:.0f} to {peak['interval_90'][1]:.0f})"],
            [f"P(peak > {result['capacity']} beds), accepted {result['max_risk']:g}", fmt(result["risk"], result["risk_se"])],
            [f"Beds for a {result['max_risk']:g} risk", fmt(result["beds_needed"], result["beds_needed_se"])],
        ]
        body = f'<p class="note">{esc(note)}</p>' + fig + table(["", "Value"], rows, stack="compact")
        return section("science", "Epidemic curve and beds", body)
    if result.get("task") == "pk" and isinstance(result.get("curves"), Mapping):
        units, window = result["units"], result["window"]
        span = (f"over a whole {window['interval']:g}-hour dosing interval at steady state" if window["regimen"] == "steady_state"
                else f"from {window['start']:g} to {window['end']:g} h after one dose")
        note = (
            f"Left: each patient's levels divided by their dose, with their fitted curves, and the band for a new patient drawn from "
            f"the population posterior. Right: the probability that a new patient stays within {window['low']:g}-{window['high']:g} "
            f"{units['conc']} {span}, per candidate dose, with two Monte Carlo errors ({result['patients_simulated']:,} simulated patients)."
        )
        figs = [
            figure(plots.concentration_plot(dict(result["curves"]), dict(units)), "Concentration curves with credible bands and the data"),
            figure(plots.dose_probability_plot(result["doses"], result["target"], units["dose"]), "Probability in the window per dose"),
        ]
        rows = [[f"{r['dose']:g}", fmt(r["probability"], r["probability_se"]), "yes" if r["meets_target"] else "no", "chosen" if r["chosen"] else ""]
                for r in result["doses"]]
        body = (f'<p class="note">{esc(note)}</p><div class="figs">{"".join(figs)}</div>'
                + table([f"Dose ({units['dose']})", "P(in window)", f"Meets {result['target']:g}", ""], rows, numeric=(0, 1), stack="compact"))
        return section("science", "Concentrations and the dose", body)
    return ""


def _arm_data(record: Any) -> str:
    arms = (record.manifest.get("spec") or {}).get("arms")
    if not arms:
        return ""
    columns = [k for k in ("visitors", "conversions", "events", "purchasers", "revenue", "mean", "sd") if any(a.get(k) is not None for a in arms)]
    rows = [[a["name"], *(("" if a.get(k) is None else f"{a[k]:,}" if isinstance(a[k], int) else f"{a[k]:.6g}") for k in columns)] for a in arms]
    return "<h3>Data</h3>" + table(["Arm", *columns], rows, numeric=range(1, len(columns) + 1))


def _posteriors(record: Any, draws: Mapping[str, np.ndarray]) -> str:
    result = record.result
    mass = words.credible_mass(record)
    labels = list(result["arms"]) if result.get("domain") == "ab" and "arms" in result else None
    order = sorted(draws, key=lambda n: (n != _value_name(result), n))
    figs = []
    for name in order[:MAX_PLOTS]:
        x = np.asarray(draws[name])
        if x.ndim < 2 or x.dtype == bool:
            continue
        arm_labels = labels if labels and x.ndim == 3 and x.shape[-1] == len(labels) else None
        figs.append(figure(plots.posterior_plot(name, x, arm_labels, mass), f"Posterior of {name}"))
    body = f'<div class="figs">{"".join(figs)}</div>' if figs else '<p class="note">The draws of this run are not available to plot.</p>'
    if len(order) > MAX_PLOTS:
        body += f'<p class="note">The first {MAX_PLOTS} of {len(order)} variables are plotted; the JSON report and the NetCDF draws hold them all.</p>'
    table_html = _posterior_table(record)
    if table_html:
        body += f"<details><summary>Posterior summary table</summary>{table_html}</details>"
    note = f"Histograms of the posterior draws; shaded band: the central {mass:.0%} credible interval. Exact runs plot draws from the exact posterior."
    if result.get("status") != "decided":
        note = "These draws failed the run's checks: they are shown to diagnose the problem, not to be read as the posterior."
    return section("posteriors", "Posteriors", f'<p class="note">{esc(note)}</p>' + body)


def _value_name(result: Mapping[str, Any]) -> str:
    if result.get("domain") != "ab":
        return ""
    from wager.ab.models import VALUE

    return VALUE.get(result.get("metric", ""), "")


def _posterior_table(record: Any) -> str:
    table_rows = record.result.get("posterior")
    if not isinstance(table_rows, Mapping) or not table_rows:
        return ""
    mass = words.credible_mass(record)
    rows = []
    for key, row in table_rows.items():
        se = row.get("mean_mcse", 0.0)
        d = decimals_for(se, row["mean"])
        lo, hi = row["interval"]
        rows.append([key, fmt(row["mean"], se), f"{row['sd']:.{d}f}", f"{lo:.{d}f} to {hi:.{d}f}", f"{se:.1g}" if se else "0"])
    return table(["Variable", "Mean", "SD", f"{mass:.0%} interval", "MCSE of mean"], rows, numeric=range(1, 5))


def _diagnostics(record: Any) -> str:
    result = record.result
    gates = result.get("gates") or {}
    inference = result.get("inference") or {}
    body = ""
    if inference:
        body += kv([("Engine", inference.get("engine")), ("Why this engine", inference.get("reason")), ("Seed", inference.get("seed"))])
    if not gates.get("applicable", True):
        body += f'<p><span class="badge ok">not applicable</span> {esc(words.gate_verdict(result))}</p>'
    else:
        checks = gates.get("checks", [])
        rows = [
            [words.GATE_WORDS.get(g["name"], g["name"]), words.diagnostic(g.get("value")), f"{g['rule']} {g['threshold']:g}", g.get("where") or "", Raw('<span class="pass">pass</span>' if g.get("passed") else '<span class="fail">FAIL</span>')]
            for g in checks
        ]
        badge = '<span class="badge ok">all passed</span>' if gates.get("passed") else '<span class="badge bad">failed</span>'
        body += f"<p>Gates {badge} — a failed gate blocks the decision.</p>"
        body += table(["Check", "Value", "Must be", "Worst at", "Result"], rows, numeric=(1,))
    diagnostics = (record.manifest.get("outputs") or {}).get("diagnostics")
    if isinstance(diagnostics, Mapping) and diagnostics.get("variables"):
        rows = [
            [name, words.diagnostic(v.get("rhat")), words.diagnostic(v.get("ess_bulk")), words.diagnostic(v.get("ess_tail"))]
            for name, v in diagnostics["variables"].items()
        ]
        body += "<h3>Per variable</h3>" + table(["Variable", "R-hat", "Bulk ESS", "Tail ESS"], rows, numeric=(1, 2, 3))
        bfmi = diagnostics.get("bfmi") or []
        body += kv(
            [
                ("Draws", diagnostics.get("draws")),
                ("Divergent transitions", diagnostics.get("divergences")),
                ("At max tree depth", diagnostics.get("tree_depth_hits")),
                ("E-BFMI per chain", ", ".join(words.diagnostic(b) for b in bfmi)),
            ]
        )
    return section("diagnostics", "Diagnostics", body)


def _priors(record: Any) -> str:
    priors = record.result.get("priors") or (record.manifest.get("identity") or {}).get("priors") or {}
    if not priors:
        return ""
    rows = [[name, Raw(f"<code>{esc(_describe(p))}</code>"), p.get("why", ""), p.get("source", "")] for name, p in priors.items()]
    note = "Every prior is a design decision with its reason and its source, recorded in the run's identity."
    return section("priors", "Priors and why", f'<p class="note">{esc(note)}</p>' + table(["Prior", "Distribution", "Why", "Source"], rows, stack="cards"))


def _describe(prior: Mapping[str, Any]) -> str:
    params = ", ".join(f"{k}={v:.6g}" if isinstance(v, (int, float)) else f"{k}={v}" for k, v in (prior.get("params") or {}).items())
    return f"{prior.get('family', '?')}({params})"


def _sensitivity(record: Any) -> str:
    s = words.sensitivity_of(record)
    if s is None:
        return section("sensitivity", "Prior sensitivity", '<p class="note">Prior sensitivity was not recorded for this run.</p>')
    headline = s.get("headline") or s.get("reason") or "Not assessed."
    flips = any(a.get("flips") for a in s.get("alternatives") or [])
    body = f'<p><span class="badge {"bad" if flips else "ok"}">{"flips" if flips else "robust"}</span> {esc(headline)}</p>' if s.get("alternatives") else f"<p>{esc(headline)}</p>"
    rows = []
    for a in s.get("alternatives") or []:
        how = {"refit": "refitted", "reweighted": "reweighted draws"}.get(a.get("method", ""), a.get("method", ""))
        if a.get("pareto_k") is not None:
            k = a["pareto_k"]
            how += f", Pareto k {k:.2f}" if a.get("method") == "reweighted" else f" (reweighting rejected: Pareto k {k:.2f})"
        if a.get("note"):
            how += f"; {a['note']}"
        prior = _describe({"family": a.get("family", ""), "params": a.get("params") or {}}) if a.get("family") else json.dumps(a.get("params") or {})
        rows.append([a.get("prior", ""), a.get("change", ""), Raw(f"<code>{esc(prior)}</code>"), how, a.get("action") or "no action", Raw('<span class="fail">yes</span>' if a.get("flips") else "no")])
    if rows:
        body += table(["Prior", "Change", "Alternative", "How", "Action", "Flips?"], rows, stack="compact")
    body += _power_scaling(s.get("power_scaling"))
    lines = s.get("lines")
    if lines and not rows:
        body += '<ul class="plain">' + "".join(f"<li>{esc(line)}</li>" for line in lines) + "</ul>"
    return section("sensitivity", "Prior sensitivity", body)


def _power_scaling(ps: Any) -> str:
    if ps is None:
        return ""
    if isinstance(ps, str):
        return f'<p class="note">{esc(ps)}</p>'
    if isinstance(ps.get("variables"), list):
        entries = [(v.get("variable", ""), v) for v in ps["variables"]]
        threshold, notes = ps.get("threshold"), ps.get("notes") or []
    else:
        entries = [(k, v) for k, v in ps.items() if isinstance(v, Mapping)]
        threshold, notes = None, [ps["note"]] if isinstance(ps.get("note"), str) else []
    rows = [[name, _two_digits(v.get("prior")), _two_digits(v.get("likelihood")), v.get("diagnosis") or "—"] for name, v in entries[:60]]
    intro = "Power-scaling sensitivity (Kallioinen et al. 2023): how much each quantity moves when the prior or the likelihood is raised to a power near 1"
    intro += f"; above {threshold:g} is sensitive." if threshold is not None else "."
    out = f"<h3>Power-scaling diagnostic</h3><p class=\"note\">{esc(intro)}</p>"
    if rows:
        out += table(["Quantity", "Prior", "Likelihood", "Diagnosis"], rows, numeric=(1, 2), stack="compact")
    if len(entries) > 60:
        out += f'<p class="note">… and {len(entries) - 60} more in the JSON report.</p>'
    out += "".join(f'<p class="note">Note: {esc(n)}</p>' for n in notes)
    return out


def _two_digits(value: float | None) -> str:
    """A power-scaling sensitivity: two significant digits are all its threshold needs."""
    return "n/a" if value is None else fmt(value, 0.0, 2)


def _plan(record: Any) -> str:
    checked, plan = words.plan_of(record)
    if plan is None:
        text = "No decision plan was recorded before the data for this test; `wager plan SPEC` fixes the policy in advance." if checked else "This run's record carries no plan check."
        return section("plan", "Plan check", f'<p class="note">{esc(text)}</p>')
    badge = '<span class="badge ok">matches</span>' if plan.get("matches") else '<span class="badge bad">differs</span>'
    body = f"<p>{badge} {esc(words.plan_line(plan))}</p>"
    changes = plan.get("changes") or []
    if changes:
        body += table(["Where", "Planned", "In this run"], [[c.get("path") or c.get("section", ""), json.dumps(c.get("old")), json.dumps(c.get("new"))] for c in changes], stack="cards")
    return section("plan", "Plan check", body)


def _validation(validations: Sequence[Mapping[str, Any]]) -> str:
    """The latest ``wager validate`` of this run: each check, the predictive check's
    statistics and its LOO-PIT plot."""
    if not validations:
        return ""
    from wager.workflow.report_plots import pit_plot

    latest = validations[0]
    document = latest["document"]
    badge = '<span class="badge ok">passed</span>' if latest["passed"] else '<span class="badge bad">failed</span>'
    when = str(latest["created_at"])[:19].replace("T", " ")
    body = f"<p>{badge} Latest of {len(validations)} validation{'s' if len(validations) > 1 else ''}, {esc(when)} UTC.</p>"
    checks = document.get("checks", [])
    body += table(["Check", "Status", "Seconds", "Details"], [
        [c["name"], c["status"], f"{c.get('seconds', 0):.1f}", "; ".join(line.strip().rstrip(".") for line in c.get("lines", [])[:3])] for c in checks
    ], stack="cards")
    predictive = next((c for c in checks if c["name"] == "predictive" and c.get("data")), None)
    if predictive:
        # the shared check (statistics and one LOO-PIT), a domain's own check, or several of those (``all_of``)
        parts = predictive["data"]["checks"] if predictive["data"].get("kind") == "all_of" else [predictive["data"]]
        rows = [[f"{t['statistic']}({t['site']})", f"{t['observed']:.4g}", f"{t['ppp']:.3f}", "flagged" if t["flagged"] else "ok"]
                for part in parts for t in part.get("checks", []) if "statistic" in t]
        if rows:
            body += "<h3>Posterior predictive p-values</h3>" + table(["Statistic", "Observed", "p-value", ""], rows, stack="cards")
        for part in parts:
            pit = part.get("loo_pit")
            if pit and pit.get("values"):
                what = part.get("what", "the observations")
                body += figure(pit_plot(pit["values"], pit.get("alpha", 0.05)), f"LOO-PIT ECDF difference with its simultaneous band: {what}",
                               f"LOO-PIT calibration of {what}: inside the band, the model's predictive distributions are calibrated.")
        lfo = predictive["data"].get("lfo_pit")
        if lfo and lfo.get("values"):
            body += figure(pit_plot(lfo["values"]), "Leave-future-out PIT ECDF difference with its simultaneous band",
                           f"Leave-future-out PIT of one-step forecasts refitted at {len(lfo['origins'])} origins: "
                           "inside the band, the forecasts are calibrated on data they had not seen.")
    calibration = next((c for c in checks if c["name"] == "sbc" and c.get("data", {}).get("quantities")), None)
    if calibration:
        import base64

        from wager.workflow.sbc import SBCResult
        from wager.workflow.sbc_plots import sbc_plot

        svg = sbc_plot(SBCResult.from_json(calibration["data"]))
        uri = "data:image/svg+xml;base64," + base64.b64encode(svg.encode()).decode("ascii")
        body += figure(uri, "Simulation-based calibration: ECDF difference of the ranks with simultaneous bands",
                       "Simulation-based calibration: a correct model and engine keep every curve inside its band.")
    return section("validation", "Validation", body)


def _manifest(record: Any) -> str:
    m = record.manifest
    ident, env = m.get("identity") or {}, m.get("environment") or {}
    recorded = m.get("recorded") or {}
    git = env.get("git") or {}
    versions = ", ".join(f"{k} {v}" for k, v in (env.get("versions") or {}).items() if v)
    body = kv(
        [
            ("Identity hash", Raw(f'<span class="hash" id="identity-hash">{esc(m.get("identity_hash", ""))}</span>')),
            ("Data hash", Raw(f'<span class="hash">{esc((ident.get("data") or {}).get("sha256", ""))}</span>')),
            ("Model", f"{(ident.get('model') or {}).get('name', '')} ({(ident.get('model') or {}).get('version', '')})"),
            ("Engine and seed", f"{ident.get('engine', '')}, seed {ident.get('seed', '')}; chain seeds {', '.join(map(str, ident.get('chain_seeds') or []))}"),
            ("Recorded", f"{str(recorded.get('time', ''))[:19].replace('T', ' ')} UTC by {recorded.get('user', '')} on {recorded.get('host', '')}"),
            ("Spec", (m.get("source") or {}).get("spec_path")),
            ("Python", f"{env.get('python', '')} on {env.get('platform', '')}"),
            ("Packages", versions),
            ("Numerics fingerprint", Raw(f'<span class="hash">{esc(env.get("numerics_fingerprint", ""))}</span>')),
            ("Git", f"{git.get('commit', '')}{' (dirty)' if git.get('dirty') else ''}" if git else None),
        ]
    )
    digests = (m.get("outputs") or {}).get("draws") or {}
    if digests:
        body += "<h3>Draw hashes (SHA-256)</h3>" + table(["Variable", "SHA-256"], [[k, Raw(f'<span class="hash">{esc(v)}</span>')] for k, v in digests.items()])
    pretty = json.dumps(m, indent=2, sort_keys=True, allow_nan=False, default=str)
    body += f"<details><summary>The full manifest (JSON)</summary><pre>{esc(pretty)}</pre></details>"
    return section("manifest", "Manifest", body)
