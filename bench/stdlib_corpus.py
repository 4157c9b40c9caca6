"""Docstring -> function retrieval task over the Python standard library (fixed seed).

A document is a function's source with its docstring cut out; its query is the docstring's
first sentence. Code no one here wrote, so no method can have been fitted to it by hand.
Shared by `quality_stdlib.py` (the benchmark) and anything that wants the same corpus.
"""

from __future__ import annotations

import ast
import hashlib
import importlib.util
import random
import re
import sysconfig
import textwrap
from dataclasses import dataclass
from pathlib import Path

SEED = 20240601
CORPUS_SIZE = 3000
TEST_QUERIES = 1000
TUNE_QUERIES = 500

_EXCLUDED_PARTS = {"test", "tests", "idle_test", "site-packages", "__pycache__", "dist-packages"}


@dataclass(frozen=True, slots=True)
class Function:
    id: str
    module: str
    name: str
    query: str  # first sentence of the docstring
    document: str  # source without the docstring


@dataclass(frozen=True, slots=True)
class Task:
    corpus: list[Function]
    test: list[Function]  # the reported queries
    tune: list[Function]  # disjoint queries on which fusion parameters are chosen

    def fingerprint(self) -> str:
        digest = hashlib.sha256()
        for function in self.corpus:
            digest.update(function.id.encode())
            digest.update(function.document.encode())
        return digest.hexdigest()[:16]


def first_sentence(docstring: str) -> str:
    paragraph = docstring.strip().split("\n\n")[0]
    paragraph = re.sub(r"\s+", " ", paragraph).strip()
    match = re.search(r"(?<=[.!?])\s", paragraph)
    return paragraph[: match.start()] if match else paragraph


def _is_trivial(body: list[ast.stmt]) -> bool:
    if not body:
        return True
    if len(body) == 1:
        only = body[0]
        if isinstance(only, ast.Pass):
            return True
        if isinstance(only, ast.Expr) and isinstance(only.value, ast.Constant):
            return True
        if isinstance(only, ast.Raise):
            return True
    return False


def _functions_in(path: Path, stdlib: Path) -> list[Function]:
    try:
        source = path.read_text(encoding="utf-8")
        tree = ast.parse(source)
    except (SyntaxError, UnicodeDecodeError, ValueError):
        return []
    lines = source.splitlines()
    module = ".".join(path.relative_to(stdlib).with_suffix("").parts)
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        docstring = ast.get_docstring(node)
        if not docstring or _is_trivial(node.body[1:]):
            continue
        query = first_sentence(docstring)
        if len(query.split()) < 3:
            continue
        doc_node = node.body[0]
        end = node.end_lineno or node.lineno
        kept = (
            lines[node.lineno - 1 : doc_node.lineno - 1] + lines[(doc_node.end_lineno or 0) : end]
        )
        document = textwrap.dedent("\n".join(kept)).strip()
        found.append(
            Function(
                id=f"{module}:{node.lineno}:{node.name}",
                module=module,
                name=node.name,
                query=query,
                document=document,
            )
        )
    return found


def build_task(
    corpus_size: int = CORPUS_SIZE,
    test_queries: int = TEST_QUERIES,
    tune_queries: int = TUNE_QUERIES,
    seed: int = SEED,
) -> Task:
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    return _task(_candidates(stdlib), corpus_size, test_queries, tune_queries, seed)


def build_package_task(
    package: str,
    corpus_size: int = 1500,
    test_queries: int = 500,
    tune_queries: int = 300,
    seed: int = SEED,
) -> Task:
    """The same task over an installed library (e.g. sqlalchemy, pydantic): code of another
    style and vocabulary than the stdlib, to check that what was tuned there carries over."""
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        raise SystemExit(f"{package} is not installed")
    root = Path(spec.origin).parent
    return _task(_candidates(root, root.parent), corpus_size, test_queries, tune_queries, seed)


def _candidates(root: Path, base: Path | None = None) -> list[Function]:
    found: list[Function] = []
    for path in sorted(root.rglob("*.py")):
        if _EXCLUDED_PARTS.intersection(path.relative_to(root).parts):
            continue
        found.extend(_functions_in(path, base or root))
    return found


def _task(
    candidates: list[Function], corpus_size: int, test_queries: int, tune_queries: int, seed: int
) -> Task:
    # A query shared by several functions ("Return a copy.") has no single right answer,
    # and a duplicated body cannot be told apart: drop both kinds.
    query_counts: dict[str, int] = {}
    document_counts: dict[str, int] = {}
    for function in candidates:
        query_counts[function.query.lower()] = query_counts.get(function.query.lower(), 0) + 1
        document_counts[function.document] = document_counts.get(function.document, 0) + 1
    unique = [
        f
        for f in candidates
        if query_counts[f.query.lower()] == 1 and document_counts[f.document] == 1
    ]
    rng = random.Random(seed)
    rng.shuffle(unique)
    corpus = unique[:corpus_size]
    queries = list(corpus)
    rng.shuffle(queries)
    return Task(
        corpus=corpus,
        test=queries[:test_queries],
        tune=queries[test_queries : test_queries + tune_queries],
    )
