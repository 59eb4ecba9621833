"""Risk: loss reserves, capital (VaR and TVaR), approve/decline thresholds.

Import the submodule you need. Measures: ``tail`` (VaR and TVaR with Monte
Carlo errors), ``backtest`` (VaR backtests), ``threshold`` (cost-optimal
thresholds), ``checks`` (posterior checks for ``wager validate``). Data and
models: ``triangle``, ``reserving`` and ``mack`` (loss reserving);
``portfolio``, ``claims`` and ``aggregate`` (claim frequency, severity and the
aggregate loss); ``garch`` (daily returns); ``credit`` (probabilities of
default). The tasks a spec names: ``reserve_problem``, ``var_problem``,
``threshold_problem``, ``claims_problem``, sharing ``problem``.
"""
