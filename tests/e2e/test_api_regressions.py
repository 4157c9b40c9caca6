"""Regressions for the bugs the OpenAPI fuzzing (test_api_fuzz.py) found, one test each."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.e2e.conftest import TokenFactory


def test_setting_the_aiwfe_context_is_recorded_in_the_history(
    api: TestClient, auth: TokenFactory
) -> None:
    # Was a 500: the change record held a dataclass, which the JSON column cannot store.
    alice = auth("alice")
    aiwfe = {"active_chat": "chat-1", "recent_queries": ["q"], "current_agent": None}
    response = api.post("/api/v1/context/alice", json={"aiwfe_context": aiwfe}, headers=alice)
    assert response.status_code == 200, response.text
    assert response.json()["aiwfe_context"] == aiwfe

    history = api.get("/api/v1/context/alice/history", headers=alice).json()
    assert [(c["field"], c["old_value"], c["new_value"]) for c in history] == [
        ("aiwfe_context", None, aiwfe)
    ]
    cleared = api.post("/api/v1/context/alice", json={"aiwfe_context": None}, headers=alice)
    assert cleared.status_code == 200 and cleared.json()["aiwfe_context"] is None
    latest = api.get("/api/v1/context/alice/history", headers=alice).json()[0]
    assert (latest["old_value"], latest["new_value"]) == (aiwfe, None)


def test_a_body_that_is_not_utf8_is_invalid_input_naming_the_body(
    api: TestClient, auth: TokenFactory
) -> None:
    # Was an undocumented bare 400 ("There was an error parsing the body").
    response = api.post(
        "/api/v1/assets",
        content=b'{"name": "\xff\xfe", "content": "x"}',
        headers={**auth("alice"), "Content-Type": "application/json"},
    )
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["field"] == "body"
    assert response.json()["errors"] == [
        {"field": "body", "message": "the body must be JSON encoded as UTF-8"}
    ]


def test_connect_rejects_an_api_key_that_cannot_travel_in_a_header(
    api: TestClient, auth: TokenFactory
) -> None:
    # Was a 500 (UnicodeEncodeError) when the key reached the upstream request's headers.
    response = api.post(
        "/api/v1/integrations/pieces/connect",
        json={"pieces_url": "http://127.0.0.1:9", "api_key": "key-\u0080-é"},
        headers=auth("alice"),
    )
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["field"] == "body.api_key"


def test_an_empty_user_id_in_a_pieces_body_is_invalid_input(
    api: TestClient, auth: TokenFactory
) -> None:
    # Was a 500 ("a secret binding needs a non-empty owner") when an admin sent user_id "".
    admin = auth("root", "admin")
    for url in ("/api/v1/integrations/pieces/connect", "/api/v1/integrations/pieces/disconnect"):
        response = api.post(url, json={"user_id": ""}, headers=admin)
        assert response.status_code == 422, (url, response.text)
        assert response.json()["errors"][0]["field"] == "body.user_id"


def test_exporting_a_user_with_a_non_latin_id_names_the_file_safely(
    api: TestClient, auth: TokenFactory
) -> None:
    # Was a 500: the user id went verbatim into the latin-1 Content-Disposition header.
    user_id = "ünïcødé-\U000d4f61"
    response = api.get(f"/api/v1/users/{user_id}/export", headers=auth(user_id))
    assert response.status_code == 200, response.text
    disposition = response.headers["content-disposition"]
    assert 'filename="pieces-integration-' in disposition
    assert "filename*=UTF-8''pieces-integration-%C3%BC" in disposition
