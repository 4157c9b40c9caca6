"""Prometheus metrics with the names of spec 9.1.

No metric carries a user id (DEVIATIONS 14): per-user detail belongs in logs and the API.
Each `Metrics` owns its registry, so several apps (tests, replicas in one process) coexist.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

__all__ = ["CONTENT_TYPE_LATEST", "Metrics"]

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        # Spec 9.1 names.
        self.sync_operations = Counter(
            "pieces_sync_operations_total",
            "Total number of sync operations",
            ["direction", "status"],
            registry=r,
        )
        self.suggestions_generated = Counter(
            "pieces_suggestions_generated_total",
            "Total number of suggestions generated",
            ["type", "source"],
            registry=r,
        )
        self.sync_duration = Histogram(
            "pieces_sync_duration_seconds",
            "Duration of sync operations",
            ["direction"],
            buckets=(0.1, 0.5, 1, 2, 5, 10, 30),
            registry=r,
        )
        self.suggestion_relevance = Histogram(
            "pieces_suggestion_relevance_score",
            "Relevance scores of generated suggestions",
            buckets=(0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0),
            registry=r,
        )
        self.active_connections = Gauge(
            "pieces_active_connections", "Number of active Pieces connections", registry=r
        )
        self.cache_size = Gauge(
            "pieces_cache_size_bytes", "Size of the integration cache in bytes", registry=r
        )
        # Technical metrics the spec lists by meaning (9.1) without names.
        self.http_requests = Counter(
            "pieces_http_requests_total",
            "HTTP requests by route template and status",
            ["method", "route", "status"],
            registry=r,
        )
        self.http_duration = Histogram(
            "pieces_http_request_duration_seconds",
            "HTTP request latency by route template",
            ["method", "route"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.cache_requests = Counter(
            "pieces_cache_requests_total", "Cache lookups by result", ["result"], registry=r
        )
        self.websocket_connections = Gauge(
            "pieces_websocket_connections", "Open WebSocket connections", registry=r
        )
        self.suggestion_feedback = Counter(
            "pieces_suggestion_feedback_total",
            "Suggestion feedback by action (acceptance rate = accepted / shown)",
            ["action"],
            registry=r,
        )
        self.outbox_pending = Gauge(
            "pieces_outbox_pending", "Outbox messages waiting for delivery", ["target"], registry=r
        )
        self.semantic_index_lag = Gauge(
            "pieces_semantic_index_lag", "Assets waiting for the semantic indexer", registry=r
        )
        self.vector_optimizations = Counter(
            "pieces_vector_optimizations_total",
            "Embedded vector store optimisations by result (optimized, unchanged, failed)",
            ["result"],
            registry=r,
        )
        self.upstream_requests = Counter(
            "pieces_upstream_requests_total",
            "Calls to Pieces OS and AIWFE by outcome",
            ["upstream", "outcome"],
            registry=r,
        )

        # Issue 20: brute-force limits and revocation.
        self.auth_failures = Counter(
            "pieces_auth_failures_total",
            "Failed authentications by credential kind (api_key, token, signin_code, ticket, "
            "pairing_code, bridge)",
            ["kind"],
            registry=r,
        )
        self.auth_lockouts = Counter(
            "pieces_auth_lockouts_total",
            "Authentication lockouts started, by what was locked (address, identity)",
            ["scope"],
            registry=r,
        )
        self.sessions_revoked = Counter(
            "pieces_sessions_revoked_total",
            "Live sessions ended because a credential or user they depended on was revoked",
            registry=r,
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)
