"""wager: a decision engine under uncertainty.

spec -> validate -> model -> infer -> check -> decide -> record -> report.
"""

__version__ = "0.1.0"
