#!/usr/bin/env bash
# Install Enclave from this bundle without any network: bash install.sh [VENV]   (default ./enclave-venv)
# Needs CPython 3.11 with its venv module (Debian/Ubuntu: python3.11-venv). PYTHON=... picks another binary.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
venv="${1:-$PWD/enclave-venv}"
PYTHON="${PYTHON:-$(command -v python3.11 || command -v python3)}"
"$PYTHON" -c 'import sys; assert sys.version_info[:2] == (3, 11), sys.version' 2>/dev/null \
  || { echo "install.sh: $PYTHON is not CPython 3.11; set PYTHON=/path/to/python3.11" >&2; exit 1; }

echo "Checking the wheels against SHA256SUMS"
"$PYTHON" - "$here" <<'PY'
import hashlib, pathlib, sys
here = pathlib.Path(sys.argv[1])
for line in (here / "SHA256SUMS").read_text().splitlines():
    digest, name = line.split("  ", 1)
    path = here / "wheels" / name
    if not path.is_file() or hashlib.sha256(path.read_bytes()).hexdigest() != digest:
        sys.exit(f"install.sh: wheels/{name} is missing or damaged; copy the bundle again")
PY

# Only this bundle's wheels: no index, no site pip configuration, no find-links from the environment.
unset PIP_INDEX_URL PIP_EXTRA_INDEX_URL PIP_FIND_LINKS PIP_CONSTRAINT PIP_REQUIREMENT
export PIP_CONFIG_FILE=/dev/null PIP_NO_INDEX=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1
[ -x "$venv/bin/python" ] || "$PYTHON" -m venv "$venv"
pip=("$venv/bin/python" -m pip)
"${pip[@]}" install --quiet --no-index --find-links "$here/wheels" -r "$here/requirements.txt"
"${pip[@]}" install --quiet --no-index --find-links "$here/wheels" --no-deps -r "$here/requirements-nodeps.txt"

"$venv/bin/python" - "$here/requirements.txt" "$here/requirements-nodeps.txt" <<'PY'
import importlib.metadata as md, pathlib, sys
for spec in (line for path in sys.argv[1:] for line in pathlib.Path(path).read_text().split()):
    name, version = spec.split("==")
    if md.version(name) != version:
        sys.exit(f"install.sh: {name} {md.version(name)} installed, {version} expected")
PY
if [ -x "$venv/bin/enclave" ]; then HF_HUB_OFFLINE=1 "$venv/bin/enclave" --help >/dev/null; fi
start="HF_HUB_OFFLINE=1 $venv/bin/enclave serve"
if [ -d "$here/policies" ]; then  # policies are data, read at start-up: keep a copy beside the venv
  rm -rf "$venv/policies" && cp -r "$here/policies" "$venv/policies"
  start="ENCLAVE_COMPLIANCE__POLICIES_DIR=$venv/policies $start"
fi
echo "Enclave is installed in $venv (start it: $start)"
