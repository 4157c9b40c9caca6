"""One suite for both vector-store adapters: qdrant-edge (embedded) and the Qdrant server
adapter driven through qdrant-client's local mode."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from qdrant_client import AsyncQdrantClient

from pieces_integration.adapters.vectors.qdrant_edge import QdrantEdgeVectorStore
from pieces_integration.adapters.vectors.qdrant_server import QdrantServerVectorStore
from pieces_integration.domain.bm25 import sparse_document, sparse_query
from pieces_integration.domain.ranking import HybridFusion, fuse_scores
from pieces_integration.domain.tokenize import tokenize
from pieces_integration.ports.vectors import (
    ASSETS,
    CONTEXTS,
    DenseUpdate,
    IndexedPoint,
    SearchFilter,
    VectorStore,
)

DIM = 8

# qdrant-client local mode ignores payload indexes and says so; a real server uses them.
pytestmark = pytest.mark.filterwarnings("ignore:Payload indexes have no effect:UserWarning")


def unit(*components: float) -> list[float]:
    vector = list(components) + [0.0] * (DIM - len(components))
    norm = sum(c * c for c in vector) ** 0.5
    return [c / norm for c in vector]


def point(
    key: str,
    user: str,
    text: str,
    dense: list[float] | None,
    *,
    language: str = "python",
    tags: tuple[str, ...] = (),
    content_hash: str = "h",
) -> IndexedPoint:
    return IndexedPoint(
        id=key,
        user_id=user,
        sparse=sparse_document(tokenize(text)),
        dense=dense,
        payload={"language": language, "tags": list(tags), "content_hash": content_hash},
    )


@pytest.fixture(params=["edge", "server"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[VectorStore]:
    adapter: VectorStore
    if request.param == "edge":
        adapter = QdrantEdgeVectorStore(tmp_path / "vectors", dimension=DIM)
    else:
        adapter = QdrantServerVectorStore(AsyncQdrantClient(location=":memory:"), dimension=DIM)
    await adapter.open()
    yield adapter
    await adapter.close()


async def seed(store: VectorStore) -> None:
    await store.upsert(
        ASSETS,
        [
            point("a1", "alice", "def read_config_file(path): ...", unit(1, 0), tags=("io",)),
            point("a2", "alice", "def parse_http_date(text): ...", unit(0, 1), tags=("http",)),
            point("a3", "alice", "function readConfig() {}", unit(1, 0.2), language="javascript"),
            point("b1", "bob", "def read_config_file(path): ...", unit(1, 0)),
        ],
    )


@pytest.mark.anyio
async def test_dense_query_is_scoped_to_the_user(store: VectorStore) -> None:
    await seed(store)
    hits = await store.query_dense(ASSETS, unit(1, 0), SearchFilter(user_id="alice"), 10)
    assert [h.id for h in hits] == ["a1", "a3", "a2"]
    assert hits[0].score == pytest.approx(1.0, abs=1e-5)
    assert hits[0].payload["user_id"] == "alice"


@pytest.mark.anyio
async def test_language_and_tag_filters(store: VectorStore) -> None:
    await seed(store)
    alice = SearchFilter(user_id="alice", languages=("javascript",))
    assert [h.id for h in await store.query_dense(ASSETS, unit(1, 0), alice, 10)] == ["a3"]
    tagged = SearchFilter(user_id="alice", tags=("http", "nope"))
    assert [h.id for h in await store.query_dense(ASSETS, unit(1, 0), tagged, 10)] == ["a2"]


@pytest.mark.anyio
async def test_sparse_query_finds_split_identifiers(store: VectorStore) -> None:
    await seed(store)
    query = sparse_query(tokenize("read config"))
    hits = await store.query_sparse(ASSETS, query, SearchFilter(user_id="alice"), 10)
    assert {h.id for h in hits} == {"a1", "a3"}
    assert all(h.score > 0 for h in hits)


@pytest.mark.anyio
async def test_keyword_tier_works_before_the_dense_vector_exists(store: VectorStore) -> None:
    await store.upsert(ASSETS, [point("n1", "carol", "def tokenize_source(code): ...", None)])
    flt = SearchFilter(user_id="carol")
    assert await store.count(ASSETS, "carol") == 1
    assert await store.count_dense(ASSETS, "carol") == 0
    fusion = HybridFusion(alpha=0.5, saturation=1.0, dense_floor=0.1)
    hits = await store.query_hybrid(
        ASSETS, unit(1, 0), sparse_query(tokenize("tokenize source")), flt, 10, fusion
    )
    assert [h.id for h in hits] == ["n1"]
    # No dense score: the floor plus the squashed keyword score.
    assert 0.1 < hits[0].score < 0.1 + 0.5


@pytest.mark.anyio
async def test_set_dense_skips_missing_and_changed_points(store: VectorStore) -> None:
    await store.upsert(ASSETS, [point("s1", "dave", "alpha beta", None, content_hash="v1")])
    applied = await store.set_dense(
        ASSETS,
        [
            DenseUpdate("s1", unit(0, 0, 1), content_hash="v0"),  # stale: the asset changed
            DenseUpdate("missing", unit(1), content_hash="v1"),
        ],
    )
    assert applied == 0
    assert await store.count_dense(ASSETS, "dave") == 0
    assert await store.set_dense(ASSETS, [DenseUpdate("s1", unit(0, 0, 1), "v1")]) == 1
    assert await store.count_dense(ASSETS, "dave") == 1
    hits = await store.query_dense(ASSETS, unit(0, 0, 1), SearchFilter(user_id="dave"), 5)
    assert [h.id for h in hits] == ["s1"]


@pytest.mark.anyio
async def test_hybrid_fuses_dense_and_keyword_scores(store: VectorStore) -> None:
    await seed(store)
    fusion = HybridFusion(alpha=0.5, saturation=2.0, dense_floor=0.0)
    # Dense alone prefers a2; the keywords "read config" pull a1 above it.
    hits = await store.query_hybrid(
        ASSETS,
        unit(0.8, 1),
        sparse_query(tokenize("read config file")),
        SearchFilter(user_id="alice", languages=("python",)),
        10,
        fusion,
    )
    dense_only = await store.query_dense(
        ASSETS, unit(0.8, 1), SearchFilter(user_id="alice", languages=("python",)), 10
    )
    assert dense_only[0].id == "a2"
    assert [h.id for h in hits] == ["a1", "a2"]
    by_id = {h.id: h.score for h in dense_only}
    assert hits[1].score == pytest.approx(by_id["a2"], abs=1e-5)  # no keyword match: cosine only
    assert hits[0].score > by_id["a1"]


@pytest.mark.anyio
async def test_delete_asset_leaves_no_vector(store: VectorStore) -> None:
    await seed(store)
    await store.delete(ASSETS, ["a1"])
    flt = SearchFilter(user_id="alice")
    dense = await store.query_dense(ASSETS, unit(1, 0), flt, 10)
    sparse = await store.query_sparse(ASSETS, sparse_query(tokenize("read config file")), flt, 10)
    assert "a1" not in {h.id for h in dense} | {h.id for h in sparse}
    assert await store.count(ASSETS, "alice") == 2


@pytest.mark.anyio
async def test_delete_user_leaves_no_vector_in_any_collection(store: VectorStore) -> None:
    await seed(store)
    await store.upsert(CONTEXTS, [point("ctx-1", "alice", "working on config parsing", unit(1))])
    await store.upsert(CONTEXTS, [point("ctx-2", "bob", "working on http", unit(0, 1))])
    await store.delete_user("alice")
    assert await store.count(ASSETS, "alice") == 0
    assert await store.count(CONTEXTS, "alice") == 0
    assert await store.query_dense(ASSETS, unit(1, 0), SearchFilter(user_id="alice"), 10) == []
    # Other users keep theirs.
    assert await store.count(ASSETS, "bob") == 1
    assert await store.count(CONTEXTS, "bob") == 1


@pytest.mark.anyio
async def test_upsert_replaces_and_non_uuid_ids_round_trip(store: VectorStore) -> None:
    key = f"pieces:{uuid.uuid4()}:snippet"
    await store.upsert(ASSETS, [point(key, "erin", "old words", unit(1))])
    await store.upsert(ASSETS, [point(key, "erin", "new words entirely", None)])
    assert await store.count(ASSETS, "erin") == 1
    assert await store.count_dense(ASSETS, "erin") == 0  # the new content needs a new vector
    hits = await store.query_sparse(
        ASSETS, sparse_query(tokenize("entirely")), SearchFilter(user_id="erin"), 5
    )
    assert [h.id for h in hits] == [key]


@pytest.mark.anyio
async def test_edge_store_persists_across_reopen(tmp_path: Path) -> None:
    first = QdrantEdgeVectorStore(tmp_path / "vectors", dimension=DIM)
    await first.open()
    await first.upsert(ASSETS, [point("p1", "fay", "persist me", unit(1))])
    await first.optimize()  # builds the index; must keep the data searchable
    await first.close()
    second = QdrantEdgeVectorStore(tmp_path / "vectors", dimension=DIM)
    await second.open()
    try:
        hits = await second.query_dense(ASSETS, unit(1), SearchFilter(user_id="fay"), 5)
        assert [h.id for h in hits] == ["p1"]
    finally:
        await second.close()


@pytest.mark.anyio
async def test_engine_formula_equals_the_domain_fusion(store: VectorStore) -> None:
    await seed(store)
    fusion = HybridFusion(alpha=0.7, saturation=3.0, dense_floor=0.05)
    flt = SearchFilter(user_id="alice")
    dense_query, sparse = unit(0.5, 1, 0.2), sparse_query(tokenize("read config date"))
    dense = {h.id: h.score for h in await store.query_dense(ASSETS, dense_query, flt, 10)}
    keyword = {h.id: h.score for h in await store.query_sparse(ASSETS, sparse, flt, 10)}
    hybrid = await store.query_hybrid(ASSETS, dense_query, sparse, flt, 10, fusion)
    expected = fuse_scores(dense, keyword, fusion)
    assert [h.id for h in hybrid] == [key for key, _ in expected]
    for hit, (_, score) in zip(hybrid, expected, strict=True):
        assert hit.score == pytest.approx(score, abs=1e-5)


@pytest.mark.anyio
async def test_a_dense_query_can_score_exactly_a_given_set_of_points(store: VectorStore) -> None:
    await seed(store)
    scope = SearchFilter(user_id="alice", ids=("a2", "a3", "b1", "missing"))
    hits = {h.id: h.score for h in await store.query_dense(ASSETS, unit(1, 0), scope, 10)}
    assert set(hits) == {"a2", "a3"}  # b1 is bob's: the user scope still holds
    cosine = sum(x * y for x, y in zip(unit(1, 0.2), unit(1, 0), strict=True))
    assert hits["a2"] == pytest.approx(0.0, abs=1e-6)
    assert hits["a3"] == pytest.approx(cosine, abs=1e-5)


@pytest.mark.anyio
async def test_team_scope_reaches_exactly_the_shared_points(store: VectorStore) -> None:
    """Issue 16: `shared_ids` opens other users' points, `own` the user's; never more."""
    await seed(store)
    await store.upsert(ASSETS, [point("c1", "carol", "def read_config_file(): ...", unit(1, 0))])
    query = sparse_query(tokenize("read config"))
    fusion = HybridFusion(alpha=0.5, saturation=1.0, dense_floor=0.1)
    team = SearchFilter(user_id="bob", own=False, shared_ids=("a1", "a3"))
    both = SearchFilter(user_id="bob", shared_ids=("a1",))
    for scope, expected in ((team, {"a1", "a3"}), (both, {"a1", "b1"})):
        assert {h.id for h in await store.query_dense(ASSETS, unit(1, 0), scope, 10)} == expected
        assert {h.id for h in await store.query_sparse(ASSETS, query, scope, 10)} == expected
        hybrid = await store.query_hybrid(ASSETS, unit(1, 0), query, scope, 10, fusion)
        assert {h.id for h in hybrid} == expected
    # The other filters still narrow a team scope.
    javascript = SearchFilter(
        user_id="bob", own=False, shared_ids=("a1", "a3"), languages=("javascript",)
    )
    assert [h.id for h in await store.query_dense(ASSETS, unit(1, 0), javascript, 10)] == ["a3"]
    assert SearchFilter(user_id="bob", own=False).empty
    with pytest.raises(ValueError, match="scoped to nothing"):
        await store.query_dense(ASSETS, unit(1, 0), SearchFilter(user_id="bob", own=False), 10)


@pytest.mark.anyio
async def test_writes_are_counted_for_maintenance_only_where_the_engine_needs_it(
    store: VectorStore,
) -> None:
    await seed(store)
    await store.delete(ASSETS, ["a1"])
    if isinstance(store, QdrantServerVectorStore):  # the server optimises by itself
        assert store.writes_since_optimize() == 0
        assert await store.optimize() is False
        return
    assert store.writes_since_optimize() == 5  # four upserts and a delete
    await store.optimize()  # far below the engine's indexing size: nothing to build
    assert store.writes_since_optimize() == 0
    hits = await store.query_dense(ASSETS, unit(1, 0), SearchFilter(user_id="alice"), 5)
    assert [h.id for h in hits] == ["a3", "a2"]
