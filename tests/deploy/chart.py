"""Rendering the Helm chart offline and checking what it renders (tests/deploy/test_chart*.py).

Helm's own Go SDK renders and lints (`helm-python-sdk`: no helm binary, no cluster). Core
objects go through `kubernetes-validate` (strict: unknown fields are errors), Istio's through
the types generated from Istio's CRDs (`cloudcoil-models-istio`), which ignore unknown keys,
so `istio_unknown_fields` compares what was written with what the model kept.
"""

from __future__ import annotations

import copy
import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import helm_python as helm
import kubernetes_validate
import pydantic
import yaml
from cloudcoil.models.istio.networking import v1 as istio_networking
from cloudcoil.models.istio.security import v1 as istio_security

from tests.deploy.wheel_install import ROOT

CHART = ROOT / "deploy" / "helm" / "pieces-integration"
VALUES_FILES = ("values.yaml", "values-dev.yaml", "values-prod.yaml", "values-bridge.yaml")
KUBERNETES_VERSIONS = ("1.30.0", "1.33.0")
NAMESPACE = "aiwfe-integrations"
CHECKOV = ROOT / ".venv-checkov" / "bin" / "checkov"

Doc = dict[str, Any]

ISTIO_KINDS: dict[str, type[pydantic.BaseModel]] = {
    "VirtualService": istio_networking.VirtualService,
    "DestinationRule": istio_networking.DestinationRule,
    "PeerAuthentication": istio_security.PeerAuthentication,
    "AuthorizationPolicy": istio_security.AuthorizationPolicy,
}
# Custom resources that kubernetes-validate has no schema for, and who checks them here.
CUSTOM_KINDS = {*ISTIO_KINDS, "ServiceMonitor"}


def values_of(name: str) -> dict[str, Any]:
    loaded = yaml.safe_load((CHART / name).read_text()) or {}
    assert isinstance(loaded, dict)
    return loaded


def render(values: dict[str, Any] | None = None) -> list[Doc]:
    """The chart's objects for `values` layered over values.yaml, as `helm install` would."""
    chart = helm.Chart.load(CHART)
    manifests = chart.render(values or {}, name="pi", namespace=NAMESPACE, is_install=True)
    docs = []
    for path, text in sorted(manifests.items()):
        if path.endswith(".yaml"):
            docs += [doc for doc in yaml.safe_load_all(text) if doc]
    return docs


def lint(values: dict[str, Any], kube_version: str) -> list[str]:
    report = helm.lint(CHART, values, strict=True, kube_version=f"v{kube_version}")
    return [m["error"] for m in report["messages"] if m["severity"] >= 2] + report["errors"]


def kubernetes_errors(docs: list[Doc], version: str) -> list[str]:
    errors = []
    for doc in docs:
        if doc["kind"] in CUSTOM_KINDS:
            continue
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            where = "/".join(str(p) for p in exc.path)
            errors.append(f"{doc['kind']} {where}: {exc.message}")
    return errors


def _unknown(written: Any, kept: Any, path: str) -> list[str]:
    if isinstance(written, dict):
        if not isinstance(kept, dict):
            return [path or "/"]
        found = []
        for key, value in written.items():
            if key not in kept:
                found.append(f"{path}/{key}")
            else:
                found += _unknown(value, kept[key], f"{path}/{key}")
        return found
    if isinstance(written, list) and isinstance(kept, list):
        return [
            e
            for i, (w, k) in enumerate(zip(written, kept, strict=False))
            for e in _unknown(w, k, f"{path}/{i}")
        ]
    return []


def istio_errors(docs: list[Doc]) -> list[str]:
    """Type errors and unknown fields of every Istio object, by Istio's CRD types."""
    errors = []
    for doc in docs:
        model = ISTIO_KINDS.get(doc["kind"])
        if model is None:
            continue
        try:
            parsed = model.model_validate(doc)
        except pydantic.ValidationError as exc:
            errors.append(f"{doc['kind']}: {exc}")
            continue
        kept = parsed.model_dump(by_alias=True, exclude_unset=True, mode="json")
        errors += [f"{doc['kind']}: unknown field {p}" for p in _unknown(doc, kept, "")]
    return errors


def checkov_failures(
    sets: dict[str, list[Doc]], directory: Path, skips: dict[str, str]
) -> list[str]:
    """checkov's failed checks, as "<set> <check id> <resource>: <name>", over each set of
    rendered manifests written to `directory/<set>.yaml`; the documented skips are skipped."""
    for name, docs in sets.items():
        path = directory / f"{name}.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump_all(docs, sort_keys=False))
    command = [
        str(CHECKOV),
        "--quiet",
        "--compact",
        "--output",
        "json",
        "--framework",
        "kubernetes",
        "--skip-download",
        "-d",
        str(directory),
    ]
    if skips:
        command += ["--skip-check", ",".join(sorted(skips))]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=directory)
    if done.returncode not in (0, 1):
        raise RuntimeError(f"checkov failed to run: {done.stderr[-2000:]}")
    report = json.loads(done.stdout or "{}")
    reports = report if isinstance(report, list) else [report]
    found = []
    for one in reports:
        for result in one.get("results", {}).get("failed_checks", []):
            where = str(Path(result["file_path"].lstrip("/")).with_suffix(""))
            found.append(
                f"{where} {result['check_id']} {result['resource']}: {result['check_name']}"
            )
    return sorted(found)


def changed(docs: list[Doc], kind: str, change: Callable[[Doc], None]) -> list[Doc]:
    """A copy of `docs` with `change` applied to the first object of `kind`."""
    copied = copy.deepcopy(docs)
    change(next(d for d in copied if d["kind"] == kind))
    return copied


def container(doc: Doc) -> Doc:
    spec = doc["spec"]["template"]["spec"]
    first: Doc = spec["containers"][0]
    return first
