"""The errors wager raises at its edges.

A ``SpecError`` is bad input: it names the field and the rule it broke. The
CLI turns it into exit code 2 and writes nothing.
"""

from __future__ import annotations


class WagerError(Exception):
    """Base class of every error wager raises on purpose."""


class SpecError(WagerError):
    """Bad input: ``field`` is where, ``rule`` is what it must satisfy.

    Deliberately not a ``ValueError``: raised inside a pydantic validator it
    passes through unchanged, keeping the field name it was given.
    """

    def __init__(self, field: str, rule: str) -> None:
        self.field = field
        self.rule = rule
        super().__init__(f"{field}: {rule}" if field else rule)

    def __reduce__(self) -> tuple:
        # rebuilt from field and rule, not the message: a worker process's error reaches its caller whole
        return (type(self), (self.field, self.rule))


class RegistryError(WagerError):
    """The run registry cannot do what was asked: the message names the run,
    plan or database (password masked) and the rule that was broken."""


class CheckNotApplicable(WagerError):
    """A validation check cannot apply to this model, and the message says why (a likelihood
    over a statistic the model computes, or written as a factor): ``wager validate`` reports
    the check as skipped with that reason."""


def from_pydantic(exc: "Exception", prefix: str = "") -> SpecError:
    """One ``SpecError`` from a pydantic ``ValidationError`` (its first error)."""
    errors = exc.errors()  # type: ignore[attr-defined]
    first = errors[0]
    parts = [prefix] if prefix else []
    parts += [str(p) for p in first["loc"]]
    field = ".".join(p for p in parts if p)
    rule = _rule_text(first)
    if len(errors) > 1:
        rule += f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})"
    return SpecError(field or "spec", rule)


def _rule_text(error: dict) -> str:
    kind = error.get("type", "")
    if kind == "extra_forbidden":
        return "unknown key"
    if kind == "missing":
        return "is required"
    msg = str(error.get("msg", "invalid"))
    return msg.removeprefix("Value error, ")
