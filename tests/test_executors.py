"""Executors: every backend and worker count gives the same results, in task order.

The task functions live at module level so spawned processes and Ray workers
can load them; each reads nothing but its ``Task``.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
import warnings

import numpy as np
import pytest

from wager.errors import SpecError, WagerError
from wager.executors import ProcessPoolExecutor, RayExecutor, TaskError, make_executor, worker_env
from wager.kernel.inference import InferenceConfig, Model, infer
from wager.workflow.fanout import SerialExecutor, make_tasks

DATA = np.array([0.3, -0.1, 0.8, 0.4, 1.2, 0.1, 0.5, -0.4])


def normal_draws(task):
    """Three standard normal draws from the task's own seed."""
    return task.index, np.random.default_rng(task.seed).normal(size=3).tolist()


def normal_mean_model(y):
    import numpyro
    import numpyro.distributions as dist

    mu = numpyro.sample("mu", dist.Normal(0.0, 1.0))
    numpyro.sample("y", dist.Normal(mu, 1.0), obs=y)


def normal_mean_fit(task):
    """A small NUTS fit (1 chain, 100 + 100) seeded by the task; its draws of ``mu``."""
    model = Model(name="normal-mean", numpyro_model=normal_mean_model, data={"y": DATA * task.payload})
    config = InferenceConfig(engine="nuts", seed=task.seed, chains=1, warmup=100, draws=100)
    return infer(model, config)["mu"]


def slower_for_earlier_tasks(task):
    time.sleep(0.05 * (4 - task.index))
    return task.index


def fails_on_task_two(task):
    if task.index == 2:
        raise ValueError("no data for this replication")
    return task.index


def worker_settings(task):
    from wager.kernel.nuts import chain_threads

    names = ("XLA_FLAGS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "JAX_PLATFORMS", "JAX_ENABLE_X64")
    return {**{name: os.environ.get(name) for name in names}, "chain_threads": chain_threads(4)}


@pytest.fixture(scope="module")
def local_ray():
    """One local Ray for this module, started the way users start it: by the
    first ``RayExecutor.map`` (``ray.init()`` with ``workers`` CPUs). Its own
    temporary directory lets two pytest-xdist workers each start one."""
    ray = pytest.importorskip("ray", reason="ray is not installed: pip install 'wager[ray]'")
    from ray import cloudpickle

    temp_dir = tempfile.mkdtemp(prefix="ray-", dir="/tmp")  # short: Ray's socket paths must fit 107 bytes
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("RAY_ADDRESS", raising=False)
        patch.setenv("RAY_TMPDIR", temp_dir)
        # Ray workers cannot import this test module by name: ship its functions by value.
        cloudpickle.register_pickle_by_value(sys.modules[__name__])
        try:
            assert not ray.is_initialized()
            import jax

            jax.numpy.zeros(1).block_until_ready()  # JAX's threads running, as in a CLI run that fitted before
            with warnings.catch_warnings(record=True) as seen:
                warnings.simplefilter("always")
                RayExecutor(workers=2).map(normal_draws, make_tasks(1, 0, [None]))
            # Ray forks and execs its daemons after this process imported JAX: exec leaves nothing of
            # JAX's threads behind, so JAX's fork warning is a false alarm the executor keeps from users
            assert not [w for w in seen if "os.fork()" in str(w.message)]
            assert ray.cluster_resources()["CPU"] == 2
            yield ray
        finally:
            ray.shutdown()
            cloudpickle.unregister_pickle_by_value(sys.modules[__name__])
            shutil.rmtree(temp_dir, ignore_errors=True)


@pytest.fixture(params=["process", "ray"])
def backend(request):
    if request.param == "ray":
        request.getfixturevalue("local_ray")
    return request.param


def test_draws_are_identical_on_every_backend_and_any_number_of_workers(backend):
    tasks = make_tasks(base_seed=7, stream=0, payloads=[None] * 5)
    expected = SerialExecutor().map(normal_draws, tasks)
    assert [index for index, _ in expected] == [0, 1, 2, 3, 4]
    assert make_executor(backend, workers=1).map(normal_draws, tasks) == expected
    assert make_executor(backend, workers=2).map(normal_draws, tasks) == expected


def test_nuts_fits_are_identical_in_this_process_and_on_fresh_workers(backend):
    # Serially the second fit runs in a process that has already compiled and
    # sampled; with two workers each fit runs in a fresh one. (One worker would
    # repeat the serial case, at the cost of another JAX start-up.)
    tasks = make_tasks(base_seed=11, stream=1, payloads=[1.0, 2.0])
    expected = SerialExecutor().map(normal_mean_fit, tasks)
    assert expected[0].shape == (1, 100) and not np.array_equal(expected[0], expected[1])
    got = make_executor(backend, workers=2).map(normal_mean_fit, tasks)
    for mine, theirs in zip(got, expected):
        np.testing.assert_array_equal(mine, theirs)


def test_results_come_in_task_order_and_progress_counts_every_task(backend):
    # Task 0 sleeps longest, so tasks finish roughly in reverse order.
    tasks = make_tasks(base_seed=1, stream=0, payloads=[None] * 4)
    calls = []
    results = make_executor(backend, workers=2).map(slower_for_earlier_tasks, tasks, progress=lambda *call: calls.append(call), label="SBC")
    assert results == [0, 1, 2, 3]
    assert calls == [("SBC", done, 4) for done in (1, 2, 3, 4)]


def test_a_failing_task_is_named_by_its_index(backend):
    tasks = make_tasks(base_seed=1, stream=0, payloads=[None] * 4)
    with pytest.raises(TaskError, match=r"task 2 \(seed \d+\) failed: ValueError: no data for this replication$") as failure:
        make_executor(backend, workers=2).map(fails_on_task_two, tasks)
    assert failure.value.index == 2 and failure.value.seed == tasks[2].seed


def refuses_task_one(task):
    if task.index == 1:
        raise SpecError("data.lloq", "every concentration is at or below it (50)")
    return task.index


def test_bad_input_in_a_task_reaches_the_caller_as_raised_on_every_backend(backend):
    # as the serial executor raises it: `wager validate` reads a SpecError or CheckNotApplicable from a worker
    # as what it means (SBC failed on a simulated dataset; SBC skipped), not as "task 1 failed"
    tasks = make_tasks(base_seed=1, stream=0, payloads=[None] * 3)
    for executor in (SerialExecutor(), make_executor(backend, workers=2)):
        with pytest.raises(SpecError) as refused:
            executor.map(refuses_task_one, tasks)
        assert (refused.value.field, refused.value.rule) == ("data.lloq", "every concentration is at or below it (50)")


def test_workers_run_single_threaded_jax_on_the_cpu(backend):
    [settings] = make_executor(backend, workers=1).map(worker_settings, make_tasks(1, 0, [None]))
    assert "--xla_cpu_multi_thread_eigen=false" in settings["XLA_FLAGS"]
    assert "intra_op_parallelism_threads=1" in settings["XLA_FLAGS"]
    assert settings["OMP_NUM_THREADS"] == settings["OPENBLAS_NUM_THREADS"] == settings["MKL_NUM_THREADS"] == "1"
    assert settings["chain_threads"] == 1  # the workers are the parallelism: no pool of chain threads in each
    assert settings["JAX_PLATFORMS"] == "cpu"


def test_worker_env_keeps_the_callers_xla_flags_and_jax_choices():
    env = worker_env({"XLA_FLAGS": "--xla_dump_to=/tmp/x --xla_cpu_multi_thread_eigen=true", "JAX_ENABLE_X64": "0"})
    assert env["XLA_FLAGS"] == "--xla_dump_to=/tmp/x --xla_cpu_multi_thread_eigen=true intra_op_parallelism_threads=1"
    assert env["JAX_ENABLE_X64"] == "0" and env["JAX_PLATFORMS"] == "cpu"
    assert worker_env({})["XLA_FLAGS"] == "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"


def test_make_executor_knows_serial_process_and_ray_and_rejects_the_rest():
    assert isinstance(make_executor("serial"), SerialExecutor)
    assert make_executor().name == "process" and make_executor(workers=3).workers == 3
    ray = make_executor("ray", workers=2, address="ray://head:10001")
    assert isinstance(ray, RayExecutor) and (ray.name, ray.address, ray.workers) == ("ray", "ray://head:10001", 2)
    with pytest.raises(SpecError, match="executor: must be one of serial, process, ray") as bad:
        make_executor("dask")
    assert bad.value.field == "executor"
    with pytest.raises(SpecError, match="workers"):
        ProcessPoolExecutor(workers=0)


def test_ray_executor_without_ray_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # makes `import ray` fail
    with pytest.raises(WagerError, match=r"pip install 'wager\[ray\]'"):
        RayExecutor().map(normal_draws, make_tasks(1, 0, [None]))


def test_no_tasks_start_no_workers():
    assert ProcessPoolExecutor(workers=2).map(normal_draws, []) == []


def test_a_task_no_worker_can_receive_is_named_before_any_worker_starts(monkeypatch):
    # a payload holding a lambda cannot be pickled: the pool's feeder thread used to fail on it and print
    # a traceback of its own (concurrent.futures' InvalidStateError) beside the error
    from concurrent import futures

    def no_pool(*args, **kwargs):
        raise AssertionError("a pool was started for tasks no worker can receive")

    monkeypatch.setattr(futures, "ProcessPoolExecutor", no_pool)
    tasks = make_tasks(base_seed=1, stream=0, payloads=[lambda x: x] * 3)
    with pytest.raises(TaskError, match=r"task 0 \(seed \d+\) failed: .*pickle") as failure:
        ProcessPoolExecutor(workers=2).map(normal_draws, tasks)
    assert failure.value.index == 0


def test_sbc_is_identical_on_the_process_pool_and_on_ray(local_ray):
    """The acceptance test of the fan-out: one seed, one answer, whichever backend ran it."""
    from wager.ab.examples import FOUNDING_EXAMPLE
    from wager.workflow.sbc import sbc
    from wager.workflow.specs import parse_spec

    spec = parse_spec(FOUNDING_EXAMPLE)
    on_pool = sbc(spec, simulations=12, seed=3, executor=ProcessPoolExecutor(workers=2))
    on_ray = sbc(spec, simulations=12, seed=3, executor=RayExecutor(workers=2))
    serial = sbc(spec, simulations=12, seed=3)
    assert set(on_pool.quantities) == set(on_ray.quantities) == {"rate[0]", "rate[1]", "log_likelihood"}
    for name in on_pool.quantities:
        np.testing.assert_array_equal(on_pool.quantities[name].ranks, on_ray.quantities[name].ranks)
        np.testing.assert_array_equal(on_pool.quantities[name].ranks, serial.quantities[name].ranks)
