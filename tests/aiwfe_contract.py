"""Validate HTTP traffic against docs/aiwfe-contract.yaml (requests and responses).

`ContractCheckingTransport` wraps the client's real transport: every request the client
sends and every response the emulator returns is checked against the document, so a
drift on either side fails the test that caused it.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, urlsplit

import httpx
import jsonschema_rs
import yaml

CONTRACT_PATH = Path(__file__).resolve().parents[1] / "docs" / "aiwfe-contract.yaml"


@cache
def contract() -> dict[str, Any]:
    return yaml.safe_load(CONTRACT_PATH.read_text(encoding="utf-8"))


def _pointer(*parts: str) -> str:
    escaped = (p.replace("~", "~0").replace("/", "~1") for p in parts)
    return "#/" + "/".join(quote(p, safe="~") for p in escaped)  # a URI fragment: {} encoded


@cache
def _validator(pointer: str) -> Any:
    root = {
        **contract(),
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$ref": pointer,
    }
    return jsonschema_rs.validator_for(root)


def validate(instance: Any, *pointer_parts: str) -> None:
    errors = [
        str(e).splitlines()[0] for e in _validator(_pointer(*pointer_parts)).iter_errors(instance)
    ]
    if errors:
        raise AssertionError(f"contract violation at {'/'.join(pointer_parts)}: {errors[:3]}")


def _resolve(obj: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in obj:
        parts = obj["$ref"].removeprefix("#/").split("/")
        target: Any = contract()
        for part in parts:
            target = target[part.replace("~1", "/").replace("~0", "~")]
        obj = target
    return obj


@dataclass
class Operation:
    template: str
    method: str
    spec: dict[str, Any]
    path_params: dict[str, str]


def find_operation(method: str, path: str) -> Operation:
    for template, item in contract()["paths"].items():
        regex = "^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", template) + "$"
        match = re.match(regex, path)
        if match and method.lower() in item:
            return Operation(template, method.lower(), item[method.lower()], match.groupdict())
    raise AssertionError(f"{method} {path} is not in the contract")


def _parameters(op: Operation) -> list[dict[str, Any]]:
    item = contract()["paths"][op.template]
    return [_resolve(p) for p in [*item.get("parameters", []), *op.spec.get("parameters", [])]]


def _coerce(value: str, schema: dict[str, Any]) -> Any:
    kind = schema.get("type")
    if kind == "integer":
        try:
            return int(value)
        except ValueError:
            return value
    return value


def check_request(request: httpx.Request) -> Operation:
    url = urlsplit(str(request.url))
    op = find_operation(request.method, url.path)
    params = _parameters(op)
    query = parse_qsl(url.query, keep_blank_values=True)
    declared = {p["name"]: p for p in params if p["in"] == "query"}
    for name in {k for k, _ in query}:
        assert name in declared, f"undeclared query parameter {name!r} for {op.template}"
    for name, param in declared.items():
        values = [v for k, v in query if k == name]
        if not values:
            assert not param.get("required"), f"missing required query parameter {name!r}"
            continue
        schema = _resolve(param["schema"])
        if schema.get("type") == "array":
            instance: Any = [_coerce(v, _resolve(schema["items"])) for v in values]
        else:
            assert len(values) == 1, f"query parameter {name!r} repeated"
            instance = _coerce(values[0], schema)
        # The document as root lets `$ref`s inside a parameter's schema resolve.
        root = {**contract(), "$schema": "https://json-schema.org/draft/2020-12/schema", **schema}
        errors = [
            str(e).splitlines()[0] for e in jsonschema_rs.validator_for(root).iter_errors(instance)
        ]
        assert not errors, f"query parameter {name!r}: {errors}"
    for param in params:
        if param["in"] == "path":
            assert op.path_params.get(param["name"]), f"empty path parameter {param['name']}"
        if param["in"] == "header" and param.get("required"):
            assert param["name"] in request.headers, f"missing header {param['name']}"
    body_spec = op.spec.get("requestBody")
    if body_spec is None:
        assert not request.content, f"{op.template} takes no body"
        return op
    content_type = request.headers.get("content-type", "").split(";")[0].strip()
    assert content_type in body_spec["content"], f"content type {content_type!r} not allowed"
    validate(
        json.loads(request.content),
        "paths", op.template, op.method, "requestBody", "content", content_type, "schema",
    )  # fmt: skip
    return op


def check_response(op: Operation, response: httpx.Response) -> None:
    responses = op.spec["responses"]
    status = str(response.status_code)
    if status not in responses and f"{status[0]}XX" in responses:
        status = f"{status[0]}XX"
    assert status in responses, f"{op.method.upper()} {op.template} may not answer {status}"
    spec = _resolve(responses[status])
    content_type = response.headers.get("content-type", "").split(";")[0].strip()
    if "content" not in spec:
        return
    assert content_type in spec["content"], f"{status} content type {content_type!r} not declared"
    ref = responses[status].get("$ref")
    parts = (
        ref.removeprefix("#/").split("/")
        if ref
        else ["paths", op.template, op.method, "responses", status]
    )
    validate(response.json(), *parts, "content", content_type, "schema")


@dataclass
class ContractCheckingTransport(httpx.AsyncBaseTransport):
    inner: httpx.AsyncBaseTransport = field(default_factory=httpx.AsyncHTTPTransport)
    checked: list[str] = field(default_factory=list)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        op = check_request(request)
        response = await self.inner.handle_async_request(request)
        await response.aread()
        check_response(op, response)
        self.checked.append(f"{op.method.upper()} {op.template} -> {response.status_code}")
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()
