"""What the Bicep compiler would refuse as "not a deploy-time constant", found offline on pycep's tree.

No Bicep compiler installs on the build machines, so this check stands in for the rule behind BCP120,
BCP177, BCP178 and BCP182 (and the scope errors): a for-expression's source, a resource's or module's
`name`, a `scope`, an `existing` resource's name, a resource's or module's `if (...)` condition, and
the body of a variable's `[for ...]` (ARM evaluates a variable's copy loop when the deployment starts)
must be computable when the deployment starts. A value is *runtime*
when it reads anything of a resource other than `id`, `name`, `type` or `apiVersion` (`.properties`,
`.identity`, ...), a module's `.outputs`, or calls `reference()` or a `list*()` function; a variable
is runtime when its value is, followed through other variables.

Limits, all on the conservative side for this repository's templates: pycep gives identifiers and
string literals as the same Python string, so a literal spelled exactly like a symbol counts as that
symbol; interpolations (`'${...}'`) are read with a small scanner, not a parser; a variable counts as a
whole (reading a constant property of a variable that also holds a runtime value is flagged, which
Bicep may accept).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pycep import BicepParser

#: The Graph module's `extension` statement, which pycep-parser 0.5 cannot parse (checked elsewhere).
EXTENSION = re.compile(r"^extension\s+\w+\s*$", re.MULTILINE)
#: What ARM knows about a resource before deploying it.
CONSTANT_RESOURCE_PROPERTIES = frozenset({"id", "name", "type", "apiVersion"})
#: The positions checked, as `Finding.what` names them, and the error the compiler reports for each.
FOR_SOURCE = "the for-expression's source"
FOR_BODY = "the variable's for-body"
CONDITION = "the if-condition"
RULES = {FOR_SOURCE: "BCP178", FOR_BODY: "BCP182", CONDITION: "BCP177", "name": "BCP120", "scope": "BCP120"}
_CHAIN = re.compile(r"(?<![\w.'])([A-Za-z_]\w*)((?:\s*\[[^\]]*\])?(?:\s*\.\??\s*[A-Za-z_]\w*)*)\s*(\()?")
_STRING_LITERAL = re.compile(r"'(?:[^'\\]|\\.)*'")


@dataclass(frozen=True)
class Finding:
    """One place that needs a deploy-time constant but depends on a runtime value."""

    where: str  # e.g. "variable fixedSettings", "resource site"
    what: str  # FOR_SOURCE, FOR_BODY, CONDITION, "name", "scope"
    because: str  # the runtime value, and the variables it came through

    def __str__(self) -> str:
        return (
            f"{self.where}: {self.what} depends on {self.because}, which is known only during the "
            f"deployment (Bicep needs a value computable at its start: {RULES.get(self.what, 'BCP120')})"
        )


def parse(text: str) -> dict[str, Any]:
    document: Any = BicepParser().parse(text=EXTENSION.sub("", text))
    return dict(document)


def check_file(path: Path) -> list[Finding]:
    return check(parse(path.read_text(encoding="utf-8")))


def check(document: dict[str, Any]) -> list[Finding]:
    """Every deploy-time-constant position in one parsed Bicep file that depends on a runtime value."""
    return _Checker(document).findings()


class _Checker:
    def __init__(self, document: dict[str, Any]) -> None:
        self.variables: dict[str, Any] = {
            name: value.get("value") for name, value in (document.get("variables") or {}).items()
        }
        self.resources: dict[str, Any] = document.get("resources") or {}
        self.modules: dict[str, Any] = document.get("modules") or {}
        self.outputs: dict[str, Any] = document.get("outputs") or {}
        self._variable_cache: dict[str, str | None] = {}

    def findings(self) -> list[Finding]:
        found: list[Finding] = []
        for name, value in self.variables.items():
            found += self._loops(f"variable {name}", value)
            found += self._variable_loop_bodies(f"variable {name}", value)
        for name, output in self.outputs.items():
            found += self._loops(f"output {name}", output.get("value"))
        for kind, symbols in (("resource", self.resources), ("module", self.modules)):
            for name, declaration in symbols.items():
                where = f"{'existing ' if declaration.get('existing') else ''}{kind} {name}"
                config = declaration.get("config") or {}
                found += self._loops(where, config)
                found += self._condition(where, config)
                body = _body(config)
                for key in ("name", "scope"):
                    if key in body:
                        reason = self.runtime(body[key])
                        if reason is not None:
                            found.append(Finding(where, key, reason))
        return found

    def _loops(self, where: str, value: Any) -> Iterator[Finding]:
        for source in _loop_sources(value):
            reason = self.runtime(source)
            if reason is not None:
                yield Finding(where, FOR_SOURCE, reason)

    def _variable_loop_bodies(self, where: str, value: Any) -> Iterator[Finding]:
        """BCP182: a variable's copy loop is evaluated, body included, before any resource deploys, so
        its body (with the loop's own item and index, which are constants here) must be constant."""
        for loop in _loops(value):
            names = _loop_names(loop)
            reason = self.runtime(loop.get("config"), names) or self.runtime(loop.get("condition"), names)
            if reason is not None:
                yield Finding(where, FOR_BODY, reason)

    def _condition(self, where: str, config: dict[str, Any]) -> Iterator[Finding]:
        """BCP177: whether a resource or module deploys is decided when the deployment starts. Under a
        loop (`[for x in xs: if (...) {...}]`) the loop's item and index are constants too."""
        condition = config.get("condition")
        if condition is None:
            return
        reason = self.runtime(condition, _loop_names(config) if "loop_type" in config else frozenset())
        if reason is not None:
            yield Finding(where, CONDITION, reason)

    # -- is an expression a runtime value? ---------------------------------------------------------

    def runtime(self, expression: Any, shadowed: frozenset[str] = frozenset()) -> str | None:
        """Why the expression is a runtime value, or None when it is a deploy-time constant."""
        if isinstance(expression, str):
            if "${" in expression:
                return self._interpolation(expression, shadowed)
            return self._symbol(expression, None, shadowed)
        if isinstance(expression, list):
            return _first(self.runtime(item, shadowed) for item in expression)
        if not isinstance(expression, dict):
            return None
        if "loop_type" in expression:
            source = expression["loop_type"].get("detail", {}).get("array_name")
            return self.runtime(source, shadowed) or self.runtime(
                expression.get("config"), shadowed | _loop_names(expression)
            )
        if expression.get("type") == "lambda_expression":
            detail = expression.get("detail", {})
            params = frozenset(str(v) for k, v in detail.items() if k.startswith("var_"))
            return self.runtime(detail.get("expression"), shadowed | params)
        if "function" in expression:
            return self._function(expression["function"], shadowed)
        if "operator" in expression:
            return self._operator(expression["operator"], shadowed)
        return _first(self.runtime(value, shadowed) for value in expression.values())

    def _function(self, function: dict[str, Any], shadowed: frozenset[str]) -> str | None:
        kind = str(function.get("type", ""))
        parameters = function.get("parameters") or {}
        if kind == "reference":
            return "reference()"
        if kind == "list_func" or kind.lower().startswith("list"):
            return f"{parameters.get('func_name', kind)}()"
        return _first(self.runtime(value, shadowed) for value in parameters.values())

    def _operator(self, operator: dict[str, Any], shadowed: frozenset[str]) -> str | None:
        kind = operator.get("type")
        operands = operator.get("operands") or {}
        if kind == "function_accessor":
            name = str(operands.get("func_name", ""))
            if name.startswith("list"):
                return f"{name}()"
            return self.runtime(operands.get("operand_1"), shadowed)
        if kind == "property_accessor":
            base, tail = operands.get("operand_1"), operands.get("operand_2")
            symbol = _base_symbol(base)
            if symbol is not None:
                reason = self._symbol(symbol, _head(tail), shadowed)
            else:
                reason = self.runtime(base, shadowed)
            return reason or _first(self.runtime(e, shadowed) for e in _tail_expressions(tail))
        if kind == "index_accessor":
            return self.runtime(operands.get("operand_1"), shadowed) or self.runtime(
                operands.get("operand_2"), shadowed
            )
        return _first(self.runtime(value, shadowed) for value in operands.values())

    def _symbol(self, name: str, first_property: str | None, shadowed: frozenset[str]) -> str | None:
        if name in shadowed:
            return None
        if name in self.resources:
            if first_property is not None and first_property not in CONSTANT_RESOURCE_PROPERTIES:
                return f"{name}.{first_property}"
            return None
        if name in self.modules:
            return f"{name}.outputs" if first_property == "outputs" else None
        if name in self.variables:
            return self._variable(name)
        return None  # a parameter, a loop variable, a literal, a function's name

    def _variable(self, name: str) -> str | None:
        if name not in self._variable_cache:
            self._variable_cache[name] = None  # a cycle is Bicep's own error; stop here
            reason = self.runtime(self.variables[name])
            self._variable_cache[name] = None if reason is None else f"{reason} (through variable {name})"
        return self._variable_cache[name]

    def _interpolation(self, text: str, shadowed: frozenset[str]) -> str | None:
        for segment in _segments(text):
            code = _STRING_LITERAL.sub("''", segment)
            for match in _CHAIN.finditer(code):
                name, rest, call = match.group(1), match.group(2), match.group(3)
                if call and not rest:  # a function call
                    if name == "reference":
                        return "reference()"
                    if name.startswith("list"):
                        return f"{name}()"
                    continue
                properties = re.findall(r"\.\??\s*([A-Za-z_]\w*)", rest)
                if call and properties and properties[-1].startswith("list"):
                    return f"{name}.{properties[-1]}()"
                reason = self._symbol(name, properties[0] if properties else None, shadowed)
                if reason is not None:
                    return reason
        return None


def _body(config: dict[str, Any]) -> dict[str, Any]:
    """A declaration's properties, under a loop (`[for ...]`) or a condition (`if (...)`) or not."""
    if "loop_type" in config or "condition" in config:
        inner = config.get("config")
        return inner if isinstance(inner, dict) else {}
    return config


def _loop_sources(value: Any) -> Iterator[Any]:
    """The source of every for-expression in a value, nested ones included."""
    if isinstance(value, list):
        for item in value:
            yield from _loop_sources(item)
    elif isinstance(value, dict):
        if "loop_type" in value:
            yield value["loop_type"].get("detail", {}).get("array_name")
        for item in value.values():
            yield from _loop_sources(item)


def _loops(value: Any) -> Iterator[dict[str, Any]]:
    """Every for-expression in a value, nested ones included."""
    if isinstance(value, list):
        for item in value:
            yield from _loops(item)
    elif isinstance(value, dict):
        if "loop_type" in value:
            yield value
        for item in value.values():
            yield from _loops(item)


def _loop_names(loop: dict[str, Any]) -> frozenset[str]:
    """The item and index a for-expression declares: inside it they name loop values, not symbols."""
    detail = loop["loop_type"].get("detail", {})
    return frozenset(str(detail[key]) for key in ("item_name", "index_name") if detail.get(key))


def _base_symbol(expression: Any) -> str | None:
    """`st` for `st`, `st[0]`: the symbol an accessor starts from, when it is a plain name."""
    if isinstance(expression, str) and "${" not in expression:
        return expression
    if isinstance(expression, dict) and expression.get("operator", {}).get("type") == "index_accessor":
        return _base_symbol(expression["operator"]["operands"].get("operand_1"))
    return None


def _head(tail: Any) -> str | None:
    """The first property name of an accessor's right-hand side (pycep nests chains to the right)."""
    if isinstance(tail, str):
        return tail
    if isinstance(tail, dict) and "operator" in tail:
        return _head(tail["operator"].get("operands", {}).get("operand_1"))
    return None


def _tail_expressions(tail: Any) -> Iterator[Any]:
    """Expressions inside an accessor's right-hand side: indexes, and the operands pycep's precedence
    puts there (`a.value == role` parses as `a.(value == role)`); property names are not expressions."""
    if not isinstance(tail, dict) or "operator" not in tail:
        return
    operator = tail["operator"]
    operands = operator.get("operands", {})
    values = list(operands.values())
    if operator.get("type") == "property_accessor":
        for value in values:
            yield from _tail_expressions(value)
        return
    if values:
        yield from _tail_expressions(values[0])
        yield from values[1:]


def _segments(text: str) -> Iterator[str]:
    """The code inside each `${...}` of an interpolated string (braces inside counted)."""
    start = text.find("${")
    while start != -1:
        depth, index = 1, start + 2
        while index < len(text) and depth:
            depth += {"{": 1, "}": -1}.get(text[index], 0)
            index += 1
        yield text[start + 2 : index - 1]
        start = text.find("${", index)


def _first(reasons: Iterator[str | None]) -> str | None:
    return next((reason for reason in reasons if reason is not None), None)
