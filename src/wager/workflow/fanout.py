"""Many independent fits at once: the interface every executor honours.

Work that fans out (simulation-based calibration, operating characteristics,
sensitivity refits) is a list of ``Task``\\ s and one picklable, module-level
function ``fn(task) -> result``. An executor runs ``fn`` on every task and
returns the results **in task order**. Each task carries its own seed,
``derive_seed(base_seed, stream, task.index)``: it depends on the task's stable
index only, never on which worker ran it, in what order, or how many workers
there were, so every backend gives the same results for the same seed.

The workflow layer only needs this interface and the in-process
``SerialExecutor`` (tests, debugging). The process pool (spawn start method:
forking a process that imported JAX can deadlock) and Ray live with the other
surfaces in ``wager.executors``; the command line picks one and passes it in.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Protocol, Sequence, TypeVar

from wager.kernel.inference import ProgressFn
from wager.kernel.seeds import derive_seed

R = TypeVar("R")


@dataclass(frozen=True)
class Task:
    """One unit of fanned-out work: a stable ``index``, its ``seed``, and a payload."""

    index: int
    seed: int
    payload: Any = None


def make_tasks(base_seed: int, stream: int, payloads: Sequence[Any]) -> list[Task]:
    """Tasks ``0..n-1``; task ``i`` gets ``derive_seed(base_seed, stream, i)``.

    ``stream`` keeps the seeds of one kind of work (say, SBC replications)
    apart from another's (the chain seeds use ``derive_seed(seed, chain)``).
    """
    return [Task(index=i, seed=derive_seed(base_seed, stream, i), payload=p) for i, p in enumerate(payloads)]


class Executor(Protocol):
    """Runs ``fn`` on every task; results in task order. A task's ``WagerError`` (bad input, a check
    that cannot apply) reaches the caller as raised, whatever the backend, so it means what it means
    in this process; any other error comes wrapped in ``wager.executors.TaskError``, naming the task."""

    name: str

    def map(self, fn: Callable[[Task], R], tasks: Sequence[Task], progress: ProgressFn | None = None, label: str = "tasks") -> list[R]: ...


@dataclass
class SerialExecutor:
    """Every task in this process, one after another."""

    name: str = field(default="serial")

    def map(self, fn: Callable[[Task], R], tasks: Sequence[Task], progress: ProgressFn | None = None, label: str = "tasks") -> list[R]:
        results = []
        for done, task in enumerate(tasks, start=1):
            results.append(fn(task))
            if progress is not None:
                progress(label, done, len(tasks))
        return results
