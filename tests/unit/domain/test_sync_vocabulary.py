"""The sync's StrEnums keep the strings already stored, so old rows still read."""

from __future__ import annotations

from pieces_integration.domain.commands import CreateAIWFESuggestion, CreatePiecesAsset
from pieces_integration.domain.outbox import CARRIED_BY_PUSH, OutboxOperation
from pieces_integration.domain.sync_status import SyncStatus


def test_outbox_operations_keep_their_stored_values() -> None:
    assert {op.name: op.value for op in OutboxOperation} == {
        "ASSET_CREATE": "asset.create",
        "ASSET_UPDATE": "asset.update",
        "ASSET_DELETE": "asset.delete",
        "CONTEXT_UPDATE": "context.update",
        "CREATE_SUGGESTION": "create_suggestion",
    }
    assert CreatePiecesAsset.OPERATION == OutboxOperation.ASSET_CREATE
    assert CreateAIWFESuggestion.OPERATION == OutboxOperation.CREATE_SUGGESTION


def test_a_stored_operation_string_is_recognised() -> None:
    assert "asset.update" in CARRIED_BY_PUSH and "asset.delete" not in CARRIED_BY_PUSH
    assert OutboxOperation("asset.delete") is OutboxOperation.ASSET_DELETE


def test_sync_statuses_keep_their_stored_values() -> None:
    assert [status.value for status in SyncStatus] == [
        "pending",
        "in_progress",
        "completed",
        "failed",
        "interrupted",
    ]
