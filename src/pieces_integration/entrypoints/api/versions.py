"""The version an asset edit is based on (If-Match or a body `version`), and the ETag."""

from __future__ import annotations

from fastapi import Response

from pieces_integration.domain.errors import InvalidInput
from pieces_integration.entrypoints.api.schemas.assets import AssetPublic


def expected_version(if_match: str | None, version: int | None = None) -> int | None:
    """The version an edit is based on: the If-Match header or the body's `version`."""
    header = None
    if if_match is not None and if_match.strip() != "*":
        text = if_match.strip().removeprefix("W/").strip('"')
        if not text.isdigit():
            raise InvalidInput('If-Match must be an asset version such as "3"', field="If-Match")
        header = int(text)
    if header is not None and version is not None and header != version:
        raise InvalidInput(
            f"If-Match ({header}) and version ({version}) disagree; send one", field="version"
        )
    return header if header is not None else version


def with_etag(response: Response, asset: AssetPublic) -> AssetPublic:
    response.headers["ETag"] = f'"{asset.version}"'
    return asset
