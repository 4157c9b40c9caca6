"""The Helm chart, checked offline (issue 14, items 2-3).

Every values file renders with Helm's Go SDK and lints strict (the chart's
values.schema.json makes unknown keys and relaxed security settings lint errors); every core
object is valid for Kubernetes 1.30 and 1.33 with unknown fields as errors; the Istio objects
are valid by Istio's own CRD types (DEVIATIONS 16: no `circuitBreaker`, one authorization
rule holding `from` and `to`); the ConfigMap's app.yaml is accepted by the service's
settings. Each check is also shown to fail on a planted misspelling or removed setting.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml

from pieces_integration.config import Settings
from tests.deploy.chart import (
    ISTIO_KINDS,
    KUBERNETES_VERSIONS,
    VALUES_FILES,
    Doc,
    changed,
    container,
    istio_errors,
    kubernetes_errors,
    lint,
    render,
    values_of,
)

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def rendered() -> dict[str, list[Doc]]:
    return {name: render(values_of(name)) for name in VALUES_FILES}


def _one(docs: list[Doc], kind: str) -> Doc:
    found = [d for d in docs if d["kind"] == kind]
    assert len(found) == 1, f"{kind}: {len(found)}"
    return found[0]


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("values_file", VALUES_FILES)
def test_every_values_file_lints_strict(values_file: str, version: str) -> None:
    assert lint(values_of(values_file), version) == []


@pytest.mark.parametrize(
    ("planted", "expected"),
    [
        ({"replicaCont": 2}, "replicaCont"),
        ({"securityContext": {"readOnlyRootFilesystem": False}}, "readOnlyRootFilesystem"),
        ({"securityContext": {"capabilities": {"drop": []}}}, "drop"),
        ({"resources": {"limits": {"memory": "1Gi"}}}, "memory"),
        ({"serviceAccount": {"automount": True}}, "automount"),
        ({"env": {"JWT_SECRET": "in-the-values-file"}}, "JWT_SECRET"),
        ({"existingSecret": ""}, "existingSecret"),
    ],
)
def test_lint_fails_on_a_misspelled_key_or_a_relaxed_setting(
    planted: dict[str, Any], expected: str
) -> None:
    errors = lint(planted, KUBERNETES_VERSIONS[0])
    assert any(expected in error for error in errors), errors


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("values_file", VALUES_FILES)
def test_every_core_object_is_valid_kubernetes(
    rendered: dict[str, list[Doc]], values_file: str, version: str
) -> None:
    assert kubernetes_errors(rendered[values_file], version) == []


def test_kubernetes_validation_rejects_misspelled_fields(rendered: dict[str, list[Doc]]) -> None:
    docs = rendered["values-prod.yaml"]

    def misspell_security(doc: Doc) -> None:
        security = container(doc)["securityContext"]
        security["readOnlyRootFilesystm"] = security.pop("readOnlyRootFilesystem")

    def misspell_probe(doc: Doc) -> None:
        container(doc)["readinessProbe"]["httpGet"]["paht"] = "/ready"

    def misspell_hpa(doc: Doc) -> None:
        doc["spec"]["minReplica"] = doc["spec"].pop("minReplicas")

    for kind, change in (
        ("Deployment", misspell_security),
        ("Deployment", misspell_probe),
        ("HorizontalPodAutoscaler", misspell_hpa),
    ):
        for version in KUBERNETES_VERSIONS:
            assert kubernetes_errors(changed(docs, kind, change), version), (kind, version)


def test_istio_objects_are_valid_by_istio_types(rendered: dict[str, list[Doc]]) -> None:
    for name in ("values-prod.yaml", "values-bridge.yaml"):
        kinds = {d["kind"] for d in rendered[name]}
        assert set(ISTIO_KINDS) <= kinds, name
        assert istio_errors(rendered[name]) == [], name
    assert not set(ISTIO_KINDS) & {d["kind"] for d in rendered["values.yaml"]}  # flag off


def test_istio_check_rejects_circuit_breaker_misspellings_and_bad_values(
    rendered: dict[str, list[Doc]],
) -> None:
    docs = rendered["values-prod.yaml"]

    def circuit_breaker(doc: Doc) -> None:  # the spec's sample (DEVIATIONS 16)
        doc["spec"]["trafficPolicy"]["circuitBreaker"] = {"consecutiveErrors": 5}

    def misspelled(doc: Doc) -> None:
        outlier = doc["spec"]["trafficPolicy"]["outlierDetection"]
        outlier["consecutive5xxError"] = outlier.pop("consecutive5xxErrors")

    def bad_mode(doc: Doc) -> None:
        doc["spec"]["mtls"]["mode"] = "STRICTLY"

    def retries_typo(doc: Doc) -> None:
        doc["spec"]["http"][1]["retries"]["perTryTimout"] = "10s"

    for kind, change, expected in (
        ("DestinationRule", circuit_breaker, "circuitBreaker"),
        ("DestinationRule", misspelled, "consecutive5xxError"),
        ("PeerAuthentication", bad_mode, "STRICT"),
        ("VirtualService", retries_typo, "perTryTimout"),
    ):
        errors = istio_errors(changed(docs, kind, change))
        assert any(expected in e for e in errors), (kind, errors)


def one_rule_with_from_and_to(policy: Doc) -> bool:
    """DEVIATIONS 16: separate `from` and `to` rules are ORed (any caller on those paths)."""
    rules = policy["spec"].get("rules", [])
    return (
        policy["spec"].get("action", "ALLOW") == "ALLOW"
        and all(r.get("from") and r.get("to") for r in rules)
        and len(rules) == 1
    )


def test_authorization_policy_has_one_rule_holding_from_and_to(
    rendered: dict[str, list[Doc]],
) -> None:
    policy = _one(rendered["values-prod.yaml"], "AuthorizationPolicy")
    assert one_rule_with_from_and_to(policy)
    source = policy["spec"]["rules"][0]["from"][0]["source"]
    assert source["namespaces"] and "*" not in source["namespaces"]
    split = changed(
        [policy],
        "AuthorizationPolicy",
        lambda d: d["spec"].update(
            rules=[{"from": d["spec"]["rules"][0]["from"]}, {"to": d["spec"]["rules"][0]["to"]}]
        ),
    )[0]
    assert not one_rule_with_from_and_to(split)  # the spec's sample form is caught
    assert _one(rendered["values-prod.yaml"], "PeerAuthentication")["spec"]["mtls"]["mode"] == (
        "STRICT"
    )


def test_virtual_service_retries_only_idempotent_routes_and_upgrades_websockets(
    rendered: dict[str, list[Doc]],
) -> None:
    service = _one(rendered["values-prod.yaml"], "VirtualService")
    routes = {r["name"]: r for r in service["spec"]["http"]}
    assert routes["websocket"]["timeout"] == "0s" and routes["websocket"]["retries"] == {
        "attempts": 0
    }
    assert {"exact": "/ws"} in [m["uri"] for m in routes["websocket"]["match"]]
    methods = routes["idempotent"]["match"][0]["method"]["regex"]
    assert all(re.match(methods, m) for m in ("GET", "HEAD"))
    assert not any(re.match(methods, m) for m in ("POST", "PUT", "PATCH", "DELETE"))
    assert routes["idempotent"]["retries"]["attempts"] > 0
    assert routes["writes"]["retries"] == {"attempts": 0} and "match" not in routes["writes"]
    rule = _one(rendered["values-prod.yaml"], "DestinationRule")["spec"]["trafficPolicy"]
    assert rule["outlierDetection"]["consecutive5xxErrors"] > 0 and "circuitBreaker" not in rule


@pytest.mark.parametrize("values_file", VALUES_FILES)
def test_the_app_yaml_of_the_config_map_is_accepted_by_the_service(
    rendered: dict[str, list[Doc]], values_file: str
) -> None:
    app = yaml.safe_load(_one(rendered[values_file], "ConfigMap")["data"]["app.yaml"])
    assert set(app) <= set(Settings.model_fields), set(app) - set(Settings.model_fields)
    settings = Settings(**app)
    assert settings.server.drain_seconds == values_of(values_file).get("drain", {}).get(
        "seconds", values_of("values.yaml")["drain"]["seconds"]
    )
    with pytest.raises(ValueError, match="rate_limt"):
        Settings(**{**app, "pieces": {**app["pieces"], "rate_limt": {}}})


@pytest.mark.parametrize("values_file", VALUES_FILES)
def test_the_deployment_keeps_the_budget_the_probes_and_the_drain(
    rendered: dict[str, list[Doc]], values_file: str
) -> None:
    docs = rendered[values_file]
    deployment = _one(docs, "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    main = container(deployment)
    limit = main["resources"]["limits"]["memory"]
    assert limit.endswith("Mi") and int(limit[:-2]) <= 512  # spec 11.2
    assert main["livenessProbe"]["httpGet"]["path"] == "/health"
    assert main["readinessProbe"]["httpGet"]["path"] == "/ready"
    assert main["startupProbe"]["httpGet"]["path"] == "/health"
    drain = {**values_of("values.yaml")["drain"], **values_of(values_file).get("drain", {})}
    assert pod["terminationGracePeriodSeconds"] >= sum(drain.values())
    assert pod["automountServiceAccountToken"] is False
    assert _one(docs, "ServiceAccount")["automountServiceAccountToken"] is False
    assert not [d for d in docs if d["kind"] in ("Secret", "Role", "RoleBinding")]
    env = main["env"]
    assert all("valueFrom" in e for e in env if e["name"] in ("DATABASE_URL", "JWT_SECRET"))
    job = _one(docs, "Job")
    assert job["metadata"]["annotations"]["helm.sh/hook"] == "pre-install,pre-upgrade"
    assert job["spec"]["template"]["spec"]["containers"][0]["args"] == ["migrate"]
    ports = {p["name"] for p in _one(docs, "Service")["spec"]["ports"]}
    assert ports == {"http", "http-websocket"}


def test_production_spreads_scales_and_limits_traffic(rendered: dict[str, list[Doc]]) -> None:
    docs = rendered["values-prod.yaml"]
    pod = _one(docs, "Deployment")["spec"]["template"]["spec"]
    assert {c["topologyKey"] for c in pod["topologySpreadConstraints"]} == {
        "kubernetes.io/hostname",
        "topology.kubernetes.io/zone",
    }
    hpa = _one(docs, "HorizontalPodAutoscaler")
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert {m["resource"]["name"] for m in hpa["spec"]["metrics"]} == {"cpu", "memory"}
    assert _one(docs, "PodDisruptionBudget")["spec"]["maxUnavailable"] == 1
    policy = _one(docs, "NetworkPolicy")["spec"]
    egress_ports = {p["port"] for rule in policy["egress"] for p in rule["ports"]}
    assert egress_ports == {53, 5432, 6379, 6333, 6334, 8080}
    assert all(rule.get("to") for rule in policy["egress"])  # never "anywhere"
    assert all(rule.get("from") for rule in policy["ingress"])
    assert _one(docs, "ServiceMonitor")["spec"]["endpoints"][0]["path"] == "/metrics"
