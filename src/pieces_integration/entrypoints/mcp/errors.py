"""Failures of a tool call become MCP tool errors (`is_error`) with the API's message.

The text is the problem detail the REST API would answer, after its title and status, so an
agent reads the same advice a person gets (Pieces down: what to do, not a stack trace).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from mcp.server.mcpserver.exceptions import ResourceError, ResourceNotFoundError, ToolError

from pieces_integration.domain.errors import NotFound, PiecesIntegrationError
from pieces_integration.entrypoints.api.errors import status_for, title_for


def problem_text(exc: PiecesIntegrationError) -> str:
    status = status_for(exc)
    return f"{title_for(status)} ({status} {exc.code}): {exc.message}"


def timeout_text(seconds: float) -> str:
    return f"the call took longer than {seconds:g} s and was stopped; try again or narrow it"


@asynccontextmanager
async def tool_errors(timeout_seconds: float) -> AsyncIterator[None]:
    """Bound the call in time; turn domain errors into tool errors."""
    try:
        async with asyncio.timeout(timeout_seconds):
            yield
    except PiecesIntegrationError as exc:
        raise ToolError(problem_text(exc)) from exc
    except TimeoutError as exc:
        raise ToolError(timeout_text(timeout_seconds)) from exc


@asynccontextmanager
async def resource_errors(timeout_seconds: float) -> AsyncIterator[None]:
    """The same for resource reads (an unknown snippet is "not found", -32602)."""
    try:
        async with asyncio.timeout(timeout_seconds):
            yield
    except NotFound as exc:
        raise ResourceNotFoundError(problem_text(exc)) from exc
    except PiecesIntegrationError as exc:
        raise ResourceError(problem_text(exc)) from exc
    except TimeoutError as exc:
        raise ResourceError(timeout_text(timeout_seconds)) from exc
