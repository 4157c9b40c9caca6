"""Names the server and the stdio proxy share (a light module: the proxy needs no more)."""

from __future__ import annotations

PATH = "/mcp"  # the streamable HTTP endpoint of the service
SERVER_NAME = "pieces-integration"
