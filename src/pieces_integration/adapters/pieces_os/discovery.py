"""Finds a running Pieces OS on a host: the 39300–39333 range first, then the legacy port.

Every candidate is probed at once (TCP connect, then `GET /.well-known/health`), the whole
scan is bounded by a deadline (default 1.5 s, the detect endpoint promises 2 s), and the
lowest healthy port of the range wins so repeated scans agree.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

import httpx

from pieces_integration.domain.connection_state import is_compatible
from pieces_integration.ports.pieces import DetectionResult

SCAN_PORTS = tuple(range(39300, 39334))
LEGACY_PORT = 1000


class PortScanDetector:
    def __init__(
        self,
        client: httpx.AsyncClient,
        *,
        ports: Sequence[int] = SCAN_PORTS,
        legacy_ports: Sequence[int] = (LEGACY_PORT,),
        connect_timeout: float = 0.3,
        probe_timeout: float = 0.5,
        deadline: float = 1.5,
    ) -> None:
        self._client = client
        self._ports = tuple(ports)
        self._legacy = tuple(legacy_ports)
        self._connect_timeout = connect_timeout
        self._probe_timeout = probe_timeout
        self._deadline = deadline

    def _base(self, scheme: str, host: str, port: int) -> str:
        shown = f"[{host}]" if ":" in host and not host.startswith("[") else host
        return f"{scheme}://{shown}:{port}"

    async def _port_open(self, host: str, port: int) -> bool:
        try:
            async with asyncio.timeout(self._connect_timeout):
                _, writer = await asyncio.open_connection(host.strip("[]"), port)
        except (OSError, TimeoutError):
            return False
        writer.close()
        try:
            async with asyncio.timeout(self._connect_timeout):
                await writer.wait_closed()
        except (OSError, TimeoutError):
            pass
        return True

    async def probe(self, base_url: str) -> str | None:
        """The version of the Pieces OS at `base_url`, "" if healthy but unversioned, or None."""
        try:
            health = await self._client.get(
                f"{base_url}/.well-known/health",
                timeout=self._probe_timeout,
                follow_redirects=False,
            )
            if health.status_code != 200 or not health.text.strip().lower().startswith("ok"):
                return None
            version = await self._client.get(
                f"{base_url}/.well-known/version", timeout=self._probe_timeout
            )
        except httpx.HTTPError:
            return None
        return version.text.strip() if version.status_code == 200 else ""

    async def _probe_port(self, scheme: str, host: str, port: int) -> tuple[int, str] | None:
        if not await self._port_open(host, port):
            return None
        version = await self.probe(self._base(scheme, host, port))
        return None if version is None else (port, version)

    async def detect(self, host: str, *, scheme: str = "http") -> DetectionResult:
        started = time.perf_counter()
        candidates = self._ports + tuple(p for p in self._legacy if p not in self._ports)
        tasks = [asyncio.ensure_future(self._probe_port(scheme, host, p)) for p in candidates]
        found: list[tuple[int, str]] = []
        try:
            async with asyncio.timeout(self._deadline):
                for result in await asyncio.gather(*tasks):
                    if result is not None:
                        found.append(result)
        except TimeoutError:
            found = [t.result() for t in tasks if t.done() and t.result() is not None]  # type: ignore[misc]
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        elapsed = (time.perf_counter() - started) * 1000
        if not found:
            return DetectionResult(found=False, scanned=len(candidates), elapsed_ms=elapsed)
        in_range = [f for f in found if f[0] in self._ports]
        port, version = min(in_range or found)
        return DetectionResult(
            found=True,
            url=self._base(scheme, host, port),
            version=version or None,
            compatible=is_compatible(version) if version else None,
            legacy=port not in self._ports,
            scanned=len(candidates),
            elapsed_ms=elapsed,
        )
