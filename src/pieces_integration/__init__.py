"""pieces-integration: keeps Pieces OS and AIWFE in sync, and serves snippet suggestions."""

__version__ = "0.1.0"
