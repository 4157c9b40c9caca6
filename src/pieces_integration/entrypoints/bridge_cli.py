"""`pieces-integration bridge pair|run|status`: the agent on a developer's machine
(issue 13, DEVIATIONS 5). It dials out to the service; nothing dials in to the machine.

It lives outside `entrypoints/cli` and imports nothing of the service (no bootstrap, no
database, no models), so the agent starts fast on a laptop (`entrypoints/launch.py`)."""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import ssl
from pathlib import Path
from typing import NoReturn

import httpx
import typer

from pieces_integration import __version__
from pieces_integration.adapters.bridge import agent_files
from pieces_integration.adapters.bridge.agent import (
    AgentError,
    AgentSettings,
    BridgeAgent,
    socket_url,
)
from pieces_integration.adapters.pieces_os.discovery import PortScanDetector
from pieces_integration.observability.logs import configure_logging

app = typer.Typer(help="The bridge: lets a cluster deployment reach this machine's Pieces OS.")
PAIR_PATH = "/api/v1/integrations/pieces/bridges/pair"
SCAN = range(39300, 39334)
LEGACY = 1000

ConfigDir = typer.Option(
    None, "--config-dir", help="Where the credential is kept (default: the user config dir)."
)
CaFile = typer.Option(None, "--ca-file", help="PEM CA bundle to verify the service with.")
Servers = typer.Option(
    None, "--server", help="The service's URL; repeat for fail-over (default: as paired)."
)


def fail(message: str, code: int = 2) -> NoReturn:
    typer.echo(f"pieces-integration: error: {message}", err=True)
    raise typer.Exit(code)


def _tls(ca_file: Path | None) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(ca_file) if ca_file else None)


@app.command()
def pair(
    server: str = typer.Option(..., "--server", help="The service's URL (https://...)."),
    code: str = typer.Option(..., "--code", help="The one-time pairing code."),
    config_dir: Path | None = ConfigDir,
    ca_file: Path | None = CaFile,
    allow_insecure: bool = typer.Option(
        False, "--allow-insecure", help="Allow plain http:// to a non-loopback host (dev only)."
    ),
) -> None:
    """Exchange a pairing code for this machine's long-lived bridge credential."""
    try:
        socket_url(server, allow_insecure=allow_insecure)  # same transport rules as `run`
    except AgentError as exc:
        fail(str(exc))
    directory = agent_files.config_dir(config_dir)
    device_id = secrets.token_urlsafe(24)
    url = server.rstrip("/").replace("ws://", "http://").replace("wss://", "https://")
    body = {"code": code, "device_id": device_id, "agent_version": __version__}
    try:
        response = httpx.post(url + PAIR_PATH, json=body, verify=_tls(ca_file), timeout=15)
    except httpx.HTTPError as exc:
        fail(f"cannot reach {url}: {exc}")
    if response.status_code != 200:
        detail = (
            response.json().get("detail")
            if "json" in response.headers.get("content-type", "")
            else response.text[:200]
        )
        fail(f"pairing refused (HTTP {response.status_code}): {detail}")
    data = response.json()
    path = agent_files.save_pairing(
        directory,
        agent_files.Pairing(
            server=server,
            bridge_id=data["bridge_id"],
            user_id=data["user_id"],
            name=data["name"],
            credential=data["credential"],
            device_id=device_id,
        ),
    )
    typer.echo(f"paired bridge {data['name']!r} for {data['user_id']}; credential in {path}")
    typer.echo("now run: pieces-integration bridge run")


async def _discover(explicit: str | None) -> str:
    if explicit:
        return explicit.rstrip("/")
    async with httpx.AsyncClient(trust_env=False, follow_redirects=False) as client:
        found = await PortScanDetector(client, ports=SCAN, legacy_ports=(LEGACY,)).detect(
            "127.0.0.1"
        )
    if found.found and found.url:
        return found.url
    typer.echo("no Pieces OS found on 39300-39333 or 1000; using 39300 until it starts", err=True)
    return f"http://127.0.0.1:{SCAN[0]}"


@app.command()
def run(
    server: list[str] | None = Servers,
    pieces_url: str | None = typer.Option(
        None, "--pieces-url", help="Local Pieces OS (default: scan 39300-39333, then 1000)."
    ),
    config_dir: Path | None = ConfigDir,
    ca_file: Path | None = CaFile,
    allow_insecure: bool = typer.Option(
        False, "--allow-insecure", help="Allow plain ws:// to a non-loopback host (dev only)."
    ),
    heartbeat: float = typer.Option(15.0, "--heartbeat", min=0.1, help="Seconds between pings."),
    backoff_base: float = typer.Option(1.0, "--backoff-base", min=0.01, hidden=True),
    log_level: str = typer.Option("info", "--log-level"),
) -> None:
    """Serve this machine's Pieces OS to the service until SIGINT/SIGTERM."""
    configure_logging(log_level, "console")
    directory = agent_files.config_dir(config_dir)
    try:
        pairing = agent_files.load_pairing(directory)
    except RuntimeError as exc:
        fail(str(exc))
    if pairing is None:
        fail(f"not paired (no {directory / agent_files.CREDENTIAL_FILE}); run `bridge pair`")

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        local = await _discover(pieces_url)
        agent = BridgeAgent(
            AgentSettings(
                servers=tuple(server or [pairing.server]),
                pieces_url=local,
                credential=pairing.credential,
                device_id=pairing.device_id,
                agent_version=__version__,
                heartbeat=heartbeat,
                ca_file=ca_file,
                allow_insecure=allow_insecure,
                backoff_base=backoff_base,
                status_dir=directory,
            )
        )
        agent.status["pid"] = os.getpid()
        agent.status["bridge_id"] = pairing.bridge_id
        await agent.run(stop)

    try:
        asyncio.run(main())
    except AgentError as exc:
        fail(str(exc), code=3)
    typer.echo("bridge stopped", err=True)


@app.command()
def status(config_dir: Path | None = ConfigDir) -> None:
    """Paired? Connected? Last error?"""
    directory = agent_files.config_dir(config_dir)
    try:
        pairing = agent_files.load_pairing(directory)
    except RuntimeError as exc:
        fail(str(exc))
    if pairing is None:
        typer.echo("paired: no")
        raise typer.Exit(1)
    typer.echo(
        f"paired: yes ({pairing.name!r}, bridge {pairing.bridge_id}, user {pairing.user_id})"
    )
    typer.echo(f"server: {pairing.server}")
    state = agent_files.load_status(directory) or {}
    pid = state.get("pid")
    alive = isinstance(pid, int) and _alive(pid)
    shown = (
        state.get("state", "never run")
        if alive or state.get("state") == "revoked"
        else ("not running")
    )
    typer.echo(f"agent: {shown}" + (f" (pid {pid})" if alive else ""))
    if state.get("since") and shown == "connected":
        typer.echo(f"connected since: {state['since']}")
    if state.get("pieces_url"):
        typer.echo(f"pieces os: {state['pieces_url']}")
    typer.echo(f"last error: {state.get('last_error') or 'none'}")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
