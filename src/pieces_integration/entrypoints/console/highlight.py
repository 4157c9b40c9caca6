"""Syntax highlighting (Pygments), as class-based HTML so the strict CSP needs no inline style."""

from __future__ import annotations

from functools import lru_cache

from markupsafe import Markup
from pygments import highlight as pygments_highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import TextLexer, get_lexer_by_name, guess_lexer
from pygments.util import ClassNotFound

_FORMATTER = HtmlFormatter(cssclass="highlight", wrapcode=True)


def highlighted(content: str, language: str | None) -> Markup:
    try:
        lexer = get_lexer_by_name(language) if language else guess_lexer(content[:4000])
    except ClassNotFound:
        lexer = TextLexer()
    # bandit B704: the markup is Pygments' output, in which the user's text is escaped.
    return Markup(pygments_highlight(content, lexer, _FORMATTER))  # nosec B704


@lru_cache(maxsize=1)
def stylesheet() -> str:
    """Light by default, a dark theme under `prefers-color-scheme: dark`."""
    light = HtmlFormatter(style="default").get_style_defs(".highlight")
    dark = HtmlFormatter(style="monokai").get_style_defs(".highlight")
    return f"{light}\n@media (prefers-color-scheme: dark) {{\n{dark}\n}}\n"
