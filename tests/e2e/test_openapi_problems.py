"""Every API operation documents the problem responses the central error handler can give,
so a generated client knows them (and the fuzz test's conformance check holds)."""

from __future__ import annotations

from fastapi.testclient import TestClient

PROBLEM = "application/problem+json"


def test_every_api_operation_documents_its_problem_responses(api: TestClient) -> None:
    document = api.get("/openapi.json").json()
    checked = 0
    for path, item in document["paths"].items():
        if not path.startswith("/api/"):
            continue
        for method, operation in item.items():
            if method not in {"get", "post", "put", "patch", "delete"}:
                continue
            responses = operation["responses"]
            expected = {"401", "403", "404", "422", "429", "503"}
            if method != "get":
                expected |= {"409", "413"}
            missing = expected - set(responses)
            assert not missing, f"{method.upper()} {path} lacks {sorted(missing)}"
            assert PROBLEM in responses["503"]["content"], f"{method.upper()} {path}"
            checked += 1
    assert checked > 20
