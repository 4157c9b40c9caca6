"""Source analysis with tree-sitter grammars: comment markers and bug heuristics per language."""

from __future__ import annotations

from pieces_integration.adapters.code_analysis.analyzer import (
    SUPPORTED_LANGUAGES,
    TreeSitterCodeAnalyzer,
)

__all__ = ["SUPPORTED_LANGUAGES", "TreeSitterCodeAnalyzer"]
