"""Loading and validating specs: YAML/JSON files or Python dicts, one error type.

The ``domain`` key picks the schema; a domain with several tasks (``risk``)
picks the task's schema by ``task``. Anything wrong raises ``SpecError`` naming
the field and the rule; nothing is run and nothing is written.
"""

from __future__ import annotations

import re

from pathlib import Path
from typing import Any, Hashable, Mapping

import yaml
from pydantic import BaseModel, ValidationError

from wager.errors import SpecError, from_pydantic


def schemas() -> dict[str, type[BaseModel]]:
    """Domain name -> spec schema."""
    from wager.ab.spec import ABSpec
    from wager.custom.spec import CustomSpec
    from wager.forecast.spec import ForecastSpec
    from wager.fusion.spec import FusionSpec
    from wager.risk.spec import RiskSpec
    from wager.science.spec import ScienceSpec

    return {"ab": ABSpec, "model": CustomSpec, "forecast": ForecastSpec, "risk": RiskSpec, "fusion": FusionSpec, "science": ScienceSpec}


def task_schema(domain: str, tasks: Mapping[str, type[BaseModel]], payload: Mapping[str, Any]) -> type[BaseModel]:
    """The schema of the task ``payload["task"]`` names, for a domain with several
    tasks (its schema's ``tasks``), or ``SpecError`` at ``task``."""
    task = payload.get("task")
    if task is None:
        raise SpecError("task", f"is required for domain {domain}: one of {', '.join(tasks)}")
    if task not in tasks:
        raise SpecError("task", f"unknown task {task!r}; one of {', '.join(tasks)}")
    return tasks[task]


def schema_for(payload: Any) -> type[BaseModel]:
    """The schema of a raw spec mapping, picked by its ``domain`` key (default ``ab``)."""
    if not isinstance(payload, Mapping):
        raise SpecError("spec", f"must be a mapping of keys to values; got {type(payload).__name__}")
    domain = payload.get("domain", "ab")
    known = schemas()
    if not isinstance(domain, str) or domain not in known:
        raise SpecError("domain", f"unknown domain {domain!r}; known domains: {', '.join(sorted(known))}")
    schema = known[domain]
    tasks = getattr(schema, "tasks", None)  # a domain of several tasks: one schema per task
    return task_schema(domain, tasks, payload) if isinstance(tasks, Mapping) and tasks else schema


def parse_spec(payload: Any) -> BaseModel:
    """Validate a spec given as a mapping."""
    schema = schema_for(payload)
    try:
        return schema.model_validate(dict(payload))
    except ValidationError as exc:
        raise from_pydantic(exc) from None


class UniqueKeyLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses a key repeated in one mapping.

    YAML forbids repeated keys, but PyYAML keeps the last one silently: an arm
    written with ``conversions: 1100`` and ``conversions: 5`` would run on 5.
    Keys merged in with ``<<`` may still be overridden, as YAML intends.
    """

    def construct_mapping(self, node: yaml.Node, deep: bool = False) -> dict[Any, Any]:
        if isinstance(node, yaml.MappingNode):
            seen: set[Any] = set()
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                key = self.construct_object(key_node, deep=True)
                if not isinstance(key, Hashable):
                    continue  # the base constructor refuses it
                if key in seen:
                    raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
                seen.add(key)
        return super().construct_mapping(node, deep=deep)


# YAML 1.2 reads 1e39 and 1.0e39 as numbers; PyYAML (YAML 1.1) reads them as text, so a spec
# written ``y: [1e-3, 2.5e2]`` failed as "must be a number". The 1.1 forms still resolve first.
UniqueKeyLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+$"),
    list("-+0123456789."),
)


def read_spec_file(path: str | Path) -> dict[str, Any]:
    """The raw mapping in a YAML (or JSON) spec file."""
    path = Path(path)
    if path.is_dir():
        raise SpecError("spec", f"is a folder, not a spec file: {path}")
    if not path.is_file():
        raise SpecError("spec", f"no such file: {path}")
    try:
        payload = yaml.load(path.read_text(encoding="utf-8"), Loader=UniqueKeyLoader)
    except UnicodeDecodeError as exc:
        raise SpecError("spec", f"{path.name} is not UTF-8 text (byte {exc.start} cannot be decoded); a spec is a YAML or JSON file") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise SpecError("spec", f"malformed YAML{where}: {problem}") from None
    if payload is None:
        raise SpecError("spec", f"{path.name} is empty")
    return payload


def load_spec(path: str | Path) -> BaseModel:
    """Read and validate a spec file."""
    return parse_spec(read_spec_file(path))
