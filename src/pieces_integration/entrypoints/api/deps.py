"""FastAPI dependencies shared by the routers: the container, the caller, rate limits."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request, Response, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from pieces_integration.bootstrap import Container
from pieces_integration.domain.auth import Principal
from pieces_integration.domain.errors import RateLimited
from pieces_integration.service_layer.auth import RequestMeta

_bearer = HTTPBearer(auto_error=False, description="JWT, or an API key `pk_...`")
_api_key = APIKeyHeader(name="X-API-Key", auto_error=False, description="API key `pk_...`")
# The presented credentials, before anyone checks them (absent ones are None).
BearerCredential = Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)]
ApiKeyCredential = Annotated[str | None, Security(_api_key)]


def get_container(request: Request) -> Container:
    container: Container = request.app.state.container
    return container


ContainerDep = Annotated[Container, Depends(get_container)]


def request_meta(request: Request) -> RequestMeta:
    client = request.client.host if request.client else None
    return RequestMeta(ip=client, request_id=getattr(request.state, "request_id", None))


async def current_principal(
    request: Request,
    response: Response,
    container: ContainerDep,
    bearer: BearerCredential,
    api_key: ApiKeyCredential,
) -> Principal:
    principal = await container.authenticator.authenticate(
        bearer=bearer.credentials if bearer else None, api_key=api_key, meta=request_meta(request)
    )
    limits = container.settings.api
    if limits.rate_limit_per_minute > 0:
        decision = await container.rate_limiter.hit(
            principal.rate_limit_key,
            per_minute=limits.rate_limit_per_minute,
            burst=limits.rate_limit_burst,
        )
        if not decision.allowed:
            raise RateLimited(
                "rate limit exceeded; slow down",
                retry_after=decision.retry_after,
                limit=decision.limit,
                remaining=decision.remaining,
            )
        response.headers["RateLimit-Limit"] = str(decision.limit)
        response.headers["RateLimit-Remaining"] = str(decision.remaining)
        response.headers["RateLimit-Reset"] = str(max(0, round(decision.reset_after)))
    request.state.principal = principal
    return principal


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]
