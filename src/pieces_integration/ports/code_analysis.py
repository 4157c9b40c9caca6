"""Port: static analysis of an asset's source (comment markers, bug heuristics)."""

from __future__ import annotations

from typing import Protocol

from pieces_integration.domain.code_findings import Finding


class CodeAnalyzer(Protocol):
    def supports(self, language: str | None) -> bool: ...

    def analyze(self, content: str, language: str | None) -> list[Finding]:
        """Findings in line order. Pure CPU work: callers run it off the event loop."""
        ...
