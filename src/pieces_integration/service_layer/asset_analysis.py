"""Pieces -> AIWFE: findings in a new or changed asset become AIWFE task suggestions.

Spec 4.3 `analyzeAssetForAIWFE`/`suggestAIWFEActions`, with parsers instead of line
regexes (DEVIATIONS 13). Each finding becomes its own outbox message keyed by its
fingerprint, so re-analysing an asset (every update does) never sends a suggestion
twice for the same line; AIWFE also de-duplicates by fingerprint, as a second guard.
"""

from __future__ import annotations

import anyio.to_thread

from pieces_integration.domain.code_findings import Finding, TaskSuggestion, suggestion_for
from pieces_integration.domain.commands import CreateAIWFESuggestion
from pieces_integration.domain.model import Asset, OutboxMessage
from pieces_integration.ports.aiwfe import AIWFEClient, SuggestionsReceipt
from pieces_integration.ports.code_analysis import CodeAnalyzer
from pieces_integration.ports.storage import UnitOfWorkFactory


def suggestions_for_findings(asset: Asset, findings: list[Finding]) -> list[TaskSuggestion]:
    unique: dict[str, TaskSuggestion] = {}
    for finding in findings:
        suggestion = suggestion_for(asset.id, asset.name, finding)
        unique.setdefault(suggestion.fingerprint, suggestion)
    return list(unique.values())


async def analyze_asset(asset: Asset, analyzer: CodeAnalyzer) -> list[TaskSuggestion]:
    """The suggestions an asset warrants; empty for languages without a grammar."""
    if not asset.content or not analyzer.supports(asset.language):
        return []
    # Parsing is CPU work: keep it off the event loop.
    findings = await anyio.to_thread.run_sync(analyzer.analyze, asset.content, asset.language)
    return suggestions_for_findings(asset, findings)


async def queue_asset_suggestions(
    asset: Asset, *, analyzer: CodeAnalyzer, uow_factory: UnitOfWorkFactory
) -> int:
    """Analyse `asset` and store one outbox message per new suggestion; return how many."""
    suggestions = await analyze_asset(asset, analyzer)
    if not suggestions:
        return 0
    stored = 0
    async with uow_factory() as uow:
        for suggestion in suggestions:
            command = CreateAIWFESuggestion(asset.user_id, asset.id, suggestion)
            stored += bool(await uow.outbox.add(command.to_outbox()))
        await uow.commit()
    return stored


async def deliver_suggestion(message: OutboxMessage, client: AIWFEClient) -> SuggestionsReceipt:
    """Outbox delivery for `create_suggestion` messages (target "aiwfe")."""
    command = CreateAIWFESuggestion.from_outbox(message)
    return await client.create_suggestions(
        command.user_id,
        asset_id=command.asset_id,
        suggestions=[command.suggestion],
        idempotency_key=command.idempotency_key,
    )
