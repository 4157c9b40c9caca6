"""Bug heuristics per language, each a check on one node type of the syntax tree.

They are heuristics: each flags code a reviewer would question, with few false alarms
on idiomatic code (e.g. `x == null` in JavaScript, an empty handler that has a
comment explaining itself). Strings and comments never trigger them, because the
parser tells code from text.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from tree_sitter import Node

from pieces_integration.adapters.code_analysis._nodes import (
    has_comment,
    line_of,
    name_of,
    named_non_comment,
    string_value,
    text,
)
from pieces_integration.domain.code_findings import FindingKind, looks_like_secret

Hit = tuple[FindingKind, Node]
Rule = Callable[[Node], Iterator[Hit]]


def _secret(name_node: Node | None, value_node: Node | None, at: Node) -> Iterator[Hit]:
    value = string_value(value_node)
    if value is not None and looks_like_secret(name_of(name_node), value):
        yield FindingKind.HARDCODED_SECRET, at


# --- Python -------------------------------------------------------------------------------


def _py_except(node: Node) -> Iterator[Hit]:
    body = node.child_by_field_name("body") or next(
        (c for c in node.named_children if c.type == "block"), None
    )
    caught = [c for c in named_non_comment(node) if c is not body]
    if not caught:
        yield FindingKind.BARE_EXCEPT, node
    if body is not None and not has_comment(body):
        statements = named_non_comment(body)
        if statements and all(s.type == "pass_statement" for s in statements):
            yield FindingKind.EMPTY_CATCH, node


def _py_call(node: Node) -> Iterator[Hit]:
    func = node.child_by_field_name("function")
    if func is None or func.type != "identifier" or text(func) not in ("eval", "exec"):
        return
    args = node.child_by_field_name("arguments")
    first = named_non_comment(args)[0] if args is not None and named_non_comment(args) else None
    if first is not None and string_value(first) is None:
        yield FindingKind.EVAL_DYNAMIC, node


_GENERIC_EXCEPTIONS = frozenset({"Exception", "BaseException", "RuntimeError"})


def _py_raise(node: Node) -> Iterator[Hit]:
    raised = named_non_comment(node)
    if not raised:
        return  # a bare `raise` re-raises: fine
    exc = raised[0]
    if exc.type == "identifier" and text(exc) in _GENERIC_EXCEPTIONS:
        yield FindingKind.GENERIC_ERROR, node
    elif exc.type == "call":
        func, args = exc.child_by_field_name("function"), exc.child_by_field_name("arguments")
        if text(func) in _GENERIC_EXCEPTIONS and args is not None:
            values = named_non_comment(args)
            if not values or (len(values) == 1 and string_value(values[0]) == ""):
                yield FindingKind.GENERIC_ERROR, node


def _py_comparison(node: Node) -> Iterator[Hit]:
    operators = {c.type for c in node.children if not c.is_named}
    if operators & {"==", "!="} and any(c.type == "none" for c in node.named_children):
        yield FindingKind.NONE_EQUALITY, node


def _py_default(node: Node) -> Iterator[Hit]:
    value = node.child_by_field_name("value")
    if value is not None and value.type in ("list", "dictionary", "set"):
        yield FindingKind.MUTABLE_DEFAULT, node
    yield from _secret(node.child_by_field_name("name"), value, node)


def _py_assignment(node: Node) -> Iterator[Hit]:
    yield from _secret(node.child_by_field_name("left"), node.child_by_field_name("right"), node)


def _py_keyword(node: Node) -> Iterator[Hit]:
    yield from _secret(node.child_by_field_name("name"), node.child_by_field_name("value"), node)


def _pair(node: Node) -> Iterator[Hit]:
    yield from _secret(node.child_by_field_name("key"), node.child_by_field_name("value"), node)


PYTHON: dict[str, Rule] = {
    "except_clause": _py_except,
    "call": _py_call,
    "raise_statement": _py_raise,
    "comparison_operator": _py_comparison,
    "default_parameter": _py_default,
    "typed_default_parameter": _py_default,
    "assignment": _py_assignment,
    "keyword_argument": _py_keyword,
    "pair": _pair,
}


# --- JavaScript / TypeScript --------------------------------------------------------------


def _js_call(node: Node) -> Iterator[Hit]:
    func = node.child_by_field_name("function")
    if func is None:
        return
    if func.type == "member_expression":
        obj, prop = func.child_by_field_name("object"), func.child_by_field_name("property")
        if text(obj) == "console" and text(prop) in ("log", "debug"):
            yield FindingKind.CONSOLE_LOG, node
    elif func.type == "identifier" and text(func) == "eval":
        args = node.child_by_field_name("arguments")
        values = named_non_comment(args) if args is not None else []
        if values and string_value(values[0]) is None:
            yield FindingKind.EVAL_DYNAMIC, node


def _js_new(node: Node) -> Iterator[Hit]:
    if text(node.child_by_field_name("constructor")) == "Function":
        args = node.child_by_field_name("arguments")
        if args is not None and any(string_value(a) is None for a in named_non_comment(args)):
            yield FindingKind.EVAL_DYNAMIC, node


def _js_throw(node: Node) -> Iterator[Hit]:
    thrown = named_non_comment(node)
    if not thrown:
        return
    value = thrown[0]
    if string_value(value) is not None:
        yield FindingKind.GENERIC_ERROR, node  # a thrown string has no stack trace
        return
    if value.type in ("new_expression", "call_expression"):
        ctor = value.child_by_field_name("constructor") or value.child_by_field_name("function")
        args = value.child_by_field_name("arguments")
        if text(ctor) == "Error":
            values = named_non_comment(args) if args is not None else []
            if not values or (len(values) == 1 and string_value(values[0]) == ""):
                yield FindingKind.GENERIC_ERROR, node


def _js_binary(node: Node) -> Iterator[Hit]:
    operator = node.child_by_field_name("operator")
    if operator is None or operator.type not in ("==", "!="):
        return
    sides = (node.child_by_field_name("left"), node.child_by_field_name("right"))
    # `x == null` is the idiom for "null or undefined": intended, not a bug.
    if not any(s is not None and s.type in ("null", "undefined") for s in sides):
        yield FindingKind.LOOSE_EQUALITY, node


def _js_catch(node: Node) -> Iterator[Hit]:
    body = node.child_by_field_name("body")
    if body is not None and not body.named_children:
        yield FindingKind.EMPTY_CATCH, node


def _js_declarator(node: Node) -> Iterator[Hit]:
    yield from _secret(node.child_by_field_name("name"), node.child_by_field_name("value"), node)


def _js_assignment(node: Node) -> Iterator[Hit]:
    yield from _secret(node.child_by_field_name("left"), node.child_by_field_name("right"), node)


def _js_field(node: Node) -> Iterator[Hit]:
    yield from _secret(node.child_by_field_name("name") or node.child_by_field_name("property"),
                       node.child_by_field_name("value"), node)  # fmt: skip


JAVASCRIPT: dict[str, Rule] = {
    "call_expression": _js_call,
    "new_expression": _js_new,
    "throw_statement": _js_throw,
    "binary_expression": _js_binary,
    "catch_clause": _js_catch,
    "variable_declarator": _js_declarator,
    "assignment_expression": _js_assignment,
    "pair": _pair,
    "field_definition": _js_field,
    "public_field_definition": _js_field,
}


# --- Go -----------------------------------------------------------------------------------


def _go_if(node: Node) -> Iterator[Hit]:
    condition = node.child_by_field_name("condition")
    consequence = node.child_by_field_name("consequence")
    if condition is None or consequence is None or condition.type != "binary_expression":
        return
    if " ".join(text(condition).split()) != "err != nil":
        return
    statements = [c for c in consequence.named_children if c.type != "statement_list"]
    statements += [s for c in consequence.named_children if c.type == "statement_list"
                   for s in c.named_children]  # fmt: skip
    if not statements:
        yield FindingKind.EMPTY_CATCH, node


def _go_call(node: Node) -> Iterator[Hit]:
    func = text(node.child_by_field_name("function"))
    if func not in ("errors.New", "fmt.Errorf"):
        return
    args = node.child_by_field_name("arguments")
    values = named_non_comment(args) if args is not None else []
    if values and string_value(values[0]) == "":
        yield FindingKind.GENERIC_ERROR, node


def _go_spec(node: Node) -> Iterator[Hit]:
    names = [c for c in node.named_children if c.type == "identifier"]
    value = node.child_by_field_name("value")
    values = named_non_comment(value) if value is not None else []
    for name, val in zip(names, values, strict=False):
        yield from _secret(name, val, node)


def _go_assign(node: Node) -> Iterator[Hit]:
    left, right = node.child_by_field_name("left"), node.child_by_field_name("right")
    lefts = named_non_comment(left) if left is not None else []
    rights = named_non_comment(right) if right is not None else []
    for name, val in zip(lefts, rights, strict=False):
        yield from _secret(name, val, node)


def _go_keyed(node: Node) -> Iterator[Hit]:
    parts = named_non_comment(node)
    if len(parts) == 2:
        key = parts[0].named_children[0] if parts[0].type == "literal_element" else parts[0]
        val = parts[1].named_children[0] if parts[1].type == "literal_element" else parts[1]
        yield from _secret(key, val, node)


GO: dict[str, Rule] = {
    "if_statement": _go_if,
    "call_expression": _go_call,
    "const_spec": _go_spec,
    "var_spec": _go_spec,
    "short_var_declaration": _go_assign,
    "assignment_statement": _go_assign,
    "keyed_element": _go_keyed,
}

RULES: dict[str, dict[str, Rule]] = {
    "python": PYTHON,
    "javascript": JAVASCRIPT,
    "typescript": JAVASCRIPT,
    "tsx": JAVASCRIPT,
    "go": GO,
}

__all__ = ["RULES", "Hit", "Rule", "line_of"]
