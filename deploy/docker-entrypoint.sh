#!/bin/sh
# Enclave's container entrypoint: every ENCLAVE_<NAME>_FILE variable (a Docker or Kubernetes secret
# mounted as a file) becomes ENCLAVE_<NAME> with the file's content, then the command runs.
set -eu
for var in $(env | sed -n 's/^\(ENCLAVE_[A-Za-z0-9_]*\)_FILE=.*/\1/p'); do
  file="$(printenv "${var}_FILE")"
  if [ -n "$(printenv "$var" || true)" ]; then
    echo "enclave-entrypoint: both $var and ${var}_FILE are set; keep one" >&2
    exit 64
  fi
  if [ ! -r "$file" ]; then
    echo "enclave-entrypoint: ${var}_FILE names $file, which is missing or unreadable for uid $(id -u)" >&2
    exit 64
  fi
  value="$(cat "$file")"
  export "$var=$value"
  unset "${var}_FILE"
done
exec "$@"
