"""Every event the service publishes is named by `EventType`, and a client can subscribe to it.

The scan reads the source rather than running it: a publish site with a string literal (or
a misspelt member) fails here even if no test ever reaches it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import pieces_integration
from pieces_integration.domain.events import EventType
from pieces_integration.service_layer.events import subscription_filter

SOURCE = Path(pieces_integration.__file__).parent


Scopes = list[ast.FunctionDef | ast.AsyncFunctionDef]
PublishCall = tuple[str, ast.Call, Scopes]


def _visit(node: ast.AST, where: str, scopes: Scopes, found: list[PublishCall]) -> None:
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
        scopes = [*scopes, node]
    if isinstance(node, ast.Call):
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
        if name == "publish" and len(node.args) + len(node.keywords) == 3:
            found.append((where, node, scopes))
    for child in ast.iter_child_nodes(node):
        _visit(child, where, scopes, found)


def _publish_calls() -> list[PublishCall]:
    """Calls shaped like `publisher.publish(user_id, event_type, payload)`, with the
    functions they sit in (innermost last). A bus publish takes two arguments, the Pieces
    emulator's frame publish and the connection monitor's callback one."""
    found: list[PublishCall] = []
    for path in sorted(SOURCE.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        _visit(tree, str(path.relative_to(SOURCE)), [], found)
    return found


def _event_argument(call: ast.Call) -> ast.expr:
    for keyword in call.keywords:
        if keyword.arg == "event_type":
            return keyword.value
    return call.args[1]


def _forwarded_parameter(argument: ast.expr, scopes: Scopes) -> bool:
    """A parameter passed through unchanged: typed `EventType`, or the event type of a
    `publish` wrapper (whose own callers this scan checks)."""
    if not isinstance(argument, ast.Name):
        return False
    for scope in reversed(scopes):
        for parameter in [*scope.args.posonlyargs, *scope.args.args, *scope.args.kwonlyargs]:
            if parameter.arg != argument.id:
                continue
            annotation = ast.unparse(parameter.annotation) if parameter.annotation else ""
            return annotation == "EventType" or scope.name == "publish"
    return False


def test_every_publish_site_names_its_event_with_an_event_type_member() -> None:
    calls = _publish_calls()
    assert len(calls) >= 10, "the scan no longer finds the publish sites"
    wrong = []
    for where, call, scopes in calls:
        argument = _event_argument(call)
        if isinstance(argument, ast.Attribute) and ast.unparse(argument.value) == "EventType":
            if argument.attr not in EventType.__members__:
                wrong.append(f"{where}:{call.lineno}: no member EventType.{argument.attr}")
        elif not _forwarded_parameter(argument, scopes):
            wrong.append(f"{where}:{call.lineno}: {ast.unparse(argument)}")
    assert wrong == []


@pytest.mark.parametrize("event", list(EventType))
def test_every_published_event_type_is_accepted_by_the_subscribe_filter(
    event: EventType,
) -> None:
    selected, unknown = subscription_filter([event.value])
    assert selected == {event.value} and unknown == []
