"""Liveness, readiness and metrics (spec 9.2, 9.1). No authentication, no per-user data."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse

from pieces_integration.entrypoints.api.deps import ContainerDep
from pieces_integration.entrypoints.api.errors import problem
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
async def read_ready(container: ContainerDep) -> JSONResponse:
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


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
async def read_metrics(container: ContainerDep) -> Response:
    if not container.settings.monitoring.metrics_enabled:
        return problem(404, "metrics are disabled by configuration")
    return Response(container.metrics.render(), media_type=CONTENT_TYPE_LATEST)
