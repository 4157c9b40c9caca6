"""One language vocabulary: every reader of a language name agrees on every spelling."""

from __future__ import annotations

import pytest

from pieces_integration.adapters.code_analysis import grammars
from pieces_integration.adapters.pieces_os import mapping
from pieces_integration.domain.code_blocks import language_from_info
from pieces_integration.domain.languages import (
    LANGUAGES,
    PLAIN,
    canonical_language,
    extension_of,
)
from pieces_integration.domain.ranking import normalise_language

SPELLINGS = [
    (spelling, language.name)
    for language in LANGUAGES
    for spelling in (language.name, language.extension, *language.aliases)
]


def test_no_spelling_names_two_languages() -> None:
    names: dict[str, set[str]] = {}
    for spelling, name in SPELLINGS:
        names.setdefault(spelling, set()).add(name)
    assert {s: n for s, n in names.items() if len(n) > 1} == {}
    assert not names.keys() & PLAIN


@pytest.mark.parametrize(("spelling", "name"), SPELLINGS)
def test_every_reader_gives_a_spelling_the_same_label(spelling: str, name: str) -> None:
    for written in (spelling, spelling.upper(), f" {spelling} "):
        assert canonical_language(written) == name
        assert normalise_language(written) == name  # ranking, search filters, the index
    assert language_from_info(spelling) == name  # chat fences
    assert language_from_info(f"language-{spelling}") == name
    assert mapping.language_of(mapping.ext_of(spelling)) == name  # Pieces, there and back
    assert grammars.canonical(spelling) == (name if name in grammars.GRAMMARS else None)


@pytest.mark.parametrize("spelling", sorted(PLAIN))
def test_plain_text_has_no_label_anywhere(spelling: str) -> None:
    assert canonical_language(spelling) is None
    assert language_from_info(spelling) is None  # declared plain, not absent
    assert mapping.ext_of(spelling) == "txt" and mapping.language_of("txt") is None


def test_unknown_names_pass_through_lowercased() -> None:
    assert canonical_language(" Klingon ") == "klingon"
    assert extension_of("klingon") == "klingon"
    assert mapping.ext_of("klingon") == "txt"  # Pieces knows no such extension
    assert canonical_language(None) is None and canonical_language("  ") is None
