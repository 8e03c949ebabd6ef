"""The Helm chart: lint, render offline (helm-python-sdk), strict schema validation, security settings.

No cluster and no network: the chart is rendered by Helm's own engine through ``libhelm_c`` and every
manifest is checked against the Kubernetes 1.35 OpenAPI schemas that kubernetes-validate ships,
in strict mode (unknown fields are errors).
"""

from __future__ import annotations

import copy
from functools import cache
from typing import Any

import pytest
import yaml

helm = pytest.importorskip("helm_python")
kv = pytest.importorskip("kubernetes_validate")

from tests.conftest import REPO  # noqa: E402

CHART = REPO / "helm" / "enclave"
KUBE_VERSION = "1.35.0"
PRODUCTION: dict[str, Any] = yaml.safe_load((CHART / "values-production.yaml").read_text())
SUBCHARTS: dict[str, Any] = {
    "qdrant": {"enabled": True},
    "postgresql": {"enabled": True},
    "networkPolicy": {"egress": {"enabled": True}},
}
VARIANTS = {"default": None, "production": PRODUCTION, "subcharts": SUBCHARTS}
MISSING_DEPENDENCIES = "chart directory is missing these dependencies: qdrant,postgresql"

Manifest = dict[str, Any]


@cache
def _render(variant: str) -> tuple[Manifest, ...]:
    with helm.Chart.load(str(CHART)) as chart:
        rendered = chart.render(VARIANTS[variant], name="rel", namespace="enclave", is_install=True)
    docs = [doc for name, text in rendered.items() if name.endswith(".yaml") for doc in yaml.safe_load_all(text)]
    return tuple(doc for doc in docs if doc)


def render(variant: str) -> list[Manifest]:
    return copy.deepcopy(list(_render(variant)))


def of_kind(docs: list[Manifest], kind: str) -> dict[str, Manifest]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


@pytest.mark.parametrize("variant", ["default", "production"])
def test_helm_lint_reports_no_error_and_no_warning_but_the_unfetched_subcharts(variant: str) -> None:
    report = helm.lint(str(CHART), VARIANTS[variant], kube_version=f"v{KUBE_VERSION}")
    assert report["total_charts_linted"] == 1 and not report["errors"], report
    serious = [m["error"] for m in report["messages"] if m["severity"] >= 2]
    assert serious == [MISSING_DEPENDENCIES], serious


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_every_rendered_manifest_passes_strict_schema_validation(variant: str) -> None:
    docs = render(variant)
    for doc in docs:
        kv.validate(doc, KUBE_VERSION, strict=True)
    kinds = sorted(d["kind"] for d in docs)
    assert kinds.count("Deployment") == 3 and kinds.count("PodDisruptionBudget") == 2, kinds
    assert {"HorizontalPodAutoscaler", "NetworkPolicy", "Service", "ConfigMap", "ServiceAccount"} <= set(kinds)


def test_strict_validation_catches_a_misspelt_field() -> None:
    deployment = next(iter(of_kind(render("default"), "Deployment").values()))
    deployment["spec"]["template"]["spec"]["containers"][0]["securityContxt"] = {"privileged": True}
    with pytest.raises(kv.ValidationError):
        kv.validate(deployment, KUBE_VERSION, strict=True)


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_every_pod_and_container_is_locked_down(variant: str) -> None:
    deployments = of_kind(render(variant), "Deployment")
    assert set(deployments) == {"rel-enclave-api", "rel-enclave-worker", "rel-enclave-vllm"}
    for name, deployment in deployments.items():
        pod = deployment["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, name
        assert pod["automountServiceAccountToken"] is False, name
        tmp_volumes = {v["name"] for v in pod["volumes"] if "emptyDir" in v}
        for container in pod["containers"]:
            ctx = container["securityContext"]
            assert ctx["runAsNonRoot"] is True and ctx["readOnlyRootFilesystem"] is True, name
            assert ctx["allowPrivilegeEscalation"] is False and ctx["capabilities"]["drop"] == ["ALL"], name
            assert ctx["seccompProfile"] == {"type": "RuntimeDefault"}, name
            assert any(m["mountPath"] == "/tmp" and m["name"] in tmp_volumes for m in container["volumeMounts"]), name


def _selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    if not set(selector.get("matchLabels", {}).items()) <= set(labels.items()):
        return False
    for expr in selector.get("matchExpressions", []):
        assert expr["operator"] == "In", expr
        if labels.get(expr["key"]) not in expr["values"]:
            return False
    return True


@pytest.mark.parametrize("variant", ["default", "production"])
def test_api_probes_autoscaler_and_disruption_budget_target_the_api(variant: str) -> None:
    docs = render(variant)
    api = of_kind(docs, "Deployment")["rel-enclave-api"]
    container = api["spec"]["template"]["spec"]["containers"][0]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["args"] == ["enclave", "serve"]
    hpa = of_kind(docs, "HorizontalPodAutoscaler")["rel-enclave-api"]["spec"]
    assert hpa["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "rel-enclave-api"}
    assert 1 < hpa["minReplicas"] < hpa["maxReplicas"] and "replicas" not in api["spec"]
    pdb = of_kind(docs, "PodDisruptionBudget")["rel-enclave-api"]["spec"]
    assert _selects(pdb["selector"], api["spec"]["template"]["metadata"]["labels"]) and pdb["minAvailable"] >= 1
    worker = of_kind(docs, "Deployment")["rel-enclave-worker"]["spec"]["template"]["spec"]["containers"][0]
    assert worker["args"] == ["enclave", "worker"]


@pytest.mark.parametrize("variant", ["default", "production"])
def test_vllm_gets_a_gpu_and_reads_its_model_from_a_volume(variant: str) -> None:
    pod = of_kind(render(variant), "Deployment")["rel-enclave-vllm"]["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert container["resources"]["requests"]["nvidia.com/gpu"] == 1
    models = next(m for m in container["volumeMounts"] if m["mountPath"] == "/models")
    volume = next(v for v in pod["volumes"] if v["name"] == models["name"])
    assert models["readOnly"] is True and "persistentVolumeClaim" in volume
    assert container["args"][0].startswith("/models/")
    assert any(t.get("key") == "nvidia.com/gpu" for t in pod["tolerations"])


@pytest.mark.parametrize("variant", ["default", "production"])
def test_credentials_come_only_from_existing_secrets(variant: str) -> None:
    docs = render(variant)
    assert not of_kind(docs, "Secret")
    secret = (VARIANTS[variant] or {}).get("existingSecret", "enclave-secrets")
    for name in ("rel-enclave-api", "rel-enclave-worker"):
        container = of_kind(docs, "Deployment")[name]["spec"]["template"]["spec"]["containers"][0]
        assert {"secretRef": {"name": secret}} in container["envFrom"]
    vllm = of_kind(docs, "Deployment")["rel-enclave-vllm"]["spec"]["template"]["spec"]["containers"][0]
    key = next(e for e in vllm["env"] if e["name"] == "VLLM_API_KEY")
    assert key["valueFrom"]["secretKeyRef"]["name"] == secret
    config = of_kind(docs, "ConfigMap")["rel-enclave"]["data"]
    assert not any("PASSWORD" in k or "API_KEY" in k or "DATABASE_URL" in k for k in config)


def test_rendering_without_a_secret_name_fails_with_what_to_set() -> None:
    with helm.Chart.load(str(CHART)) as chart, pytest.raises(helm.HelmError, match="existingSecret"):
        chart.render({"existingSecret": ""}, name="rel", namespace="enclave")


def _labels(docs: list[Manifest], deployment: str) -> dict[str, str]:
    return dict(of_kind(docs, "Deployment")[deployment]["spec"]["template"]["metadata"]["labels"])


def _ingress_allowed(policies: list[Manifest], src: dict[str, str], dst: dict[str, str], port: int) -> bool:
    """Same-namespace ingress under NetworkPolicy semantics: isolated pods admit only what a rule allows."""
    selecting = [
        p["spec"] for p in policies if "Ingress" in p["spec"]["policyTypes"] and _selects(p["spec"]["podSelector"], dst)
    ]
    if not selecting:
        return True
    for spec in selecting:
        for rule in spec.get("ingress", []):
            ports = [p["port"] for p in rule.get("ports", [])]
            peers = rule.get("from")
            from_ok = not peers or any(
                "podSelector" in peer and "namespaceSelector" not in peer and _selects(peer["podSelector"], src)
                for peer in peers
            )
            if from_ok and (not ports or port in ports):
                return True
    return False


def test_network_policies_let_only_enclave_pods_reach_qdrant_postgresql_and_vllm() -> None:
    docs = render("subcharts")
    policies = list(of_kind(docs, "NetworkPolicy").values())
    api, worker, vllm = (_labels(docs, f"rel-enclave-{c}") for c in ("api", "worker", "vllm"))
    qdrant = {"app.kubernetes.io/name": "qdrant", "app.kubernetes.io/instance": "rel"}
    postgres = {"app.kubernetes.io/name": "postgresql", "app.kubernetes.io/instance": "rel"}
    intruder = {"app": "something-else-in-the-namespace"}
    for backend, port in ((qdrant, 6333), (postgres, 5432)):
        assert _ingress_allowed(policies, api, backend, port) and _ingress_allowed(policies, worker, backend, port)
        assert not _ingress_allowed(policies, intruder, backend, port)
        assert _ingress_allowed(policies, backend, backend, 6335)  # replication between its own pods
    assert _ingress_allowed(policies, api, vllm, 8000)
    assert not _ingress_allowed(policies, worker, vllm, 8000) and not _ingress_allowed(policies, intruder, vllm, 8000)
    assert not _ingress_allowed(policies, intruder, worker, 8000)
    assert _ingress_allowed(policies, intruder, api, 8000) and not _ingress_allowed(policies, intruder, api, 9000)


def test_production_egress_is_limited_to_dns_backends_and_listed_peers() -> None:
    egress = of_kind(render("production"), "NetworkPolicy")["rel-enclave-egress"]["spec"]
    assert egress["policyTypes"] == ["Egress"]
    assert _selects(egress["podSelector"], _labels(render("production"), "rel-enclave-api"))
    assert _selects(egress["podSelector"], _labels(render("production"), "rel-enclave-worker"))
    peers = [peer for rule in egress["egress"] for peer in rule["to"]]
    assert {"ipBlock": {"cidr": "10.40.0.0/24"}} in peers
    assert all(peer != {} for peer in peers)  # an empty peer would mean "anywhere"


def test_postgresql_subchart_password_reaches_the_database_url_without_being_written_down() -> None:
    container = of_kind(render("subcharts"), "Deployment")["rel-enclave-api"]["spec"]["template"]["spec"]["containers"][
        0
    ]
    names = [e["name"] for e in container["env"]]
    assert names.index("ENCLAVE_POSTGRES_PASSWORD") < names.index(
        "ENCLAVE_DATABASE_URL"
    )  # $(VAR) needs it defined first
    password = container["env"][names.index("ENCLAVE_POSTGRES_PASSWORD")]["valueFrom"]["secretKeyRef"]
    assert password == {"name": "enclave-postgresql", "key": "password"}
    url = container["env"][names.index("ENCLAVE_DATABASE_URL")]["value"]
    assert url == "postgresql://enclave:$(ENCLAVE_POSTGRES_PASSWORD)@rel-postgresql:5432/enclave"
    config = of_kind(render("subcharts"), "ConfigMap")["rel-enclave"]["data"]
    assert config["ENCLAVE_INDEX__URL"] == "http://rel-qdrant:6333"
