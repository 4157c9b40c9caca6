"""The composition root: the only package that builds adapters from configuration.

container.py       bootstrap(settings, overrides) -> Container
overrides.py       Overrides: the parts a caller supplies instead of the production ones
infrastructure.py  storage, cache, bus, locks, event log, tokens, secrets, readiness checks
pieces.py          the Pieces OS integration (detection, clients, live connections)
sync.py            SyncRuntime: the sync engine, its sides, scheduler and conflicts
search.py          SearchRuntime: vector store, indexer, search, suggestions
realtime.py        RealtimeRuntime: the WebSocket hub and tickets
"""

from pieces_integration.bootstrap.container import Container, bootstrap
from pieces_integration.bootstrap.overrides import Overrides

__all__ = ["Container", "Overrides", "bootstrap"]
