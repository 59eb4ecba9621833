"""The run manifest: identity hash over what changes the numbers, canonical data
hash, environment and numerics, draw hashes; and the diff that names changes."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from wager.ab.examples import FOUNDING_EXAMPLE
from wager.kernel.posterior import Posterior
from wager.workflow.diff import changes, diff_manifests
from wager.workflow.manifest import array_digest, build_manifest, data_digest
from wager.workflow.netcdf import posterior_netcdf, read_netcdf
from wager.workflow.pipeline import run
from wager.workflow.specs import parse_spec

FOUNDING = parse_spec(FOUNDING_EXAMPLE)


def founding_with(**changes_):
    payload = json.loads(json.dumps(FOUNDING_EXAMPLE))
    payload.update(changes_)
    return parse_spec(payload)


def test_the_identity_hash_is_stable_and_time_user_host_sit_outside_it():
    a, b = build_manifest(run(FOUNDING)), build_manifest(run(FOUNDING))
    assert a["identity_hash"] == b["identity_hash"]
    assert a["outputs"]["draws"] == b["outputs"]["draws"]
    assert set(a["recorded"]) == {"time", "user", "host"}
    assert "recorded" not in a["identity"]


def test_every_input_that_changes_the_numbers_changes_the_identity():
    base = build_manifest(run(FOUNDING))["identity_hash"]
    prior = {"rate": {"family": "beta", "params": {"alpha": 2, "beta": 2}, "why": "weakly central", "source": "test"}}
    variants = [
        founding_with(priors=prior),
        founding_with(inference={"seed": 7}),
        founding_with(inference={"draws": 500}),
        founding_with(decision={"min_lift": 0.004}),
        founding_with(arms=[{"name": "A", "visitors": 20000, "conversions": 1101}, {"name": "B", "visitors": 20000, "conversions": 1200}]),
    ]
    hashes = {build_manifest(run(spec))["identity_hash"] for spec in variants}
    assert base not in hashes and len(hashes) == len(variants)


def test_the_data_hash_is_of_the_numbers_not_the_file(tmp_path):
    frame = pd.DataFrame({"arm": ["A", "B"] * 3, "value": [1.0, 0.0, 2.5, 3.0, 0.0, 1.0]})
    frame.to_csv(tmp_path / "t.csv", index=False)
    frame.to_parquet(tmp_path / "t.parquet")
    from_csv = pd.read_csv(tmp_path / "t.csv")
    from_parquet = pd.read_parquet(tmp_path / "t.parquet")
    as_data = lambda f: {"value": f["value"].to_numpy(), "n": np.array([3, 3])}  # noqa: E731
    assert data_digest(as_data(from_csv))["sha256"] == data_digest(as_data(from_parquet))["sha256"]
    # row order is part of the data; so are dtype and shape
    shuffled = from_csv.iloc[::-1].reset_index(drop=True)
    assert data_digest(as_data(shuffled))["sha256"] != data_digest(as_data(from_csv))["sha256"]
    assert array_digest(np.array([1, 2, 3], dtype=np.int64)) != array_digest(np.array([1, 2, 3], dtype=np.int32))
    assert array_digest(np.zeros(6)) != array_digest(np.zeros((2, 3)))
    # byte order is not: big-endian input hashes like little-endian
    assert array_digest(np.arange(4, dtype=">f8")) == array_digest(np.arange(4, dtype="<f8"))


def test_diff_names_the_changed_prior_and_nothing_else():
    prior = {"rate": {"family": "beta", "params": {"alpha": 1, "beta": 3}, "why": "pessimistic", "source": "test"}}
    old, new = build_manifest(run(FOUNDING)), build_manifest(run(founding_with(priors=prior)))
    found = diff_manifests(old, new)
    assert set(found) == {"priors"}
    paths = {c.path for c in found["priors"]}
    assert "priors.rate.params.beta" in paths and "priors.rate.params.alpha" not in paths


def test_changes_reports_leaf_paths_with_old_and_new_values():
    found = changes({"a": {"b": 1, "c": [1, 2]}}, {"a": {"b": 2, "c": [1, 3], "d": 0}}, "x")
    assert [(c.path, c.old, c.new) for c in found] == [("x.a.b", 1, 2), ("x.a.c[1]", 2, 3), ("x.a.d", "(absent)", 0)]


def test_environment_records_versions_and_an_exact_run_never_imports_jax():
    code = (
        "import sys, json\n"
        "from wager.ab.examples import FOUNDING_EXAMPLE\n"
        "from wager.workflow.specs import parse_spec\n"
        "from wager.workflow.pipeline import run\n"
        "from wager.workflow.record import assemble, jsonable\n"
        "r = run(parse_spec(FOUNDING_EXAMPLE))\n"
        "m, payload, nc = assemble(r, {})\n"
        "print(json.dumps({'jax': 'jax' in sys.modules, 'arviz': 'arviz' in sys.modules, 'env': m['environment']}))\n"
    )
    out = json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout)
    assert out["jax"] is False and out["arviz"] is False
    env = out["env"]
    for package in ("wager", "numpyro", "jax", "jaxlib", "numpy", "scipy", "arviz"):
        assert env["versions"][package], package
    assert env["numerics"]["numpy_bit_generator"] == "PCG64"
    assert len(env["numerics_fingerprint"]) == 64


def test_the_numerics_fingerprint_tells_cpus_with_other_vector_instruction_sets_apart(monkeypatch):
    """XLA compiles for the host's instruction sets: the same NUTS run on this version and seed gave
    other draws with ``XLA_FLAGS=--xla_cpu_max_isa=AVX2`` than with AVX-512 (eight schools, mu's mean
    4.385 against 4.195; measured 2026-12-01). Two x86_64 hosts, one with AVX-512 and one without,
    must not share a fingerprint, or replay would demand bits the other cannot give."""
    from wager.workflow import manifest

    x86 = ["processor\t: 0\n", "flags\t\t: fpu sse2 ssse3 sse4_1 sse4_2 avx avx2 fma smep avx512f avx512vl constant_tsc\n", "flags\t: avx\n"]
    arm = ["Features\t: fp asimd evtstrm aes asimddp sve sve2 sme smei16i64 bf16 i8mm\n"]
    assert manifest.vector_isa(x86) == "avx avx2 avx512f avx512vl fma sse2 sse4_1 sse4_2 ssse3"
    assert manifest.vector_isa(arm) == "asimd asimddp bf16 i8mm sme smei16i64 sve sve2"
    assert manifest.vector_isa(["model name\t: a CPU\n"]) is None
    assert manifest.environment()["numerics"]["cpu"] == manifest.cpu_features()

    def fingerprint(features):
        monkeypatch.setattr(manifest, "cpu_features", lambda: features)
        return manifest.environment()["numerics_fingerprint"]

    avx2 = "avx avx2 fma sse2 sse4_1 sse4_2 ssse3"
    assert fingerprint(avx2) == fingerprint(avx2) != fingerprint(avx2 + " avx512f")


def test_without_proc_cpuinfo_macos_names_its_chip(monkeypatch):
    """No ``/proc/cpuinfo`` on macOS: its brand string ("Apple M4 Pro") fixes the instruction sets,
    where ``platform.processor()`` says only "arm" for every Apple chip."""
    import builtins
    import subprocess as sp
    from types import SimpleNamespace

    from wager.workflow import manifest

    real_open = builtins.open

    def no_proc(path, *args, **kwargs):
        if str(path) == "/proc/cpuinfo":
            raise FileNotFoundError(path)
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", no_proc)
    monkeypatch.setattr(manifest.sys, "platform", "darwin")
    monkeypatch.setattr(manifest.subprocess, "run", lambda args, **kw: SimpleNamespace(returncode=0, stdout="Apple M4 Pro\n") if args[:2] == ["sysctl", "-n"] else sp.run(args, **kw))
    assert manifest.cpu_features.__wrapped__() == "Apple M4 Pro"
    monkeypatch.setattr(manifest.sys, "platform", "win32")
    monkeypatch.setattr(manifest.platform, "processor", lambda: "Intel64 Family 6 Model 85 Stepping 7, GenuineIntel")
    assert manifest.cpu_features.__wrapped__() == "Intel64 Family 6 Model 85 Stepping 7, GenuineIntel"


@pytest.mark.parametrize("engine_stats", [False, True])
def test_draws_round_trip_through_inference_data_netcdf(tmp_path, engine_stats):
    import arviz as az

    rng = np.random.default_rng(3)
    stats = {"diverging": rng.random((2, 30)) < 0.1, "energy": rng.normal(size=(2, 30))} if engine_stats else {}
    post = Posterior(
        draws={"mu": rng.normal(size=(2, 30)), "theta": rng.normal(size=(2, 30, 8))},
        engine="nuts" if engine_stats else "exact", reason="test", seed=1, chain_seeds=(1, 2), sample_stats=stats,
    )
    data = posterior_netcdf(post)
    assert data == posterior_netcdf(post), "one posterior, one set of bytes (content addressing)"
    back = read_netcdf(data)
    for name, draws in post.draws.items():
        np.testing.assert_array_equal(back["posterior"][name], draws)
    (tmp_path / "p.nc").write_bytes(data)
    idata = az.from_netcdf(tmp_path / "p.nc")
    np.testing.assert_array_equal(idata.posterior["theta"].values, post.draws["theta"])
    if engine_stats:
        assert idata.sample_stats["diverging"].dtype == bool
        np.testing.assert_array_equal(idata.sample_stats["diverging"].values, stats["diverging"])
