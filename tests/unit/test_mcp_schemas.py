"""Every MCP tool's schemas, without a running service: valid JSON Schema, and every string
and list argument bounded, so no argument can be arbitrarily large (issue 17)."""

from __future__ import annotations

from typing import Any

import pytest
from jsonschema import Draft202012Validator
from mcp.server.mcpserver import MCPServer
from mcp.types import Tool

from pieces_integration.entrypoints.mcp.kit import ToolKit
from pieces_integration.entrypoints.mcp.tools_read import register_read_tools
from pieces_integration.entrypoints.mcp.tools_write import WRITE_TOOLS, register_write_tools

pytestmark = pytest.mark.anyio


async def _tools() -> list[Tool]:
    server: MCPServer[Any] = MCPServer("schemas")
    kit = ToolKit(container=None, caller=lambda ctx: None)  # type: ignore[arg-type, return-value]
    register_read_tools(server, kit)
    register_write_tools(server, kit)
    return await server.list_tools()


def _unbounded(schema: Any, path: str = "") -> list[str]:
    found: list[str] = []
    if isinstance(schema, dict):
        kind = schema.get("type")
        if kind == "string" and "maxLength" not in schema and "enum" not in schema:
            found.append(path or "/")
        if kind == "array" and "maxItems" not in schema:
            found.append(path or "/")
        for key, value in schema.items():
            found += _unbounded(value, f"{path}/{key}")
    elif isinstance(schema, list):
        for n, value in enumerate(schema):
            found += _unbounded(value, f"{path}/{n}")
    return found


async def test_every_schema_is_valid_json_schema() -> None:
    tools = await _tools()
    assert {tool.name for tool in tools} >= set(WRITE_TOOLS)
    for tool in tools:
        Draft202012Validator.check_schema(tool.input_schema)
        assert tool.output_schema is not None, tool.name
        Draft202012Validator.check_schema(tool.output_schema)
        assert tool.output_schema["type"] == "object", tool.name


async def test_every_string_and_list_argument_is_bounded() -> None:
    unbounded = {tool.name: _unbounded(tool.input_schema) for tool in await _tools()}
    assert {name: paths for name, paths in unbounded.items() if paths} == {}
