"""Suggestion feedback: what the user did with a suggestion (shown, accepted, copied,
dismissed). It updates usage statistics, the ranking and the acceptance-rate metric."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, status

from pieces_integration.entrypoints.api.deps import ContainerDep, CurrentPrincipal
from pieces_integration.entrypoints.api.schemas.search import FeedbackBody, FeedbackPublic

router = APIRouter(prefix="/api/v1/suggestions", tags=["search"])


@router.post(
    "/{suggestion_id}/feedback",
    status_code=status.HTTP_201_CREATED,
    summary="Record what the user did with a suggestion",
)
async def record_feedback(
    suggestion_id: Annotated[str, Path(min_length=1, max_length=64)],
    body: FeedbackBody,
    principal: CurrentPrincipal,
    container: ContainerDep,
) -> FeedbackPublic:
    service = container.search.suggestions
    feedback = await service.record_feedback(
        principal, suggestion_id, body.action, asset_id=body.asset_id, raw_context=body.context
    )
    return FeedbackPublic(
        suggestion_id=feedback.suggestion_id,
        action=feedback.action,
        asset_id=feedback.asset_id,
        context_hash=feedback.context_hash,
        created_at=feedback.created_at,
    )
