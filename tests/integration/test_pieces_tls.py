"""Pieces OS over TLS with a developer's own CA: `pieces.ca_file` reaches the client the
composition root builds, TLS stays verified without it, and a bad CA file stops start-up."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import ipaddress
import json
import socket
import ssl
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import uvicorn
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from typer.testing import CliRunner

from pieces_integration.adapters.pieces_os.client import ClientSettings, PiecesOSClient
from pieces_integration.adapters.pieces_os.endpoint_guard import ResolvingEndpointGuard
from pieces_integration.adapters.pieces_os.factory import DirectPiecesOSFactory
from pieces_integration.adapters.pieces_os.transport import ssl_context, tls_failure
from pieces_integration.bootstrap import bootstrap
from pieces_integration.config import ConfigError, load_settings
from pieces_integration.domain.connection_state import (
    ConnectionState,
    ConnectionStateMachine,
    FailureKind,
    message_for,
)
from pieces_integration.domain.errors import PiecesOSUnavailable
from pieces_integration.emulators.pieces.app import build_app
from pieces_integration.emulators.pieces.faults import FaultInjector
from pieces_integration.emulators.pieces.state import EmulatorState
from pieces_integration.entrypoints.cli.main import app as cli
from pieces_integration.service_layer.pieces import PiecesIntegration

pytestmark = pytest.mark.anyio
CA_ENV = "PIECES_INTEGRATION_PIECES__CA_FILE"


# --- certificates ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Pki:
    ca: Path  # the CA that signed the server's certificate
    other_ca: Path  # a CA that did not
    cert: Path
    key: Path


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _ca(common_name: str) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(_name(common_name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return key, cert


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    folder = tmp_path_factory.mktemp("pki")
    ca_key, ca_cert = _ca("Developer Test CA")
    _, other_cert = _ca("Someone Else's CA")
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("localhost"))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    pki = Pki(
        ca=folder / "ca.pem",
        other_ca=folder / "other-ca.pem",
        cert=folder / "server.pem",
        key=folder / "server-key.pem",
    )
    pki.ca.write_bytes(_pem(ca_cert))
    pki.other_ca.write_bytes(_pem(other_cert))
    pki.cert.write_bytes(_pem(cert))
    pki.key.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return pki


# --- the emulator behind TLS -----------------------------------------------------------------


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@contextlib.asynccontextmanager
async def tls_emulator(pki: Pki, *, assets: int = 2) -> AsyncIterator[int]:
    """The emulator's app served over HTTPS/WSS with `pki.cert`; yields the port."""
    state = EmulatorState()
    state.seed_library(assets, 0)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    sock.setblocking(False)
    config = uvicorn.Config(
        build_app(state, FaultInjector()),
        lifespan="off",
        log_level="warning",
        ws="websockets-sansio",
        ws_ping_interval=None,
        timeout_graceful_shutdown=1,
        ssl_certfile=str(pki.cert),
        ssl_keyfile=str(pki.key),
    )
    server = _Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        async with asyncio.timeout(10):
            while not server.started:
                if task.done():
                    await task
                await asyncio.sleep(0.01)
        yield int(sock.getsockname()[1])
    finally:
        server.should_exit = True
        await task
        sock.close()


# --- tests -----------------------------------------------------------------------------------


async def test_configured_ca_lets_the_wired_client_reach_pieces_over_tls(
    pki: Pki, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(CA_ENV, str(pki.ca))
    container = bootstrap(load_settings())
    try:
        integration = container.sync.pieces
        assert isinstance(integration, PiecesIntegration)
        async with tls_emulator(pki, assets=2) as port:
            # A hostname: the guard pins 127.0.0.1, the certificate is checked for "localhost".
            client = await integration.factory(f"https://localhost:{port}", api_key=None)
            assert isinstance(client, PiecesOSClient)
            try:
                health = await client.health()
                assert health.healthy and health.version
                await client.connect()
                assert len(await client.asset_ids()) == 2
                # The identifier stream (wss://) uses the same trust.
                async with client.transport.stream("/assets/stream/identifiers") as frames:
                    first = await anext(aiter(frames))
                assert len(json.loads(first)["iterable"]) == 2
            finally:
                await client.aclose()
    finally:
        await container.aclose()


async def test_detection_uses_the_configured_ca(pki: Pki, monkeypatch: pytest.MonkeyPatch) -> None:
    async with tls_emulator(pki) as port:
        url = f"https://localhost:{port}"
        container = bootstrap(load_settings())
        try:  # without the CA the self-signed Pieces OS is not found
            integration = container.sync.pieces
            assert isinstance(integration, PiecesIntegration)
            assert not (await integration.detect(url)).available
        finally:
            await container.aclose()
        monkeypatch.setenv(CA_ENV, str(pki.ca))
        container = bootstrap(load_settings())
        try:
            integration = container.sync.pieces
            assert isinstance(integration, PiecesIntegration)
            found = await integration.detect(url)
            assert found.available and found.url == url and found.version
        finally:
            await container.aclose()


async def test_without_a_ca_file_tls_is_verified_and_the_self_signed_server_refused(
    pki: Pki,
) -> None:
    assert load_settings().pieces.ca_file is None
    container = bootstrap(load_settings())
    try:
        integration = container.sync.pieces
        assert isinstance(integration, PiecesIntegration)
        async with tls_emulator(pki) as port:
            client = await integration.factory(f"https://localhost:{port}", api_key=None)
            try:
                with pytest.raises(PiecesOSUnavailable) as caught:
                    await client.health()
            finally:
                await client.aclose()
        assert "CERTIFICATE_VERIFY_FAILED" in caught.value.message
        assert caught.value.details["kind"] == FailureKind.TLS_UNTRUSTED.value
    finally:
        await container.aclose()


async def test_a_ca_that_did_not_sign_the_certificate_is_not_trusted(pki: Pki) -> None:
    factory = DirectPiecesOSFactory(
        ClientSettings(timeout=5.0),
        guard=ResolvingEndpointGuard(),
        tls=ssl_context(ca_file=pki.other_ca),
    )
    async with tls_emulator(pki) as port:
        client = await factory(f"https://127.0.0.1:{port}", api_key=None)
        try:
            with pytest.raises(PiecesOSUnavailable) as caught:
                await client.health()
        finally:
            await client.aclose()
    assert "CERTIFICATE_VERIFY_FAILED" in caught.value.message


def _bad_ca_files(tmp_path: Path) -> dict[str, Path]:
    not_pem = tmp_path / "not-a-ca.pem"
    not_pem.write_text("hello\n")
    return {
        "missing": tmp_path / "nowhere" / "ca.pem",
        "a directory": tmp_path,
        "not PEM": not_pem,
    }


@pytest.mark.parametrize("case", ["missing", "a directory", "not PEM"])
def test_an_unusable_ca_file_is_refused_with_one_line_naming_the_key(
    case: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _bad_ca_files(tmp_path)[case]
    monkeypatch.setenv(CA_ENV, str(path))
    with pytest.raises(ConfigError) as caught:
        load_settings()
    message = str(caught.value)
    assert message.startswith("pieces.ca_file: ")
    assert str(path) in message and "\n" not in message


def test_serve_stops_at_start_up_on_a_missing_ca_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = tmp_path / "ca.pem"
    monkeypatch.setenv(CA_ENV, str(missing))
    result = CliRunner().invoke(cli, ["serve", "--port", "1"])
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert lines == [
        f"pieces-integration: error: invalid configuration: pieces.ca_file: "
        f"cannot use {missing} as a CA bundle (No such file or directory)"
    ]


def test_the_ca_file_can_come_from_the_yaml_file(
    pki: Pki, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "app.yaml"
    config.write_text(f"pieces:\n  ca_file: {pki.ca}\n")
    monkeypatch.setenv("CONFIG_FILE", str(config))
    assert load_settings().pieces.ca_file == pki.ca


# --- TLS failures get their own state and message (issue 20, spec 8.4) ------------------------


def _leaf(
    folder: Path,
    tag: str,
    ca: tuple[ec.EllipticCurvePrivateKey, x509.Certificate],
    *,
    names: list[x509.GeneralName],
    valid: tuple[dt.datetime, dt.datetime],
) -> tuple[Path, Path]:
    ca_key, ca_cert = ca
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(tag))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(valid[0])
        .not_valid_after(valid[1])
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    cert_path, key_path = folder / f"{tag}.pem", folder / f"{tag}-key.pem"
    cert_path.write_bytes(_pem(cert))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@pytest.fixture(scope="module")
def broken_pkis(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Pki]:
    """Certificates that fail verification in each way, all from one CA the client trusts."""
    folder = tmp_path_factory.mktemp("broken-pki")
    ca = _ca("Broken Test CA")
    _, stranger = _ca("Stranger CA")
    ca_path, other_path = folder / "ca.pem", folder / "other.pem"
    ca_path.write_bytes(_pem(ca[1]))
    other_path.write_bytes(_pem(stranger))
    now = dt.datetime.now(dt.UTC)
    local = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    fresh = (now - dt.timedelta(minutes=5), now + dt.timedelta(days=1))
    cases = {
        "expired": _leaf(
            folder,
            "expired",
            ca,
            names=local,
            valid=(now - dt.timedelta(days=3), now - dt.timedelta(days=1)),
        ),
        "wrong_host": _leaf(
            folder, "wrong", ca, names=[x509.DNSName("pieces.example.invalid")], valid=fresh
        ),
        "unknown_ca": _leaf(folder, "good", ca, names=local, valid=fresh),
    }
    return {
        tag: Pki(
            ca=other_path if tag == "unknown_ca" else ca_path, other_ca=other_path, cert=c, key=k
        )
        for tag, (c, k) in cases.items()
    }


@pytest.mark.parametrize(
    ("case", "kind"),
    [
        ("unknown_ca", FailureKind.TLS_UNTRUSTED),
        ("expired", FailureKind.TLS_EXPIRED),
        ("wrong_host", FailureKind.TLS_HOSTNAME),
    ],
)
async def test_each_tls_failure_has_its_own_kind_and_a_message_saying_what_to_do(
    broken_pkis: dict[str, Pki], case: str, kind: FailureKind
) -> None:
    pki = broken_pkis[case]
    factory = DirectPiecesOSFactory(
        ClientSettings(timeout=5.0),
        guard=ResolvingEndpointGuard(),
        tls=ssl_context(ca_file=pki.ca),
    )
    async with tls_emulator(pki) as port:
        client = await factory(f"https://localhost:{port}", api_key=None)
        try:
            with pytest.raises(PiecesOSUnavailable) as request_failed:
                await client.health()
            with pytest.raises(PiecesOSUnavailable) as stream_failed:
                async with client.transport.stream("/assets/stream/identifiers"):
                    pass
        finally:
            await client.aclose()
    for caught in (request_failed, stream_failed):
        assert caught.value.details["kind"] == kind.value, caught.value.message
        assert "CERTIFICATE_VERIFY_FAILED" in caught.value.message
    # The state machine gives up at once (retrying cannot fix a certificate) and the user is
    # told what to change, in words that differ from "network unreachable".
    machine = ConnectionStateMachine("alice")
    machine.start_attempt()
    changed = machine.attempt_failed(kind, request_failed.value.message)
    assert changed.current is ConnectionState.CONNECTION_FAILED and changed.retry_in is None
    assert changed.message is not None
    assert changed.message != message_for(FailureKind.NETWORK)
    assert any(word in changed.message.message for word in ("ca_file", "Renew", "host name"))


def test_network_unreachable_is_still_network_not_tls() -> None:
    unreachable = OSError(101, "Network is unreachable")
    assert tls_failure(unreachable) is None
    assert tls_failure(ssl.SSLError("bad record mac")) is None
