"""What code analysis finds in an asset, and how a finding becomes an AIWFE task suggestion.

The parsing (tree-sitter) lives in `adapters/code_analysis/`; this module holds the data,
the pure rules that judge a comment or a literal once the parser has located it, and the
fingerprint that keeps one suggestion per asset line.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from enum import StrEnum


class FindingKind(StrEnum):
    # comment markers -> AIWFE "task"
    TODO = "todo"
    FIXME = "fixme"
    HACK = "hack"
    XXX = "xxx"
    # potential bugs -> AIWFE "issue"
    CONSOLE_LOG = "console_log"  # spec 4.3
    GENERIC_ERROR = "generic_error"  # spec 4.3: error thrown without a message
    BARE_EXCEPT = "bare_except"
    EMPTY_CATCH = "empty_catch"
    EVAL_DYNAMIC = "eval_dynamic"
    # bandit B105: a finding's name, not a password.
    HARDCODED_SECRET = "hardcoded_secret"  # nosec B105
    NONE_EQUALITY = "none_equality"
    LOOSE_EQUALITY = "loose_equality"
    MUTABLE_DEFAULT = "mutable_default"


MARKER_KINDS = frozenset({FindingKind.TODO, FindingKind.FIXME, FindingKind.HACK, FindingKind.XXX})

_ISSUE_TEXT: dict[FindingKind, tuple[str, str]] = {
    FindingKind.CONSOLE_LOG: ("Console.log statement in production code", "high"),
    FindingKind.GENERIC_ERROR: ("Generic error thrown without message", "high"),
    FindingKind.BARE_EXCEPT: ("Bare except: catches SystemExit and KeyboardInterrupt", "high"),
    FindingKind.EMPTY_CATCH: ("Error silently swallowed by an empty handler", "high"),
    FindingKind.EVAL_DYNAMIC: ("eval/exec on dynamic input (code injection risk)", "critical"),
    FindingKind.HARDCODED_SECRET: ("Hard-coded secret in source", "critical"),
    FindingKind.NONE_EQUALITY: ("Comparison to None with == / != (use `is`)", "medium"),
    FindingKind.LOOSE_EQUALITY: ("Loose equality == / != (use === / !==)", "medium"),
    FindingKind.MUTABLE_DEFAULT: ("Mutable default argument shared between calls", "high"),
}
_MARKER_PRIORITY = {
    FindingKind.TODO: "medium",
    FindingKind.FIXME: "high",
    FindingKind.HACK: "medium",
    FindingKind.XXX: "medium",
}


@dataclass(frozen=True, slots=True)
class Finding:
    kind: FindingKind
    line: int  # 1-based
    text: str  # the marker's note, or the offending source line (trimmed)

    @property
    def is_task(self) -> bool:
        return self.kind in MARKER_KINDS


# A marker is a whole word at the start of the comment's text or after punctuation,
# followed by ':' '(' '-' or whitespace: "TODO: x", "# FIXME(bob) x", "XXX - x".
_MARKER = re.compile(r"(?<![\w-])(TODO|FIXME|HACK|XXX)\b(?:\([^)]*\))?[:\-\s]*(.*)", re.IGNORECASE)
_COMMENT_DELIMITERS = re.compile(r"^\s*(?://+|#+|/\*+|\*+/?|--|<!--)\s?|\s*(?:\*/|-->)\s*$")


def markers_in_comment(comment: str, first_line: int) -> list[Finding]:
    """Markers of one comment (already located by a parser); one finding per marked line."""
    findings: list[Finding] = []
    for offset, raw_line in enumerate(comment.splitlines()):
        body = _COMMENT_DELIMITERS.sub("", raw_line).strip()
        match = _MARKER.search(body)
        # Only a marker that opens the comment line is a task; "see the TODO list" is prose.
        if not match or body[: match.start()].strip(" -*:"):
            continue
        kind = FindingKind(match.group(1).lower())
        if not match.group(1).isupper() and kind is not FindingKind.TODO:
            continue  # "hack" or "xxx" in lower case is ordinary prose
        text = match.group(2).strip().rstrip("*/").strip()
        findings.append(Finding(kind, first_line + offset, text))
    return findings


_NAME_WORDS = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|\d+")
_SECRET_WORDS = frozenset({"password", "passwd", "pwd", "secret", "token", "apikey", "credential"})
_SECRET_PAIRS = frozenset(
    {("api", "key"), ("access", "key"), ("private", "key"), ("auth", "token"), ("secret", "key")}
)
# `password_field = "pwd"` names a secret's location or shape, not a secret.
_NOT_A_VALUE = frozenset(
    {"url", "uri", "path", "file", "name", "field", "env", "header", "len", "length", "type",
     "prompt", "label", "regex", "pattern", "id", "hint", "placeholder", "count", "size"}
)  # fmt: skip
_KNOWN_TOKEN = re.compile(
    r"^(AKIA[0-9A-Z]{16}|gh[pousr]_[A-Za-z0-9]{30,}|sk-[A-Za-z0-9_-]{20,}|xox[abpr]-[A-Za-z0-9-]{10,}|"
    r"AIza[0-9A-Za-z_-]{35}|-----BEGIN [A-Z ]*PRIVATE KEY-----)"
)
_PLACEHOLDER = re.compile(
    r"(?i)^(|x+|\*+|\.+|changeme|change[_-]?me|password|secret|token|example|dummy|test|none|null|placeholder|sample|"
    r"your[_-].*|<.*>|\$\{.*\}|\{\{.*\}\}|%\(.*\)s|\$[A-Z_]+|replace[_-]?me|todo|redacted)$"
)


def is_secret_name(name: str) -> bool:
    words = [w.lower() for w in _NAME_WORDS.findall(name)]
    if not words or words[-1] in _NOT_A_VALUE:
        return False
    words = [w.removesuffix("s") if w in ("credentials", "secrets") else w for w in words]
    if any(w in _SECRET_WORDS for w in words):
        return True
    return any(pair in _SECRET_PAIRS for pair in zip(words, words[1:], strict=False))


def looks_like_secret(name: str | None, value: str) -> bool:
    """Is a string literal `value` (bound to `name`, if any) a credential written into code?"""
    if _KNOWN_TOKEN.match(value):
        return True
    if name is None or not is_secret_name(name):
        return False
    stripped = value.strip()
    if len(stripped) < 6 or _PLACEHOLDER.match(stripped) or " " in stripped:
        return False
    # Environment lookups and paths are names of secrets, not secrets.
    return not stripped.startswith(("/", "./", "http://", "https://", "env:"))


def _normalise_text(text: str) -> str:
    return " ".join(text.split()).lower()


def fingerprint(asset_id: str, finding: Finding) -> str:
    """Stable id of a finding: the same asset, line, kind and text always give the same value."""
    key = "\x1f".join(
        (asset_id, str(finding.line), finding.kind.value, _normalise_text(finding.text))
    )
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(frozen=True, slots=True)
class TaskSuggestion:
    """One AIWFE suggestion (contract schema `TaskSuggestion`)."""

    type: str  # "task" | "issue"
    title: str
    description: str
    priority: str  # "low" | "medium" | "high" | "critical"
    source: str  # the asset id
    line: int
    kind: str
    fingerprint: str


def suggestion_for(asset_id: str, asset_name: str, finding: Finding) -> TaskSuggestion:
    """The suggestion spec 4.3 asks for, carrying line and fingerprint for de-duplication."""
    if finding.is_task:
        label = finding.kind.value.upper()
        title = f"{label}: {finding.text}" if finding.text else f"{label} in {asset_name}"
        return TaskSuggestion(
            type="task",
            title=title[:200],
            description=f"From {asset_name}, line {finding.line}",
            priority=_MARKER_PRIORITY[finding.kind],
            source=asset_id,
            line=finding.line,
            kind=finding.kind.value,
            fingerprint=fingerprint(asset_id, finding),
        )
    summary, priority = _ISSUE_TEXT[finding.kind]
    return TaskSuggestion(
        type="issue",
        title=f"Potential Issue: {summary}"[:200],
        description=f"In {asset_name}, line {finding.line}: {finding.text}"[:2000],
        priority=priority,
        source=asset_id,
        line=finding.line,
        kind=finding.kind.value,
        fingerprint=fingerprint(asset_id, finding),
    )
