"""A user's Pieces OS link (spec 6.1, 7.1, 8.4).

integration.py  PiecesIntegration: the use cases (detect, connect, status, retry, disconnect)
live.py         PiecesConnections: this replica's live clients, streams and state machines
detection.py    detect_pieces: the given URL and the port range, probed at once
events.py       publish_to: state changes onto the per-user event log
store.py        UowPiecesConnectionStore: the stored connection, on the unit of work
credentials.py  secret_context: the binding a user's API key is sealed under
results.py      what the use cases answer
"""

from pieces_integration.service_layer.pieces.events import publish_to
from pieces_integration.service_layer.pieces.integration import PiecesIntegration
from pieces_integration.service_layer.pieces.live import LiveConnection, PiecesConnections

__all__ = ["LiveConnection", "PiecesConnections", "PiecesIntegration", "publish_to"]
