"""Identity: OIDC claim mapping and key rotation, API keys and the dev key, production start-up checks, the CLI."""

from __future__ import annotations

import json
import stat
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from ingest.config import OidcSettings, Settings
from ingest.store.db import create_schema, make_engine
from service.auth import api_keys
from service.auth.authenticator import build_authenticator
from service.auth.dev_key import announcement, dev_key
from service.auth.errors import AuthNotConfigured, TokenRejected, Unauthenticated
from service.auth.oidc import OidcVerifier
from tests.security.conftest import AUDIENCE, ISSUER, SigningKey, claims

KEYCLOAK = {
    "sub": "f1c2",
    "tenant": "acme",
    "groups": ["/legal", "/matter:A"],
    "realm_access": {"roles": ["enclave-reader", "offline_access"]},
}
ENTRA = {"oid": "5d2e-oid", "sub": "pairwise-sub", "tid": "72f988bf", "groups": ["a1b2"], "roles": ["Enclave.Admin"]}
OKTA = {"sub": "00u1", "tenant": "acme", "groups": ["Everyone", "enclave-contributors"]}


def _verifier(provider: str, **extra: Any) -> OidcVerifier:
    return OidcVerifier(
        OidcSettings(issuer=ISSUER, audience=AUDIENCE, jwks_file=Path("/nonexistent"), provider=provider, **extra)
    )


def test_claim_mapping_for_keycloak_entra_and_okta_shapes() -> None:
    keycloak = _verifier("keycloak", role_map={"enclave-reader": "reader"}).map_claims(KEYCLOAK)
    assert (keycloak.tenant, keycloak.subject, keycloak.groups, keycloak.roles) == (
        "acme",
        "f1c2",
        ("legal", "matter:A"),
        ("reader",),
    )
    entra = _verifier("entra", role_map={"Enclave.Admin": "admin"}).map_claims(ENTRA)
    assert (entra.tenant, entra.subject, entra.roles, entra.auth_method) == ("72f988bf", "5d2e-oid", ("admin",), "oidc")
    okta = _verifier("okta", role_map={"enclave-contributors": "contributor"}, static_tenant="hospital").map_claims(
        OKTA
    )
    assert (okta.tenant, okta.roles, okta.groups) == (
        "hospital",
        ("contributor",),
        ("Everyone", "enclave-contributors"),
    )
    custom = _verifier("generic", roles_claim="resource_access.enclave.roles").map_claims(
        {"sub": "x", "tenant": "t", "resource_access": {"enclave": {"roles": ["auditor", "root"]}}}
    )
    assert custom.roles == ("auditor",)  # unknown role names are dropped, never guessed
    with pytest.raises(TokenRejected):
        _verifier("generic").map_claims({"sub": "x"})  # no tenant: refused, not defaulted


class _JwksServer:
    """The provider's jwks_uri on a free loopback port; ``keys`` can be rotated while it runs."""

    def __init__(self, keys: list[SigningKey]) -> None:
        self.keys, self.fetches = keys, 0
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                owner.fetches += 1
                body = json.dumps({"keys": [k.jwk() for k in owner.keys]}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/certs"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def jwks_server() -> Iterator[_JwksServer]:
    server = _JwksServer([SigningKey("k1")])
    yield server
    server.server.shutdown()


def test_jwks_from_a_url_is_cached_and_refetched_when_keys_rotate(jwks_server: _JwksServer) -> None:
    verifier = OidcVerifier(
        OidcSettings(issuer=ISSUER, audience=AUDIENCE, jwks_url=jwks_server.url, jwks_refresh_min_s=0)
    )
    first = jwks_server.keys[0]
    for _ in range(3):
        assert verifier.principal(first.sign(claims())).subject == "alice"
    assert jwks_server.fetches == 1  # cached
    rotated = SigningKey("k2")
    jwks_server.keys = [rotated]
    assert verifier.principal(rotated.sign(claims(sub="bob"))).subject == "bob"
    assert jwks_server.fetches == 2  # an unknown kid made it look again
    with pytest.raises(TokenRejected):
        verifier.principal(first.sign(claims()))  # the retired key no longer verifies anything


def test_unknown_kids_cannot_make_enclave_hammer_the_provider(jwks_server: _JwksServer) -> None:
    verifier = OidcVerifier(
        OidcSettings(issuer=ISSUER, audience=AUDIENCE, jwks_url=jwks_server.url, jwks_refresh_min_s=60)
    )
    for n in range(5):
        with pytest.raises(TokenRejected):
            verifier.principal(SigningKey(f"forged-{n}").sign(claims()))
    assert jwks_server.fetches == 1


@pytest.mark.parametrize(
    "env",
    [
        {"mode": "production", "dev_api_key": "enc_x"},
        {"auth": {"oidc": {"issuer": ISSUER}}},
        {"auth": {"oidc": {"issuer": ISSUER, "audience": AUDIENCE}}},
        {"auth": {"oidc": {"jwks_url": "http://idp/certs"}}},
        {"auth": {"oidc": {"issuer": ISSUER, "audience": AUDIENCE, "jwks_url": "http://idp", "algorithms": ["HS256"]}}},
    ],
)
def test_contradictory_identity_settings_are_rejected_without_echoing_secrets(
    env: dict[str, Any], tmp_path: Path
) -> None:
    with pytest.raises(ValidationError) as failure:
        Settings(data_dir=tmp_path, **env)
    assert "enc_x" not in str(failure.value)


def test_production_refuses_to_start_without_an_identity_provider_or_key(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, mode="production")
    settings.ensure_dirs()
    engine = make_engine(settings.resolved_database_url)
    create_schema(engine)
    with pytest.raises(AuthNotConfigured, match="enclave keys create"):
        build_authenticator(settings, engine)
    key = api_keys.create_key(engine, "acme", ["admin"])
    authenticator = build_authenticator(settings, engine)
    assert authenticator.authenticate(f"Bearer {key.key}").roles == ("admin",)
    assert not (tmp_path / "auth").exists()  # no dev key in production
    api_keys.revoke_key(engine, key.record.id)
    with pytest.raises(AuthNotConfigured):
        build_authenticator(settings, engine)
    oidc = {"oidc": {"issuer": ISSUER, "audience": AUDIENCE, "jwks_url": "http://127.0.0.1:9/certs"}}
    assert build_authenticator(Settings(data_dir=tmp_path, mode="production", auth=oidc), engine)


def test_the_dev_key_is_generated_once_private_and_announced_once(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    created = dev_key(settings)
    assert created is not None and created.created and created.value.startswith("enc_")
    assert stat.S_IMODE(created.path.stat().st_mode) == 0o600  # type: ignore[union-attr]
    assert created.value in announcement(created)
    again = dev_key(settings)
    assert again is not None and not again.created and again.value == created.value
    assert again.value not in announcement(again) and str(again.path) in announcement(again)
    pinned = dev_key(Settings(data_dir=tmp_path, dev_api_key="enc_from-env"))
    assert pinned is not None and pinned.value == "enc_from-env" and "enc_from-env" not in announcement(pinned)


def test_dev_key_and_api_keys_authenticate_and_everything_else_is_a_plain_401(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, dev_api_key="enc_dev-key-for-this-test")
    settings.ensure_dirs()
    engine = make_engine(settings.resolved_database_url)
    create_schema(engine)
    authenticator = build_authenticator(settings, engine)
    dev = authenticator.authenticate("Bearer enc_dev-key-for-this-test")
    assert (dev.tenant, dev.auth_method, set(dev.roles)) == (
        "default",
        "dev_key",
        {"reader", "contributor", "auditor", "admin"},
    )
    key = api_keys.create_key(engine, "acme", ["reader"], groups=["legal"])
    assert authenticator.authenticate(f"bearer {key.key}").groups == ("legal",)
    for bad in (None, "", "Bearer", f"Basic {key.key}", f"Bearer {key.key}x", "Bearer enc_dev-key-for-this-tes"):
        with pytest.raises(Unauthenticated):
            authenticator.authenticate(bad)


def test_keys_cli_prints_only_the_key_on_stdout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from ingest.config import get_settings
    from service.cli import app

    monkeypatch.setenv("ENCLAVE_DATA_DIR", str(tmp_path / "data"))
    get_settings.cache_clear()
    runner = CliRunner()
    try:
        created = runner.invoke(
            app,
            [
                "keys",
                "create",
                "--tenant",
                "acme",
                "--roles",
                "reader,contributor",
                "--groups",
                "g1,g2",
                "--expires-days",
                "30",
            ],
        )
        assert created.exit_code == 0, created.output
        key = created.stdout.strip()
        assert key.startswith("enc_") and created.stdout == key + "\n"
        record = api_keys.find_active(make_engine(get_settings().resolved_database_url), key)
        assert record is not None and record.roles == ["contributor", "reader"] and record.groups == ["g1", "g2"]
        listed = runner.invoke(app, ["keys", "list"], env={"COLUMNS": "250"})
        assert record.id in listed.stdout and key not in listed.stdout
        assert runner.invoke(app, ["keys", "revoke", record.id]).exit_code == 0
        assert api_keys.find_active(make_engine(get_settings().resolved_database_url), key) is None
        bad = runner.invoke(app, ["keys", "create", "--roles", "root"])
        assert bad.exit_code == 2 and bad.stdout == "" and "reader, contributor" in bad.stderr
    finally:
        get_settings.cache_clear()


def test_policy_check_cli_reports_file_and_line(tmp_path: Path) -> None:
    from service.cli import app

    runner = CliRunner()
    assert runner.invoke(app, ["policy", "check"]).exit_code == 0
    (tmp_path / "access.rego").write_text("package enclave.access\n\nimport rego.v1\n\ndecision := {\n")
    failed = runner.invoke(app, ["policy", "check", str(tmp_path)])
    assert failed.exit_code == 1 and "access.rego:" in failed.stderr


def test_an_expired_key_stops_working(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    create_schema(engine)
    created = api_keys.create_key(engine, "acme", ["reader"], expires_days=1 / 86400 / 10)  # 0.1 s
    assert api_keys.find_active(engine, created.key) is not None
    time.sleep(0.2)
    assert api_keys.find_active(engine, created.key) is None
