"""The decision policy, fixed before the data.

``wager plan SPEC`` records a spec's decision policy (actions, losses, margins,
thresholds) before any data exists, so no one can move the goalposts after
seeing the result. A spec may omit its data at that point: only ``domain``,
``name`` and ``decision`` are read. A later run with the same domain and name
reports whether its policy still matches the latest plan, and what changed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from pydantic import TypeAdapter, ValidationError
from pydantic.fields import FieldInfo

from wager.errors import SpecError, from_pydantic
from wager.workflow.diff import Change, changes
from wager.workflow.manifest import policy_digest, policy_of


@dataclass(frozen=True)
class Policy:
    domain: str
    name: str | None
    policy: Any
    digest: str


def policy_from_payload(payload: Any) -> Policy:
    """Validate just the decision policy of a raw spec mapping (the data may not exist yet)."""
    from wager.workflow.specs import schema_for

    fields = schema_for(payload).model_fields
    domain = payload.get("domain", "ab")
    name = _validated(fields["name"], payload, "name") if "name" in fields else None
    if isinstance(name, str) and not name.strip():
        raise SpecError("name", "is blank: runs find their plan by domain and name")
    decision_field = fields["decision"]
    policy = _validated(decision_field, payload, "decision")
    dumped = TypeAdapter(decision_field.annotation).dump_python(policy, mode="json")
    return Policy(domain=domain, name=name, policy=dumped, digest=policy_digest(dumped))


def _validated(field: FieldInfo, payload: Mapping[str, Any], key: str) -> Any:
    """``payload[key]`` validated by the spec schema's own ``field`` (its default
    when absent), so a plan refuses exactly what a run of the same spec would."""
    if key not in payload:
        return field.get_default(call_default_factory=True)
    try:
        return TypeAdapter(field.rebuild_annotation()).validate_python(payload[key])
    except ValidationError as exc:
        raise from_pydantic(exc, prefix=key) from None


def policy_from_spec(spec: Any) -> Policy:
    dump = spec.model_dump(mode="json")
    policy = policy_of(dump)
    return Policy(domain=dump["domain"], name=dump.get("name"), policy=policy, digest=policy_digest(policy))


@dataclass(frozen=True)
class PlanCheck:
    """How a run's policy compares with the plan recorded for it."""

    plan_id: str
    planned_at: str
    matches: bool
    changes: tuple[Change, ...]
    runs_before: int = 0
    """Runs of this domain and name recorded before the plan: a plan made after data is no pre-registration."""

    def to_json(self) -> dict[str, Any]:
        return {
            "plan_id": self.plan_id,
            "planned_at": self.planned_at,
            "matches": self.matches,
            "changes": [c.to_json() for c in self.changes],
            "runs_before": self.runs_before,
        }

    def line(self) -> str:
        if self.matches:
            return f"Policy matches plan {self.plan_id} (recorded {self.planned_at[:19]} UTC, {self.when()})."
        listed = "; ".join(c.describe() for c in self.changes)
        return f"Policy DIFFERS from plan {self.plan_id} (recorded {self.planned_at[:19]} UTC, {self.when()}): {listed}."

    def when(self) -> str:
        if not self.runs_before:
            return "before the data"
        return f"after {self.runs_before} run{'s' if self.runs_before > 1 else ''} of this name, so not before the data"


def check_against_plan(plan: Any, policy: Policy, runs_before: int = 0) -> PlanCheck:
    """Compare ``policy`` with a recorded plan (``PlanRecord``); ``runs_before``: runs of this
    domain and name recorded before the plan."""
    found = changes(plan.policy, policy.policy, "decision", "policy")
    return PlanCheck(plan_id=plan.plan_id, planned_at=plan.created_at, matches=not found, changes=tuple(found), runs_before=runs_before)

