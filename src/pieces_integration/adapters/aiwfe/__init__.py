"""HTTP client for the AIWFE platform contract (docs/aiwfe-contract.yaml)."""

from __future__ import annotations

from pieces_integration.adapters.aiwfe._resilience import CircuitBreaker, RetryPolicy
from pieces_integration.adapters.aiwfe.client import AIWFEHttpClient

__all__ = ["AIWFEHttpClient", "CircuitBreaker", "RetryPolicy"]
