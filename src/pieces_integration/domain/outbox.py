"""The operations an outbox message can carry: what a remote side is asked to do.

The values are the ones stored in `outbox.operation`, so rows written before this enum
existed still read, and a StrEnum member compares equal to the stored string.
"""

from __future__ import annotations

from enum import StrEnum


class OutboxOperation(StrEnum):
    ASSET_CREATE = "asset.create"
    ASSET_UPDATE = "asset.update"
    ASSET_DELETE = "asset.delete"
    CONTEXT_UPDATE = "context.update"
    CREATE_SUGGESTION = "create_suggestion"  # an AIWFE task suggestion


# Operations the sync's state-based push carries: a push that reached the side settles them.
# A delete has no state left to push, so it is delivered as a message of its own.
CARRIED_BY_PUSH = frozenset({OutboxOperation.ASSET_CREATE, OutboxOperation.ASSET_UPDATE})
