"""Bring your own model: a NumPyro model function in a Python file, priors in the spec."""
