"""Run the comment-marker scan and the bug rules over one asset's source."""

from __future__ import annotations

import re

from pieces_integration.adapters.code_analysis import grammars
from pieces_integration.adapters.code_analysis._nodes import line_of, text, walk
from pieces_integration.adapters.code_analysis.rules import RULES
from pieces_integration.domain.code_findings import Finding, FindingKind, markers_in_comment

SUPPORTED_LANGUAGES = grammars.GRAMMARS
_MAX_SOURCE_BYTES = 1_000_000  # a larger "snippet" is a dump, not something to review
_QUOTED = re.compile(r"""(["'`])(?:\\.|(?!\1).)*\1""")


def _redact(line: str) -> str:
    # The finding's text travels to AIWFE: it must not carry the secret it reports.
    return _QUOTED.sub(lambda m: f"{m.group(1)}***{m.group(1)}", line)


class TreeSitterCodeAnalyzer:
    """Implements `ports.code_analysis.CodeAnalyzer`. CPU-bound: call it from a worker thread."""

    def supports(self, language: str | None) -> bool:
        return grammars.canonical(language) is not None

    def analyze(self, content: str, language: str | None) -> list[Finding]:
        name = grammars.canonical(language)
        source = content.encode("utf-8", "surrogatepass")
        if name is None or not content.strip() or len(source) > _MAX_SOURCE_BYTES:
            return []
        tree = grammars.parse(name, source)
        lines = content.splitlines()
        rules = RULES[name]
        findings: list[Finding] = []
        for node in walk(tree.root_node):
            if node.type == "comment":
                findings.extend(markers_in_comment(text(node), line_of(node)))
                continue
            rule = rules.get(node.type)
            if rule is None:
                continue
            for kind, at in rule(node):
                line = line_of(at)
                snippet = lines[line - 1].strip() if line <= len(lines) else text(at)
                if kind is FindingKind.HARDCODED_SECRET:
                    snippet = _redact(snippet)
                findings.append(Finding(kind, line, snippet[:200]))
        unique = dict.fromkeys(findings)  # one finding per (kind, line, text), first wins
        return sorted(unique, key=lambda f: (f.line, f.kind.value))
