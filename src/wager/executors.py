"""Executors for many fits: a local process pool (the default) and Ray.

Both honour ``wager.workflow.fanout.Executor``: ``map(fn, tasks)`` runs the
module-level function ``fn`` on every ``Task`` and returns the results in task
order. ``fn`` sees only its ``Task`` (index, seed, payload), never which worker
runs it, so a backend and its number of workers cannot change a result.

Each worker runs one task at a time on one CPU. Before anything in it imports
JAX it gets ``worker_env()``: XLA's CPU client single-threaded, the BLAS/OpenMP
thread pools and NUTS's pool of chain threads (``wager.kernel.nuts``) at one
thread, JAX on the CPU and in float64 unless the caller chose otherwise. (``run_nuts`` turns float64 on again through ``configure_jax``
when the worker first samples, exactly as it does in this process.)

- ``ProcessPoolExecutor``: ``concurrent.futures`` with the *spawn* start method,
  because forking a process that has imported JAX can deadlock. The environment
  is set by the pool's initializer. A script's ``__main__`` is re-imported in
  each worker before the initializer runs, so a script that imports NumPy or
  JAX at module level should guard its work with ``if __name__ == "__main__"``
  and keep heavy imports inside it.
- ``RayExecutor``: ``ray.init()`` on first use: a local Ray, or the cluster at
  ``address`` / ``RAY_ADDRESS``. The environment travels as a runtime
  environment, so Ray sets it before the worker process starts.

Nothing below ``wager.executors`` imports it: the CLI builds one with
``make_executor`` and passes it to the workflow.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import pickle
import warnings
from concurrent import futures
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence, TypeVar

from wager.errors import SpecError, WagerError

if TYPE_CHECKING:
    from wager.kernel.inference import ProgressFn
    from wager.workflow.fanout import Executor, Task

R = TypeVar("R")

EXECUTORS = ("serial", "process", "ray")

# One thread per worker: parallelism comes from running many workers, and
# several multi-threaded XLA clients on one machine only fight over the cores.
SINGLE_THREAD_XLA_FLAGS = ("--xla_cpu_multi_thread_eigen=false", "intra_op_parallelism_threads=1")
SINGLE_THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "WAGER_CHAIN_THREADS")


class TaskError(WagerError):
    """A task raised something other than a ``WagerError``: the message names its index and seed;
    the cause is the task's own error."""

    def __init__(self, task: "Task", cause: BaseException) -> None:
        self.index = task.index
        self.seed = task.seed
        super().__init__(f"task {task.index} (seed {task.seed}) failed: {type(cause).__name__}: {cause}")


def worker_env(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The variables every worker gets before it imports JAX.

    ``XLA_FLAGS`` keeps whatever ``environ`` (default ``os.environ``) already
    sets and appends each single-thread flag it does not set itself; the
    thread-count variables are ``"1"``; ``JAX_PLATFORMS`` (``"cpu"``) and
    ``JAX_ENABLE_X64`` (``"1"``) are defaults the caller's own values override.
    """
    environ = os.environ if environ is None else environ
    flags = environ.get("XLA_FLAGS", "").split()
    named = {flag.lstrip("-").split("=")[0] for flag in flags}
    flags += [flag for flag in SINGLE_THREAD_XLA_FLAGS if flag.lstrip("-").split("=")[0] not in named]
    env = {"XLA_FLAGS": " ".join(flags)}
    env.update({name: "1" for name in SINGLE_THREAD_VARIABLES})
    env["JAX_PLATFORMS"] = environ.get("JAX_PLATFORMS") or "cpu"
    env["JAX_ENABLE_X64"] = environ.get("JAX_ENABLE_X64") or "1"
    return env


def _enter_worker(env: Mapping[str, str]) -> None:
    """Process-pool initializer: runs in the fresh worker before any task is unpickled."""
    os.environ.update(env)


TASKS_PER_WORKER = 100
"""Tasks a worker process runs before a fresh one replaces it. JAX keeps every
program it compiles, and a model that cannot take its data as arguments is
compiled once per fit (``wager.kernel.nuts``); recycling workers bounds what a
long fan-out can accumulate, at the cost of one more compilation (a
persistent-cache hit) per 100 tasks."""


def _check_workers(workers: int | None) -> int | None:
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
        raise SpecError("workers", f"must be a positive integer, got {workers!r}")
    return workers


@dataclass
class ProcessPoolExecutor:
    """Tasks on a pool of ``workers`` spawned processes (default: the CPUs this process may use).

    A pool lives for one ``map``: it is started, used and shut down there, even
    when a task fails or the run is interrupted (running tasks are then stopped,
    not awaited).
    """

    workers: int | None = None
    name: str = field(default="process", init=False)

    def __post_init__(self) -> None:
        _check_workers(self.workers)

    def map(self, fn: Callable[["Task"], R], tasks: Sequence["Task"], progress: "ProgressFn | None" = None, label: str = "tasks") -> list[R]:
        from wager.kernel.nuts import available_cpus  # not at import: spawned workers import this module before their environment is set

        tasks = list(tasks)
        if not tasks:
            return []
        try:  # what a worker cannot receive fails here, not in the pool's feeder thread (which prints tracebacks)
            pickle.dumps((fn, tasks[0]))
        except Exception as exc:
            raise TaskError(tasks[0], exc) from exc
        pool = futures.ProcessPoolExecutor(
            max_workers=min(self.workers or available_cpus(), len(tasks)),
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_enter_worker,
            initargs=(worker_env(),),
            max_tasks_per_child=TASKS_PER_WORKER,
        )
        results: list[Any] = [None] * len(tasks)
        finished = False
        try:
            position_of = {pool.submit(fn, task): position for position, task in enumerate(tasks)}
            for done, future in enumerate(futures.as_completed(position_of), start=1):
                position = position_of[future]
                try:
                    results[position] = future.result()
                except WagerError:
                    raise  # bad input, a check that cannot apply: as the serial executor raises it
                except Exception as exc:
                    raise TaskError(tasks[position], exc) from exc
                if progress is not None:
                    progress(label, done, len(tasks))
            finished = True
        finally:
            if finished:
                pool.shutdown(wait=True)
            else:
                _stop(pool)
        return results


def _stop(pool: futures.ProcessPoolExecutor) -> None:
    """Cancel what has not started and terminate the workers: a failed or
    interrupted run should not wait for fits whose results nobody will read."""
    terminate = getattr(pool, "terminate_workers", None)  # Python >= 3.14
    if terminate is not None:
        terminate()
        return
    processes = list((pool._processes or {}).values())  # no public way before 3.14
    pool.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        process.terminate()
    for process in processes:
        process.join(timeout=10)


def _import_ray() -> Any:
    try:
        import ray
    except ImportError as exc:
        raise WagerError("the Ray executor needs Ray: pip install 'wager[ray]'") from exc
    return ray


@dataclass
class RayExecutor:
    """Tasks as Ray tasks of one CPU each, on a local Ray or the cluster at
    ``address`` (default ``RAY_ADDRESS``; neither: a new local Ray).

    Ray is initialised on the first ``map`` unless something in this process
    already did (a notebook, a test); a local Ray started here gets ``workers``
    CPUs. ``workers`` also caps how many tasks are in flight at once.
    """

    address: str | None = None
    workers: int | None = None
    name: str = field(default="ray", init=False)

    def __post_init__(self) -> None:
        _check_workers(self.workers)

    def map(self, fn: Callable[["Task"], R], tasks: Sequence["Task"], progress: "ProgressFn | None" = None, label: str = "tasks") -> list[R]:
        tasks = list(tasks)
        if not tasks:
            return []
        ray = _import_ray()
        env = worker_env()
        self._connect(ray, env)
        # The environment also rides on every task, so it holds when someone
        # else initialised Ray without it.
        remote = ray.remote(num_cpus=1, max_calls=TASKS_PER_WORKER, runtime_env={"env_vars": env})(fn)
        limit = self.workers or len(tasks)
        results: list[Any] = [None] * len(tasks)
        position_of: dict[Any, int] = {}
        in_flight: list[Any] = []
        submitted = done = 0
        try:
            while done < len(tasks):
                while submitted < len(tasks) and len(in_flight) < limit:
                    ref = remote.remote(tasks[submitted])
                    position_of[ref] = submitted
                    in_flight.append(ref)
                    submitted += 1
                ready, in_flight = ray.wait(in_flight, num_returns=1)
                for ref in ready:
                    position = position_of.pop(ref)
                    try:
                        results[position] = ray.get(ref)
                    except ray.exceptions.RayTaskError as exc:
                        cause = getattr(exc, "cause", None)
                        if isinstance(cause, WagerError):
                            raise cause from None  # as the serial executor raises it
                        # Name the task's own error, not Ray's wrapper (its remote traceback stays as the cause).
                        raise TaskError(tasks[position], cause or exc) from exc
                    except Exception as exc:  # the worker died, the task was cancelled, ...
                        raise TaskError(tasks[position], exc) from exc
                    done += 1
                    if progress is not None:
                        progress(label, done, len(tasks))
        finally:
            for ref in in_flight:
                ray.cancel(ref, force=True)
        return results

    def _connect(self, ray: Any, env: Mapping[str, str]) -> None:
        if ray.is_initialized():
            return
        address = self.address or os.environ.get("RAY_ADDRESS") or None
        options: dict[str, Any] = {}
        if address is None and self.workers is not None:
            options["num_cpus"] = self.workers  # only a Ray started here can be sized
        with warnings.catch_warnings():
            # Ray starts its processes by fork + exec, which JAX's fork hook warns of as if the child ran on
            # (the deadlock it fears needs the forked child to run JAX; an exec'd one starts afresh).
            warnings.filterwarnings("ignore", message=r"os\.fork\(\) was called", category=RuntimeWarning)
            ray.init(
                address=address,
                runtime_env={"env_vars": dict(env)},
                include_dashboard=False,
                log_to_driver=False,
                logging_level=logging.WARNING,  # not "Started a local Ray instance": wager reports its own progress
                ignore_reinit_error=True,
                **options,
            )


def make_executor(name: str = "process", workers: int | None = None, address: str | None = None) -> "Executor":
    """The executor called ``name``: ``serial``, ``process`` (default) or ``ray``."""
    if name == "serial":
        from wager.workflow.fanout import SerialExecutor

        return SerialExecutor()
    if name == "process":
        return ProcessPoolExecutor(workers=workers)
    if name == "ray":
        return RayExecutor(address=address, workers=workers)
    raise SpecError("executor", f"must be one of {', '.join(EXECUTORS)}, got {name!r}")


RAY_CONNECT_TIMEOUT = 5.0
"""Seconds to wait for a Ray cluster's address to accept a connection (Ray itself retries for minutes)."""


def check_ray_address(address: str | None, field: str = "--address") -> None:
    """Refuse, before any work, a Ray cluster address nothing answers at (Ray itself retries for
    minutes): ``host:port`` or ``ray://host:port``; ``None`` checks ``$RAY_ADDRESS`` if set
    (``auto`` and ``local`` are Ray's to resolve)."""
    if address is None:
        address, field = os.environ.get("RAY_ADDRESS") or None, "RAY_ADDRESS"
        if address is None:
            return
    import socket
    from urllib.parse import urlsplit

    if address in ("auto", "local"):
        return
    parts = urlsplit(address if "://" in address else f"ray://{address}")
    try:
        host, port = parts.hostname, parts.port
    except ValueError:
        host, port = None, None
    if not host or port is None:
        raise SpecError(field, f"must be host:port or ray://host:port (or auto); got {address!r}")
    try:
        socket.create_connection((host, port), timeout=RAY_CONNECT_TIMEOUT).close()
    except OSError as error:
        raise SpecError(field, f"nothing answers at {host}:{port} within {RAY_CONNECT_TIMEOUT:g} s ({error.strerror or error})") from None
