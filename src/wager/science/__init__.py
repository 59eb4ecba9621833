"""Scientific models: an SIR epidemic solved as an ODE (``wager.science.sir``) and a
hierarchical one-compartment pharmacokinetic model (``wager.science.pk``), each with
a decision on the shared path (``wager.science.domain``)."""
