"""Pure computation: priors, posteriors, engines, gates, losses and decisions.

No files, no network, no printing. Never imports a domain.
"""
