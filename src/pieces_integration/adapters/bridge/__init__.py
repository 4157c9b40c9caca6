"""The bridge (DEVIATIONS 5): the service's side of an agent's WebSocket, the agent itself,
and the routing of Pieces OS calls to whichever replica holds a user's bridge."""
