"""The Helm chart: lint, install offline (helm-python-sdk), strict schema validation, security settings.

No cluster and no network: the chart is rendered by Helm's own engine through ``libhelm_c`` and every
manifest is checked against the Kubernetes 1.35 OpenAPI schemas that kubernetes-validate ships,
in strict mode (unknown fields are errors). Installs are Helm's client-side dry run, which performs
the same checks as a real install (dependencies present in charts/, kubeVersion) without a cluster.
"""

from __future__ import annotations

import copy
import shutil
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

helm = pytest.importorskip("helm_python")
kv = pytest.importorskip("kubernetes_validate")

from tests.conftest import REPO  # noqa: E402

CHART = REPO / "helm" / "enclave"
STACK = REPO / "helm" / "enclave-stack"
KUBE_VERSION = "1.35.0"
PRODUCTION: dict[str, Any] = yaml.safe_load((CHART / "values-production.yaml").read_text())
# Qdrant and PostgreSQL installed in the same release (what helm/enclave-stack sets for this chart).
IN_RELEASE: dict[str, Any] = {
    "qdrant": {"enabled": True},
    "postgresql": {"enabled": True},
    "networkPolicy": {"egress": {"enabled": True}},
}
VARIANTS = {"default": None, "production": PRODUCTION, "in-release": IN_RELEASE}
# Client-side dry runs read no cluster; this one could not be reached anyway (port 1 on loopback).
UNREACHABLE_KUBECONFIG = """apiVersion: v1
kind: Config
clusters: [{name: none, cluster: {server: "https://127.0.0.1:1"}}]
contexts: [{name: none, context: {cluster: none, user: none}}]
users: [{name: none, user: {token: unused}}]
current-context: none
"""

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


def lint_findings(chart: Path, values: dict[str, Any] | None) -> list[str]:
    """Lint messages of severity warning (2) or error (3); the chart must lint at all."""
    report = helm.lint(str(chart), values, kube_version=f"v{KUBE_VERSION}")
    assert report["total_charts_linted"] == 1 and not report["errors"], report
    return [m["error"] for m in report["messages"] if m["severity"] >= 2]


def install_offline(chart: Path, values: dict[str, Any] | None) -> dict[str, Any]:
    with helm.Config(kubeconfig_content=UNREACHABLE_KUBECONFIG, namespace="enclave", storage_driver="memory") as cfg:
        return dict(cfg.install(str(chart), "rel", values, dry_run="client", namespace="enclave"))


def manifests(release: dict[str, Any]) -> list[Manifest]:
    return [doc for doc in yaml.safe_load_all(release["manifest"]) if doc]


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_helm_lint_reports_no_warning_and_no_error(variant: str) -> None:
    assert lint_findings(CHART, VARIANTS[variant]) == []


def test_the_chart_declares_no_dependency_an_air_gapped_site_would_have_to_fetch() -> None:
    assert helm.dependency_list(str(CHART)) == []


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_every_variant_installs_with_no_network(variant: str) -> None:
    release = install_offline(CHART, VARIANTS[variant])
    docs = manifests(release)
    assert release["chart_name"] == "enclave" and "rel-enclave" in release["notes"]
    assert sorted(d["kind"] for d in docs) == sorted(d["kind"] for d in render(variant))
    for doc in docs:
        kv.validate(doc, KUBE_VERSION, strict=True)


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


def test_a_metrics_token_from_a_secret_guards_metrics_on_the_api_only() -> None:
    values = {"api": {"metrics": {"tokenSecret": {"name": "enclave-metrics"}}}}
    with helm.Chart.load(str(CHART)) as chart:
        rendered = chart.render(values, name="rel", namespace="enclave", is_install=True)
    docs = [d for name, text in rendered.items() if name.endswith(".yaml") for d in yaml.safe_load_all(text) if d]
    for doc in docs:
        kv.validate(doc, KUBE_VERSION, strict=True)
    assert lint_findings(CHART, values) == []
    deployments = of_kind(docs, "Deployment")
    api = deployments["rel-enclave-api"]["spec"]["template"]
    token = next(e for e in api["spec"]["containers"][0]["env"] if e["name"] == "ENCLAVE_OBSERVABILITY__METRICS_TOKEN")
    assert token["valueFrom"]["secretKeyRef"] == {"name": "enclave-metrics", "key": "metrics-token"}
    assert not any(k.startswith("prometheus.io/") for k in api["metadata"]["annotations"])  # they carry no token
    worker = deployments["rel-enclave-worker"]["spec"]["template"]["spec"]["containers"][0]
    assert all(e["name"] != "ENCLAVE_OBSERVABILITY__METRICS_TOKEN" for e in worker.get("env", []))
    unguarded = of_kind(render("default"), "Deployment")["rel-enclave-api"]["spec"]["template"]
    assert unguarded["metadata"]["annotations"]["prometheus.io/path"] == "/metrics"
    assert all(
        e["name"] != "ENCLAVE_OBSERVABILITY__METRICS_TOKEN" for e in unguarded["spec"]["containers"][0].get("env", [])
    )


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
    docs = render("in-release")
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


def test_in_release_postgresql_password_reaches_the_database_url_without_being_written_down() -> None:
    api = of_kind(render("in-release"), "Deployment")["rel-enclave-api"]
    container = api["spec"]["template"]["spec"]["containers"][0]
    names = [e["name"] for e in container["env"]]
    assert names.index("ENCLAVE_POSTGRES_PASSWORD") < names.index(
        "ENCLAVE_DATABASE_URL"
    )  # $(VAR) needs it defined first
    password = container["env"][names.index("ENCLAVE_POSTGRES_PASSWORD")]["valueFrom"]["secretKeyRef"]
    assert password == {"name": "enclave-postgresql", "key": "password"}
    url = container["env"][names.index("ENCLAVE_DATABASE_URL")]["value"]
    assert url == "postgresql://enclave:$(ENCLAVE_POSTGRES_PASSWORD)@rel-postgresql:5432/enclave"
    config = of_kind(render("in-release"), "ConfigMap")["rel-enclave"]["data"]
    assert config["ENCLAVE_INDEX__URL"] == "http://rel-qdrant:6333"


# The umbrella chart helm/enclave-stack. Its Qdrant and PostgreSQL charts come from their repositories,
# which cannot be reached here, so the next tests assemble charts/ the way `helm dependency build` does:
# helm/enclave packaged as it is, and in place of the upstream charts two stand-ins with the same names and
# versions in the declared ranges that render the values they receive into a ConfigMap. What they check is
# the umbrella's own part: dependencies satisfied, values routed to each chart, contradictions refused.
STAND_IN_VERSIONS = {"qdrant": "1.13.0", "postgresql": "16.0.0"}
STAND_IN_TEMPLATE = """apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Release.Name }}-%s-values
data:
  values.json: {{ toJson .Values | quote }}
"""


def _stand_in(sources: Path, name: str) -> Path:
    (sources / name / "templates").mkdir(parents=True)
    chart = {"apiVersion": "v2", "name": name, "version": STAND_IN_VERSIONS[name], "type": "application"}
    (sources / name / "Chart.yaml").write_text(yaml.safe_dump(chart))
    (sources / name / "values.yaml").write_text("{}\n")
    (sources / name / "templates" / "values.yaml").write_text(STAND_IN_TEMPLATE % name)
    return sources / name


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """helm/enclave-stack with charts/ as `helm dependency build` leaves it: one archive per dependency."""
    work = tmp_path_factory.mktemp("stack")
    built = work / "enclave-stack"
    shutil.copytree(STACK, built, ignore=shutil.ignore_patterns("charts"))
    (built / "charts").mkdir()
    for source in (CHART, *(_stand_in(work, name) for name in STAND_IN_VERSIONS)):
        helm.package(str(source), destination=str(built / "charts"))
    return built


def test_the_umbrella_declares_helm_enclave_and_the_upstream_backend_charts() -> None:
    declared = {d["name"]: d for d in helm.dependency_list(str(STACK))}
    assert declared["enclave"]["repository"] == "file://../enclave"
    assert declared["enclave"]["version"] == yaml.safe_load((CHART / "Chart.yaml").read_text())["version"]
    assert declared["qdrant"]["repository"] == "https://qdrant.github.io/qdrant-helm"
    assert declared["postgresql"]["repository"] == "oci://registry-1.docker.io/bitnamicharts"


def test_the_umbrella_with_its_charts_vendored_lints_clean_and_installs_offline(stack: Path) -> None:
    assert {d["status"] for d in helm.dependency_list(str(stack))} == {"ok"}
    assert lint_findings(stack, None) == []
    docs = manifests(install_offline(stack, None))
    stand_ins = [d for d in docs if "values.json" in d.get("data", {})]
    received = {d["metadata"]["name"]: yaml.safe_load(d["data"]["values.json"]) for d in stand_ins}
    assert received["rel-qdrant-values"]["replicaCount"] == 3
    postgres = received["rel-postgresql-values"]
    assert postgres["auth"]["existingSecret"] == "enclave-postgresql"
    assert postgres["primary"]["networkPolicy"]["enabled"] is False
    enclave = [d for d in docs if d["metadata"]["name"].startswith("rel-enclave")]
    for doc in enclave:
        kv.validate(doc, KUBE_VERSION, strict=True)
    assert of_kind(enclave, "ConfigMap")["rel-enclave"]["data"]["ENCLAVE_INDEX__URL"] == "http://rel-qdrant:6333"
    assert {"rel-enclave-qdrant", "rel-enclave-postgresql"} <= set(of_kind(enclave, "NetworkPolicy"))


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"qdrant": {"enabled": False}}, "qdrant.enabled and enclave.qdrant.enabled must agree"),
        ({"enclave": {"postgresql": {"enabled": False}}}, "postgresql.enabled and enclave.postgresql.enabled"),
        ({"postgresql": {"auth": {"username": "other"}}}, "postgresql.auth.username and enclave.postgresql.auth"),
    ],
)
def test_the_umbrella_refuses_a_backend_switched_on_in_one_place_only(
    stack: Path, values: dict[str, Any], message: str
) -> None:
    with pytest.raises(helm.HelmError, match=message):
        install_offline(stack, values)


def test_the_umbrella_without_its_backend_charts_is_refused_naming_them(stack: Path, tmp_path: Path) -> None:
    """The failure the plain chart no longer has: what a site sees before `helm dependency build`."""
    bare = tmp_path / "enclave-stack"
    shutil.copytree(stack, bare)
    for name, version in STAND_IN_VERSIONS.items():
        (bare / "charts" / f"{name}-{version}.tgz").unlink()
    with pytest.raises(helm.HelmError, match="missing in charts/ directory: qdrant, postgresql"):
        install_offline(bare, None)
