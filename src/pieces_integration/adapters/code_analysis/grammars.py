"""Language name -> tree-sitter parser, loaded once per process."""

from __future__ import annotations

from collections.abc import Callable
from functools import cache

import tree_sitter

from pieces_integration.domain.languages import canonical_language


def _loader(name: str) -> Callable[[], object]:
    if name == "python":
        import tree_sitter_python

        return tree_sitter_python.language
    if name == "javascript":
        import tree_sitter_javascript

        return tree_sitter_javascript.language
    if name == "typescript":
        import tree_sitter_typescript

        return tree_sitter_typescript.language_typescript
    if name == "tsx":
        import tree_sitter_typescript

        return tree_sitter_typescript.language_tsx
    if name == "go":
        import tree_sitter_go

        return tree_sitter_go.language
    raise KeyError(name)


GRAMMARS = frozenset({"python", "javascript", "typescript", "tsx", "go"})


def canonical(language: str | None) -> str | None:
    """The grammar name for an asset language, or None when we have no grammar for it."""
    name = canonical_language(language)
    return name if name in GRAMMARS else None


@cache
def language(name: str) -> tree_sitter.Language:
    return tree_sitter.Language(_loader(name)())


def parse(name: str, source: bytes) -> tree_sitter.Tree:
    # A Parser is cheap and not thread-safe; one per call keeps analysis safe in a thread pool.
    return tree_sitter.Parser(language(name)).parse(source)
