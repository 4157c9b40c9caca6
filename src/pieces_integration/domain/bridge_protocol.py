"""The bridge wire protocol (DEVIATIONS 5): frames between the service and a developer's agent.

One WebSocket carries many calls at once. Control frames are JSON text with a type `t`;
bodies travel as binary chunk frames, never as one huge frame:

    chunk = call id (u32, big-endian) | flags (u8: 1 = last) | payload (<= CHUNK_SIZE)

Flow control is by credit: whoever receives a body grants a window of chunks with the call
(`window` on `req`) and tops it up with `credit` as it consumes them; the sender never has
more chunks in flight than it was granted, so one 10k-asset snapshot cannot crowd the link.
A stream event too big to inline (the first frame of the identifier stream lists every id)
travels as chunks of its stream id.

service -> agent: welcome, req (+ chunks), cancel, credit, sopen, sclose, hb, reconnect
agent -> service: hello, res (+ chunks), err, credit, sevent, send, hb_ack

Pure: encoding, decoding and validation only; the asyncio side lives in adapters/bridge.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal, get_args

PROTOCOL_VERSION = 1
CHUNK_SIZE = 1024 * 1024
DEFAULT_WINDOW = 8  # chunks in flight per call: 2 MiB
MAX_CONTROL_FRAME = 64 * 1024  # a control frame is small; anything bigger is a peer bug
INLINE_EVENT = 16 * 1024  # a bigger stream event travels as chunks of its stream id
MAX_CALL_ID = 2**32 - 1
_CHUNK_HEADER = struct.Struct(">IB")
LAST = 1

# Why a call failed on the agent's side; the service maps these onto spec 8.4 failures.
ErrorKind = Literal["refused", "not_running", "network", "timeout", "too_large", "cancelled"]
ERROR_KINDS: frozenset[str] = frozenset(
    ("refused", "not_running", "network", "timeout", "too_large", "cancelled")
)


class ProtocolError(ValueError):
    """A frame that does not follow this protocol; the connection is closed with 1002."""


@dataclass(frozen=True, slots=True)
class Hello:
    agent_version: str
    pieces_url: str | None = None
    protocol: int = PROTOCOL_VERSION
    t: str = "hello"


@dataclass(frozen=True, slots=True)
class Welcome:
    bridge_id: str
    heartbeat: float
    replica: str
    t: str = "welcome"


@dataclass(frozen=True, slots=True)
class Request:
    id: int
    method: str
    path: str
    timeout: float
    params: Mapping[str, str] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bool = False  # chunks follow
    window: int = DEFAULT_WINDOW  # chunks of the answer the agent may send before credit
    t: str = "req"


@dataclass(frozen=True, slots=True)
class Response:
    id: int
    status: int
    content_type: str = ""
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bool = False
    t: str = "res"


@dataclass(frozen=True, slots=True)
class CallError:
    id: int
    kind: str
    message: str
    t: str = "err"


@dataclass(frozen=True, slots=True)
class Cancel:
    id: int
    t: str = "cancel"


@dataclass(frozen=True, slots=True)
class Credit:
    id: int
    n: int
    t: str = "credit"


@dataclass(frozen=True, slots=True)
class StreamOpen:
    id: int
    path: str
    t: str = "sopen"


@dataclass(frozen=True, slots=True)
class StreamClose:
    id: int
    t: str = "sclose"


@dataclass(frozen=True, slots=True)
class StreamEvent:
    id: int
    data: str
    t: str = "sevent"


@dataclass(frozen=True, slots=True)
class StreamEnd:
    id: int
    kind: str
    message: str
    t: str = "send"


@dataclass(frozen=True, slots=True)
class Heartbeat:
    ts: float
    t: str = "hb"


@dataclass(frozen=True, slots=True)
class HeartbeatAck:
    ts: float
    t: str = "hb_ack"


@dataclass(frozen=True, slots=True)
class Reconnect:
    """The replica is going away: connect again (elsewhere) now, without backing off."""

    reason: str
    t: str = "reconnect"


Frame = (
    Hello
    | Welcome
    | Request
    | Response
    | CallError
    | Cancel
    | Credit
    | StreamOpen
    | StreamClose
    | StreamEvent
    | StreamEnd
    | Heartbeat
    | HeartbeatAck
    | Reconnect
)


def _tag(frame: type[Any]) -> str:
    return str(next(f.default for f in fields(frame) if f.name == "t"))


def _declared_types(frames: Iterable[type[Any]]) -> dict[str, str]:
    """Each field's declared type by its name; a name means one thing in every frame."""
    declared: dict[str, str] = {}
    for frame in frames:
        for f in fields(frame):
            if declared.setdefault(f.name, str(f.type)) != str(f.type):
                raise TypeError(f"field {f.name!r} has two types among the frames")
    return declared


# Read off the classes of `Frame`, so that a new frame is declared once: as a class there.
_TYPES: dict[str, type[Any]] = {_tag(frame): frame for frame in get_args(Frame)}
_FIELD_TYPES = _declared_types(_TYPES.values())


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_str_map(value: Any) -> bool:
    return isinstance(value, dict) and all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    )


# What a field of each declared type must hold, and what is said when it does not. Optional
# fields (`str | None`) are not checked here.
_CHECKS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "int": (_is_int, "must be an integer"),
    "float": (_is_number, "must be a number"),
    "str": (lambda value: isinstance(value, str), "must be a string"),
    "bool": (lambda value: isinstance(value, bool), "must be true or false"),
    "Mapping[str, str]": (_is_str_map, "must map strings to strings"),
}


def encode(frame: Frame) -> str:
    return json.dumps(asdict(frame), separators=(",", ":"))


def _check_types(raw: dict[str, Any]) -> None:
    for key, value in raw.items():
        check = _CHECKS.get(_FIELD_TYPES.get(key, ""))
        if check is not None and not check[0](value):
            raise ProtocolError(f"{key} {check[1]}")
    call_id = raw.get("id")
    if call_id is not None and not 0 < call_id <= MAX_CALL_ID:
        raise ProtocolError("id out of range")
    if raw.get("n", 1) < 0 or raw.get("window", 1) < 1:
        raise ProtocolError("credit must be positive")


def decode(text: str | bytes) -> Frame:
    """One control frame; raises ProtocolError naming what is wrong."""
    if len(text) > MAX_CONTROL_FRAME:
        raise ProtocolError("control frame too large")
    try:
        raw = json.loads(text)
    except ValueError as exc:
        raise ProtocolError("control frame is not JSON") from exc
    if not isinstance(raw, dict):
        raise ProtocolError("control frame must be an object")
    cls = _TYPES.get(str(raw.get("t")))
    if cls is None:
        raise ProtocolError(f"unknown frame type {raw.get('t')!r}")
    _check_types(raw)
    try:
        frame: Frame = cls(**raw)
    except TypeError as exc:
        raise ProtocolError(f"bad {raw['t']} frame: {exc}") from exc
    return frame


def encode_chunk(call_id: int, payload: bytes, *, last: bool) -> bytes:
    if len(payload) > CHUNK_SIZE:
        raise ValueError("chunk larger than CHUNK_SIZE")
    return _CHUNK_HEADER.pack(call_id, LAST if last else 0) + payload


def decode_chunk(data: bytes) -> tuple[int, bool, bytes]:
    if len(data) < _CHUNK_HEADER.size or len(data) > _CHUNK_HEADER.size + CHUNK_SIZE:
        raise ProtocolError("chunk frame of the wrong size")
    call_id, flags = _CHUNK_HEADER.unpack_from(data)
    if call_id == 0:
        raise ProtocolError("chunk for call 0")
    return call_id, bool(flags & LAST), data[_CHUNK_HEADER.size :]


def split_body(body: bytes, size: int = CHUNK_SIZE) -> Iterator[tuple[bytes, bool]]:
    """The body as (payload, last) pieces; an empty body is one empty last chunk."""
    if not body:
        yield b"", True
        return
    for start in range(0, len(body), size):
        yield body[start : start + size], start + size >= len(body)
