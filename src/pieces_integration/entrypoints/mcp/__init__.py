"""The MCP server: agents search, read and save snippets and context through the Model
Context Protocol (streamable HTTP at `/mcp`, and `pieces-integration mcp` over stdio).

The tools call the same service-layer use cases as the REST routes; see `tools_read`,
`tools_write`, `resources`, `server` (assembly), `http` (the `/mcp` route), `stdio` and
`proxy` (stdio to a remote service).
"""
