"""The bridge wire protocol: frames round-trip, bad frames are refused with a reason."""

from __future__ import annotations

import pytest

from pieces_integration.domain import bridge_protocol as wire

FRAMES: list[wire.Frame] = [
    wire.Hello(agent_version="1.0", pieces_url="http://127.0.0.1:39300"),
    wire.Welcome(bridge_id="b" * 32, heartbeat=15.0, replica="r1"),
    wire.Request(
        id=7, method="GET", path="/assets", timeout=30.0, params={"transferables": "true"}
    ),
    wire.Response(id=7, status=200, content_type="application/json", body=True),
    wire.CallError(id=7, kind="refused", message="no"),
    wire.Cancel(id=7),
    wire.Credit(id=7, n=4),
    wire.StreamOpen(id=8, path="/assets/stream/identifiers"),
    wire.StreamClose(id=8),
    wire.StreamEvent(id=8, data='{"iterable": []}'),
    wire.StreamEnd(id=8, kind="network", message="gone"),
    wire.Heartbeat(ts=12.5),
    wire.HeartbeatAck(ts=12.5),
    wire.Reconnect(reason="replica shutting down"),
]


@pytest.mark.parametrize("frame", FRAMES, ids=lambda f: f.t)
def test_every_frame_round_trips(frame: wire.Frame) -> None:
    assert wire.decode(wire.encode(frame)) == frame


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("not json", "not JSON"),
        ("[1]", "must be an object"),
        ('{"t": "nope"}', "unknown frame type"),
        ('{"t": "cancel", "id": "7"}', "id must be an integer"),
        ('{"t": "cancel", "id": true}', "id must be an integer"),
        ('{"t": "cancel", "id": 0}', "id out of range"),
        ('{"t": "cancel", "id": 4294967296}', "id out of range"),
        ('{"t": "credit", "id": 1, "n": -1}', "credit must be positive"),
        ('{"t": "cancel"}', "bad cancel frame"),
        ('{"t": "cancel", "id": 1, "extra": 2}', "bad cancel frame"),
        (
            '{"t": "req", "id": 1, "method": "GET", "path": "/", "timeout": 1, "params": {"a": 1}}',
            "params must map strings to strings",
        ),
        ('{"t": "res", "id": 1, "status": 200, "body": "yes"}', "body must be true or false"),
        ('{"t": "hb", "ts": "now"}', "ts must be a number"),
        ('{"t": "sopen", "id": 1, "path": 5}', "path must be a string"),
        ('{"t": "hello", "agent_version": "1", "protocol": 1.5}', "protocol must be an integer"),
    ],
)
def test_bad_frames_are_refused_with_the_reason(text: str, reason: str) -> None:
    with pytest.raises(wire.ProtocolError, match=reason):
        wire.decode(text)


def test_oversized_control_frames_are_refused() -> None:
    with pytest.raises(wire.ProtocolError, match="too large"):
        wire.decode('{"t": "hb", "ts": 1, "x": "' + "a" * wire.MAX_CONTROL_FRAME + '"}')


def test_chunks_round_trip_and_carry_the_last_flag() -> None:
    data = wire.encode_chunk(42, b"payload", last=True)
    assert wire.decode_chunk(data) == (42, True, b"payload")
    assert wire.decode_chunk(wire.encode_chunk(1, b"", last=False)) == (1, False, b"")


def test_bad_chunks_are_refused() -> None:
    with pytest.raises(wire.ProtocolError):
        wire.decode_chunk(b"\x00")
    with pytest.raises(wire.ProtocolError):
        wire.decode_chunk(
            wire.encode_chunk(1, b"x", last=True).replace(b"\x00\x00\x00\x01", b"\0" * 4, 1)
        )
    with pytest.raises(ValueError):
        wire.encode_chunk(1, b"x" * (wire.CHUNK_SIZE + 1), last=True)


def test_a_body_is_split_into_chunks_that_rejoin() -> None:
    body = bytes(range(256)) * 5000  # 1.28 MB
    pieces = list(wire.split_body(body, size=wire.CHUNK_SIZE))
    assert b"".join(p for p, _ in pieces) == body
    assert [last for _, last in pieces] == [False] * (len(pieces) - 1) + [True]
    assert all(len(p) <= wire.CHUNK_SIZE for p, _ in pieces)
    assert list(wire.split_body(b"")) == [(b"", True)]
