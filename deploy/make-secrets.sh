#!/usr/bin/env bash
# Create deploy/secrets/ for compose.yaml (idempotent: existing secrets are kept):
# a random PostgreSQL password, a random vLLM API key, and the database URL that uses the password.
set -euo pipefail
cd "$(dirname "$0")"
umask 077
mkdir -p secrets
chmod 700 secrets   # other host users cannot reach the files ...
random() { python3 -c 'import secrets; print(secrets.token_urlsafe(32))'; }
[ -s secrets/postgres_password ] || random > secrets/postgres_password
[ -s secrets/vllm_api_key ] || random > secrets/vllm_api_key
printf 'postgresql://enclave:%s@postgres:5432/enclave\n' "$(cat secrets/postgres_password)" > secrets/enclave_database_url
chmod 644 secrets/*   # ... while the containers' non-root users can read their bind-mounted copies
echo "secrets are in $(pwd)/secrets (never commit them)"
