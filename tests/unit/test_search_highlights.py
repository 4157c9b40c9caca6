"""Highlights: the substring pre-filter never changes which lines are picked."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from pieces_integration.domain.model import Asset
from pieces_integration.domain.tokenize import tokenize
from pieces_integration.service_layer.search import (
    HIGHLIGHT_CHARS,
    MAX_HIGHLIGHTS,
    highlights,
)

WORDS = [
    "studies", "study", "parsing", "parse", "parsed", "running", "runs", "readConfigFile",
    "read_config_file", "HTTPServer", "xml2json", "boxes", "classes", "cities", "fix", "a",
    "Retry", "retried", "buses", "the", "x", "42", "déjà", "naïve",
]  # fmt: skip


def reference(asset: Asset, terms: set[str]) -> list[str]:
    found: list[str] = []
    for text in (asset.name, asset.description or "", asset.content):
        for line in text.splitlines():
            stripped = line.strip()
            if stripped and terms & set(tokenize(stripped)):
                found.append(stripped[:HIGHLIGHT_CHARS])
                if len(found) >= MAX_HIGHLIGHTS:
                    return found
    return found


lines = st.lists(st.sampled_from(WORDS), max_size=6).map(" ".join)
texts = st.lists(lines, max_size=8).map("\n".join)


@given(texts, texts, st.lists(st.sampled_from(WORDS), min_size=1, max_size=3).map(" ".join))
def test_prefilter_keeps_the_same_lines(name: str, content: str, query: str) -> None:
    asset = Asset(id="a", user_id="u", name=name, content=content)
    terms = set(tokenize(query))
    assert highlights(asset, terms) == reference(asset, terms)


def test_inflected_forms_are_found() -> None:
    asset = Asset(id="a", user_id="u", name="n", content="x = 1\nfor city in cities:\n    pass")
    assert highlights(asset, set(tokenize("city"))) == ["for city in cities:"]
    asset = Asset(id="a", user_id="u", name="n", content="# studies of it\ny = 2")
    assert highlights(asset, set(tokenize("study"))) == ["# studies of it"]
