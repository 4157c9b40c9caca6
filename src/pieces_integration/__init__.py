"""pieces-integration: Pieces OS <-> AIWFE sync service."""
