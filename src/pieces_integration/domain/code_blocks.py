"""Code blocks of a chat message, found by a CommonMark parser (DEVIATIONS 13).

markdown-it-py is a pure parser (no I/O), so it is allowed here beside the stdlib.
It gets right what line regexes miss: ``~~~`` fences, fences longer than three
characters that contain shorter ones, fences indented inside list items and
blockquotes, unclosed fences (closed by the end of the document) and indented code.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

from pieces_integration.domain.language_detect import detect_language
from pieces_integration.domain.languages import canonical_language

if TYPE_CHECKING:
    from markdown_it import MarkdownIt

MIN_CODE_LENGTH = 10

_LANG_TOKEN = re.compile(r"[A-Za-z0-9_+#.-]+")


@dataclass(frozen=True, slots=True)
class CodeBlock:
    code: str
    language: str | None
    language_source: str  # "info" | "detected" | "none"
    info: str  # the raw info string, as written
    start_line: int  # 1-based line of the opening fence (or first indented line)
    fingerprint: str  # SHA-256 of the normalised code


@lru_cache(maxsize=1)
def _parser() -> MarkdownIt:
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark")


def normalise_code(code: str) -> str:
    """The form two blocks must share to count as the same snippet.

    Line endings, trailing spaces, common indentation and surrounding blank lines do not
    change what a snippet is; everything else (including inner indentation) does.
    """
    lines = [line.rstrip() for line in code.replace("\r\n", "\n").replace("\r", "\n").split("\n")]
    while lines and not lines[0]:
        lines.pop(0)
    while lines and not lines[-1]:
        lines.pop()
    indents = [len(line) - len(line.lstrip(" \t")) for line in lines if line]
    cut = min(indents, default=0)
    return "\n".join(line[cut:] for line in lines)


def language_from_info(info: str) -> str | None | bool:
    """Canonical language of an info string; False when absent, None when declared plain."""
    stripped = info.strip()
    if stripped.startswith("{"):  # Pandoc attribute form: {.python .numberLines}
        stripped = stripped.strip("{}").strip().lstrip(".")
    match = _LANG_TOKEN.match(stripped)
    if not match:
        return False
    word = match.group(0).lower()
    word = word.removeprefix("language-").removeprefix("lang-")
    if not word:
        return False
    return canonical_language(word)  # None: declared plain text


def _clean(content: str) -> str:
    lines = content.replace("\r\n", "\n").split("\n")
    while lines and not lines[0].strip():
        lines.pop(0)
    while lines and not lines[-1].strip():
        lines.pop()
    return "\n".join(line.rstrip() for line in lines)


def extract_code_blocks(markdown: str, *, min_length: int = MIN_CODE_LENGTH) -> list[CodeBlock]:
    """Every code block of `markdown`, in document order, de-duplicated by normalised content.

    A nested fence (a ```` fence showing a ``` fence) is one block: the outer one, as
    the author meant. When a duplicate carries a language and the first copy did not,
    the language is taken over.
    """
    blocks: list[CodeBlock] = []
    index_by_fingerprint: dict[str, int] = {}
    for token in _parser().parse(markdown):
        if token.type not in ("fence", "code_block"):
            continue
        code = _clean(token.content)
        if len(code.strip()) < min_length:
            continue
        normalised = normalise_code(code)
        fingerprint = hashlib.sha256(normalised.encode("utf-8", "surrogatepass")).hexdigest()
        info = token.info if token.type == "fence" else ""
        declared = language_from_info(info)
        language: str | None
        if isinstance(declared, str):
            language, source = declared, "info"
        elif declared is None:
            language, source = None, "none"
        else:
            language = detect_language(code)
            source = "detected" if language else "none"
        start_line = (token.map[0] + 1) if token.map else 0
        block = CodeBlock(code, language, source, info.strip(), start_line, fingerprint)
        seen = index_by_fingerprint.get(fingerprint)
        if seen is None:
            index_by_fingerprint[fingerprint] = len(blocks)
            blocks.append(block)
        elif blocks[seen].language_source != "info" and source == "info":
            first = blocks[seen]
            blocks[seen] = CodeBlock(
                first.code, language, source, block.info, first.start_line, fingerprint
            )
    return blocks
