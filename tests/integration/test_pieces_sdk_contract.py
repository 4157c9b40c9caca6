"""Contract test with a client nobody here wrote: the official `pieces_os_client` 5.x API classes.

Every route our adapter uses is called through the SDK against the emulator, and every response
must parse into the SDK's models (a pydantic ValidationError would fail the test).
"""

from __future__ import annotations

import anyio
import pytest
from pieces_os_client.api.annotation_api import AnnotationApi
from pieces_os_client.api.annotations_api import AnnotationsApi
from pieces_os_client.api.applications_api import ApplicationsApi
from pieces_os_client.api.asset_api import AssetApi
from pieces_os_client.api.assets_api import AssetsApi
from pieces_os_client.api.connector_api import ConnectorApi
from pieces_os_client.api.format_api import FormatApi
from pieces_os_client.api.models_api import ModelsApi
from pieces_os_client.api.search_api import SearchApi
from pieces_os_client.api.tags_api import TagsApi
from pieces_os_client.api.user_api import UserApi
from pieces_os_client.api.well_known_api import WellKnownApi
from pieces_os_client.api_client import ApiClient
from pieces_os_client.configuration import Configuration
from pieces_os_client.exceptions import ApiException, BadRequestException
from pieces_os_client.models.annotation_type_enum import AnnotationTypeEnum
from pieces_os_client.models.asset import Asset
from pieces_os_client.models.assets import Assets
from pieces_os_client.models.assets_search_with_filters_input import (
    AssetsSearchWithFiltersInput,
)
from pieces_os_client.models.classification_specific_enum import ClassificationSpecificEnum
from pieces_os_client.models.fragment_metadata import FragmentMetadata
from pieces_os_client.models.seed import Seed
from pieces_os_client.models.seed_type_enum import SeedTypeEnum
from pieces_os_client.models.seeded_annotation import SeededAnnotation
from pieces_os_client.models.seeded_asset import SeededAsset
from pieces_os_client.models.seeded_asset_metadata import SeededAssetMetadata
from pieces_os_client.models.seeded_asset_tag import SeededAssetTag
from pieces_os_client.models.seeded_asset_website import SeededAssetWebsite
from pieces_os_client.models.seeded_connector_connection import SeededConnectorConnection
from pieces_os_client.models.seeded_format import SeededFormat
from pieces_os_client.models.seeded_fragment import SeededFragment
from pieces_os_client.models.seeded_tag import SeededTag
from pieces_os_client.models.seeded_tracked_application import SeededTrackedApplication
from pieces_os_client.models.transferable_string import TransferableString

from pieces_integration.emulators.pieces.server import running_emulator

TIMEOUT = 5.0


def _sdk_scenario(url: str) -> None:
    api = ApiClient(Configuration(host=url))
    assert WellKnownApi(api).get_well_known_health(_request_timeout=TIMEOUT).strip() == "ok"
    version = WellKnownApi(api).get_well_known_version(_request_timeout=TIMEOUT)
    assert version.startswith("12.")

    with pytest.raises(BadRequestException):
        ConnectorApi(api).connect(
            seeded_connector_connection=SeededConnectorConnection(
                application=SeededTrackedApplication(
                    name="NOT_A_REGISTERED_APP", platform="LINUX", version="0.1.0"
                )
            ),
            _request_timeout=TIMEOUT,
        )
    context = ConnectorApi(api).connect(
        seeded_connector_connection=SeededConnectorConnection(
            application=SeededTrackedApplication(
                name="OPEN_SOURCE", platform="LINUX", version="0.1.0"
            )
        ),
        _request_timeout=TIMEOUT,
    )
    assert context.application.id and context.health.os.version == version
    api.set_default_header("application", context.application.id)

    models = ModelsApi(api).models_snapshot(_request_timeout=TIMEOUT)
    assert "GPT-3.5-turbo Chat Model" in {m.name for m in models.iterable}
    assert "gemini-2.0-flash-lite-001" in {m.unique for m in models.iterable}  # the CLI's default
    applications = ApplicationsApi(api).applications_snapshot(_request_timeout=TIMEOUT)
    assert context.application.id in {a.id for a in applications.iterable}

    profile = UserApi(api).user_snapshot(_request_timeout=TIMEOUT)
    assert profile.user is not None and profile.user.id

    seed = Seed(
        type=SeedTypeEnum.SEEDED_ASSET,
        asset=SeededAsset(
            application=context.application,
            format=SeededFormat(
                fragment=SeededFragment(
                    string=TransferableString(raw="print('hello')\n"),
                    metadata=FragmentMetadata(ext=ClassificationSpecificEnum.PY),
                )
            ),
            metadata=SeededAssetMetadata(
                name="hello contract",
                tags=[SeededAssetTag(text="python")],
                websites=[SeededAssetWebsite(name="docs", url="https://docs.python.org/")],
                annotations=[
                    SeededAnnotation(type=AnnotationTypeEnum.DESCRIPTION, text="says hello")
                ],
            ),
        ),
    )
    assets_api, asset_api = AssetsApi(api), AssetApi(api)
    created = assets_api.assets_create_new_asset(seed=seed, _request_timeout=TIMEOUT)
    assert isinstance(created, Asset)
    assert created.original.reference.fragment.string.raw == "print('hello')\n"
    assert created.original.reference.classification.specific == ClassificationSpecificEnum.PY

    snapshot = assets_api.assets_snapshot(transferables=True, _request_timeout=TIMEOUT)
    assert isinstance(snapshot, Assets)
    assert created.id in {a.id for a in snapshot.iterable}
    identifiers = assets_api.assets_identifiers_snapshot(_request_timeout=TIMEOUT)
    assert created.id in {a.id for a in identifiers.iterable}

    one = asset_api.asset_snapshot(created.id, transferables=True, _request_timeout=TIMEOUT)
    also = assets_api.assets_specific_asset_snapshot(created.id, _request_timeout=TIMEOUT)
    assert one.id == also.id == created.id
    assert [t.text for t in one.tags.iterable] == ["python"]
    assert [w.url for w in one.websites.iterable] == ["https://docs.python.org/"]

    one.name = "renamed by the SDK"
    updated = asset_api.asset_update(asset=one, transferables=True, _request_timeout=TIMEOUT)
    assert updated.name == "renamed by the SDK"

    fmt = FormatApi(api).format_snapshot(
        one.original.id, transferable=True, _request_timeout=TIMEOUT
    )
    fmt.fragment.string.raw = "print('changed')\n"
    FormatApi(api).format_update_value(format=fmt, transferable=True, _request_timeout=TIMEOUT)
    tag = TagsApi(api).tags_create_new_tag(
        seeded_tag=SeededTag(text="contract", asset=created.id), _request_timeout=TIMEOUT
    )
    AssetApi(api).asset_disassociate_tag(
        asset=created.id, tag=one.tags.iterable[0].id, _request_timeout=TIMEOUT
    )
    description = next(a for a in one.annotations.iterable if a.type == "DESCRIPTION")
    description.text = "says something else"
    AnnotationApi(api).annotation_update(annotation=description, _request_timeout=TIMEOUT)
    AnnotationsApi(api).annotations_create_new_annotation(
        seeded_annotation=SeededAnnotation(
            type=AnnotationTypeEnum.COMMENT, text="a comment", asset=created.id
        ),
        _request_timeout=TIMEOUT,
    )
    after = asset_api.asset_snapshot(created.id, transferables=True, _request_timeout=TIMEOUT)
    assert after.original.reference.fragment.string.raw == "print('changed')\n"
    assert [t.text for t in after.tags.iterable] == [tag.text]
    texts = {a.type: a.text for a in after.annotations.iterable}
    assert texts[AnnotationTypeEnum.DESCRIPTION] == "says something else"

    fuzzy = assets_api.search_assets(
        query="contract", transferables=False, _request_timeout=TIMEOUT
    )
    assert created.id in {hit.identifier for hit in fuzzy.iterable}
    filtered = assets_api.assets_search_with_filters(
        assets_search_with_filters_input=AssetsSearchWithFiltersInput(query="renamed"),
        _request_timeout=TIMEOUT,
    )
    assert created.id in {hit.identifier for hit in filtered.results.iterable}
    fts = SearchApi(api).full_text_search(query="changed", _request_timeout=TIMEOUT)
    ncs = SearchApi(api).neural_code_search(query="print", _request_timeout=TIMEOUT)
    assert created.id in {h.identifier for h in fts.iterable}
    assert created.id in {h.identifier for h in ncs.iterable}
    with pytest.raises(ApiException) as no_query:
        assets_api.search_assets(_request_timeout=TIMEOUT)
    assert no_query.value.status == 500

    deleted = assets_api.assets_delete_asset(created.id, _request_timeout=TIMEOUT)
    assert deleted.strip() == created.id
    with pytest.raises(ApiException) as gone:
        asset_api.asset_snapshot(created.id, _request_timeout=TIMEOUT)
    assert gone.value.status == 410


@pytest.mark.anyio
async def test_official_sdk_api_classes_work_against_the_emulator() -> None:
    async with running_emulator(assets=25, seed=3) as emulator:
        await anyio.to_thread.run_sync(_sdk_scenario, emulator.url)


def _parse_seeded_library(url: str) -> int:
    api = ApiClient(Configuration(host=url))
    snapshot = AssetsApi(api).assets_snapshot(transferables=True, _request_timeout=TIMEOUT)
    for asset in snapshot.iterable:
        assert asset.original.reference.fragment.string.raw
        assert asset.original.reference.classification.specific is not None
        assert asset.name
    return len(snapshot.iterable)


@pytest.mark.anyio
async def test_sdk_parses_every_seeded_asset() -> None:
    async with running_emulator(assets=200, seed=11) as emulator:
        assert await anyio.to_thread.run_sync(_parse_seeded_library, emulator.url) == 200
