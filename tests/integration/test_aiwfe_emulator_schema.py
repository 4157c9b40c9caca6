"""Schemathesis fuzzes the AIWFE emulator from docs/aiwfe-contract.yaml: every generated
request must get a response the document allows (status, content type, body schema)."""

from __future__ import annotations

import hypothesis
import pytest
import schemathesis

from pieces_integration.emulators.aiwfe.app import build_app
from pieces_integration.emulators.aiwfe.state import AIWFEState
from tests.aiwfe_contract import CONTRACT_PATH

state = AIWFEState()
state.seed_demo("demo-user")
schema = schemathesis.openapi.from_path(CONTRACT_PATH)
API_KEY = "fuzz-key"
schema.app = build_app(state, api_key=API_KEY)


def test_document_is_a_valid_openapi_31_document() -> None:
    raw = schema.raw_schema
    assert raw["openapi"] == "3.1.0"
    assert {"aiwfeEvent"} == set(raw["webhooks"])
    operations = [op.ok().label for op in schema.get_all_operations()]
    assert len(operations) == 13, operations


@schema.parametrize()
@hypothesis.settings(
    max_examples=10,
    deadline=None,
    suppress_health_check=list(hypothesis.HealthCheck),
    derandomize=True,
)
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_emulator_conforms_to_contract(case: schemathesis.Case) -> None:
    case.call_and_validate(headers={"Authorization": f"Bearer {API_KEY}"})
