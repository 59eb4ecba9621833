"""Gates fail closed on raw floats; thresholds are configurable."""

import numpy as np
import pytest

from wager.kernel.gates import GatePolicy, check
from wager.kernel.posterior import Posterior


def sampled(x, **stats):
    chains, draws = x.shape[:2]
    base = {
        "diverging": np.zeros((chains, draws), bool),
        "energy": np.random.default_rng(9).normal(size=(chains, draws)),
        "tree_depth": np.full((chains, draws), 3),
    }
    base.update(stats)
    return Posterior(
        draws={"theta": x}, engine="nuts", reason="test", seed=0, chain_seeds=tuple(range(chains)),
        sample_stats=base, settings={"max_tree_depth": 10},
    )


def healthy(seed=0):
    return np.random.default_rng(seed).normal(size=(4, 1000))


def gate(report, name):
    return next(g for g in report.gates if g.name == name)


def test_well_mixed_chains_pass_every_gate():
    report, diag = check(sampled(healthy()), GatePolicy())
    assert report.passed, [g.describe() for g in report.gates]
    assert {g.name for g in report.gates} == {"r_hat", "ess_bulk", "ess_tail", "divergences", "e_bfmi", "tree_depth"}


def test_chains_that_disagree_fail_r_hat_with_the_measured_value():
    x = healthy() + np.array([0.0, 0.0, 0.0, 1.0])[:, None]
    report, diag = check(sampled(x), GatePolicy())
    g = gate(report, "r_hat")
    assert not g.passed and g.value > 1.01 and g.value == diag.max_rhat
    assert "r_hat FAILED" in g.describe() and "theta" in g.describe()


def test_sticky_chains_fail_ess():
    rng = np.random.default_rng(1)
    x = np.cumsum(rng.normal(size=(4, 1000)), axis=1) * 0.05  # a random walk: tiny ESS
    report, _ = check(sampled(x), GatePolicy())
    assert not gate(report, "ess_bulk").passed and not gate(report, "ess_tail").passed


def test_one_divergence_blocks_unless_the_policy_allows_it():
    div = np.zeros((4, 1000), bool)
    div[2, 500] = True
    report, _ = check(sampled(healthy(), diverging=div), GatePolicy())
    assert not report.passed and gate(report, "divergences").value == 1
    relaxed, _ = check(sampled(healthy(), diverging=div), GatePolicy(max_divergences=1))
    assert relaxed.passed


def test_e_bfmi_matches_its_definition_and_fails_below_threshold():
    rng = np.random.default_rng(2)
    energy = np.cumsum(rng.normal(size=(4, 1000)), axis=1)  # energy that barely moves between draws
    report, diag = check(sampled(healthy(), energy=energy), GatePolicy())
    # E-BFMI = sum (E_n - E_{n-1})^2 / sum (E_n - mean E)^2  (Betancourt 2016), per chain
    by_hand = [np.sum(np.diff(e) ** 2) / np.sum((e - e.mean()) ** 2) for e in energy]
    np.testing.assert_allclose(diag.bfmi, by_hand, rtol=1e-10)
    assert not gate(report, "e_bfmi").passed and gate(report, "e_bfmi").value == pytest.approx(min(by_hand))


def test_saturated_tree_depth_blocks():
    depth = np.full((4, 1000), 3)
    depth[0, :10] = 10
    report, _ = check(sampled(healthy(), tree_depth=depth), GatePolicy())
    assert gate(report, "tree_depth").value == 10 and not report.passed


def test_every_failed_gate_says_what_to_do_and_a_passed_one_says_nothing():
    """Each gate ``check`` can fail carries a remedy for the people reading a blocked run."""
    rng = np.random.default_rng(3)
    x = np.cumsum(rng.normal(size=(4, 1000)), axis=1) + np.array([0.0, 0.0, 0.0, 5.0])[:, None]  # sticky, disagreeing
    depth, div = np.full((4, 1000), 10), np.ones((4, 1000), bool)
    report, _ = check(sampled(x, diverging=div, tree_depth=depth, energy=np.cumsum(rng.normal(size=(4, 1000)), axis=1)), GatePolicy())
    assert {g.name for g in report.failed} == {"r_hat", "ess_bulk", "ess_tail", "divergences", "e_bfmi", "tree_depth"}
    assert all(g.remedy for g in report.failed)
    assert "target_accept" in gate(report, "divergences").remedy
    good, _ = check(sampled(healthy()), GatePolicy())
    assert all(g.remedy == "" for g in good.gates)
    vi = Posterior(draws={"mu": healthy()[:2]}, engine="vi", reason="test", seed=0, chain_seeds=(1, 2), settings={"pareto_k": 6.0})
    remedy = check(vi, GatePolicy())[0].gates[0].remedy
    assert "--engine nuts" in remedy and "inference.vi_steps" in remedy


def test_nan_diagnostic_fails_closed():
    x = healthy()
    x[:, :] = 1.0  # a constant: R-hat undefined
    report, _ = check(sampled(x), GatePolicy())
    assert not report.passed


def test_exact_posteriors_are_not_markov_chains():
    from wager.kernel.closed_form import Beta
    from wager.kernel.conjugate import ExactPosterior

    post = Posterior(draws={"p": np.zeros((4, 10))}, engine="exact", reason="t", seed=0, chain_seeds=(0,) * 4,
                     exact=ExactPosterior(marginals={"p": Beta(1, 1)}))
    report, diag = check(post, GatePolicy())
    assert report.passed and not report.applicable and diag is None


@pytest.mark.parametrize("k_hat, passes", [(0.5, True), (0.69, True), (0.7, False), (4.6, False), (float("nan"), False)])
def test_variational_draws_are_gated_by_pareto_k_alone(k_hat, passes):
    """Yao et al. (2018): importance-sampling estimates from the guide are reliable for k < 0.7;
    a k that could not be estimated (NaN) fails closed. 4,000 draws: PSIS's sample-size bound is above 0.7."""
    draws = {"mu": np.random.default_rng(0).normal(size=(2, 2000))}
    post = Posterior(draws=draws, engine="vi", reason="test", seed=0, chain_seeds=(1, 2), settings={"pareto_k": k_hat})
    report, diagnostics = check(post, GatePolicy())
    assert [g.name for g in report.gates] == ["pareto_k"] and diagnostics is None
    assert report.passed is passes
    assert GatePolicy(max_pareto_k=5.0).max_pareto_k == 5.0 and check(post, GatePolicy(max_pareto_k=5.0))[0].passed is (k_hat < 5.0)


@pytest.mark.parametrize("draws, bound", [(10, 0.0), (100, 0.5), (1000, 1 - 1 / 3), (2154, 0.7), (4000, 0.7), (10**6, 0.7)])
def test_psis_is_trusted_below_its_sample_size_bound(draws, bound):
    """Vehtari et al. (2024), section 3.2.4: min(1 - 1/log10(S), 0.7), ArviZ's ``good_k``
    (10**(1/0.3) = 2154.4 draws is where the bound reaches 0.7)."""
    from wager.kernel.diagnostics import reliable_pareto_k

    assert reliable_pareto_k(draws) == pytest.approx(bound, abs=1e-4)


@pytest.mark.parametrize("limit, draws, held_to", [(0.7, 100, 0.5), (0.7, 4000, 0.7), (0.4, 100, 0.4), (0.9, 100, 0.9), (1000.0, 100, 1000.0)])
def test_a_configured_pareto_k_limit_is_lowered_to_psis_bound_unless_it_overrides_psis(limit, draws, held_to):
    """What the pareto_k gate and prior reweighting hold weights to: min(limit, 1 - 1/log10(S)) up to
    0.7; a limit above 0.7 accepts weights PSIS does not vouch for and stands as given."""
    from wager.kernel.diagnostics import pareto_k_limit

    assert pareto_k_limit(limit, draws) == pytest.approx(held_to)


@pytest.mark.parametrize("draws, k_hat, passes", [(100, 0.49, True), (100, 0.6, False), (1000, 0.6, True), (1000, 0.68, False), (4000, 0.68, True)])
def test_a_variational_fit_with_few_draws_is_held_to_psis_bound(draws, k_hat, passes):
    """With 100 draws a Pareto k of 0.6 is above what PSIS can vouch for (0.5): the gate's
    threshold is lowered and says why. A policy above 0.7 accepts what PSIS does not vouch for
    anyway (a test of a decision on a poor fit) and is taken as given; one below the bound stands."""
    post = Posterior(draws={"mu": np.zeros((1, draws))}, engine="vi", reason="test", seed=0, chain_seeds=(1, 2, 3), settings={"pareto_k": k_hat})
    (gate_,) = check(post, GatePolicy())[0].gates
    assert gate_.passed is passes and gate_.threshold == pytest.approx(min(0.7, 1 - 1 / np.log10(draws)))
    assert ("1 - 1/log10" in gate_.where) is ("more draws (inference.draws) raise it" in gate_.where) is (draws < 2155)
    assert check(post, GatePolicy(max_pareto_k=5.0))[0].gates[0].passed
    assert check(post, GatePolicy(max_pareto_k=0.3))[0].gates[0].threshold == 0.3


@pytest.mark.parametrize("field", ["max_rhat", "min_ess_bulk", "min_ess_tail", "max_divergences", "min_bfmi", "max_tree_depth_hits", "max_pareto_k"])
@pytest.mark.parametrize("value", [float("inf"), float("-inf"), float("nan")])
def test_a_threshold_that_is_not_finite_is_refused_not_a_gate_switched_off(field, value):
    """``max_rhat: .inf`` would pass every chain while the run reports the gate as checked."""
    from wager.errors import SpecError
    from wager.workflow.specs import parse_spec

    with pytest.raises(SpecError, match=f"^gates.{field}: Input should be a finite number"):
        parse_spec({"arms": [{"name": "A", "visitors": 10, "conversions": 1}, {"name": "B", "visitors": 10, "conversions": 2}], "gates": {field: value}})


def test_a_gate_value_that_rounds_to_its_threshold_is_shown_with_the_digits_that_tell_them_apart():
    from wager.kernel.gates import Gate

    assert Gate("r_hat", 1.00996, 1.01, "<", False, "mu").describe() == "r_hat FAILED: 1.00996 (mu), needs < 1.01"
    assert Gate("r_hat", 1.004, 1.01, "<", True).describe() == "r_hat passed: 1.004, needs < 1.01"


def test_tied_largest_importance_ratios_are_bounded_weights_not_an_unfittable_tail():
    """An observation no parameter moves (a reading censored where every draw puts it) has constant
    ratios: ArviZ's PSIS finds no values above its cutoff and says k = inf, which would call the
    plainest Monte Carlo average unreliable. Weights whose M + 1 largest are tied are bounded (each at
    most 1 / (M + 1) of the sum), so they are used as they are, with k reported as 0."""
    import arviz as az

    from wager.kernel.calibration import loo_pit
    from wager.kernel.diagnostics import pareto_smoothed_log_weights

    constant = np.full(1000, -0.69)
    assert az.psislw(constant.copy())[1] == np.inf  # the peer's verdict this replaces
    log_w, k_hat = pareto_smoothed_log_weights(constant)
    assert k_hat == 0.0 and np.allclose(np.exp(log_w), 1 / 1000)
    # M = ceil(min(200, 3 sqrt(1000))) = 95: the 96 largest tied is bounded
    rng = np.random.default_rng(4)
    ratios = np.concatenate([np.full(96, 2.0), rng.uniform(-3, 1.9, 904)])
    log_w, k_hat = pareto_smoothed_log_weights(ratios)
    assert k_hat == 0.0 and np.isclose(np.exp(log_w).sum(), 1.0) and np.exp(log_w).max() < 1 / 96
    # a tie below three large ratios is no bound: those three carry the weight, and PSIS's inf stands
    assert pareto_smoothed_log_weights(np.concatenate([np.zeros(997), [8.0, 9.0, 10.0]]))[1] == np.inf
    # LOO-PIT of a likelihood no draw moves: the plain average of the predictive CDF, and k below PSIS's bound
    cdf = rng.uniform(size=(1000, 1))
    pit = loo_pit(np.full((1000, 1), -0.69), cdf, alpha=0.01)
    assert pit.values[0] == pytest.approx(cdf.mean()) and pit.max_pareto_k < pit.reliable_k
