"""The risk domain's part of the shared path: spec -> problem, by task.

============  =================================================  ================
task          model                                              action
============  =================================================  ================
reserve       Bayesian chain ladder on a paid triangle (Mack     reserve
              beside it)
var           GARCH(1,1)-t on daily returns (arch's ML beside)   hold capital
threshold     Bayesian logistic regression of default            approve/decline
claims        pooled frequency and severity                      hold capital
============  =================================================  ================
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from wager.risk.spec import RiskSpec


def prepare(spec: RiskSpec, base_dir: Path | None = None, **data: Any) -> Any:
    """The problem of ``spec.task``; ``data`` passes tables in memory to the task's own
    ``prepare`` (``triangle=``, ``frame=``, ``table=``/``applicants=``, ``frequency=``/``amounts=``)."""
    task = getattr(spec, "task")
    if task == "reserve":
        from wager.risk.reserve_problem import prepare as reserve

        return reserve(spec, base_dir, **data)  # type: ignore[arg-type]
    if task == "var":
        from wager.risk.var_problem import prepare as var

        return var(spec, base_dir, **data)  # type: ignore[arg-type]
    if task == "threshold":
        from wager.risk.threshold_problem import prepare as threshold

        return threshold(spec, base_dir, **data)  # type: ignore[arg-type]
    from wager.risk.claims_problem import prepare as claims

    return claims(spec, base_dir, **data)  # type: ignore[arg-type]
