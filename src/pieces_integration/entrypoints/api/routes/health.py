"""Liveness, readiness and metrics (spec 9.2, 9.1). No per-user data.

None needs authentication, except `/metrics` when `monitoring.metrics_require_auth` is set:
then it takes a token or API key with the admin or service role (a scraper's key).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from pieces_integration.domain.errors import Forbidden
from pieces_integration.domain.model import Role
from pieces_integration.entrypoints.api.deps import (
    ApiKeyCredential,
    BearerCredential,
    ContainerDep,
    request_meta,
)
from pieces_integration.entrypoints.api.errors import problem
from pieces_integration.entrypoints.api.openapi import PROBLEM_RESPONSES
from pieces_integration.observability.metrics import CONTENT_TYPE_LATEST
from pieces_integration.service_layer.health import check_readiness

router = APIRouter(tags=["health"])


@router.get("/health", summary="Liveness: the process is up (no dependency is called)")
async def read_health() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/ready",
    summary="Readiness: the dependencies this configuration uses answer",
    responses={503: {"description": "A critical dependency failed; the body names it"}},
)
async def read_ready(request: Request, container: ContainerDep) -> JSONResponse:
    if getattr(request.app.state, "draining", False):
        # Shutting down: still serving what arrives, but the balancer should send no more.
        return problem(503, "not ready: draining for shutdown", code="draining", title="Draining")
    readiness = await check_readiness(container.health_checks)
    checks: list[dict[str, Any]] = [
        {
            "name": check.name,
            "status": "healthy" if check.healthy else "unhealthy",
            "critical": check.critical,
            "duration_ms": check.duration_ms,
            **({"message": check.message} if check.message else {}),
        }
        for check in readiness.checks
    ]
    if readiness.ready:
        return JSONResponse({"status": "ready", "checks": checks})
    failed = ", ".join(f"{c.name} ({c.message})" for c in readiness.failed)
    return problem(
        503,
        f"not ready: {failed}",
        code="not_ready",
        title="Service not ready",
        failed_checks=[c.name for c in readiness.failed],
        checks=checks,
    )


_METRICS_ROLES = frozenset({Role.ADMIN, Role.SERVICE})


@router.get(
    "/metrics",
    summary="Prometheus metrics (admin or service credentials if metrics_require_auth is set)",
    response_class=Response,
    responses={code: PROBLEM_RESPONSES[code] for code in (401, 403, 404)},
)
async def read_metrics(
    request: Request, container: ContainerDep, bearer: BearerCredential, api_key: ApiKeyCredential
) -> Response:
    monitoring = container.settings.monitoring
    if not monitoring.metrics_enabled:
        return problem(404, "metrics are disabled by configuration")
    if monitoring.metrics_require_auth:
        principal = await container.authenticator.authenticate(
            bearer=bearer.credentials if bearer else None,
            api_key=api_key,
            meta=request_meta(request),
        )
        if principal.role not in _METRICS_ROLES:
            raise Forbidden(
                "metrics need the admin or service role", details={"role": principal.role.value}
            )
    return Response(container.metrics.render(), media_type=CONTENT_TYPE_LATEST)
