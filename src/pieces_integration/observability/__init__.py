"""Logs and metrics: cross-cutting, configured once by the composition root."""
