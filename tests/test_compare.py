"""Closed forms and quadrature against independently computed references.

References are computed here with scipy.stats densities and scipy.integrate.quad
(adaptive Gauss-Kronrod), a different method from wager's fixed-panel
Gauss-Legendre rule and from Evan Miller's exact sum.
"""

import numpy as np
import pytest
from scipy import integrate, stats

from wager.kernel import compare
from wager.kernel.closed_form import Affine, Beta, Gamma, Normal


def quad(f, lo, hi, points=()):
    value, err = integrate.quad(f, lo, hi, points=sorted(points) or None, epsabs=1e-14, epsrel=1e-13, limit=1000)
    assert err < 1e-10
    return value


def beta_posterior(conversions, visitors):
    return Beta(1 + conversions, 1 + visitors - conversions)


def prob_b_beats_a_by_quadrature(a: Beta, b: Beta, margin=0.0):
    fa, sb = stats.beta(a.alpha, a.beta), stats.beta(b.alpha, b.beta)
    return quad(lambda x: fa.pdf(x) * sb.sf(x + margin), 0, 1, points=[a.mean, b.mean - margin])


@pytest.mark.parametrize(
    "a, b",
    [((49, 100), (51, 100)), ((10, 100), (15, 100)), ((100, 1000), (120, 1000)), ((4, 200), (10, 200)), ((1, 10), (4, 10))],
)
def test_prob_b_beats_a_matches_quadrature_to_1e9(a, b):
    A, B = beta_posterior(*a), beta_posterior(*b)
    reference = prob_b_beats_a_by_quadrature(A, B)
    assert compare.prob_beta_greater(A, B) == pytest.approx(reference, abs=1e-9)
    assert compare.prob_beta_greater(B, A) == pytest.approx(1 - reference, abs=1e-9)
    assert compare.prob_difference_above(A, B, 0.0) == pytest.approx(reference, abs=1e-9)


def test_non_integer_shapes_fall_back_to_quadrature():
    A, B = Beta(10.5, 90.5), Beta(15.5, 85.5)
    assert compare.prob_beta_greater(A, B) == pytest.approx(prob_b_beats_a_by_quadrature(A, B), abs=1e-9)


def test_prob_lift_above_margin_matches_quadrature():
    A, B = beta_posterior(1100, 20000), beta_posterior(1200, 20000)
    for margin in (0.0, 0.002, 0.005, 0.01):
        assert compare.prob_difference_above(A, B, margin) == pytest.approx(
            prob_b_beats_a_by_quadrature(A, B, margin), abs=1e-9
        )


def test_prob_best_of_three_matches_quadrature_and_sums_to_one():
    dists = [beta_posterior(30, 1000), beta_posterior(38, 1000), beta_posterior(35, 1000)]
    frozen = [stats.beta(d.alpha, d.beta) for d in dists]
    for i, fi in enumerate(frozen):
        others = [f for j, f in enumerate(frozen) if j != i]
        ref = quad(lambda x: fi.pdf(x) * np.prod([f.cdf(x) for f in others]), 0, 0.1, points=[d.mean for d in dists])
        assert compare.prob_best(dists)[i] == pytest.approx(ref, abs=1e-9)
    assert compare.prob_best(dists).sum() == pytest.approx(1, abs=1e-12)


def test_expected_regret_of_two_normals_has_a_closed_form():
    # For D = X_b - X_a ~ N(d, s): E[max(D, 0)] = s phi(d/s) + d Phi(d/s)
    a, b = Normal(1.0, 0.3), Normal(1.2, 0.4)
    d, s = 0.2, 0.5
    loss_keep_a = s * stats.norm.pdf(d / s) + d * stats.norm.cdf(d / s)
    loss_ship_b = loss_keep_a - d
    assert compare.expected_regret([a, b]) == pytest.approx([loss_keep_a, loss_ship_b], abs=1e-10)


def test_shifted_and_scaled_distributions_compare_net_of_a_margin():
    a, b = Gamma(50, 1000), Gamma(60, 1000)
    margin = 0.005
    net = compare.prob_best([Affine(a, 1.0, margin), b])[1]
    assert net == pytest.approx(compare.prob_difference_above(a, b, margin), abs=1e-10)


def test_gamma_chance_to_win_has_a_beta_closed_form():
    # X ~ G(a1, r1), Y ~ G(a2, r2): with U = r1 X, V = r2 Y ~ G(., 1), V / (U + V) ~ Beta(a2, a1)
    # and P(Y < X) = P(V / (U + V) < r2 / (r1 + r2)) = I_{r2/(r1+r2)}(a2, a1)
    from scipy import special

    x, y = Gamma(40, 900), Gamma(55, 1000)
    closed = special.betainc(y.shape, x.shape, y.rate / (x.rate + y.rate))
    assert compare.prob_difference_above(x, y, 0.0) == pytest.approx(1 - closed, abs=1e-10)


def test_lift_densities_integrate_to_the_distribution():
    A, B = beta_posterior(10, 100), beta_posterior(15, 100)
    # d/dt P(Y > t) = -density(t): check by a central difference
    for t in (-0.05, 0.0, 0.05):
        h = 1e-5
        slope = (compare.prob_difference_above(A, B, t + h) - compare.prob_difference_above(A, B, t - h)) / (2 * h)
        assert -slope == pytest.approx(compare.density_of_difference(A, B, t), rel=1e-6)
        slope = (compare.prob_ratio_above(A, B, t + h) - compare.prob_ratio_above(A, B, t - h)) / (2 * h)
        assert -slope == pytest.approx(compare.density_of_ratio(A, B, t), rel=1e-6)


def test_lift_quantiles_invert_the_lift_distribution():
    A, B = beta_posterior(1100, 20000), beta_posterior(1200, 20000)
    q = compare.quantiles_of(
        lambda t: compare.prob_difference_above(A, B, t), lambda t: compare.density_of_difference(A, B, t),
        [0.025, 0.5, 0.975], -0.1, 0.1,
    )
    assert compare.prob_difference_above(A, B, q) == pytest.approx([0.975, 0.5, 0.025], abs=1e-9)
    # the interval's story agrees with the chance to win: P(B > A) > 97.5% iff the lower bound is above 0
    assert (q[0] > 0) == (compare.prob_beta_greater(A, B) > 0.975)
