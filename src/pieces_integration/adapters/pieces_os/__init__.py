"""Pieces OS adapter: httpx/websockets transport, API client, mapping, streams, discovery."""
