"""The science domain's part of the shared path: spec -> problem, by task.

============  ==================================================  ======================
task          model                                               action
============  ==================================================  ======================
sir           SIR epidemic as an ODE (diffrax), negative-         open extra beds / hold
              binomial daily counts
pk            hierarchical one-compartment pharmacokinetics,      dose D / no standard
              first-order absorption                              dose
============  ==================================================  ======================
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from wager.science.spec import ScienceSpec


def prepare(spec: ScienceSpec, base_dir: Path | None = None, **data: Any) -> Any:
    """The problem of ``spec.task``; ``table=`` passes a DataFrame in memory instead of the spec's file."""
    task = getattr(spec, "task")
    if task == "sir":
        from wager.science.sir_problem import prepare as sir

        return sir(spec, base_dir, **data)  # type: ignore[arg-type]
    from wager.science.pk_problem import prepare as pk

    return pk(spec, base_dir, **data)  # type: ignore[arg-type]
