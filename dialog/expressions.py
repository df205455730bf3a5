"""The two small languages inside flow files: branch conditions and reply templates.

A condition is a Python-like expression over slot names: `eligible and not final_sale`,
`denial_reason == "window"`, `attempts >= 2`, `resolution in ["refund", "store_credit"]`.
Only names, literals, comparisons and `and`/`or`/`not` are allowed; nothing is ever passed to
`eval`. A template is text with `{slot}` fields, spoken by the slot's type.
"""

from __future__ import annotations

import ast
import string
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["Condition", "ExpressionError", "template_fields"]

_LITERAL_NAMES = {"true": True, "false": False, "none": None, "null": None}
_COMPARE: dict[type[ast.cmpop], Callable[[Any, Any], bool]] = {
    ast.Eq: lambda a, b: a == b,
    ast.NotEq: lambda a, b: a != b,
    ast.Lt: lambda a, b: a is not None and b is not None and a < b,
    ast.LtE: lambda a, b: a is not None and b is not None and a <= b,
    ast.Gt: lambda a, b: a is not None and b is not None and a > b,
    ast.GtE: lambda a, b: a is not None and b is not None and a >= b,
    ast.In: lambda a, b: b is not None and a in b,
    ast.NotIn: lambda a, b: b is None or a not in b,
}


class ExpressionError(ValueError):
    """A condition or template that cannot be used."""


def _check(node: ast.AST, names: set[str]) -> None:
    """Allow only the harmless subset; collect the slot names used."""
    match node:
        case ast.Expression(body=body):
            _check(body, names)
        case ast.BoolOp(values=values):
            for value in values:
                _check(value, names)
        case ast.UnaryOp(op=ast.Not(), operand=operand):
            _check(operand, names)
        case ast.UnaryOp(op=ast.USub(), operand=ast.Constant(value=int() | float())):
            pass
        case ast.Compare(left=left, ops=ops, comparators=comparators):
            for op in ops:
                if type(op) not in _COMPARE:
                    raise ExpressionError(f"comparison {type(op).__name__} is not allowed")
            for part in (left, *comparators):
                _check(part, names)
        case ast.Name(id=name):
            if name.lower() not in _LITERAL_NAMES and name not in ("True", "False", "None"):
                names.add(name)
        case ast.Constant(value=value):
            if not isinstance(value, str | int | float | bool | type(None)):
                raise ExpressionError(f"literal {value!r} is not allowed")
        case ast.List(elts=elts) | ast.Tuple(elts=elts):
            for elt in elts:
                if not isinstance(elt, ast.Constant):
                    raise ExpressionError("lists may only hold literals")
        case _:
            raise ExpressionError(f"{type(node).__name__} is not allowed in a condition")


@dataclass(frozen=True)
class Condition:
    """A parsed branch condition; `names` are the slots it reads."""

    source: str
    tree: ast.Expression
    names: frozenset[str]

    @classmethod
    def parse(cls, source: str) -> Condition:
        """Parse and vet `source`; raises `ExpressionError` with a reason."""
        if not isinstance(source, str) or not source.strip():
            raise ExpressionError("a condition must be a non-empty expression")
        try:
            tree = ast.parse(source.strip(), mode="eval")
        except SyntaxError as exc:
            raise ExpressionError(f"not a valid condition: {exc.msg}") from exc
        names: set[str] = set()
        _check(tree, names)
        return cls(source, tree, frozenset(names))

    def evaluate(self, slots: Mapping[str, Any]) -> bool:
        """Whether the condition holds for these slot values (unset slots are None)."""
        return bool(_eval(self.tree.body, slots))


def _eval(node: ast.AST, slots: Mapping[str, Any]) -> Any:
    match node:
        case ast.BoolOp(op=ast.And(), values=values):
            return all(_eval(v, slots) for v in values)
        case ast.BoolOp(op=ast.Or(), values=values):
            return any(_eval(v, slots) for v in values)
        case ast.UnaryOp(op=ast.Not(), operand=operand):
            return not _eval(operand, slots)
        case ast.UnaryOp(op=ast.USub(), operand=ast.Constant(value=value)):
            return -value
        case ast.Compare(left=left, ops=ops, comparators=comparators):
            value = _eval(left, slots)
            for op, right in zip(ops, comparators, strict=True):
                other = _eval(right, slots)
                if not _COMPARE[type(op)](value, other):
                    return False
                value = other
            return True
        case ast.Name(id=name):
            if name.lower() in _LITERAL_NAMES and name not in slots:
                return _LITERAL_NAMES[name.lower()]
            return slots.get(name)
        case ast.Constant(value=value):
            return value
        case ast.List(elts=elts) | ast.Tuple(elts=elts):
            return [_eval(e, slots) for e in elts]
    raise ExpressionError(f"cannot evaluate {type(node).__name__}")


def template_fields(text: str) -> list[str]:
    """The `{slot}` names a template uses; raises `ExpressionError` on anything fancier."""
    fields = []
    try:
        parsed = list(string.Formatter().parse(text))
    except ValueError as exc:
        raise ExpressionError(f"bad template: {exc}") from exc
    for _literal, field, spec, conversion in parsed:
        if field is None:
            continue
        if not field.isidentifier():
            raise ExpressionError(f"template field {{{field}}} must be a plain slot name")
        if spec or conversion:
            raise ExpressionError(f"template field {{{field}}} takes no format or conversion")
        fields.append(field)
    return fields
