"""What every tool needs: the container's services, who is calling, the time bound."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from mcp.server.mcpserver import Context
from mcp.types import ToolAnnotations
from pydantic import Field

from pieces_integration.bootstrap import Container
from pieces_integration.domain.auth import Principal
from pieces_integration.entrypoints.mcp.auth import CallerOf

# Argument bounds in the input schemas (the services check the configured limits too).
Id = Annotated[str, Field(min_length=1, max_length=64, description="A snippet id")]
Tag = Annotated[str, Field(min_length=1, max_length=64)]
Tags = Annotated[list[Tag], Field(max_length=50)]
Language = Annotated[str, Field(min_length=1, max_length=64, description="e.g. python")]
ShortText = Annotated[str, Field(max_length=2000)]
Keywords = Annotated[list[Annotated[str, Field(max_length=200)]], Field(max_length=50)]

READ_ONLY = ToolAnnotations(read_only_hint=True, idempotent_hint=True, open_world_hint=False)


@dataclass(frozen=True, slots=True)
class ToolKit:
    container: Container
    caller: CallerOf

    @property
    def timeout(self) -> float:
        return self.container.settings.mcp.tool_timeout_seconds

    def principal(self, ctx: Context[Any, Any]) -> Principal:
        return self.caller(ctx)
