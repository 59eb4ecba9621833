"""The SBC plot: per quantity, the ECDF difference ``ECDF(z) - z`` of the
fractional ranks with its simultaneous band (Säilynoja et al. 2022, fig. 3).

A correct engine stays inside every grey band; a posterior too narrow bends
the curve into an S below then above zero (ranks pile up at both ends), one
too wide into the reverse, a biased one to one side. Drawn on a bare
``matplotlib.figure.Figure`` (no pyplot), saved as SVG text with text as paths
and no date, so one result always gives the same bytes. matplotlib is imported
only when a plot is asked for.
"""

from __future__ import annotations

import io
import math

import numpy as np

from wager.workflow.report_plots import GRID, INK, MUTED, PALETTE
from wager.workflow.sbc import SBCResult

MAX_PANELS = 24
BAD = "#b23a48"


def sbc_plot(result: SBCResult, columns: int = 3) -> str:
    """SVG text (``<svg ...>``) of the ECDF-difference plots, one panel per quantity."""
    import matplotlib
    from matplotlib.figure import Figure

    names = list(result.quantities)[:MAX_PANELS]
    columns = max(1, min(columns, len(names)))
    rows = math.ceil(len(names) / columns)
    fig = Figure(figsize=(2.4 * columns, 1.9 * rows + 0.5), layout="constrained")
    verdict = "passed" if result.passed else "failed"
    fig.suptitle(
        f"SBC of {result.model} ({result.engine}): {verdict}; {result.simulations} simulations, "
        f"band level {result.alpha_per_quantity:.2g} per quantity",
        fontsize=9,
        color=INK,
    )
    axes = fig.subplots(rows, columns, squeeze=False, sharex=True)
    for ax, name in zip(axes.flat, names):
        q = result.quantities[name]
        band = q.uniformity.band
        z = band.eval_points
        ax.fill_between(z, band.lower - z, band.upper - z, color=GRID, step="mid", linewidth=0)
        ax.axhline(0.0, color=MUTED, linewidth=0.6)
        ax.step(z, q.uniformity.ecdf - z, where="mid", color=PALETTE[0] if q.passed else BAD, linewidth=1.2)
        ax.set_title(name + ("" if q.passed else " (fails)"), fontsize=8, color=INK if q.passed else BAD, loc="left")
        ax.tick_params(labelsize=7, colors=MUTED)
        ax.spines[["top", "right"]].set_visible(False)
        ax.set_xlim(0, 1)
    for ax in list(axes.flat)[len(names):]:
        ax.set_visible(False)
    for ax in axes[-1]:
        ax.set_xlabel("fractional rank", fontsize=8, color=INK)
    for ax in axes[:, 0]:
        ax.set_ylabel("ECDF difference", fontsize=8, color=INK)
    buffer = io.BytesIO()
    with matplotlib.rc_context({"svg.fonttype": "path", "svg.hashsalt": "wager"}):
        fig.savefig(buffer, format="svg", metadata={"Date": None, "Creator": None})
    text = buffer.getvalue().decode("utf-8")
    return text[text.index("<svg") :]


def quantity_curve(result: SBCResult, name: str) -> tuple[np.ndarray, np.ndarray]:
    """``(z, ECDF(z) - z)`` of one quantity: the plotted curve, for tests and other renderers."""
    q = result.quantities[name]
    return q.uniformity.band.eval_points, q.uniformity.ecdf - q.uniformity.band.eval_points
