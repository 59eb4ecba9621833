"""Noise levels learned by NUTS through the Kalman filter's likelihood: on the Nile
series, the local level model's posterior for its two variances, beside
statsmodels' maximum-likelihood ``UnobservedComponents(..., "local level")`` run
side by side, covers each MLE with its central 95% interval."""

import numpy as np
import pytest

from wager.errors import SpecError
from wager.fusion.learn import build_local_level
from wager.kernel.diagnostics import diagnose
from wager.kernel.inference import InferenceConfig, infer
from wager.kernel.priors import Prior

SOURCE = "wager.fusion tests; Durbin & Koopman (2012), section 2.2 (the Nile series)"
PRIORS = {
    "obs_sd": Prior(family="half_normal", params={"scale": 300.0}, source=SOURCE,
                    why="Annual Nile flow is about 900 (10^8 m^3); a measurement error sd above a third of that is implausible."),
    "level_sd": Prior(family="half_normal", params={"scale": 150.0}, source=SOURCE,
                      why="The level moves year to year by a fraction of the flow; half-normal(150) allows 0 and moves of up to ~300."),
    "initial_level": Prior(family="normal", params={"loc": 1000.0, "scale": 500.0}, source=SOURCE,
                           why="The 1871 level is about 1000 give or take a factor two: vague against 100 observations."),
}


@pytest.fixture(scope="module")
def nile() -> np.ndarray:
    from statsmodels.datasets import nile

    return nile.load_pandas().data["volume"].to_numpy(dtype=float)


@pytest.fixture(scope="module")
def mle(nile):
    import statsmodels.api as sm

    result = sm.tsa.UnobservedComponents(nile, "local level").fit(disp=False)
    return {"obs_var": float(result.params[0]), "level_var": float(result.params[1])}


@pytest.fixture(scope="module")
def posterior(nile):
    config = InferenceConfig(engine="nuts", chains=2, warmup=500, draws=1000, seed=7)
    return infer(build_local_level(nile, PRIORS), config)


def test_nuts_variances_of_the_nile_local_level_cover_statsmodels_maximum_likelihood(posterior, mle):
    # statsmodels 0.15: sigma2.irregular 15078, sigma2.level 1479 (Durbin & Koopman's 15099 and 1469.1)
    assert mle["obs_var"] == pytest.approx(15099, rel=0.01) and mle["level_var"] == pytest.approx(1469, rel=0.02)
    checks = diagnose(posterior)
    assert checks.divergences == 0 and max(v.rhat for v in checks.variables.values()) < 1.01
    for name in ("obs_var", "level_var"):
        draws = posterior.flat(name)
        lo, median, hi = np.quantile(draws, [0.025, 0.5, 0.975])
        print(f"{name}: posterior median {median:.0f}, 95% interval ({lo:.0f}, {hi:.0f}); statsmodels MLE {mle[name]:.0f}")
        assert lo < mle[name] < hi


def test_missing_years_are_skipped_and_the_posterior_barely_moves(nile, posterior):
    # Ten years removed (NaN) from the middle: the model still fits, on 90 years.
    gappy = nile.copy()
    gappy[40:50] = np.nan
    config = InferenceConfig(engine="nuts", chains=2, warmup=500, draws=1000, seed=7)
    thinner = infer(build_local_level(gappy, PRIORS), config)
    full, less = np.median(posterior.flat("obs_var")), np.median(thinner.flat("obs_var"))
    assert abs(np.log(less / full)) < 0.3


def test_the_local_level_needs_its_documented_priors_and_declared_missing_values(nile):
    with pytest.raises(SpecError) as missing_prior:
        build_local_level(nile, {k: v for k, v in PRIORS.items() if k != "level_sd"})
    assert missing_prior.value.field == "priors.level_sd"
    gappy = nile.copy()
    gappy[3] = np.nan
    with pytest.raises(SpecError) as not_allowed:
        build_local_level(gappy, PRIORS, allow_missing=False, field="data.y")
    assert not_allowed.value.field == "data.y" and "the first at row 4," in not_allowed.value.rule
