"""AIWFE -> Pieces: code blocks of assistant messages become Pieces asset commands (spec 4.3)."""

from __future__ import annotations

from collections.abc import Iterable

from pieces_integration.domain.code_blocks import CodeBlock, extract_code_blocks
from pieces_integration.domain.commands import AIWFE_CHAT_TAG, CreatePiecesAsset, chat_snippet_key
from pieces_integration.ports.aiwfe import Chat

_NAME_LIMIT = 80


def _asset_name(block: CodeBlock) -> str:
    first = next((line.strip() for line in block.code.splitlines() if line.strip()), "snippet")
    label = block.language or "code"
    name = f"{label}: {first}"
    return name if len(name) <= _NAME_LIMIT else name[: _NAME_LIMIT - 1] + "…"


def asset_commands_for_message(
    user_id: str,
    chat_id: str,
    message_id: str,
    role: str,
    content: str,
    *,
    chat_title: str | None = None,
    event_id: str | None = None,
) -> list[CreatePiecesAsset]:
    """One CreatePiecesAsset per distinct code block of an assistant message; none otherwise."""
    if role != "assistant":
        return []  # users paste code they already have; only generated code is new
    commands: list[CreatePiecesAsset] = []
    for block in extract_code_blocks(content):
        tags = (AIWFE_CHAT_TAG, block.language) if block.language else (AIWFE_CHAT_TAG,)
        where = f"AIWFE chat {chat_title!r}" if chat_title else f"AIWFE chat {chat_id}"
        metadata: dict[str, object] = {
            "aiwfe_chat_id": chat_id,
            "aiwfe_message_id": message_id,
            "code_fingerprint": block.fingerprint,
            "language_source": block.language_source,
        }
        if event_id:
            metadata["aiwfe_event_id"] = event_id
        commands.append(
            CreatePiecesAsset(
                user_id=user_id,
                name=_asset_name(block),
                content=block.code,
                language=block.language,
                description=f"Code snippet from {where}",
                tags=tags,
                source_id=chat_id,
                idempotency_key=chat_snippet_key(chat_id, message_id, block.fingerprint),
                metadata=metadata,
            )
        )
    return commands


def asset_commands_for_chat(user_id: str, chats: Iterable[Chat]) -> list[CreatePiecesAsset]:
    """The polling path (spec shareChatInsights): the same commands a webhook would produce."""
    commands: list[CreatePiecesAsset] = []
    for chat in chats:
        for message in chat.messages:
            commands.extend(
                asset_commands_for_message(
                    user_id,
                    chat.id,
                    message.id,
                    message.role,
                    message.content,
                    chat_title=chat.title,
                )  # fmt: skip
            )
    return commands
