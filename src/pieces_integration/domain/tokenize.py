"""Identifier-aware tokenizer for code and prose, used by the keyword tier.

Code names carry most of a snippet's searchable meaning, but written as `parseHTTPResponse`
or `read_config_file` they would be single opaque tokens to a plain word tokenizer, and a
query such as "read the config file" would never meet them. So a token is split on
snake_case, camelCase (keeping acronyms together: `HTTPResponse` -> `http`, `response`)
and letter/digit boundaries; the whole identifier is kept too when it was split, so an exact
name query still ranks its own function first.

A light suffix stemmer (plural and `-ing`/`-ed`/`-s` forms) lets "parses" meet `parse` and
"files" meet `file`; it is deliberately conservative, because aggressive stemming merges
distinct identifiers (`process` / `processor`). Stop words are the English function words
plus the keywords every Python/JS function contains (`self`, `return`, `def`), which carry
no signal for telling snippets apart.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import lru_cache

# A run of letters/digits/underscores: one identifier or word.
_WORD = re.compile(r"[A-Za-z0-9_]+")
# Parts of an identifier: acronym before a capitalised word, capitalised/lower word, acronym,
# digits. `HTTPServer2` -> HTTP, Server, 2.
_PART = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|[0-9]+")

STOP_WORDS: frozenset[str] = frozenset(
    """
    a an and are as at be but by for from has have if in into is it its of on or that the
    their then there these this to was were will with which who whom what when where why how
    not no can do does did so than such thus also any all each other only own same too very
    just should would could may might must shall we you they he she i me my our your us them
    this those been being having here about above after again against below between both
    during further once over under until up down out off through while more most some
    self cls def return none true false pass elif else import lambda var let const function
    given used uses use using returns
    """.split()
)

MAX_TOKEN_LENGTH = 40


def _strip_inflection(word: str) -> str:
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith("sses"):
        return word[:-2]
    if word.endswith(("ches", "shes", "xes", "zes")):
        return word[:-2]
    if word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    if word.endswith("ing") and len(word) > 5:
        return word[:-3]
    if word.endswith("ed") and len(word) > 4 and not word.endswith("eed"):
        return word[:-2]
    return word


def _stem(word: str) -> str:
    """Strip common English inflections; leave short words and numbers alone.

    A final "e" is dropped after stripping so "parse", "parses", "parsed" and "parsing" all
    become "pars", and a doubled final consonant is undoubled ("running" -> "run").
    """
    if len(word) <= 3 or word.isdigit():
        return word
    stem = _strip_inflection(word)
    if len(stem) >= 4 and stem.endswith("e") and not stem.endswith("ee"):
        stem = stem[:-1]
    if len(stem) >= 4 and stem[-1] == stem[-2] and stem[-1] not in "aeiouls":
        stem = stem[:-1]
    return stem


@lru_cache(maxsize=1 << 16)
def _word_terms(word: str, stem: bool) -> tuple[str, ...]:
    """Terms of one word; cached because code repeats the same identifiers constantly."""
    parts = split_identifier(word)
    terms: list[str] = []
    whole = word.strip("_").lower()
    if len(parts) > 1 and whole not in STOP_WORDS:
        terms.append(whole)
    for part in parts:
        if part in STOP_WORDS or (len(part) == 1 and not part.isdigit()):
            continue
        terms.append(_stem(part) if stem else part)
    return tuple(terms)


def split_identifier(identifier: str) -> list[str]:
    """`read_configFile2` -> ["read", "config", "file", "2"] (lowercased, unstemmed)."""
    parts: list[str] = []
    for chunk in identifier.split("_"):
        parts.extend(part.lower() for part in _PART.findall(chunk))
    return parts


def iter_tokens(text: str, *, stem: bool = True) -> Iterator[str]:
    """Yield the searchable terms of `text` in order (duplicates kept, for term frequency)."""
    for word in _WORD.findall(text):
        if len(word) <= MAX_TOKEN_LENGTH:
            yield from _word_terms(word, stem)


def tokenize(text: str, *, stem: bool = True) -> list[str]:
    """All terms of `text`, in order; see the module docstring for the rules."""
    return list(iter_tokens(text, stem=stem))


def humanise_identifier(name: str) -> str:
    """`createSocket` -> "create socket": how a sentence encoder reads a code name best.

    MiniLM's word pieces cut `createSocket` into `creates`, `##ock`, `##et`; spelled out as
    words, the name carries its meaning into the vector.
    """
    return " ".join(split_identifier(name))


def semantic_text(title: str, body: str) -> str:
    """The text the semantic tier embeds for an asset: its name as words, then its content."""
    words = humanise_identifier(title)
    return f"{words}: {body}" if words else body
