"""Building keyword points: a large batch is tokenised off the event loop's thread."""

from __future__ import annotations

import threading

import pytest

from pieces_integration.domain.model import Asset
from pieces_integration.service_layer import indexer
from pieces_integration.service_layer.indexer import INLINE_TEXT_CHARS, asset_point, asset_points

pytestmark = pytest.mark.anyio


def _asset(n: int, size: int) -> Asset:
    return Asset(id=f"a{n}", user_id="u", name=f"asset {n}", content="word_" * (size // 5))


async def _threads_used(assets: list[Asset], monkeypatch: pytest.MonkeyPatch) -> set[int]:
    seen: set[int] = set()

    def recording(asset: Asset, dense: object = None) -> object:
        seen.add(threading.get_ident())
        return asset_point(asset, dense)  # type: ignore[arg-type]

    monkeypatch.setattr(indexer, "asset_point", recording)
    points = await indexer.asset_points(assets)
    assert [p.id for p in points] == [a.id for a in assets]
    assert all(p.sparse for p in points)
    return seen


async def test_small_batches_are_built_inline(monkeypatch: pytest.MonkeyPatch) -> None:
    assets = [_asset(n, 1000) for n in range(5)]
    assert await _threads_used(assets, monkeypatch) == {threading.get_ident()}


async def test_a_large_asset_is_tokenised_in_a_worker_thread(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assets = [_asset(0, 100), _asset(1, INLINE_TEXT_CHARS + 10)]
    used = await _threads_used(assets, monkeypatch)
    assert threading.get_ident() not in used and len(used) == 1


async def test_dense_vectors_stay_with_their_assets() -> None:
    assets = [_asset(n, 10) for n in range(3)]
    points = await asset_points(assets, [[float(n)] * 3 for n in range(3)])
    assert [p.dense for p in points] == [[0.0] * 3, [1.0] * 3, [2.0] * 3]
