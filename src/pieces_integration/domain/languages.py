"""One vocabulary of programming-language names, for every place that reads or writes one.

Chat fences, Pieces classifications, ranking and the code analyser used to keep their own
alias tables, and they disagreed: a chat snippet fenced `sh` was stored as "bash", sent to
Pieces as extension `sh` and read back as "shell". Now each of them asks this module, so a
label survives every round trip. Unknown names pass through lowercased: a rare language
keeps its name rather than being guessed at.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Language:
    name: str  # the canonical label stored on assets and compared by ranking
    extension: str  # the usual file extension; Pieces classifies a fragment by it
    aliases: tuple[str, ...] = ()  # other spellings: fence info strings, extensions


LANGUAGES: tuple[Language, ...] = (
    Language("python", "py", ("python3", "py3", "pyw", "pyi")),
    Language("javascript", "js", ("node", "mjs", "cjs", "jsx")),
    Language("typescript", "ts"),
    # TSX is its own language: it needs its own grammar (`adapters/code_analysis`).
    Language("tsx", "tsx"),
    Language("go", "go", ("golang",)),
    Language("rust", "rs"),
    Language("java", "java"),
    Language("kotlin", "kt"),
    Language("c", "c"),
    Language("cpp", "cpp", ("c++", "cc", "cxx", "hpp")),
    Language("csharp", "cs", ("c#",)),
    Language("ruby", "rb"),
    Language("php", "php"),
    Language("swift", "swift"),
    Language("bash", "sh", ("shell", "zsh", "console", "shell-session")),
    Language("powershell", "ps1", ("pwsh",)),
    Language("sql", "sql", ("postgresql", "postgres", "psql", "mysql", "sqlite")),
    Language("html", "html", ("htm", "xhtml")),
    Language("css", "css"),
    Language("json", "json", ("jsonc", "json5")),
    Language("yaml", "yml"),
    Language("markdown", "md"),
    Language("docker", "dockerfile"),
)

# Spellings that say "not a programming language": no label at all, rather than a "text"
# label that ranks as a mismatch against every real language.
PLAIN = frozenset({"text", "txt", "plain", "plaintext", "output", "log", "none", "nohighlight"})
PLAIN_EXTENSION = "txt"

_BY_SPELLING: dict[str, str] = {
    spelling: language.name
    for language in LANGUAGES
    for spelling in (language.name, language.extension, *language.aliases)
}
_EXTENSION: dict[str, str] = {language.name: language.extension for language in LANGUAGES}


def canonical_language(name: str | None) -> str | None:
    """The canonical label of any spelling; None when blank or plain text."""
    if not name or not name.strip():
        return None
    spelling = name.strip().lower()
    if spelling in PLAIN:
        return None
    return _BY_SPELLING.get(spelling, spelling)


def extension_of(name: str | None) -> str:
    """The file extension for a label (its canonical spelling when it has no known one)."""
    language = canonical_language(name)
    if language is None:
        return PLAIN_EXTENSION
    return _EXTENSION.get(language, language)
