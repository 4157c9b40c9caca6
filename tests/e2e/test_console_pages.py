"""The console's pages over the test client: sign-in, every page's HTML, CSRF, the strict CSP,
and bad form input answered next to the field with nothing saved."""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from pieces_integration.bootstrap import Container
from pieces_integration.domain.model import AssetConflict, Role, new_id
from pieces_integration.entrypoints.console.session import CSRF_COOKIE, SESSION_COOKIE
from pieces_integration.entrypoints.console.web import templates
from pieces_integration.service_layer.local_admin import SignInCodes
from pieces_integration.service_layer.sync_progress import ProgressReport
from tests.e2e.conftest import TokenFactory, make_client
from tests.e2e.helpers import add_member, call, create, new_team

_users = itertools.count()


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    """One app for the module (starting one per test costs seconds); tests use fresh users."""
    # Module fixtures start before the per-test clean environment: name the data dir here.
    with make_client(data_dir=tmp_path_factory.mktemp("console-data")) as client:
        yield client


@pytest.fixture
def api(shared: TestClient) -> TestClient:
    shared.cookies.clear()
    return shared


@pytest.fixture
def container(shared: TestClient) -> Container:
    running: Container = shared.app.state.container  # type: ignore[attr-defined]
    return running


@pytest.fixture
def alice() -> str:
    return f"alice{next(_users)}"


PAGES = [
    "/console/status",
    "/console/setup",
    "/console/setup?step=connect",
    "/console/setup?step=sync",
    "/console/setup?step=aiwfe",
    "/console/setup?step=preferences",
    "/console/setup?step=done",
    "/console/assets",
    "/console/conflicts",
    "/console/suggestions",
    "/console/suggestions?keywords=python",
    "/console/feed",
    "/console/preferences",
    "/console/admin",
    "/console/bridges",
]


def csrf(api: TestClient) -> str:
    if CSRF_COOKIE not in api.cookies:
        api.get("/console/sign-in")
    return str(api.cookies[CSRF_COOKIE])


def sign_in(api: TestClient, auth: TokenFactory, user: str, role: str = "user") -> None:
    token = auth(user, role)["Authorization"].split(" ", 1)[1]
    response = api.post(
        "/console/sign-in",
        data={"credential": token, "csrf_token": csrf(api), "next": "/console/status"},
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    assert response.headers["location"] == "/console/status"


def post(api: TestClient, url: str, data: dict[str, Any] | None = None, **kw: Any) -> Any:
    return api.post(url, data={"csrf_token": csrf(api), **(data or {})}, **kw)


def test_root_redirects_to_the_console_and_the_console_to_sign_in(api: TestClient) -> None:
    assert api.get("/", follow_redirects=False).headers["location"] == "/console"
    response = api.get("/console", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"].startswith("/console/sign-in?next=")
    page = api.get("/console/sign-in")
    assert page.headers["content-type"].startswith("text/html")
    assert "<form" in page.text and 'name="csrf_token"' in page.text


def test_the_session_cookie_is_httponly_and_strict(
    api: TestClient, auth: TokenFactory, alice: str
) -> None:
    token = auth(alice)["Authorization"].split(" ", 1)[1]
    response = api.post(
        "/console/sign-in",
        data={"credential": token, "csrf_token": csrf(api)},
        follow_redirects=False,
    )
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(SESSION_COOKIE) and "HttpOnly" in cookie
    assert "SameSite=strict" in cookie or "samesite=strict" in cookie.lower()
    assert "Secure" not in cookie  # plain HTTP here; HTTPS adds it


def test_a_bad_credential_is_reported_next_to_the_field(api: TestClient) -> None:
    response = post(api, "/console/sign-in", {"credential": "nonsense"})
    assert response.status_code == 422
    assert 'id="credential-error"' in response.text and 'aria-invalid="true"' in response.text
    assert SESSION_COOKIE not in api.cookies


def test_a_form_without_the_csrf_token_is_refused(
    api: TestClient, auth: TokenFactory, alice: str
) -> None:
    sign_in(api, auth, alice)
    response = api.post("/console/preferences", data={"sync_frequency_seconds": "60"})
    assert response.status_code == 403 and "Form expired" in response.text
    view = api.get(f"/api/v1/users/{alice}/preferences", headers=auth(alice)).json()
    assert view["sync_frequency_seconds"] is None


@pytest.mark.parametrize("url", PAGES)
def test_every_page_renders_html_with_a_strict_csp(
    api: TestClient, auth: TokenFactory, url: str
) -> None:
    sign_in(api, auth, "root", Role.ADMIN)
    response = api.get(url)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/html")
    csp = response.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert "<script>" not in response.text and " style=" not in response.text
    assert re.search(r"<h1>[^<]+</h1>", response.text)


def test_admin_is_for_admins(api: TestClient, auth: TokenFactory, alice: str) -> None:
    sign_in(api, auth, alice)
    response = api.get("/console/admin")
    assert response.status_code == 403 and "Traceback" not in response.text
    assert response.headers["content-type"].startswith("text/html")


def test_the_printed_link_signs_a_browser_in(api: TestClient) -> None:
    codes = SignInCodes()
    code = codes.issue()
    api.app.state.signin_codes = codes  # type: ignore[attr-defined]
    try:
        browser = {"Accept": "text/html,application/xhtml+xml"}
        opened = api.get(f"/api/v1/auth/local-signin?code={code}", headers=browser)
        assert opened.status_code == 200 and opened.headers["content-type"].startswith("text/html")
        assert SESSION_COOKIE in api.cookies
        again = api.get(f"/console/sign-in/link?code={code}")  # one time only
        assert again.status_code == 401 and "<form" in again.text
    finally:
        api.app.state.signin_codes = None  # type: ignore[attr-defined]


def test_bad_preferences_are_reported_by_field_and_nothing_is_saved(
    api: TestClient, auth: TokenFactory, alice: str
) -> None:
    sign_in(api, auth, alice)
    for value, message in [("-5", "between"), ("soon", "whole number")]:
        response = post(
            api,
            "/console/preferences",
            {"sync_frequency_seconds": value, "context_sharing": "limited", "analytics": "on"},
        )
        assert response.status_code == 422
        assert 'id="sync_frequency_seconds-error"' in response.text and message in response.text
        assert f'value="{value}"' in response.text  # what was typed stays
    view = api.get(f"/api/v1/users/{alice}/preferences", headers=auth(alice)).json()
    assert view["sync_frequency_seconds"] is None
    assert view["privacy"]["context_sharing"] == "full"  # not half-saved


def test_good_preferences_are_saved_and_drive_the_schedule(
    api: TestClient, auth: TokenFactory, container: Container, alice: str
) -> None:
    sign_in(api, auth, alice)
    response = post(
        api,
        "/console/preferences",
        {
            "sync_frequency_seconds": "120",
            "context_sharing": "limited",
            "websocket_events": ["asset_created", "sync_completed"],
            "webhook_events": ["task_created"],
            "sharing_default": "private",
            "asset_sync": "on",
        },
        follow_redirects=False,
    )
    assert response.status_code == 303
    view = api.get(f"/api/v1/users/{alice}/preferences", headers=auth(alice)).json()
    assert view["sync_frequency_seconds"] == 120
    assert view["notifications"]["websocket_events"] == ["asset_created", "sync_completed"]
    assert view["privacy"] == {
        "asset_sync": True,
        "context_sharing": "limited",
        "analytics": False,
        "team_collaboration": False,  # an unticked box is a choice too
    }
    assert container.sync.scheduler.interval_for(alice) == 120
    assert "every 120 s" in api.get("/console/status").text


def test_assets_list_search_detail_edit_and_delete(
    api: TestClient, auth: TokenFactory, alice: str
) -> None:
    headers = auth(alice)
    asset = create(api, headers, name="retry helper", content="def retry():\n    pass\n",
                   language="python", tags=["net"])  # fmt: skip
    create(api, headers, name="css reset", content="* { margin: 0 }", language="css")
    sign_in(api, auth, alice)
    listing = api.get("/console/assets?language=python")
    assert "retry helper" in listing.text and "css reset" not in listing.text
    found = api.get("/console/assets/results?q=retry")
    assert "retry helper" in found.text
    detail = api.get(f"/console/assets/{asset['id']}")
    assert 'class="highlight"' in detail.text and '<span class="k">def</span>' in detail.text
    bad = post(api, f"/console/assets/{asset['id']}",
               {"name": "   ", "content": "x", "version": asset["version"]})  # fmt: skip
    assert bad.status_code == 422 and 'id="name-error"' in bad.text
    assert api.get(f"/api/v1/assets/{asset['id']}", headers=headers).json()["content"] != "x"
    good = post(api, f"/console/assets/{asset['id']}",
                {"name": "retry", "content": "pass", "tags": "net, util",
                 "version": asset["version"]}, follow_redirects=False)  # fmt: skip
    assert good.status_code == 303
    stored = api.get(f"/api/v1/assets/{asset['id']}", headers=headers).json()
    assert (stored["name"], stored["tags"]) == ("retry", ["net", "util"])
    gone = post(api, f"/console/assets/{asset['id']}/delete", follow_redirects=False)
    assert gone.status_code == 303
    assert api.get(f"/api/v1/assets/{asset['id']}", headers=headers).status_code == 404
    assert api.get("/console/assets/nope").status_code == 404


def _conflict(api: TestClient, container: Container, user_id: str, asset_id: str) -> str:
    conflict = AssetConflict(
        id=new_id(),
        user_id=user_id,
        asset_id=asset_id,
        side="pieces",
        base={"name": "n", "content": "base\n"},
        ours={"name": "n", "content": "ours\n"},
        theirs={"name": "n", "content": "theirs\n"},
        strategy="manual",
    )

    async def add() -> None:
        async with container.uow() as uow:
            await uow.conflicts.add(conflict)
            await uow.commit()

    call(api, add)
    return conflict.id


def test_a_conflict_shows_the_sides_and_a_diff_and_is_resolved(
    api: TestClient, auth: TokenFactory, container: Container, alice: str
) -> None:
    asset = create(api, auth(alice), name="n", content="ours\n")
    conflict_id = _conflict(api, container, alice, asset["id"])
    sign_in(api, auth, alice)
    page = api.get(f"/console/conflicts/{conflict_id}")
    assert "theirs" in page.text and 'class="d-add"' in page.text and "base" in page.text
    bad = post(api, f"/console/conflicts/{conflict_id}", {"resolution": "merged", "content": " "})
    assert bad.status_code == 422 and 'id="content-error"' in bad.text
    done = post(api, f"/console/conflicts/{conflict_id}",
                {"resolution": "merged", "content": "both\n"}, follow_redirects=False)  # fmt: skip
    assert done.status_code == 303
    assert api.get(f"/api/v1/assets/{asset['id']}", headers=auth(alice)).json()["content"] == (
        "both\n"
    )
    assert "Resolved with merged" in api.get(f"/console/conflicts/{conflict_id}?resolved=1").text


def test_feedback_buttons_feed_the_feedback_use_case(
    api: TestClient, auth: TokenFactory, alice: str
) -> None:
    asset = create(api, auth(alice), name="pool", content="pool = make_pool()")
    sign_in(api, auth, alice)
    url = f"/console/suggestions/asset:{asset['id']}/feedback"
    response = post(api, url, {"action": "accepted", "context": '{"keywords": ["pool"]}'})
    assert response.status_code == 200 and "recorded" in response.text
    bad = post(api, url, {"action": "loved"})
    assert bad.status_code == 422 and 'role="alert"' in bad.text
    unknown = post(api, "/console/suggestions/nope/feedback", {"action": "accepted"})
    assert unknown.status_code == 404 and "Traceback" not in unknown.text


def test_admin_creates_and_revokes_keys_with_inline_errors(
    api: TestClient, auth: TokenFactory
) -> None:
    sign_in(api, auth, "root", Role.ADMIN)
    bad = post(api, "/console/admin/keys", {"user_id": "", "role": "emperor", "name": ""})
    assert bad.status_code == 422
    assert all(f'id="{name}-error"' in bad.text for name in ("user_id", "role", "name"))
    made = post(api, "/console/admin/keys", {"user_id": "ci", "role": "service", "name": "ci"})
    token = re.search(r'<code id="new-key">([^<]+)</code>', made.text)
    assert token is not None
    assert api.get("/api/v1/assets", headers={"X-API-Key": token[1]}).status_code == 200


def test_the_feed_ticket_needs_the_session_and_csrf(
    api: TestClient, auth: TokenFactory, alice: str
) -> None:
    refused = api.post("/console/feed/ticket", follow_redirects=False)
    assert refused.status_code in (303, 403)  # no session, no CSRF cookie
    sign_in(api, auth, alice)
    assert api.post("/console/feed/ticket").status_code == 403
    ticket = api.post("/console/feed/ticket", headers={"X-CSRF-Token": csrf(api)})
    assert ticket.status_code == 200 and ticket.json()["ticket"]


def test_a_bridge_is_paired_with_a_one_time_code_and_revoked(
    api: TestClient, auth: TokenFactory, alice: str
) -> None:
    sign_in(api, auth, alice)
    blank = post(api, "/console/bridges", {"name": "  "})
    assert blank.status_code == 422 and 'id="name-error"' in blank.text
    made = post(api, "/console/bridges", {"name": "laptop"})
    code = re.search(r'<code id="pairing-code">([^<]+)</code>', made.text)
    assert code is not None and "bridge pair --server" in made.text
    paired = api.post(
        "/api/v1/integrations/pieces/bridges/pair",
        json={"code": code[1], "device_id": "console-test-device-1", "agent_version": "test"},
    )
    assert paired.status_code == 200, paired.text
    listed = api.get("/api/v1/integrations/pieces/bridges", headers=auth(alice)).json()["data"]
    assert [b["name"] for b in listed] == ["laptop"], listed
    (bridge,) = listed
    assert bridge["paired"] and "paired, not connected" in api.get("/console/bridges").text
    revoked = post(api, f"/console/bridges/{bridge['id']}/revoke", follow_redirects=False)
    assert revoked.status_code == 303
    assert api.get("/api/v1/integrations/pieces/bridges", headers=auth(alice)).json()["count"] == 0


def test_retry_without_a_connection_says_why_in_the_panel(
    api: TestClient, auth: TokenFactory, alice: str
) -> None:
    sign_in(api, auth, alice)
    response = api.post(
        "/console/status/retry", headers={"X-CSRF-Token": csrf(api), "HX-Request": "true"}
    )
    assert response.status_code == 200 and "<html" not in response.text
    assert 'id="pieces-h"' in response.text


def test_sign_out_ends_the_session(api: TestClient, auth: TokenFactory, alice: str) -> None:
    sign_in(api, auth, alice)
    out = post(api, "/console/sign-out", follow_redirects=False)
    assert out.status_code == 303 and out.headers["location"] == "/console/sign-in"
    assert api.get("/console/status", follow_redirects=False).status_code == 303


def test_the_progress_fragment_of_a_running_sync_shows_counts_rate_and_eta() -> None:
    report = ProgressReport("pull pieces", done=150, total=300, started=0.0, updated=2.0)
    html = templates.get_template("setup/_progress.html").render(
        running=True, report=report, last=None, library=150
    )
    assert 'max="300" value="150"' in html and "150 of 300 (50 %)" in html
    assert "75.0 per second" in html and "about 2 s left" in html
    assert 'hx-get="/console/setup/progress"' in html  # it keeps polling while running


def test_the_sharing_default_offers_the_teams_one_may_share_into(
    api: TestClient, auth: TokenFactory, alice: str
) -> None:
    owner = auth(alice)
    mine = new_team(api, owner, f"Core {alice}")["id"]
    other = new_team(api, auth(f"{alice}-boss"), f"Watched {alice}")["id"]
    add_member(api, auth(f"{alice}-boss"), other, alice, "viewer")
    sign_in(api, auth, alice)
    page = api.get("/console/preferences").text
    assert f'value="team:{mine}"' in page and f"Team Core {alice}" in page
    assert f"team:{other}" not in page  # a viewer does not share
    response = post(
        api,
        "/console/preferences",
        {"sharing_default": f"team:{mine}", "team_collaboration": "on", "asset_sync": "on"},
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    view = api.get(f"/api/v1/users/{alice}/preferences", headers=owner).json()
    assert view["sharing_default"] == f"team:{mine}"
    assert f'value="team:{mine}" selected' in api.get("/console/preferences").text
    refused = post(
        api,
        "/console/preferences",
        {"sharing_default": f"team:{other}", "team_collaboration": "on", "asset_sync": "on"},
    )
    assert refused.status_code == 422 and "may share into" in refused.text
    # The form's unticked team collaboration box is a choice too: no team default then.
    refused = post(api, "/console/preferences", {"sharing_default": f"team:{mine}"})
    assert refused.status_code == 422 and "team collaboration on" in refused.text
