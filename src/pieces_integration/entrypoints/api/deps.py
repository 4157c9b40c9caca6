"""FastAPI dependencies shared by the routers: the container, the caller, rate limits."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request, Response, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from pieces_integration.bootstrap import Container
from pieces_integration.config import ApiSettings
from pieces_integration.domain.auth import Principal
from pieces_integration.domain.errors import RateLimited
from pieces_integration.domain.rate_limit import Bucket, tightest
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


def rate_limit_buckets(principal: Principal, limits: ApiSettings) -> list[Bucket]:
    """The user's own bucket, then their tenant's where a tenant limit is configured."""
    buckets = []
    if limits.rate_limit_per_minute > 0:
        buckets.append(
            Bucket(principal.rate_limit_key, limits.rate_limit_per_minute, limits.rate_limit_burst)
        )
    tenant_key = principal.tenant_rate_limit_key
    if tenant_key is not None and limits.tenant_rate_limit_per_minute > 0:
        buckets.append(
            Bucket(tenant_key, limits.tenant_rate_limit_per_minute, limits.tenant_rate_limit_burst)
        )
    return buckets


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
    buckets = rate_limit_buckets(principal, container.settings.api)
    if buckets:
        decisions = await container.rate_limiter.hit_all(buckets)
        # The client is told about the tighter bucket: the refusing one, else the one with
        # fewer requests left (README, "Limits, lockouts and revocation").
        decision = tightest(decisions)
        if not all(d.allowed for d in decisions):
            tenant = any(
                d is decision and b.key == principal.tenant_rate_limit_key
                for b, d in zip(buckets, decisions, strict=True)
            )
            raise RateLimited(
                "your tenant's rate limit is exceeded; slow down"
                if tenant
                else "rate limit exceeded; slow down",
                retry_after=decision.retry_after,
                limit=decision.limit,
                remaining=decision.remaining,
                scope="tenant" if tenant else "user",
            )
        response.headers["RateLimit-Limit"] = str(decision.limit)
        response.headers["RateLimit-Remaining"] = str(decision.remaining)
        response.headers["RateLimit-Reset"] = str(max(0, round(decision.reset_after)))
    request.state.principal = principal
    return principal


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]
