"""What identity and access cost a request: each step of authentication and authorisation, timed alone.

Steps: the policy's entitlements and a route decision (regopy, compiled once), an API key lookup
(SHA-256 + one indexed SQLite select), an RS256 OIDC token (signature, claims), the dev key, and the
whole ``AccessControl.principal`` for a key and for a token. The baseline in the same run is a bare
indexed SQLite select, so the ratios say how many "database round trips" each step is worth.

    .venv/bin/python bench/auth_overhead.py [--n 2000]   # table + bench/results/auth_overhead.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import jwt  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import rsa  # noqa: E402
from sqlmodel import select  # noqa: E402

from bench.common import format_table, percentiles, ratio, say, write_json  # noqa: E402
from ingest.config import Settings  # noqa: E402
from ingest.store.db import create_schema, make_engine, session_scope  # noqa: E402
from ingest.store.models import ApiKey  # noqa: E402
from service.auth import api_keys  # noqa: E402
from service.auth.access import build_access  # noqa: E402

ISSUER, AUDIENCE = "https://idp.bench/realms/enclave", "enclave"


def timed(fn: Callable[[], Any], n: int) -> list[float]:
    fn()  # warm
    samples = []
    for _ in range(n):
        started = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def _jwks(root: Path) -> tuple[rsa.RSAPrivateKey, Path]:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(private.public_key()))
    path = root / "jwks.json"
    path.write_text(json.dumps({"keys": [{**jwk, "kid": "k1", "use": "sig", "alg": "RS256"}]}))
    return private, path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="enclave-auth-bench-"))
    private, jwks = _jwks(root)
    settings = Settings(
        data_dir=root / "data",
        dev_api_key="enc_bench-dev-key",
        auth={"oidc": {"issuer": ISSUER, "audience": AUDIENCE, "jwks_file": str(jwks)}},
    )
    settings.ensure_dirs()
    engine = make_engine(settings.resolved_database_url)
    create_schema(engine)
    for i in range(1000):  # a realistic key table
        api_keys.create_key(engine, f"tenant-{i % 20}", ["reader"], groups=[f"g{i % 7}"])
    key = api_keys.create_key(engine, "acme", ["reader", "contributor"], groups=["legal", "matter:A"]).key
    now = int(time.time())
    token = jwt.encode(
        {
            "iss": ISSUER,
            "aud": AUDIENCE,
            "sub": "alice",
            "tenant": "acme",
            "groups": ["legal"],
            "roles": ["reader"],
            "iat": now,
            "exp": now + 3600,
        },
        private,
        algorithm="RS256",
        headers={"kid": "k1"},
    )
    access = build_access(settings, engine)
    principal = access.principal(f"Bearer {key}")
    facts = principal.facts()
    resource = {"collection": "contracts", "classification": "internal", "acl": {"groups": ["legal"], "users": []}}

    def baseline() -> None:
        with session_scope(engine) as session:
            session.exec(select(ApiKey).where(ApiKey.key_hash == "0" * 64)).first()

    steps: dict[str, Callable[[], Any]] = {
        "sqlite indexed select (baseline)": baseline,
        "policy entitlements": lambda: access.policy.entitlements(facts),
        "policy decision (ingest)": lambda: access.policy.decide("ingest", facts, ["contributor"], resource),
        "dev key": lambda: access.authenticator.authenticate("Bearer enc_bench-dev-key"),
        "API key lookup": lambda: access.authenticator.authenticate(f"Bearer {key}"),
        "OIDC RS256 token": lambda: access.authenticator.authenticate(f"Bearer {token}"),
        "principal from API key (authn + entitlements)": lambda: access.principal(f"Bearer {key}"),
        "principal from token (authn + entitlements)": lambda: access.principal(f"Bearer {token}"),
    }
    results: dict[str, dict[str, float]] = {}
    for name, fn in steps.items():
        say(f"timing {name} ×{args.n}")
        results[name] = percentiles(timed(fn, args.n))
    base = results["sqlite indexed select (baseline)"]["p50"]
    rows = [(name, r["p50"], r["p95"], r["p99"], ratio(r["p50"], base)) for name, r in results.items()]
    print(format_table(["step", "p50 ms", "p95 ms", "p99 ms", "p50 / baseline"], rows))
    path = write_json("auth_overhead", {"n": args.n, "api_keys_in_table": 1001, "steps": results})
    say(f"wrote {path}")


if __name__ == "__main__":
    main()
