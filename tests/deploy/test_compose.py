"""The single-host deployment: compose file (checked against the Compose specification), image, entrypoint.

No Docker engine runs here, so the compose file is parsed with `compose-spec` (the specification's
typed model: unknown keys and wrong types are errors) after Compose-style variable interpolation, and
the Dockerfile with `dockerfile-parse`; then the properties an operator relies on are asserted.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

compose_spec = pytest.importorskip("compose_spec")
dockerfile_parse = pytest.importorskip("dockerfile_parse")

from tests.conftest import REPO  # noqa: E402

DEPLOY = REPO / "deploy"
BACKENDS = ("qdrant", "postgres", "vllm")
ENCLAVE = ("enclave", "worker")


def interpolate(text: str) -> str:
    """Compose's `${VAR:-default}` with an empty environment; `$$` is a literal dollar."""
    text = text.replace("$$", "\0")
    text = re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?-([^}]*))?\}", lambda m: m.group(2) or "", text)
    return text.replace("\0", "$")


def parse(text: str) -> dict[str, Any]:
    """YAML (anchors and merge keys resolved) validated by the Compose specification model."""
    spec = compose_spec.PyCompose.from_json(json.dumps(yaml.safe_load(interpolate(text))))
    return dict(spec.to_dict())


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return parse((DEPLOY / "compose.yaml").read_text())


def test_compose_file_follows_the_specification_and_rejects_typos() -> None:
    text = (DEPLOY / "compose.yaml").read_text()
    parse(text)
    with pytest.raises(ValueError, match="healthchek"):
        parse(
            text.replace(
                '    healthcheck:\n      test: ["CMD-SHELL", "pg_isready',
                '    healthchek:\n      test: ["CMD-SHELL", "pg_isready',
            )
        )
    with pytest.raises(ValueError):
        parse(text.replace("capabilities: [gpu]", "capabilities: gpu"))


def test_every_service_is_there_with_a_healthcheck(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert set(services) == {*ENCLAVE, *BACKENDS}
    for name, service in services.items():
        check = service.get("healthcheck", {})
        assert check.get("test") and not check.get("disable"), name
    assert "/healthz" in " ".join(services["enclave"]["healthcheck"]["test"])
    assert services["enclave"]["command"] == ["enclave", "serve"] and services["worker"]["command"] == [
        "enclave",
        "worker",
    ]
    assert services["worker"]["depends_on"]["postgres"]["condition"] == "service_healthy"


def test_only_enclave_publishes_a_port_and_backends_sit_on_an_internal_network(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert [name for name, s in services.items() if s.get("ports")] == ["enclave"]
    assert compose["networks"]["backend"]["internal"] is True
    for name in BACKENDS:
        assert list(services[name]["networks"]) == ["backend"], name


def test_vllm_reserves_a_gpu(compose: dict[str, Any]) -> None:
    devices = compose["services"]["vllm"]["deploy"]["resources"]["reservations"]["devices"]
    assert devices == [{"driver": "nvidia", "count": 1, "capabilities": ["gpu"]}]


def test_images_are_pinned(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        repository, _, tag = service["image"].rpartition(":")
        assert repository and tag not in ("", "latest") and re.search(r"\d", tag), (name, service["image"])


def test_secrets_are_files_never_inline_values(compose: dict[str, Any]) -> None:
    declared = compose["secrets"]
    assert all(set(spec) == {"file"} and spec["file"].startswith("./secrets/") for spec in declared.values())
    for name, service in compose["services"].items():
        for key, value in (service.get("environment") or {}).items():
            if re.search(r"PASSWORD|API_KEY|SECRET|TOKEN|DATABASE_URL", key):
                assert key.endswith("_FILE") and str(value).startswith("/run/secrets/"), (name, key)
                assert Path(value).name in [s if isinstance(s, str) else s["source"] for s in service["secrets"]], (
                    name,
                    key,
                )
    raw = (DEPLOY / "compose.yaml").read_text()
    assert "postgresql://" not in raw
    assert "secrets/" in (DEPLOY / ".gitignore").read_text()


def test_enclave_containers_are_locked_down(compose: dict[str, Any]) -> None:
    for name in ENCLAVE:
        service = compose["services"][name]
        assert service["read_only"] is True and service["cap_drop"] == ["ALL"], name
        assert "no-new-privileges:true" in service["security_opt"], name
        assert not service["user"].startswith("0") and service["user"].split(":")[0] != "root", name
        assert any(
            isinstance(v, dict) and v["type"] == "tmpfs" and v["target"] == "/tmp" for v in service["volumes"]
        ), name


def test_image_runs_as_non_root_and_checks_healthz() -> None:
    parser = dockerfile_parse.DockerfileParser(path=str(DEPLOY / "Dockerfile"))
    final = [
        i
        for i in parser.structure
        if i["startline"] >= max(s["startline"] for s in parser.structure if s["instruction"] == "FROM")
    ]
    instructions = {i["instruction"]: i["value"] for i in final}
    assert instructions["USER"].split(":")[0] not in ("0", "root")
    assert "/healthz" in instructions["HEALTHCHECK"]
    assert json.loads(instructions["ENTRYPOINT"]) == ["enclave-entrypoint"]
    assert "install.sh" in instructions["RUN"] and "bundle.sh" in parser.content
    base = re.search(r"ARG PYTHON_IMAGE=(\S+)", parser.content)
    assert base and re.fullmatch(r"python:3\.11\.\d+-slim-\w+", base.group(1))
    ignored = (REPO / ".dockerignore").read_text().split()
    assert {".venv", ".git", "deploy/secrets"} <= set(ignored)


def _entrypoint(env: dict[str, str], *command: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("ENCLAVE_")}
    return subprocess.run(
        ["sh", str(DEPLOY / "docker-entrypoint.sh"), *command],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_entrypoint_turns_secret_files_into_settings(tmp_path: Path) -> None:
    url, key = tmp_path / "url", tmp_path / "key"
    url.write_text("postgresql://enclave:s3cr%t@db:5432/enclave\n")
    key.write_text("k-123")
    result = _entrypoint({"ENCLAVE_DATABASE_URL_FILE": str(url), "ENCLAVE_GENERATOR__API_KEY_FILE": str(key)}, "env")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "ENCLAVE_DATABASE_URL=postgresql://enclave:s3cr%t@db:5432/enclave" in lines
    assert "ENCLAVE_GENERATOR__API_KEY=k-123" in lines
    assert not any(line.startswith("ENCLAVE_") and "_FILE=" in line for line in lines)


def test_entrypoint_stops_on_a_missing_secret_or_a_double_definition(tmp_path: Path) -> None:
    missing = _entrypoint({"ENCLAVE_DATABASE_URL_FILE": str(tmp_path / "absent")}, "true")
    assert missing.returncode == 64 and "missing or unreadable" in missing.stderr
    (tmp_path / "url").write_text("x")
    both = _entrypoint({"ENCLAVE_DATABASE_URL_FILE": str(tmp_path / "url"), "ENCLAVE_DATABASE_URL": "y"}, "true")
    assert both.returncode == 64 and "keep one" in both.stderr


def test_make_secrets_writes_consistent_credentials_once(tmp_path: Path) -> None:
    script = tmp_path / "deploy" / "make-secrets.sh"
    script.parent.mkdir()
    script.write_bytes((DEPLOY / "make-secrets.sh").read_bytes())
    for _ in range(2):
        subprocess.run(["bash", str(script)], check=True, capture_output=True, timeout=30)
    secrets = script.parent / "secrets"
    password = (secrets / "postgres_password").read_text().strip()
    assert len(password) >= 32 and (secrets / "enclave_database_url").read_text().strip().endswith(
        f":{password}@postgres:5432/enclave"
    )
    assert oct(secrets.stat().st_mode & 0o777) == "0o700"
