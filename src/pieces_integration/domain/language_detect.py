"""A small, honest guess at the language of an unlabeled code block.

Each language has a few weighted syntax features; the best score wins only when it
is clearly ahead (score and margin thresholds), otherwise the answer is None. It
covers the languages chat assistants emit most. Measured twice: on the labelled chat
snippets of tests/unit/test_aiwfe_language_detect.py (42/43 correct, none wrong), and held
out on windows of real files found on the machine (bench/bench_language_detect.py, seed
11: 64% named correctly, 1.5% named wrongly, the rest left unlabelled); a wrong label is
worse than none, since it becomes a tag the user sees. A trained classifier could replace
this behind the same function.
"""

from __future__ import annotations

import re
from functools import lru_cache

_M = re.MULTILINE
# (pattern, weight); patterns are matched once each (presence, not count).
_FEATURES: dict[str, list[tuple[str, float]]] = {
    "python": [
        (r"^\s*(async\s+)?def \w+\(.*\)\s*(->\s*[\w\[\], .|]+)?:\s*$", 3),
        (r"\[[^\]\n]{1,200} for \w+ in [^\]\n]{1,200}\]", 2),
        (r"^\s*(from [\w.]+ )?import [\w., ]+$", 1.5),
        (r"^\s*class \w+(\(.*\))?:\s*$", 3),
        (r"^\s*(if|elif|while|for|with|try|except|else)\b.*:\s*(#.*)?$", 1.5),
        (r"\bself\.\w+", 1.5),
        (r"\b(None|True|False)\b", 0.5),
        (r"\bprint\(", 0.5),
        (r"^\s*@\w+", 0.5),
        (r"\b(async def|await)\b", 0.5),
        (r"f\"[^\"]*\{", 1),
        (r"^\s*#(?!include|define|!)", 0.5),
    ],
    "javascript": [
        (r"\b(const|let|var)\s+\w+\s*=", 1.5),
        (r"=>\s*[{(]?", 1.5),
        (r"\bfunction\s*\w*\s*\(", 2),
        (r"\bconsole\.(log|error|warn)\(", 2),
        (r"\brequire\(['\"]", 2),
        (r"\b(module\.exports|export default|export (const|function))\b", 1.5),
        (r"\bdocument\.|\bwindow\.", 1.5),
        (r"===|!==", 1.5),
        (r"\bawait fetch\(|\.then\(", 1),
        (r";\s*$", 0.5),
    ],
    "typescript": [
        (r"\b(interface|type)\s+\w+\s*(=|\{|<)", 2.5),
        (r"\w\s*:\s*(string|number|boolean|any|void|unknown|never)\b", 3),
        (r"\b(public|private|protected|readonly)\s+\w+\s*:", 2),
        (r"\bimport .* from ['\"]", 1),
        (r"\bas (string|number|const|any)\b", 1.5),
        (r"\):\s*(Promise<|\w+(\[\])?\s*\{)", 2),
    ],
    "go": [
        (r"^package \w+", 4),
        (r"\bfunc\s+(\(\w+ \*?\w+\)\s*)?\w+\(", 3),
        (r":=", 1.5),
        (r"\bfmt\.\w+\(", 2),
        (r"\berr != nil\b", 3),
        (r"^import \($", 2),
        (r"\bchan\b|\bgo func\b|\bdefer\b", 1.5),
    ],
    "rust": [
        (r"\bfn\s+\w+\s*(<.*>)?\(", 2.5),
        (r"\blet\s+mut\b", 3),
        (r"\bimpl\b.*\{", 2.5),
        (r"\b(pub fn|pub struct|pub enum)\b", 2.5),
        (r"\b\w+!\(", 1.5),
        (r"->\s*(Result|Option|Self|&?\w+)", 1),
        (r"^use \w+(::\w+)+", 2.5),
        (r"&mut |&self|::new\(", 1.5),
    ],
    "java": [
        (r"\bpublic (static )?(final )?(class|void|int|String|interface)\b", 3),
        (r"\bSystem\.out\.print", 3),
        (r"^import java\.", 3),
        (r"\bprivate (final )?\w+(<.*>)? \w+;", 2),
        (r"@Override|@Autowired|@Test", 2),
        (r"\bnew \w+(<.*>)?\(", 1),
        (r"\bString\[\] args\b", 2),
    ],
    "csharp": [
        (r"^using System", 3),
        (r"\bnamespace \w+", 2),
        (r"\bConsole\.Write(Line)?\(", 3),
        (r"\bpublic (async )?(static )?(Task|void|string|int)\b", 1.5),
        (r"\{ get; (private )?set; \}", 3),
        (r"\bvar \w+ = new\b", 1.5),
    ],
    "c": [
        (r"^#include\s*[<\"][\w/.-]+\.h[>\"]", 3),
        (r"\bint main\s*\(", 2),
        (r"\bprintf\(", 2),
        (r"\bmalloc\(|\bfree\(|\bsizeof\(", 2),
        (r"\bstruct \w+\s*\{", 1),
        (r"->\w+", 0.5),
        (r"^#\s*(define|ifn?def|endif|undef|pragma)\b", 2),
        # The type and the name are separated by blanks or a '*': two adjacent \w+ would
        # split one long word every possible way (quadratic on a pasted run of letters).
        (
            r"^(static\s+)?(inline\s+)?(const\s+)?(unsigned\s+)?\w+(\s+|\s*\*\s*)\w+\([^;]*\)\s*\{?$",
            1,
        ),
        (r"\b(NULL|size_t|uint\d+_t|int\d+_t|unsigned (int|char|long))\b", 1.5),
        (r"/\*.*\*/|^\s*/?\*", 0.5),
    ],
    "cpp": [
        (r"^#include\s*<(iostream|vector|string|memory|map|algorithm)>", 4),
        (r"\bstd::", 3),
        (r"\bcout\s*<<|\bcin\s*>>", 2),
        (r"\btemplate\s*<", 2),
        (r"\bnullptr\b|\bauto&?\s+\w+\s*=", 1.5),
        (r"^\s*(public|private|protected):\s*$", 2.5),
        (r"\bnamespace \w+|\bvirtual\b|\boperator\s*[^\w\s]", 2),
        (r"\b\w+::~?\w+\s*\(", 1.5),
        (r"\bconst \w+(<[^>]*>)?\s*&", 1.5),
    ],
    "ruby": [
        (r"^\s*def \w+[?!]?(\(.*\))?\s*$", 2),
        (r"^\s*end\s*$", 2),
        (r"\bputs\b", 2),
        (r"\brequire ['\"]", 1.5),
        (r"\bdo \|\w+(, ?\w+)*\|", 3),
        (r"@\w+ =|attr_accessor|\.each\b", 1.5),
    ],
    "php": [
        (r"<\?php", 5),
        (r"\$\w+\s*=", 2),
        (r"\becho\b", 1),
        (r"->\w+\(", 0.5),
        (r"\$this->", 3),
        (r"\$\w+->\w+", 1.5),
        (r"\b(public|private|protected) (static )?function\b", 2.5),
        (r"\bfunction \w+\s*\([^)]*\$\w+", 2),
    ],
    "bash": [
        (r"^#!/bin/(ba)?sh|^#!/usr/bin/env (ba)?sh", 5),
        (r"^\s*(sudo\s+)?(apt(-get)? |pip install|npm (install|run)|cd |export \w+=|echo )", 2),
        (r"^\s*sudo ", 2),
        (r"^\s*(git|docker|kubectl|curl|brew|make|mkdir|chmod|ls|rm|mv|cp) ", 2.5),
        (r"\$\{?\w+\}?", 0.5),
        (r"\bfi\b|\bdone\b|\bthen\b|\besac\b", 1.5),
        (r"\s--?\w[\w-]*", 0.5),
        (r"\|\s*(grep|awk|sed|xargs)\b", 2),
    ],
    "sql": [
        (r"(?is)^\s*select\b.{1,500}?\bfrom\b", 3),
        (r"(?i)\b(insert into|update \w+ set|delete from)\b", 3),
        (r"(?i)\bcreate (table|index|view)\b", 3),
        (r"(?i)\b(where|join|group by|order by|primary key)\b", 1),
        (
            r"(?i)^\s*(create|alter|drop)( or replace)? (function|type|trigger|schema|extension"
            r"|aggregate|operator|sequence|domain|view|table|index)\b",
            3,
        ),
        (r"(?i)\bLANGUAGE\s+'?(plpgsql|sql|c|internal)\b|\$\$", 2),
        (r"(?i)^\s*(grant|revoke|comment on|returns)\b", 2),
        (r"^\s*--", 1),
        (r";\s*$", 0.5),
    ],
    "html": [
        (r"<!DOCTYPE html>|<html\b", 4),
        (r"</(div|span|p|body|head|ul|li|a|section)>", 2.5),
        (r"<(div|span|p|a|img|input|button)(\s+[\w-]+=\"[^\"]*\")*\s*/?>", 1.5),
    ],
    "css": [
        # one bounded character class: nested quantifiers here backtrack exponentially
        (r"^[.#]?[\w-][\w .#:>+~,\[\]=\"-]{0,150}\{[ \t]*$", 1.5),
        (r"^\s*[\w-]+\s*:\s*[^;{}]+;\s*$", 1.5),
        (r"@media\b|@import\b|:hover\b", 1.5),
        (r"\b\d+(px|rem|em|vh|vw)\b|#[0-9a-fA-F]{3,6}\b", 1),
    ],
    "json": [
        (r"\A\s*[\[{]", 1),
        (r"^\s*\"[^\"]+\"\s*:\s*", 2.5),
        (r"[\]}]\s*\Z", 1),
    ],
    "yaml": [
        (r"^[\w.-]+:\s*$", 1.5),
        (r"^\s+[\w.-]+:\s+\S", 1),
        (r"^\s*- [\w\"']", 1),
        (r"^(apiVersion|kind|services|version|steps|jobs|on):", 2.5),
        # several `key: value` lines in a row and no braces or semicolons at line ends
        (r"(?:^[ \t]*(?:- )?[\w.-]+:(?:[ \t]+[^\s{;][^\n;{]*)?[ \t]*\n){3}", 2),
        (r"^---\s*$", 1.5),
    ],
}
_MIN_SCORE = 3.0
_MIN_MARGIN = 1.5
# Conflicts a plain argmax gets wrong: TypeScript is a superset of JavaScript, and C++
# is one of C, so the broader language's features count toward the narrower one.
_INHERITS = {"typescript": "javascript", "cpp": "c"}


@lru_cache(maxsize=1)
def _compiled() -> dict[str, list[tuple[re.Pattern[str], float]]]:
    return {lang: [(re.compile(p, _M), w) for p, w in feats] for lang, feats in _FEATURES.items()}


def language_scores(code: str) -> dict[str, float]:
    sample = code[:20_000]  # bounded work on huge pastes
    scores = {
        lang: sum(w for pattern, w in feats if pattern.search(sample))
        for lang, feats in _compiled().items()
    }
    for narrow, broad in _INHERITS.items():
        if scores[narrow] > 0:
            scores[narrow] += scores[broad] * 0.9
    if not _is_json(sample):
        # A fragment of a JSON document (not parseable alone) counts only when nearly every
        # line is a JSON member, value or bracket.
        scores["json"] = 6.0 if _json_lines(sample) else 0.0
    return scores


_JSON_LINE = re.compile(
    r'^\s*(?:"(?:[^"\\]|\\.)*"\s*:\s*.*|"(?:[^"\\]|\\.)*",?|[\[\]{}]+,?'
    r"|-?\d+(?:\.\d+)?,?|true,?|false,?|null,?)\s*$"
)
_JSON_MEMBER = re.compile(r'^\s*"(?:[^"\\]|\\.)*"\s*:\s*(?:["\[{\d-]|true|false|null)')


def _json_lines(code: str) -> bool:
    lines = [line for line in code.splitlines() if line.strip()]
    members = sum(1 for line in lines if _JSON_MEMBER.match(line))
    shaped = sum(1 for line in lines if _JSON_LINE.match(line))
    return members >= 3 and shaped >= 0.9 * len(lines)


def _is_json(code: str) -> bool:
    import json

    try:
        json.loads(code)
    except ValueError:
        return False
    return True


def detect_language(code: str) -> str | None:
    """Best-guess language name, or None when the evidence is weak or ambiguous."""
    if not code.strip():
        return None
    if _is_json(code) and code.lstrip()[:1] in "[{":
        return "json"
    ranked = sorted(language_scores(code).items(), key=lambda kv: kv[1], reverse=True)
    (best, best_score), (_, second_score) = ranked[0], ranked[1]
    if best_score < _MIN_SCORE or best_score - second_score < _MIN_MARGIN:
        return None
    return best
