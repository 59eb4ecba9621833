"""The HTML report's plots: matplotlib figures as inline SVG data URIs.

Figures are drawn on ``matplotlib.figure.Figure`` directly (no pyplot, no
global backend state), saved as SVG with text as paths (no font to fetch) and
without a date, so one record always gives the same bytes. matplotlib is
imported only here, and only when an HTML report is asked for.
"""

from __future__ import annotations

import base64
import io
from typing import Any, Sequence

import numpy as np

PALETTE = ("#2f5d8a", "#d0782a", "#3a8f5c", "#8a3f8f", "#b23a48", "#5f6b7a", "#1f8a99", "#9a7b1c")
INK, MUTED, GRID, GOOD = "#1f2933", "#616e7c", "#e4e7eb", "#3a8f5c"
WIDTH = 4.6  # inches: about 440 px, so a phone (about 340 px of content) shows it at three quarters
MAX_ELEMENTS = 40
OVERLAY = 6  # vectors up to this many elements are overlaid; longer ones become a forest plot


def _figure(height: float) -> Any:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(WIDTH, height), layout="constrained")
    return fig


def _style(ax: Any) -> None:
    ax.spines[["top", "right", "left"]].set_visible(False)
    ax.spines["bottom"].set_color(MUTED)
    ax.tick_params(colors=MUTED, labelsize=10)
    ax.xaxis.label.set_color(INK)
    ax.set_axisbelow(True)
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(nbins=5))


def data_uri(fig: Any) -> str:
    """``data:image/svg+xml;base64,...`` of ``fig``, deterministic bytes."""
    import matplotlib

    buffer = io.BytesIO()
    with matplotlib.rc_context({"svg.fonttype": "path", "svg.hashsalt": "wager"}):
        fig.savefig(buffer, format="svg", metadata={"Date": None, "Creator": None})
    return "data:image/svg+xml;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _rc() -> Any:
    import matplotlib

    return matplotlib.rc_context({"font.size": 11, "axes.titlesize": 12, "axes.titleweight": "bold", "axes.titlelocation": "left"})


def _bins(samples: Sequence[np.ndarray], n: int = 60) -> np.ndarray:
    lo = min(float(np.quantile(s, 0.0005)) for s in samples)
    hi = max(float(np.quantile(s, 0.9995)) for s in samples)
    if not hi > lo:
        lo, hi = lo - 0.5, hi + 0.5
    return np.linspace(lo, hi, n + 1)


def posterior_plot(name: str, draws: np.ndarray, labels: Sequence[str] | None, mass: float) -> str:
    """One panel for variable ``name`` (draws ``(chain, draw, ...)``): a density histogram
    for a scalar, overlaid histograms for a short vector, intervals for a long one."""
    x = np.asarray(draws, dtype=float)
    flat = x.reshape(x.shape[0] * x.shape[1], -1)
    if labels is None or len(labels) != flat.shape[1]:
        labels = [name] if x.ndim == 2 else [f"{name}[{','.join(map(str, i))}]" for i in np.ndindex(*x.shape[2:])]
    if flat.shape[1] > OVERLAY:
        return _forest(name, flat[:, :MAX_ELEMENTS], list(labels)[:MAX_ELEMENTS], mass)
    with _rc():
        fig = _figure(2.5)
        ax = fig.add_subplot()
        _style(ax)
        columns = [flat[:, i][np.isfinite(flat[:, i])] for i in range(flat.shape[1])]
        bins = _bins(columns)
        for i, (column, label) in enumerate(zip(columns, labels)):
            color = PALETTE[i % len(PALETTE)]
            density, _ = np.histogram(column, bins=bins, density=True)
            ax.stairs(density, bins, fill=True, alpha=0.28 if len(columns) > 1 else 0.35, color=color)
            ax.stairs(density, bins, color=color, linewidth=1.2, label=label)
            if len(columns) == 1:
                lo, hi = np.quantile(column, [(1 - mass) / 2, (1 + mass) / 2])
                ax.axvline(float(np.mean(column)), color=INK, linewidth=1.2)
                ax.axvspan(lo, hi, color=color, alpha=0.08, linewidth=0)
        ax.set_yticks([])
        ax.set_title(name, color=INK)
        if len(columns) > 1:
            ax.legend(frameon=False, fontsize=10, loc="upper right")
        else:
            ax.set_xlabel(f"mean (line) and {mass:.0%} interval (band)", fontsize=10, color=MUTED)
        return data_uri(fig)


def _forest(name: str, flat: np.ndarray, labels: list[str], mass: float) -> str:
    k = flat.shape[1]
    qs = np.quantile(flat, [(1 - mass) / 2, 0.25, 0.5, 0.75, (1 + mass) / 2], axis=0)
    with _rc():
        fig = _figure(0.9 + 0.28 * k)
        ax = fig.add_subplot()
        _style(ax)
        ax.spines["left"].set_visible(False)
        y = np.arange(k)[::-1]
        ax.hlines(y, qs[0], qs[4], color=PALETTE[0], linewidth=1.2)
        ax.hlines(y, qs[1], qs[3], color=PALETTE[0], linewidth=4)
        ax.plot(qs[2], y, "o", color="white", markeredgecolor=PALETTE[0], markersize=5, markeredgewidth=1.5)
        ax.set_yticks(y, labels, fontsize=10)
        ax.tick_params(axis="y", length=0)
        ax.grid(axis="x", color=GRID, linewidth=0.8)
        ax.set_title(name, color=INK)
        ax.set_xlabel(f"median (dot), 50% (thick) and {mass:.0%} (thin) intervals", fontsize=10, color=MUTED)
        return data_uri(fig)


def lift_plot(title: str, lift: np.ndarray, margin: float, relative: bool, caption: str) -> str:
    """The lift distribution of one challenger against the control, the margin marked and
    the mass above it shaded."""
    x = np.asarray(lift, dtype=float).ravel()
    x = x[np.isfinite(x)]
    scale = 100.0 if relative else 1.0
    x, m = x * scale, margin * scale
    with _rc():
        fig = _figure(2.6)
        ax = fig.add_subplot()
        _style(ax)
        bins = _bins([x, np.array([m, 0.0])], 70)
        density, edges = np.histogram(x, bins=bins, density=True)
        centers = (edges[:-1] + edges[1:]) / 2
        above = np.where(centers > m, density, 0.0)
        ax.stairs(density, edges, fill=True, color=MUTED, alpha=0.18)
        ax.stairs(above, edges, fill=True, color=GOOD, alpha=0.45)
        ax.stairs(density, edges, color=INK, linewidth=1.0)
        ax.axvline(0.0, color=MUTED, linewidth=1.0, linestyle=":")
        ax.axvline(m, color="#b23a48", linewidth=1.6, linestyle="--")
        top = float(density.max()) if density.size else 1.0
        ax.text(m, top * 1.02, f" margin {m:.3g}{'%' if relative else ''}", color="#b23a48", fontsize=10, va="bottom", ha="left")
        ax.set_ylim(0, top * 1.18)
        ax.set_yticks([])
        ax.set_title(title, color=INK)
        ax.set_xlabel(caption, fontsize=10, color=MUTED)
        if relative:
            ax.xaxis.set_major_formatter(lambda v, _pos: f"{v:g}%")
        return data_uri(fig)


def loss_plot(actions: Sequence[str], losses: Sequence[float], errors: Sequence[float], chosen: Sequence[bool], threshold: float | None, units: str) -> str:
    """Expected loss per action as horizontal bars, +-2 MCSE whiskers, the threshold of caring dashed."""
    k = len(actions)
    with _rc():
        fig = _figure(0.9 + 0.42 * k)
        ax = fig.add_subplot()
        _style(ax)
        ax.spines["left"].set_visible(False)
        y = np.arange(k)[::-1]
        colors = [PALETTE[0] if c else "#9aa5b1" for c in chosen]
        ax.barh(y, losses, color=colors, height=0.6)
        if any(e > 0 for e in errors):
            ax.errorbar(losses, y, xerr=2 * np.asarray(errors), fmt="none", ecolor=INK, elinewidth=1, capsize=3)
        right = max([*(np.asarray(losses) + 2 * np.asarray(errors)), threshold or 0.0]) * 1.08 or 1.0
        if threshold is not None:
            ax.axvline(threshold, color="#b23a48", linestyle="--", linewidth=1.4)
            left_side = threshold > 0.55 * right
            label = "threshold of caring " if left_side else " threshold of caring"
            ax.text(threshold, k - 0.45, label, color="#b23a48", fontsize=10, va="bottom", ha="right" if left_side else "left")
            ax.set_ylim(-0.6, k - 0.1)
        ax.set_yticks(y, list(actions), fontsize=10)
        ax.tick_params(axis="y", length=0)
        ax.grid(axis="x", color=GRID, linewidth=0.8)
        ax.set_xlim(0, right)
        ax.set_xlabel(f"expected loss ({units})", fontsize=10, color=MUTED)
        return data_uri(fig)


def pit_plot(values: Sequence[float], alpha: float = 0.05) -> str:
    """ECDF of PIT values minus the uniform CDF, inside its simultaneous ``1 - alpha`` band
    (Säilynoja et al. 2022, the band ``wager.kernel.calibration`` tests with)."""
    from wager.kernel.calibration import PIT_BINS, ecdf_band

    pit = np.clip(np.asarray(values, dtype=float), 0, 1)
    ranks = np.minimum((pit * PIT_BINS).astype(np.int64), PIT_BINS - 1)
    band = ecdf_band(pit.size, PIT_BINS - 1, alpha)
    z = band.eval_points
    ecdf = np.array([np.mean(ranks + 1 <= j) for j in range(1, PIT_BINS)])
    with _rc():
        fig = _figure(2.6)
        ax = fig.add_subplot()
        ax.fill_between(z, band.lower - z, band.upper - z, color=MUTED, alpha=0.18, linewidth=0, label=f"{1 - alpha:.0%} simultaneous band")
        ax.plot(z, ecdf - z, color=INK, linewidth=1.6, label="ECDF - uniform")
        ax.axhline(0, color=MUTED, linewidth=0.8)
        ax.set_xlabel("LOO-PIT value")
        ax.legend(frameon=False, fontsize=9, loc="upper right")
        _style(ax)
        ax.spines["left"].set_visible(True)
        return data_uri(fig)


def fan_plot(title: str, history: Sequence[float], future: Sequence[str], quantiles: dict[str, Sequence[float]], units: str) -> str:
    """A fan chart: the last observed values, then the forecast median with its
    central 50%, 80% and 95% bands (quantiles keyed ``"0.025"`` ... ``"0.975"``)."""
    past = np.asarray(history, dtype=float)
    n_past, n_future = past.size, len(future)
    x_past = np.arange(-n_past, 0) + 1
    x_future = np.arange(1, n_future + 1)
    q = {k: np.asarray(v, dtype=float) for k, v in quantiles.items()}
    with _rc():
        fig = _figure(2.4)
        ax = fig.add_subplot()
        _style(ax)
        for (lo, hi), alpha in ((("0.025", "0.975"), 0.15), (("0.1", "0.9"), 0.25), (("0.25", "0.75"), 0.4)):
            if lo in q and hi in q:
                ax.fill_between(x_future, q[lo], q[hi], color=PALETTE[0], alpha=alpha, linewidth=0)
        if n_past:
            ax.plot(x_past, past, color=INK, linewidth=1.4, marker="o", markersize=2.5)
            ax.plot([x_past[-1], x_future[0]], [past[-1], q["0.5"][0]], color=PALETTE[0], linewidth=1.0, linestyle=":")
        ax.plot(x_future, q["0.5"], color=PALETTE[0], linewidth=1.6)
        ax.axvline(0.5, color=MUTED, linewidth=0.8, linestyle=":")
        ax.set_title(title, color=INK)
        ax.set_xlabel(f"periods from the forecast origin; forecast {future[0]} to {future[-1]}", fontsize=9, color=MUTED)
        ax.set_ylabel(units, fontsize=9, color=MUTED)
        ax.grid(axis="y", color=GRID, linewidth=0.8)
        return data_uri(fig)


def loss_distribution_plot(block: dict[str, Any]) -> str:
    """A risk task's simulated loss distribution (``histogram`` edges and counts), the VaR and
    TVaR at its level marked, the draws beyond the VaR shaded, and the plug-in's VaR dashed."""
    hist = block["histogram"]
    edges = np.asarray(hist["edges"], dtype=float)
    counts = np.asarray(hist["counts"], dtype=float)
    level, var, tvar = float(block["level"]), float(block["var"]), float(block["tvar"])
    plug = block.get("plug_in") or None
    centers = (edges[:-1] + edges[1:]) / 2
    with _rc():
        fig = _figure(2.7)
        ax = fig.add_subplot()
        _style(ax)
        ax.stairs(counts, edges, fill=True, color=MUTED, alpha=0.18)
        ax.stairs(np.where(centers > var, counts, 0.0), edges, fill=True, color="#b23a48", alpha=0.35)
        ax.stairs(counts, edges, color=INK, linewidth=1.0)
        ax.axvline(var, color="#b23a48", linewidth=1.6, label=f"VaR {level:g}")
        ax.axvline(tvar, color=PALETTE[3], linewidth=1.6, linestyle="-.", label=f"TVaR {level:g}")
        if plug is not None and plug.get("var") is not None:
            ax.axvline(float(plug["var"]), color=PALETTE[0], linewidth=1.4, linestyle="--", label="plug-in VaR")
        top = float(counts.max()) if counts.size and counts.max() > 0 else 1.0
        ax.set_ylim(0, top * 1.25)
        ax.set_yticks([])
        ax.legend(frameon=False, fontsize=9, loc="upper left")  # the tail, and its marks, are on the right
        ax.set_title(str(block.get("label", "Loss")), color=INK)
        ax.set_xlabel(str(block.get("units", "")), fontsize=10, color=MUTED)
        if edges[-1] - edges[0] >= 1000:  # money: 250,000 rather than 0.25 and an offset of 1e6
            ax.xaxis.set_major_formatter(lambda v, _pos: f"{v:,.0f}")
        return data_uri(fig)


def trajectory_plot(block: dict[str, Any], name: str, units: str, residual: bool = False) -> str:
    """A fusion run's smoothed state over time (``block["time"]``, ``block[name]`` with ``mean``,
    ``lo``, ``hi``): the posterior mean and its central credible band; GPS fixes as dots and the
    simulated truth dashed where the record holds them. ``residual`` draws everything minus the
    posterior mean, so a band metres wide stays visible along a track kilometres long."""
    t = np.asarray(block["time"], dtype=float)
    series = block[name]
    mean = np.asarray(series["mean"], dtype=float)
    base = mean if residual else np.zeros_like(mean)
    with _rc():
        fig = _figure(2.5)
        ax = fig.add_subplot()
        _style(ax)
        ax.fill_between(t, np.asarray(series["lo"]) - base, np.asarray(series["hi"]) - base, color=PALETTE[0], alpha=0.25, linewidth=0,
                        label=f"{block.get('level', 0.95):.0%} credible band")
        ax.plot(t, mean - base, color=PALETTE[0], linewidth=1.4, label="posterior mean")
        truth = (block.get("truth") or {}).get(name)
        if truth is not None:
            ax.plot(t, np.asarray(truth, dtype=float) - base, color=INK, linewidth=1.0, linestyle="--", label="truth (simulated)")
        gps = block.get("gps") or {}
        if name == "position" and gps.get("time"):
            gt = np.asarray(gps["time"], dtype=float)
            gy = np.asarray(gps["position"], dtype=float) - (np.interp(gt, t, mean) if residual else 0.0)
            ax.plot(gt, gy, linestyle="none", marker="o", markersize=2.5, color=PALETTE[1], label="GPS fixes")
        ax.set_title(f"{name.capitalize()}{' minus its posterior mean' if residual else ''}", color=INK)
        ax.set_xlabel("time (s)", fontsize=10, color=MUTED)
        ax.set_ylabel(units, fontsize=9, color=MUTED)
        ax.grid(axis="y", color=GRID, linewidth=0.8)
        ax.legend(frameon=False, fontsize=8, loc="best")
        return data_uri(fig)


def epidemic_plot(curve: dict[str, Any], capacity: float | None = None) -> str:
    """An SIR fit (``curve`` from the sir task): the counts as dots, the fitted ``I(t)``
    (posterior median, 50% and 90% credible bands) and the 90% posterior predictive band
    of the daily counts; the bed capacity dashed."""
    days = np.asarray(curve["days"], dtype=float)
    fitted = {k: np.asarray(v, dtype=float) for k, v in curve["infected"].items()}
    predictive = {k: np.asarray(v, dtype=float) for k, v in curve.get("predictive", {}).items()}
    with _rc():
        fig = _figure(2.7)
        ax = fig.add_subplot()
        _style(ax)
        if "0.05" in predictive and "0.95" in predictive:
            ax.fill_between(days, predictive["0.05"], predictive["0.95"], color=MUTED, alpha=0.15, linewidth=0, label="90% predictive (counts)")
        ax.fill_between(days, fitted["0.05"], fitted["0.95"], color=PALETTE[0], alpha=0.2, linewidth=0, label="90% credible I(t)")
        ax.fill_between(days, fitted["0.25"], fitted["0.75"], color=PALETTE[0], alpha=0.35, linewidth=0)
        ax.plot(days, fitted["0.5"], color=PALETTE[0], linewidth=1.6, label="posterior median I(t)")
        ax.plot(curve["observed_days"], curve["observed"], linestyle="none", marker="o", markersize=3.5, color=INK, label="counted ill")
        if capacity is not None:
            ax.axhline(float(capacity), color="#b23a48", linewidth=1.2, linestyle="--", label=f"{capacity:g} beds")
        ax.set_title("People ill per day", color=INK)
        ax.set_xlabel("day", fontsize=10, color=MUTED)
        ax.set_ylim(bottom=0)
        ax.grid(axis="y", color=GRID, linewidth=0.8)
        ax.legend(frameon=False, fontsize=8, loc="upper right")
        return data_uri(fig)


def dose_probability_plot(rows: Sequence[dict[str, Any]], target: float, units: str) -> str:
    """P(a new patient stays in the window) per candidate dose with two Monte Carlo standard
    errors as bars; the target dashed, the chosen dose filled."""
    dose = np.asarray([r["dose"] for r in rows], dtype=float)
    p = np.asarray([r["probability"] for r in rows], dtype=float)
    se = np.asarray([r["probability_se"] for r in rows], dtype=float)
    chosen = np.asarray([bool(r["chosen"]) for r in rows])
    with _rc():
        fig = _figure(2.4)
        ax = fig.add_subplot()
        _style(ax)
        ax.errorbar(dose, p, yerr=2 * se, color=PALETTE[0], linewidth=1.2, marker="o", markersize=4, capsize=2)
        if chosen.any():
            ax.plot(dose[chosen], p[chosen], linestyle="none", marker="o", markersize=9, markerfacecolor="none", color=GOOD, label="chosen")
        ax.axhline(target, color="#b23a48", linewidth=1.0, linestyle="--", label=f"target {target:g}")
        ax.set_ylim(0, 1)
        ax.set_title("P(in the therapeutic window)", color=INK)
        ax.set_xlabel(f"dose ({units})", fontsize=10, color=MUTED)
        ax.grid(axis="y", color=GRID, linewidth=0.8)
        ax.legend(frameon=False, fontsize=8, loc="upper right")
        return data_uri(fig)


def concentration_plot(curves: dict[str, Any], units: dict[str, str]) -> str:
    """Concentration per unit dose against hours after one dose: each patient's measured
    levels divided by their dose (dots), each patient's fitted median (thin lines), and the
    50% and 90% bands for a new patient from the population posterior."""
    hours = np.asarray(curves["hours"], dtype=float)
    band = {k: np.asarray(v, dtype=float) for k, v in curves["new_patient_per_unit_dose"].items()}
    with _rc():
        fig = _figure(2.7)
        ax = fig.add_subplot()
        _style(ax)
        ax.fill_between(hours, band["0.05"], band["0.95"], color=PALETTE[0], alpha=0.18, linewidth=0, label="new patient, 90%")
        ax.fill_between(hours, band["0.25"], band["0.75"], color=PALETTE[0], alpha=0.3, linewidth=0, label="new patient, 50%")
        ax.plot(hours, band["0.5"], color=PALETTE[0], linewidth=1.6)
        for i, patient in enumerate(curves["observed"]):
            colour = PALETTE[(i % (len(PALETTE) - 1)) + 1]
            fit = patient["fitted"]
            ax.plot(fit["hours"], np.asarray(fit["0.5"]) / patient["dose"], color=colour, linewidth=0.7, alpha=0.7)
            ax.plot(patient["hours"], np.asarray(patient["conc"]) / patient["dose"], linestyle="none", marker="o", markersize=2.2, color=colour)
        ax.set_title("Concentration per unit dose", color=INK)
        ax.set_xlabel("hours after the dose", fontsize=10, color=MUTED)
        ax.set_ylabel(f"{units['conc']} per {units['dose']}", fontsize=9, color=MUTED)
        ax.set_ylim(bottom=0)
        ax.grid(axis="y", color=GRID, linewidth=0.8)
        ax.legend(frameon=False, fontsize=8, loc="upper right")
        return data_uri(fig)
