"""The bring-your-own-model spec: a NumPyro model in a Python file, its data,
priors declared (and defended) in the spec, and an optional decision.

.. code-block:: yaml

    domain: model
    name: eight schools
    model: eight_schools.py:noncentered    # relative to the spec file's folder
    data: eight_schools.csv                # .csv / .json, or an inline mapping
    priors:
      mu:  {family: normal, params: {loc: 0, scale: 5}, why: ..., source: ...}
      tau: {family: half_cauchy, params: {scale: 5}, why: ..., source: ...}
    decision:
      actions:
        - {name: fund, loss: "np.maximum(0, 5 - theta[0])"}
        - {name: skip, loss: "np.maximum(0, theta[0] - 5)"}

A loss is a numeric expression over posterior variables, evaluated once for all
draws at once. A variable's sampling dimensions come *last*, so ``theta[0]`` is
the first element of ``theta`` in every draw, shape ``(chains, draws)``. The
expression may use variable names, numbers, arithmetic (``+ - * / // % **``),
comparisons (``True`` = 1), ``& | ~``, integer subscripts and the element-wise
functions in ``NUMPY_FUNCTIONS`` as ``np.<name>(...)``; nothing else. The
syntax is checked when the spec is validated (without the model, the data or a
CLI); which names exist is known only once the model is traced, so
``wager.custom.domain`` calls ``check_loss`` then. ``evaluate_loss`` gives
``L(a, theta)`` for every draw, shape ``(chains, draws)``.
"""

from __future__ import annotations

import ast
import math
import re
from types import SimpleNamespace
from typing import Any, Literal, Mapping

import numpy as np

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from wager.errors import SpecError
from wager.kernel.gates import GatePolicy
from wager.kernel.inference import InferenceConfig
from wager.kernel.priors import Prior
from wager.kernel.sensitivity import SensitivityPolicy

NUMPY_FUNCTIONS: frozenset[str] = frozenset(
    {
        "abs", "ceil", "clip", "exp", "expm1", "floor", "log", "log1p", "log2", "log10",
        "maximum", "minimum", "sign", "sqrt", "square", "tanh", "where",
    }
)
"""Element-wise NumPy functions a loss may call. No reductions: a loss is one
number per draw, and a reduction would silently mix draws together."""

_OPERATORS = (
    ast.Add, ast.Sub, ast.Mult, ast.Div, ast.FloorDiv, ast.Mod, ast.Pow,
    ast.BitAnd, ast.BitOr, ast.Invert, ast.UAdd, ast.USub,
    ast.Lt, ast.LtE, ast.Gt, ast.GtE, ast.Eq, ast.NotEq,
)
_MODEL_REF = re.compile(r"^(?P<path>.+\.py):(?P<function>[A-Za-z_][A-Za-z0-9_]*)$")
DATA_SUFFIXES = (".csv", ".json")
_NUMPY = SimpleNamespace(**{name: getattr(np, name) for name in NUMPY_FUNCTIONS})


class Action(BaseModel):
    """One action and what it costs, per draw, as an expression over posterior variables."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    loss: str

    @field_validator("loss", mode="before")
    @classmethod
    def _number_is_an_expression(cls, value: Any) -> Any:
        # ``loss: 0`` in YAML is a constant loss, not a type error
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return repr(value)
        return value


class DecisionPolicy(BaseModel):
    """The actions on the table; the one with the lowest posterior expected loss is recommended."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    question: str | None = None
    actions: list[Action] = Field(min_length=2)

    @model_validator(mode="after")
    def _distinct_actions_with_valid_losses(self) -> "DecisionPolicy":
        """Action names are unique and every loss passes the syntax check. On the
        policy itself, so ``wager plan`` (which reads only the policy) refuses
        what ``wager run`` would."""
        seen: set[str] = set()
        for i, action in enumerate(self.actions):
            if action.name in seen:
                raise SpecError(f"decision.actions[{i}].name", f"action names must be unique; {action.name!r} appears twice")
            seen.add(action.name)
            loss_names(action.loss, f"decision.actions[{i}].loss")
        return self


class CustomSpec(BaseModel):
    """A spec for ``domain: model``. Part of a run's identity, every field of it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    domain: Literal["model"] = "model"
    name: str = "custom model"
    model: str
    data: str | dict[str, Any]
    priors: dict[str, Prior] = Field(default_factory=dict)
    decision: DecisionPolicy | None = None
    inference: InferenceConfig = Field(default_factory=InferenceConfig)
    gates: GatePolicy = Field(default_factory=GatePolicy)
    sensitivity: SensitivityPolicy = Field(default_factory=SensitivityPolicy)

    @field_validator("data", mode="before")
    @classmethod
    def _data_kind(cls, data: Any) -> Any:
        if not isinstance(data, (str, dict)):
            raise SpecError("data", "must be the path of a .csv or .json file, or a mapping of names to numbers or lists")
        return data

    @field_validator("model")
    @classmethod
    def _model_reference(cls, model: str) -> str:
        model_reference(model)
        return model

    @model_validator(mode="after")
    def _consistent(self) -> "CustomSpec":
        if isinstance(self.data, str):
            if not self.data.lower().endswith(DATA_SUFFIXES):
                raise SpecError("data", f"a data file must be .csv or .json; got {self.data!r}")
        else:
            if not self.data:
                raise SpecError("data", "an inline data mapping needs at least one entry")
            for key, value in self.data.items():
                check_array(value, f"data.{key}")
        for name, prior in self.priors.items():
            if prior.family == "normal_inverse_gamma":
                raise SpecError(f"priors.{name}.family", "a joint prior has no single NumPyro distribution; declare its parts separately")
        for name, alternatives in self.sensitivity.alternatives.items():
            where = f"sensitivity.alternatives.{name}"
            if name not in self.priors:
                raise SpecError(where, f"names no declared prior (declared: {', '.join(sorted(self.priors)) or 'none'})")
            for i, alternative in enumerate(alternatives):
                if alternative.family == "normal_inverse_gamma":
                    raise SpecError(f"{where}[{i}].family", "a joint prior has no single NumPyro distribution; declare its parts separately")
        return self


def model_reference(model: str) -> tuple[str, str]:
    """``"path/to/file.py:function"`` -> ``("path/to/file.py", "function")``."""
    match = _MODEL_REF.match(model.strip())
    if not match:
        raise SpecError("model", f"must be 'path/to/file.py:function'; got {model!r}")
    return match["path"], match["function"]


def check_array(value: Any, field: str) -> None:
    """``value`` is a finite number or a rectangular (nested) list of finite numbers."""

    def numbers_only(v: Any) -> bool:
        if isinstance(v, list):
            return all(numbers_only(x) for x in v)
        return isinstance(v, (int, float)) and not isinstance(v, bool)

    if not numbers_only(value):
        raise SpecError(field, "must be a number or a list of numbers")
    try:
        array = np.asarray(value, dtype=float)
    except ValueError:
        raise SpecError(field, "nested lists must be rectangular (every row the same length)") from None
    if not np.all(np.isfinite(array)):
        raise SpecError(field, "every value must be finite")


def loss_names(expression: str, field: str) -> set[str]:
    """The posterior variable names ``expression`` reads, after checking its syntax
    against the whitelist in the module docstring; ``SpecError`` naming ``field`` otherwise."""
    try:
        tree = ast.parse(expression.strip(), mode="eval")
    except SyntaxError as exc:
        raise SpecError(field, f"is not a valid expression ({exc.msg}): {expression!r}") from None
    names: set[str] = set()
    _check_node(tree.body, field, names)
    return names


def _check_node(node: ast.AST, field: str, names: set[str]) -> None:
    def bad(what: str) -> SpecError:
        return SpecError(field, f"{what} is not allowed in a loss; use variable names, numbers, arithmetic, comparisons, integer subscripts and np.<{'|'.join(sorted(NUMPY_FUNCTIONS))}>")

    if isinstance(node, ast.Constant):
        if isinstance(node.value, bool) or not isinstance(node.value, (int, float)):
            raise bad(f"the constant {node.value!r}")
        if not math.isfinite(node.value):
            raise bad("a non-finite number")
    elif isinstance(node, ast.Name):
        if node.id == "np":
            raise bad("'np' on its own")
        names.add(node.id)
    elif isinstance(node, ast.BinOp):
        if not isinstance(node.op, _OPERATORS):
            raise bad(f"the operator {type(node.op).__name__}")
        _check_node(node.left, field, names)
        _check_node(node.right, field, names)
    elif isinstance(node, ast.UnaryOp):
        if not isinstance(node.op, _OPERATORS):
            raise bad(f"the operator {type(node.op).__name__}")
        _check_node(node.operand, field, names)
    elif isinstance(node, ast.Compare):
        if not all(isinstance(op, _OPERATORS) for op in node.ops):
            raise bad("that comparison")
        for child in (node.left, *node.comparators):
            _check_node(child, field, names)
    elif isinstance(node, ast.Call):
        func = node.func
        if not (isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and func.value.id == "np"):
            raise bad(f"calling {ast.unparse(func)}")
        if func.attr not in NUMPY_FUNCTIONS:
            raise bad(f"np.{func.attr}")
        if node.keywords:
            raise bad("a keyword argument")
        for arg in node.args:
            if isinstance(arg, ast.Starred):
                raise bad("*arguments")
            _check_node(arg, field, names)
    elif isinstance(node, ast.Subscript):
        if not isinstance(node.value, ast.Name) or node.value.id == "np":
            raise bad("subscripting anything but a variable")
        names.add(node.value.id)
        index = node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]
        for item in index:
            if not _is_integer(item):
                raise bad(f"the index {ast.unparse(item)} (indices are whole numbers)")
    elif isinstance(node, ast.Attribute):
        raise bad(f"the attribute {ast.unparse(node)} outside a call")
    else:
        raise bad(type(node).__name__)


def _is_integer(node: ast.AST) -> bool:
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        node = node.operand
    return isinstance(node, ast.Constant) and isinstance(node.value, int) and not isinstance(node.value, bool)


# --- evaluating a loss ----------------------------------------------------------


def evaluate_loss(expression: str, draws: Mapping[str, np.ndarray], field: str) -> np.ndarray:
    """Loss per draw, shape ``(chains, draws)``, from ``draws[name]`` shaped ``(chains, draws, *event)``.

    Sampling axes are moved last before evaluating, so ``theta[0]`` indexes the
    event (the first school), not the chain.
    """
    names = loss_names(expression, field)
    missing = sorted(names - set(draws))
    if missing:
        raise SpecError(field, f"{missing[0]!r} is not a posterior variable (there are: {', '.join(draws)})")
    sample_shape = next(iter(draws.values())).shape[:2]
    env = {name: np.moveaxis(np.asarray(draws[name]), (0, 1), (-2, -1)) for name in names}
    tree = _FloatConstants().visit(ast.parse(expression.strip(), mode="eval"))
    code = compile(ast.fix_missing_locations(tree), field, "eval")
    try:
        with np.errstate(all="ignore"):
            value = np.asarray(eval(code, {"__builtins__": {}, "np": _NUMPY}, env), dtype=float)
    except IndexError as exc:
        raise SpecError(field, f"an index is out of range: {exc}") from None
    except Exception as exc:
        raise SpecError(field, f"cannot be evaluated: {type(exc).__name__}: {exc}") from None
    try:
        shape = np.broadcast_shapes(value.shape, sample_shape)
    except ValueError:
        shape = value.shape
    if shape != tuple(sample_shape):
        per_draw = value.shape[:-2] if value.shape[-2:] == tuple(sample_shape) else value.shape
        raise SpecError(field, f"must give one number per draw; it gives shape {per_draw} per draw (index vector variables, e.g. theta[0])")
    return np.broadcast_to(value, sample_shape)


class _FloatConstants(ast.NodeTransformer):
    """Numbers become floats (indices stay integers): ``9**9**9`` overflows to inf
    at once instead of computing a huge Python integer."""

    def visit_Subscript(self, node: ast.Subscript) -> ast.AST:
        return node

    def visit_Constant(self, node: ast.Constant) -> ast.AST:
        return ast.copy_location(ast.Constant(float(node.value)), node)


def check_loss(expression: str, variables: Mapping[str, tuple[int, ...]], field: str) -> None:
    """Names are posterior variables and the loss is one number per draw (on stand-in draws)."""
    unknown = sorted(loss_names(expression, field) - set(variables))
    if unknown:
        raise SpecError(field, f"{unknown[0]!r} is not a posterior variable of the model (it has: {', '.join(variables)})")
    stand_in = {name: np.ones((2, 3) + shape) for name, shape in variables.items()}
    evaluate_loss(expression, stand_in, field)
