"""Simulation-based calibration: ranks, bands, every built-in model, and a broken engine caught.

The ranks of a true value among draws from the correct posterior are uniform
on 0..L (Talts et al. 2018); an engine whose posterior is too narrow piles the
ranks up at both ends and leaves the ECDF band (Säilynoja et al. 2022).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pytest

from wager.ab.spec import ABSpec
from wager.custom.spec import CustomSpec
from wager.kernel.calibration import chi2_bins, ecdf_band, rank_of, rank_uniformity, thin
from wager.kernel.inference import InferenceConfig, Model, infer
from wager.kernel.posterior import Posterior
from wager.kernel.calibration import Simulation
from wager.workflow.sbc import LOG_LIKELIHOOD, sbc
from wager.workflow.sbc_plots import sbc_plot

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
WHY = {"why": "a proper prior, so the prior predictive can be simulated", "source": "test"}


def shrunk_posterior(model: Model, config: InferenceConfig) -> Posterior:
    """A deliberately wrong engine: the correct posterior's draws pulled halfway to their mean."""
    posterior = infer(model, config)
    draws = {}
    for name, x in posterior.draws.items():
        centre = x.mean(axis=(0, 1), keepdims=True)
        draws[name] = centre + 0.5 * (x - centre)
    return replace(posterior, draws=draws)


def two_arms(metric: str, **stats) -> list[dict]:
    return [{"name": "A", "visitors": 60, **stats}, {"name": "B", "visitors": 90, **stats}]


CONVERSION = ABSpec(metric="conversion", arms=two_arms("conversion", conversions=5))
COUNT = ABSpec(metric="count", arms=two_arms("count", events=5))
MEAN = ABSpec(
    metric="mean",
    arms=two_arms("mean", mean=1.0, sd=1.0),
    # the default NIG prior is nearly improper: its prior predictive overflows
    priors={"mean": {"family": "normal_inverse_gamma", "params": {"loc": 0, "kappa": 0.5, "shape": 3, "scale": 2}, **WHY}},
)


# --- ranks and bands ---------------------------------------------------------


def test_rank_counts_draws_below_the_truth():
    rng = np.random.default_rng(0)
    draws = np.array([[0.1, 5.0], [0.7, 6.0], [0.3, 7.0]])
    assert rank_of(np.array([0.5, 4.0]), draws, rng).tolist() == [2, 0]
    assert int(rank_of(np.array(9.0), np.array([1.0, 2.0, 3.0]), rng)) == 3


def test_ties_are_broken_at_random_so_discrete_ranks_stay_uniform():
    rng = np.random.default_rng(1)
    ranks = [int(rank_of(np.array(1.0), np.ones(4), rng)) for _ in range(5000)]
    counts = np.bincount(ranks, minlength=5) / 5000
    assert np.allclose(counts, 0.2, atol=0.02)


def test_ranks_of_exchangeable_draws_are_uniform():
    # truth and its 19 draws all iid Normal(0, 1): the rank is uniform on 0..19 by symmetry
    rng = np.random.default_rng(2)
    x = rng.normal(size=(2000, 20))
    ranks = np.array([int(rank_of(row[0], row[1:], rng)) for row in x])
    assert np.allclose(np.bincount(ranks, minlength=20) / 2000, 1 / 20, atol=0.015)
    assert rank_uniformity(ranks, 19).passed


def test_band_covers_uniform_ranks_at_its_level_and_rejects_narrow_posteriors():
    rng = np.random.default_rng(3)
    misses = sum(not rank_uniformity(rng.integers(0, 100, size=100), 99, 0.05).passed for _ in range(300))
    assert misses / 300 < 0.10  # nominal 0.05; 300 trials give a standard error of 0.013
    # too-narrow posterior: ranks at the ends only
    ends = np.concatenate([rng.integers(0, 15, size=50), rng.integers(85, 100, size=50)])
    assert not rank_uniformity(ends, 99, 0.05).passed


def test_band_is_deterministic_and_widens_as_alpha_falls():
    a, b = ecdf_band(80, 49, 0.05), ecdf_band(80, 49, 0.005)
    assert np.all(b.lower <= a.lower) and np.all(b.upper >= a.upper)
    ecdf_band.cache_clear()
    assert np.array_equal(ecdf_band(80, 49, 0.05).lower, a.lower)


def test_thinning_keeps_evenly_spaced_draws_and_chi2_bins_divide_the_ranks():
    assert thin(np.arange(10.0), 5).tolist() == [0, 2, 4, 6, 8]
    with pytest.raises(ValueError):
        thin(np.arange(3.0), 4)
    assert chi2_bins(100, 100) == 20 and chi2_bins(30, 100) == 5 and (100 % chi2_bins(60, 100)) == 0


# --- every exact A/B metric --------------------------------------------------


@pytest.mark.parametrize("spec", [CONVERSION, COUNT, MEAN], ids=["conversion", "count", "mean"])
def test_every_exact_ab_metric_passes_sbc(spec):
    result = sbc(spec, simulations=100, seed=11)
    assert result.engine == "exact"
    assert result.passed, "\n".join(result.lines())
    names = set(result.quantities)
    assert LOG_LIKELIHOOD in names and len(names) >= 3
    assert all(0 <= r <= 99 for q in result.quantities.values() for r in q.ranks)


def test_a_posterior_shrunk_by_half_fails_sbc_and_the_correct_one_passes():
    """Acceptance: the same 100 simulations (seed 5) with the correct and the broken engine."""
    correct = sbc(CONVERSION, simulations=100, seed=5)
    broken = sbc(CONVERSION, simulations=100, seed=5, fit=shrunk_posterior)
    assert correct.passed, "\n".join(correct.lines())
    assert not broken.passed
    assert {"rate[0]", "rate[1]"} <= set(broken.failed_quantities)
    # the truth is simulated from the same seeds either way; only the posterior differs
    assert [r.seed for r in correct.replications] == [r.seed for r in broken.replications]
    # too narrow: the ranks crowd both ends
    ranks = broken.quantities["rate[0]"].ranks
    assert np.mean((ranks < 10) | (ranks > 89)) > 0.4


def test_shrunk_engine_fails_on_the_two_parameter_mean_model_too():
    broken = sbc(MEAN, simulations=100, seed=5, fit=shrunk_posterior)
    assert {"mean[0]", "variance[0]"} <= set(broken.failed_quantities)


def test_the_same_seed_gives_the_same_result_and_another_seed_another():
    one, two = sbc(COUNT, simulations=30, seed=8), sbc(COUNT, simulations=30, seed=8)
    assert one.to_json() == {**two.to_json(), "seconds": one.to_json()["seconds"]}
    other = sbc(COUNT, simulations=30, seed=9)
    assert other.quantities["rate[0]"].ranks.tolist() != one.quantities["rate[0]"].ranks.tolist()


def test_result_reads_as_json_lines_and_an_svg_plot():
    result = sbc(CONVERSION, simulations=40, seed=2, fit=shrunk_posterior)
    payload = json.loads(json.dumps(result.to_json()))
    assert payload["passed"] is False and payload["simulations"] == 40
    assert payload["alpha_per_quantity"] == pytest.approx(0.05 / 3)
    assert set(payload["quantities"]) == {"rate[0]", "rate[1]", LOG_LIKELIHOOD}
    lines = result.lines()
    assert "FAILED" in lines[0] and any("FAIL rate[0]" in line for line in lines)
    svg = sbc_plot(result)
    assert svg.startswith("<svg") and svg.rstrip().endswith("</svg>")
    assert sbc_plot(result) == svg  # deterministic bytes


def test_a_problem_may_bring_its_own_simulator():
    class Coin:
        """theta ~ Beta(2, 2); 20 flips; the exact Beta posterior."""

        spec = None

        @property
        def model(self):
            return CONVERSION_MODEL(0)

        def simulate(self, seed):
            rng = np.random.default_rng(seed)
            theta = rng.beta(2, 2)
            return Simulation({"theta": np.array(theta)}, CONVERSION_MODEL(int(rng.binomial(20, theta))))

    result = sbc(Coin(), simulations=60, seed=4)
    assert result.passed and set(result.quantities) == {"theta", LOG_LIKELIHOOD}


def CONVERSION_MODEL(heads: int) -> Model:
    from wager.kernel.closed_form import Beta
    from wager.kernel.conjugate import ExactPosterior

    post = Beta(2 + heads, 2 + 20 - heads)

    def loglik(draws):
        t = np.asarray(draws["theta"])
        return heads * np.log(t) + (20 - heads) * np.log1p(-t)

    return Model(
        name="coin",
        exact=lambda: ExactPosterior(marginals={"theta": post}, joint=lambda rng, size: {"theta": post.sample(rng, size)}),
        log_likelihood=loglik,
    )


def normal_mean_model(y):
    import numpyro
    import numpyro.distributions as dist

    mu = numpyro.sample("mu", dist.Normal(0.0, 2.0))
    numpyro.sample("y", dist.Normal(mu, 1.0), obs=y)


def normal_mean_log_likelihood(y, draws):
    from scipy import stats

    return stats.norm.logpdf(y, np.asarray(draws["mu"])[..., None], 1.0).sum(axis=-1)


def test_the_simulated_data_not_the_recorded_give_sbcs_log_likelihood():
    # a domain's NumPy log-likelihood is bound to the data it was built on (risk, science); SBC's test
    # quantity must be log p(y_sim | theta), so the simulated model computes it from the simulated data
    from functools import partial

    from scipy import stats

    from wager.workflow.sbc import log_likelihood, simulate_numpyro

    y = np.array([0.1, -0.3, 0.5])
    model = Model(name="normal", numpyro_model=normal_mean_model, data={"y": y}, log_likelihood=partial(normal_mean_log_likelihood, y))
    simulation = simulate_numpyro(model, seed=5)
    simulated = simulation.model.data["y"]
    truth = {k: np.asarray(v)[None, None] for k, v in simulation.truth.items()}
    assert not np.allclose(simulated, y)
    assert log_likelihood(simulation.model, truth).item() == pytest.approx(stats.norm.logpdf(simulated, simulation.truth["mu"], 1.0).sum(), rel=1e-5)


def factor_model(y):
    import numpyro
    import numpyro.distributions as dist

    mu = numpyro.sample("mu", dist.Normal(0.0, 1.0))
    numpyro.factor("y_term", dist.Normal(mu, 1.0).log_prob(y).sum())


@dataclass
class FactorProblem:
    """A model whose likelihood is a factor: nothing for SBC's simulator to draw (module level, so workers load it)."""

    model: Model = field(default_factory=lambda: Model(name="factor", numpyro_model=factor_model, data={"y": np.array([0.2, -0.1])}))
    spec: None = None


@pytest.mark.parametrize("backend", ["serial", "process"])
def test_an_sbc_that_cannot_apply_says_why_on_any_executor(backend):
    # on the process pool the reason came back wrapped as "task 0 failed", which `wager validate` reports as
    # an error (exit 1) where the serial executor's run reports the check as skipped
    from wager.errors import CheckNotApplicable
    from wager.executors import make_executor

    with pytest.raises(CheckNotApplicable, match="numpyro.factor"):
        sbc(FactorProblem(), simulations=4, seed=1, executor=make_executor(backend, workers=1), engine="nuts", thin_to=9,
            inference={"chains": 1, "warmup": 50, "draws": 45})


def test_bad_input_reaches_its_caller_whole_from_a_worker_process():
    import pickle

    from wager.errors import SpecError

    again = pickle.loads(pickle.dumps(SpecError("data.lloq", "must be >= 0")))
    assert (again.field, again.rule, str(again)) == ("data.lloq", "must be >= 0", "data.lloq: must be >= 0")


def test_bad_arguments_name_the_parameter():
    with pytest.raises(ValueError, match="simulations"):
        sbc(CONVERSION, simulations=0, seed=1)
    with pytest.raises(ValueError, match="seed"):
        sbc(CONVERSION, simulations=5, seed=-1)
    with pytest.raises(ValueError, match="thinned"):
        sbc(CONVERSION, simulations=5, seed=1, engine="nuts", inference={"chains": 1, "draws": 50})


# --- NUTS ----------------------------------------------------------------------

NORMAL_MODEL = '''
import numpyro
import numpyro.distributions as dist


def normal_mean(y, priors):
    mu = numpyro.sample("mu", priors["mu"])
    with numpyro.plate("obs", len(y)):
        numpyro.sample("y", dist.Normal(mu, 1.0), obs=y)
'''


def test_a_tiny_nuts_sbc_of_a_custom_model_runs_end_to_end(tmp_path):
    # a smoke test of the NumPyro path (uncondition, NumPyro log-likelihood, thinning)
    (tmp_path / "normal.py").write_text(NORMAL_MODEL)
    spec = CustomSpec.model_validate(
        {
            "domain": "model",
            "model": "normal.py:normal_mean",
            "data": {"y": [0.1, -0.3, 0.5, 1.2, 0.4]},
            "priors": {"mu": {"family": "normal", "params": {"loc": 0, "scale": 2}, **WHY}},
        }
    )
    result = sbc(spec, simulations=8, seed=3, thin_to=9, inference={"chains": 1, "warmup": 100, "draws": 45}, base_dir=tmp_path)
    assert result.engine == "nuts"
    assert set(result.quantities) == {"mu", LOG_LIKELIHOOD}
    assert result.passed, "\n".join(result.lines())


def test_revenue_model_passes_a_small_nuts_sbc():
    spends = np.array([1.0, 2.0])  # each arm's two purchases; SBC simulates its own, at these sizes
    sums = {
        "purchasers": 2, "revenue": spends.sum(), "revenue_sq": np.sum(spends**2),
        "log_revenue": np.log(spends).sum(), "log_revenue_sq": np.sum(np.log(spends) ** 2),
    }
    spec = ABSpec(
        metric="revenue",
        arms=[{"name": "A", "visitors": 40, **sums}, {"name": "B", "visitors": 40, **sums}],
        priors={
            "log_spend_mean": {"family": "normal", "params": {"loc": 3, "scale": 1}, **WHY},
            "log_spend_sd": {"family": "half_normal", "params": {"scale": 1}, **WHY},
        },
    )
    result = sbc(spec, simulations=30, seed=1, thin_to=49, inference={"chains": 1, "warmup": 300, "draws": 245})
    assert result.engine == "nuts" and "revenue_per_visitor[1]" in result.quantities
    assert result.passed, "\n".join(result.lines())




def _load(path: Path):
    import yaml

    return CustomSpec.model_validate(yaml.safe_load(path.read_text()))
