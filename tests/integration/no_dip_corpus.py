"""The no-dip test's corpus, frozen in `data/no_dip_corpus.json` (#18).

Derived once from this project's own functions (docstrings cut out; the query is the
docstring's first sentence). It is frozen because a corpus drawn from the live source changed
with every commit, and with it the measured margins. Regenerate on purpose only:
`python -m tests.integration.no_dip_corpus`.
"""

from __future__ import annotations

import ast
import json
import random
import textwrap
from pathlib import Path

import pieces_integration

CORPUS = 240
FROZEN = Path(__file__).parent / "data" / "no_dip_corpus.json"


def derive() -> list[tuple[str, str, str, str]]:
    """(id, name, document, query), unique queries, sorted paths, fixed order."""
    root = Path(pieces_integration.__file__).parent
    found: dict[str, tuple[str, str, str, str]] = {}
    for path in sorted(root.rglob("*.py")):
        source = path.read_text(encoding="utf-8")
        lines = source.splitlines()
        for node in ast.walk(ast.parse(source)):
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            doc = ast.get_docstring(node)
            if not doc or len(node.body) < 2 or len(doc.split()) < 4:
                continue
            query = " ".join(doc.split("\n\n")[0].split())
            body = node.body[0]
            kept = lines[node.lineno - 1 : body.lineno - 1]
            kept += lines[(body.end_lineno or 0) : node.end_lineno]
            key = f"{path.stem}:{node.lineno}:{node.name}"
            found.setdefault(
                query.lower(), (key, node.name, textwrap.dedent("\n".join(kept)), query)
            )
    items = sorted(found.values())
    random.Random(18).shuffle(items)
    return items[:CORPUS]


def load() -> list[tuple[str, str, str, str]]:
    rows = json.loads(FROZEN.read_text(encoding="utf-8"))
    return [(row["id"], row["name"], row["document"], row["query"]) for row in rows]


if __name__ == "__main__":
    rows = [{"id": i, "name": n, "document": d, "query": q} for i, n, d, q in derive()]
    FROZEN.write_text(json.dumps(rows, indent=1) + "\n", encoding="utf-8")
    print(f"{len(rows)} items -> {FROZEN}")  # noqa: T201 - a maintainer's script
