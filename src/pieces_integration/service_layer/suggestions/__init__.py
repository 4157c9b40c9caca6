"""Context-aware suggestions (spec 4.4, 6.3, 7.3).

    service.py     SuggestionService: a request's suggestions, and the feedback that tunes them
    sources.py     CandidateSources: own assets, past contexts, Pieces search, AIWFE items
    candidates.py  Gathered: the candidates of one request
    payload.py     the spec 6.3 Suggestion object
    pusher.py      SuggestionPusher, ContextChangeTap: new suggestions on a context change

The decisions that need no I/O live in `domain.suggestion_context`.
"""

from pieces_integration.service_layer.suggestions.pusher import ContextChangeTap, SuggestionPusher
from pieces_integration.service_layer.suggestions.service import SuggestionService

__all__ = ["ContextChangeTap", "SuggestionPusher", "SuggestionService"]
