"""HTTP client for the AIWFE platform contract (docs/aiwfe-contract.yaml)."""

from __future__ import annotations

from pieces_integration.adapters.aiwfe.client import AIWFEHttpClient
from pieces_integration.adapters.resilience import CircuitBreaker, RetryPolicy

__all__ = ["AIWFEHttpClient", "CircuitBreaker", "RetryPolicy"]
