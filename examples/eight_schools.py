"""The eight-schools model (Rubin 1981; Gelman et al., BDA3, sec. 5.5), in two forms.

School ``j`` reports an estimated coaching effect ``y[j]`` with known standard
error ``sigma[j]`` (``eight_schools.csv``: schools A to H, one row each)::

    mu    ~ priors["mu"]                  population mean effect
    tau   ~ priors["tau"]                 between-school spread
    theta ~ Normal(mu, tau)               each school's true effect, j = 1..J
    y     ~ Normal(theta, sigma)          its measurement

``J = len(y)``. The two functions below are the same joint distribution
written two ways. The *centered* form samples ``theta`` directly: as ``tau``
shrinks, ``theta`` is squeezed into a funnel whose neck NUTS cannot enter with
one step size (divergences, poor mixing of ``tau``). The *non-centered* form
samples ``theta_tilde ~ Normal(0, 1)`` and sets ``theta = mu + tau *
theta_tilde``, which removes the funnel (Betancourt & Girolami 2015).

The priors are looked up by name in the spec (``priors["mu"]``), so the file
holds no prior choice of its own to defend.
"""

import numpyro
import numpyro.distributions as dist


def centered(y, sigma, priors):
    """theta[j] ~ Normal(mu, tau), sampled as is: the funnel."""
    mu = numpyro.sample("mu", priors["mu"])
    tau = numpyro.sample("tau", priors["tau"])
    with numpyro.plate("school", len(y)):
        theta = numpyro.sample("theta", dist.Normal(mu, tau))
        numpyro.sample("y", dist.Normal(theta, sigma), obs=y)


def noncentered(y, sigma, priors):
    """theta[j] = mu + tau * theta_tilde[j], theta_tilde[j] ~ Normal(0, 1): no funnel."""
    mu = numpyro.sample("mu", priors["mu"])
    tau = numpyro.sample("tau", priors["tau"])
    with numpyro.plate("school", len(y)):
        theta_tilde = numpyro.sample("theta_tilde", dist.Normal(0.0, 1.0))
        theta = numpyro.deterministic("theta", mu + tau * theta_tilde)
        numpyro.sample("y", dist.Normal(theta, sigma), obs=y)
