"""Small helpers over tree-sitter nodes shared by the per-language rules."""

from __future__ import annotations

from collections.abc import Iterator

from tree_sitter import Node

_STRING_PARTS = frozenset(
    {"string_content", "string_fragment", "escape_sequence", "interpreted_string_literal_content",
     "raw_string_literal_content"}
)  # fmt: skip
_DYNAMIC_PARTS = frozenset({"interpolation", "template_substitution"})
STRING_TYPES = frozenset(
    {"string", "template_string", "interpreted_string_literal", "raw_string_literal"}
)


def text(node: Node | None) -> str:
    if node is None or node.text is None:
        return ""
    return node.text.decode("utf-8", "replace")


def line_of(node: Node) -> int:
    return node.start_point.row + 1


def walk(root: Node) -> Iterator[Node]:
    """Every node, depth first, without recursion (deep ASTs must not hit the stack limit)."""
    stack = [root]
    while stack:
        node = stack.pop()
        yield node
        stack.extend(reversed(node.children))


def string_value(node: Node | None) -> str | None:
    """The literal text of a constant string node; None for non-strings and interpolated ones."""
    if node is None or node.type not in STRING_TYPES:
        return None
    parts: list[str] = []
    for child in node.children:
        if child.type in _DYNAMIC_PARTS:
            return None
        if child.type in _STRING_PARTS:
            parts.append(text(child))
    return "".join(parts)


def named_non_comment(node: Node) -> list[Node]:
    return [c for c in node.named_children if c.type != "comment"]


def has_comment(node: Node) -> bool:
    return any(c.type == "comment" for c in node.named_children)


def name_of(node: Node | None) -> str | None:
    """The identifier a target names: `x`, `obj.x`, `self.x`, `"x"` (a dict key), `x: T`."""
    if node is None:
        return None
    if node.type in (
        "identifier",
        "property_identifier",
        "field_identifier",
        "shorthand_property_identifier",
    ):
        return text(node)
    if node.type in ("attribute", "member_expression", "selector_expression"):
        last = (
            node.child_by_field_name("attribute")
            or node.child_by_field_name("property")
            or node.child_by_field_name("field")
        )
        return text(last) if last is not None else None
    if node.type in STRING_TYPES:
        return string_value(node)
    if node.type in ("expression_list", "pattern_list") and node.named_child_count == 1:
        return name_of(node.named_children[0])
    return None
