from __future__ import annotations

import math
import time

import pytest

from pieces_integration.domain.bm25 import (
    Bm25Index,
    idf,
    sparse_document,
    sparse_query,
    term_id,
    term_weight,
)
from pieces_integration.domain.tokenize import tokenize


def test_ranks_by_bm25_and_prefers_rare_terms() -> None:
    index = Bm25Index()
    index.add("a", "def read_config(path): open(path)")
    index.add("b", "def write_config(path): open(path, 'w')")
    index.add("c", "def parse_date(text): ...")
    ranked = index.search("read config")
    assert [key for key, _ in ranked] == ["a", "b"]
    # "read" is in one document, "config" in two: the rare term counts for more.
    assert idf(3, 1) > idf(3, 2)


def test_score_matches_the_bm25_formula() -> None:
    index = Bm25Index()
    index.add_tokens("x", ["alpha", "alpha", "beta"])
    index.add_tokens("y", ["beta"])
    avg = (3 + 1) / 2
    expected = idf(2, 1) * term_weight(2, 3, avg) + idf(2, 2) * term_weight(1, 3, avg)
    assert index.scores(["alpha", "beta"])["x"] == pytest.approx(expected)


def test_remove_and_re_add_are_incremental() -> None:
    index = Bm25Index()
    index.add("a", "alpha beta")
    index.add("b", "beta gamma")
    assert index.remove("a") is True
    assert index.remove("a") is False
    assert "a" not in index and len(index) == 1
    assert index.document_frequency("alpha") == 0
    assert index.search("alpha") == []
    index.add("b", "delta")  # re-index replaces the old text
    assert index.search("gamma") == []
    assert [k for k, _ in index.search("delta")] == ["b"]


def test_empty_index_and_empty_query() -> None:
    assert Bm25Index().search("anything") == []
    index = Bm25Index()
    index.add("a", "alpha")
    assert index.search("the of and") == []


def test_sparse_vectors_reproduce_bm25_given_the_engines_idf() -> None:
    documents = {"a": "read_config file", "b": "write config", "c": "parse date time"}
    avg = 3.0
    vectors = {k: sparse_document(tokenize(v), avg_length=avg) for k, v in documents.items()}
    query = sparse_query(tokenize("read config"))
    assert list(query.values) == [1.0] * len(query)
    # What the engine computes with Modifier.IDF: sum over shared terms of idf * doc weight.
    n = len(documents)
    df: dict[int, int] = {}
    for vector in vectors.values():
        for index in vector.indices:
            df[index] = df.get(index, 0) + 1

    def engine_score(key: str) -> float:
        doc = dict(zip(vectors[key].indices, vectors[key].values, strict=True))
        return sum(idf(n, df[i]) * doc[i] for i in query.indices if i in doc)

    index = Bm25Index()
    for key, text in documents.items():
        index.add(key, text)
    # Equal to exact BM25 when the fixed average length equals the real one.
    real_avg = sum(len(tokenize(t)) for t in documents.values()) / n
    assert real_avg == avg
    exact = index.scores("read config")
    for key in documents:
        assert engine_score(key) == pytest.approx(exact.get(key, 0.0))


def test_term_ids_are_stable_31_bit() -> None:
    assert term_id("config") == term_id("config")
    assert 0 <= term_id("x" * 30) < 2**31
    assert sorted(sparse_document(["b", "a", "b"]).indices) == list(
        sparse_document(["b", "a", "b"]).indices
    )


def test_indexes_at_least_a_thousand_assets_per_second() -> None:
    text = (
        "def load_user_settings(path):\n    with open(path) as handle:\n"
        "        return json.load(handle)  # parse the settings file\n"
    ) * 4
    index = Bm25Index()
    started = time.perf_counter()
    for i in range(2000):
        index.add(f"asset-{i}", text + f" unique_{i}")
    rate = 2000 / (time.perf_counter() - started)
    assert rate > 1000, f"{rate:.0f} assets/s"
    assert math.isfinite(index.search("load user settings")[0][1])


def test_name_terms_count_double() -> None:
    from pieces_integration.domain.bm25 import document_tokens

    tokens = document_tokens("loadConfig", "return data")
    assert tokens.count("load") == 2 and tokens.count("config") == 2
    assert tokens.count("data") == 1
