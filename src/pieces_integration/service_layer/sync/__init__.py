"""The sync engine and its parts: `engine` runs a user's sync, `pull` and `push` are its
phases, `outbox` its queued deliveries, `writes` its batched store writes, `state` what it
reads, and `result` what it reports."""

from pieces_integration.service_layer.sync.engine import SyncEngine
from pieces_integration.service_layer.sync.result import sync_completed

__all__ = ["SyncEngine", "sync_completed"]
