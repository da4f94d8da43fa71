"""A small, safe expression language for conditions, constraints and filters.

Why not Python's ``eval``: study files and ``dse pareto --where`` come from users;
evaluating their text would let ``__import__('os').system(...)`` run. Instead we
parse with :mod:`ast` and accept only a whitelist of node types, then evaluate
the tree ourselves (on a dict or, vectorised, on a pandas DataFrame).

Grammar (Python syntax, restricted):

* names, possibly dotted (``hw.adc_bits``, ``energy.adc_nj``), or quoted with
  backticks for odd names (```accuracy p5` > 0.9``);
* number, string, ``True``/``False``/``None`` literals and lists/tuples of them;
* comparisons ``< <= > >= == !=``, chained (``0 < x <= 1``), ``in``/``not in``;
* ``and``, ``or``, ``not``; arithmetic ``+ - * /`` and unary minus.

Anything else (calls, attributes on non-names, subscripts, lambdas, dunders)
is rejected with :class:`ExpressionError` naming the offending piece.
"""

from __future__ import annotations

import ast
import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["Expression", "ExpressionError", "parse_expression", "parse_constraint", "Constraint"]


class ExpressionError(ValueError):
    """A user expression is not in the allowed language."""


_ALLOWED_HELP = (
    "allowed: names (dotted ok), numbers, strings, lists, comparisons "
    "(< <= > >= == != in, not in), and/or/not, + - * /"
)

_COMPARE: dict[type, Callable[[Any, Any], Any]] = {
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
}
_BINOP: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: lambda a, b: _bounded_mul(a, b),
    ast.Div: operator.truediv,
}
_BACKTICK = re.compile(r"`([^`]+)`")

#: bounds of the language (issue 14: "'a' * 1000000000 == f1" allocated 905 MB, deep
#: nesting ended in a RecursionError): expression length, nesting depth, and the length
#: of a string or list built by ``*``
MAX_EXPRESSION_CHARS = 2_000
MAX_EXPRESSION_DEPTH = 50
MAX_REPEATED_LENGTH = 10_000


def _bounded_mul(left: Any, right: Any) -> Any:
    """``left * right``, refusing a repeated string or list longer than the bound."""
    for seq, times in ((left, right), (right, left)):
        if isinstance(seq, (str, list, tuple)) and isinstance(times, int):
            if len(seq) * max(times, 0) > MAX_REPEATED_LENGTH:
                raise ExpressionError(
                    f"{type(seq).__name__} of {len(seq)} repeated {times} times is too large; "
                    f"allowed: at most {MAX_REPEATED_LENGTH:,} elements"
                )
    return operator.mul(left, right)


def _dotted_name(node: ast.AST) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = _dotted_name(node.value)
        return None if base is None else f"{base}.{node.attr}"
    return None


@dataclass(frozen=True)
class Expression:
    """A parsed, validated expression. Evaluate with :meth:`evaluate`."""

    text: str
    tree: ast.Expression
    names: frozenset[str]
    _aliases: tuple[tuple[str, str], ...] = ()

    def evaluate(self, values: Mapping[str, Any]) -> Any:
        """Evaluate on a mapping (a design dict, a metrics dict, or a DataFrame).

        With a pandas DataFrame the result is a boolean Series (vectorised).
        A name missing from ``values`` raises :class:`ExpressionError`.
        """
        return _Evaluator(values, dict(self._aliases)).visit(self.tree.body)


def parse_expression(text: str) -> Expression:
    """Parse ``text`` into an :class:`Expression`, rejecting anything unsafe."""
    if not isinstance(text, str) or not text.strip():
        raise ExpressionError(f"empty expression {text!r}; {_ALLOWED_HELP}")
    aliases: dict[str, str] = {}

    def _alias(match: re.Match[str]) -> str:
        key = f"__q{len(aliases)}"
        aliases[key] = match.group(1)
        return key

    if len(text) > MAX_EXPRESSION_CHARS:
        raise ExpressionError(
            f"expression of {len(text):,} characters is too long; allowed: at most "
            f"{MAX_EXPRESSION_CHARS:,}"
        )
    source = _BACKTICK.sub(_alias, text.strip())
    try:
        tree = ast.parse(source, mode="eval")
    except SyntaxError as exc:
        raise ExpressionError(
            f"cannot parse expression {text[:80]!r}: {exc.msg}; {_ALLOWED_HELP}"
        ) from None
    except (RecursionError, MemoryError):
        raise ExpressionError(
            f"expression nested too deeply; allowed: at most {MAX_EXPRESSION_DEPTH} levels"
        ) from None
    names: set[str] = set()
    _validate(tree.body, text, names, aliases)
    return Expression(text, tree, frozenset(names), tuple(aliases.items()))


def _validate(
    node: ast.AST, text: str, names: set[str], aliases: dict[str, str], depth: int = 0
) -> None:
    def bad(what: str) -> ExpressionError:
        return ExpressionError(f"in expression {text!r}: {what} is not allowed; {_ALLOWED_HELP}")

    if depth > MAX_EXPRESSION_DEPTH:
        raise ExpressionError(
            f"expression nested deeper than {MAX_EXPRESSION_DEPTH} levels; allowed: at most "
            f"{MAX_EXPRESSION_DEPTH}"
        )
    d = depth + 1

    if isinstance(node, (ast.Name, ast.Attribute)):
        dotted = _dotted_name(node)
        if dotted is None:
            raise bad(f"attribute access {ast.unparse(node)!r}")
        if "__" in dotted and dotted not in aliases:
            raise bad(f"name {dotted!r}")
        names.add(aliases.get(dotted, dotted))
        return
    if isinstance(node, ast.Constant):
        if not isinstance(node.value, (int, float, str, bool, type(None))):
            raise bad(f"literal {node.value!r}")
        return
    if isinstance(node, (ast.List, ast.Tuple)):
        for elt in node.elts:
            if not isinstance(elt, ast.Constant) and not (
                isinstance(elt, ast.UnaryOp) and isinstance(elt.op, ast.USub)
            ):
                raise bad("a list element that is not a literal")
            _validate(elt, text, names, aliases, d)
        return
    if isinstance(node, ast.BoolOp):
        for v in node.values:
            _validate(v, text, names, aliases, d)
        return
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.Not, ast.USub, ast.UAdd)):
        _validate(node.operand, text, names, aliases, d)
        return
    if isinstance(node, ast.BinOp) and type(node.op) in _BINOP:
        _validate(node.left, text, names, aliases, d)
        _validate(node.right, text, names, aliases, d)
        return
    if isinstance(node, ast.Compare):
        for op in node.ops:
            if type(op) not in _COMPARE and not isinstance(op, (ast.In, ast.NotIn)):
                raise bad(f"operator {type(op).__name__}")
        _validate(node.left, text, names, aliases, d)
        for c in node.comparators:
            _validate(c, text, names, aliases, d)
        return
    if isinstance(node, ast.Call):
        raise bad(f"function call {ast.unparse(node)!r}")
    raise bad(f"{type(node).__name__} ({ast.unparse(node)!r})")


class _Evaluator:
    def __init__(self, values: Mapping[str, Any], aliases: dict[str, str]):
        self.values = values
        self.aliases = aliases
        self.vector = hasattr(values, "columns")  # pandas DataFrame

    def visit(self, node: ast.AST) -> Any:
        if isinstance(node, (ast.Name, ast.Attribute)):
            name = _dotted_name(node)
            assert name is not None
            name = self.aliases.get(name, name)
            try:
                return self.values[name]
            except KeyError:
                known = sorted(self.values.columns if self.vector else self.values.keys())
                raise ExpressionError(
                    f"unknown name {name!r}; known names: {', '.join(map(str, known))}"
                ) from None
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, (ast.List, ast.Tuple)):
            return [self.visit(e) for e in node.elts]
        if isinstance(node, ast.BoolOp):
            vals = [self.visit(v) for v in node.values]
            out = vals[0]
            for v in vals[1:]:
                if isinstance(node.op, ast.And):
                    out = (out & v) if self.vector else (out and v)
                else:
                    out = (out | v) if self.vector else (out or v)
            return out
        if isinstance(node, ast.UnaryOp):
            v = self.visit(node.operand)
            if isinstance(node.op, ast.Not):
                return (
                    ~v
                    if self.vector and hasattr(v, "__invert__") and not isinstance(v, bool)
                    else (not v)
                )
            return -v if isinstance(node.op, ast.USub) else +v
        if isinstance(node, ast.BinOp):
            return _BINOP[type(node.op)](self.visit(node.left), self.visit(node.right))
        if isinstance(node, ast.Compare):
            left = self.visit(node.left)
            result: Any = True
            for op, comp in zip(node.ops, node.comparators, strict=True):
                right = self.visit(comp)
                if isinstance(op, (ast.In, ast.NotIn)):
                    if hasattr(left, "isin"):
                        part = left.isin(right)
                    else:
                        part = left in right
                    if isinstance(op, ast.NotIn):
                        part = (
                            ~part
                            if hasattr(part, "__invert__") and not isinstance(part, bool)
                            else not part
                        )
                else:
                    part = _COMPARE[type(op)](left, right)
                result = (
                    part if result is True else (result & part if self.vector else result and part)
                )
                left = right
            return result
        raise ExpressionError(f"cannot evaluate {ast.unparse(node)!r}")  # pragma: no cover


_CONSTRAINT = re.compile(r"^\s*(?P<lhs>.+?)\s*(?P<op><=|>=)\s*(?P<rhs>.+?)\s*$")


@dataclass(frozen=True)
class Constraint:
    """``lhs <= rhs`` or ``lhs >= rhs`` turned into a violation amount.

    ``violation(metrics) <= 0`` means feasible; this is the sign convention of
    both pymoo's ``G`` and Optuna's ``trial.set_constraint``.
    """

    text: str
    lhs: Expression
    op: str
    rhs: Expression

    @property
    def names(self) -> frozenset[str]:
        return self.lhs.names | self.rhs.names

    def violation(self, values: Mapping[str, Any]) -> Any:
        lhs, rhs = self.lhs.evaluate(values), self.rhs.evaluate(values)
        return lhs - rhs if self.op == "<=" else rhs - lhs


def parse_constraint(text: str) -> Constraint:
    """Parse ``"accuracy_mean >= 0.9"`` style constraints (``<=`` or ``>=`` only)."""
    m = _CONSTRAINT.match(text or "")
    if not m:
        raise ExpressionError(
            f"constraint {text!r} must have the form '<expression> <= <expression>' or "
            "'<expression> >= <expression>', e.g. 'accuracy_mean >= 0.9'"
        )
    lhs, rhs = parse_expression(m.group("lhs")), parse_expression(m.group("rhs"))
    return Constraint(text, lhs, m.group("op"), rhs)
