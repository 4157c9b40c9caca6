"""The agent's side of Pieces OS: the developer's own Pieces OS on this machine.

Requests go through httpx with the answer read in chunks as it arrives (a 10k-asset
snapshot is forwarded while Pieces is still sending it); streams through websockets. No
proxy from the environment and no redirects: the agent talks to this one address only.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass

import httpx
import websockets
from websockets.asyncio.client import connect as ws_connect

from pieces_integration.domain import bridge_protocol as wire


class LocalCallFailed(Exception):
    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


@dataclass(frozen=True, slots=True)
class LocalHead:
    status: int
    content_type: str
    headers: Mapping[str, str]


def _refused(exc: BaseException) -> bool:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ConnectionRefusedError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


class LocalPieces:
    def __init__(self, base_url: str, *, http: httpx.AsyncClient | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self._http = http or httpx.AsyncClient(
            timeout=httpx.Timeout(30.0), follow_redirects=False, trust_env=False
        )

    @asynccontextmanager
    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str],
        headers: Mapping[str, str],
        body: bytes | None,
        call_timeout: float,
    ) -> AsyncIterator[tuple[LocalHead, AsyncIterator[bytes]]]:
        request = self._http.build_request(
            method,
            self.base_url + path,
            params=dict(params),
            headers=dict(headers),
            content=body,
            timeout=call_timeout,
        )
        try:
            response = await self._http.send(request, stream=True)
        except httpx.TimeoutException as exc:
            raise LocalCallFailed("timeout", f"Pieces OS did not answer {path} in time") from exc
        except httpx.ConnectError as exc:
            kind = "not_running" if _refused(exc) else "network"
            raise LocalCallFailed(kind, f"cannot reach Pieces OS at {self.base_url}") from exc
        except httpx.TransportError as exc:
            raise LocalCallFailed("network", f"talking to Pieces OS failed: {exc!r}") from exc
        try:
            head = LocalHead(
                response.status_code,
                response.headers.get("content-type", ""),
                {k: v for k, v in response.headers.items() if k.lower() in ("retry-after",)},
            )

            async def body_chunks() -> AsyncIterator[bytes]:
                try:
                    async for piece in response.aiter_bytes(wire.CHUNK_SIZE):
                        yield piece
                except httpx.TimeoutException as exc:
                    raise LocalCallFailed("timeout", f"Pieces OS stalled on {path}") from exc
                except httpx.TransportError as exc:
                    raise LocalCallFailed("network", f"Pieces OS dropped {path}") from exc

            yield head, body_chunks()
        finally:
            await response.aclose()

    @asynccontextmanager
    async def stream(self, path: str) -> AsyncIterator[AsyncIterator[str]]:
        url = "ws" + self.base_url.removeprefix("http") + path
        try:
            connection = await ws_connect(url, open_timeout=10, max_size=None, proxy=None)
        except ConnectionRefusedError as exc:
            raise LocalCallFailed("not_running", f"cannot connect to {url}") from exc
        except (OSError, TimeoutError, websockets.InvalidHandshake) as exc:
            raise LocalCallFailed("network", f"stream {path} failed: {exc!r}") from exc

        async def frames() -> AsyncIterator[str]:
            try:
                async for message in connection:
                    yield message if isinstance(message, str) else message.decode()
            except websockets.ConnectionClosed as exc:
                raise LocalCallFailed("network", f"stream {path} dropped: {exc}") from exc

        try:
            yield frames()
        finally:
            await connection.close()

    async def aclose(self) -> None:
        await self._http.aclose()
