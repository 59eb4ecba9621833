"""Sensor fusion: state-space inference in JAX.

Pure functions over NamedTuples, each a ``lax.scan`` that ``jit`` compiles and
``vmap`` batches; import the submodule you need:

=====================  ==========================================================
module                 what it holds
=====================  ==========================================================
``kalman``             Kalman filter and RTS smoother (linear-Gaussian)
``extended``           extended Kalman filter and smoother (Jacobians by jacfwd)
``unscented``          unscented Kalman filter and smoother (scaled sigma points)
``particle``           bootstrap particle filter, backward-simulation smoother
``gaussian``           the update (NaN skipped) and RTS pass the Gaussian filters share
``learn``              a filter as a NumPyro likelihood: noise learned by NUTS
``validate``           checks at the edge, raising ``SpecError`` naming the field
``tracking``           GPS + accelerometer along a track (the domain's model)
``spec``, ``problem``  the ``domain: fusion`` spec and its decision
=====================  ==========================================================
"""
