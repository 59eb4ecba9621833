"""Risk: tail measures of a loss distribution, VaR backtests, and cost-optimal
approve/decline thresholds from probabilities of default.

Pure NumPy/SciPy; import the submodule you need (``wager.risk.tail``,
``wager.risk.backtest``, ``wager.risk.threshold``).
"""
