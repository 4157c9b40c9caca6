"""`pieces-integration emulate aiwfe`: run the AIWFE emulator, or send it a signed webhook."""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Annotated, Any

import httpx
import typer

from pieces_integration.emulators.aiwfe.server import AIWFEEmulator
from pieces_integration.emulators.aiwfe.webhooks import build_event, deliver

_Secrets = Annotated[
    list[str] | None,
    typer.Option(
        "--webhook-secret",
        envvar="AIWFE_WEBHOOK_SECRET",
        help="Shared secret(s) to sign webhooks; repeat during a rotation.",
    ),
]


def aiwfe(
    port: Annotated[int, typer.Option(help="Port to listen on (0 = any free port).")] = 8090,
    host: Annotated[str, typer.Option(help="Address to bind.")] = "127.0.0.1",
    api_key: Annotated[
        str | None,
        typer.Option(envvar="AIWFE_API_KEY", help="Bearer key clients must send (none: open)."),
    ] = None,
    webhook_url: Annotated[
        str | None,
        typer.Option(help="Deliver events (e.g. new chat messages) to this service URL."),
    ] = None,
    webhook_secret: _Secrets = None,
    demo: Annotated[
        bool, typer.Option(help="Start with a demo user, chat, templates, docs.")
    ] = True,
) -> None:
    """Serve the AIWFE contract (docs/aiwfe-contract.yaml) with state until Ctrl-C.

    Control endpoints under /_emulator let you add users, chats and messages, inject faults
    and deliver signed webhooks (POST /_emulator/webhooks/send).
    """
    emulator = AIWFEEmulator(
        host=host,
        port=port,
        api_key=api_key,
        webhook_url=webhook_url,
        webhook_secrets=list(webhook_secret or []),
        log_level="info",
    )
    if demo:
        emulator.state.seed_demo()
    typer.echo(f"AIWFE emulator on http://{host}:{port} (Ctrl-C to stop)")
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(emulator.serve_forever())


def send_webhook(
    url: Annotated[
        str,
        typer.Argument(
            help="Receiver, e.g. http://127.0.0.1:8080/api/v1/integrations/aiwfe/webhook"
        ),
    ],
    event_type: Annotated[
        str, typer.Option("--type", help="Event type, e.g. chat_message_created.")
    ],
    user_id: Annotated[str, typer.Option(help="The event's user_id.")],
    data: Annotated[str, typer.Option(help="The event's data, as JSON.")] = "{}",
    event_id: Annotated[str | None, typer.Option(help="Event id (default: random).")] = None,
    webhook_secret: _Secrets = None,
) -> None:
    """Sign and deliver one AIWFE event to `url`; print the receiver's answer."""
    secrets = list(webhook_secret or [])
    if not secrets:
        raise typer.BadParameter(
            "at least one --webhook-secret is needed", param_hint="--webhook-secret"
        )
    try:
        payload: Any = json.loads(data)
    except ValueError as exc:
        raise typer.BadParameter(f"not JSON: {exc}", param_hint="--data") from exc
    if not isinstance(payload, dict):
        raise typer.BadParameter("must be a JSON object", param_hint="--data")
    event = build_event(event_type, user_id, payload, event_id=event_id)

    async def _send() -> dict[str, Any]:
        async with httpx.AsyncClient() as http:
            return (await deliver(http, url, event, secrets)).as_dict()

    try:
        result = asyncio.run(_send())
    except httpx.HTTPError as exc:
        typer.echo(f"pieces-integration: error: delivery failed: {exc!r}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(json.dumps(result, indent=2))
    if not 200 <= result["status"] < 300:
        raise typer.Exit(1)
