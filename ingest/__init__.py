"""Enclave's write path: parse → chunk → embed → index, plus the shared building blocks."""

import os

# OpenMP threads that wait at a barrier sleep instead of spinning. Torch's default (spin) turns a
# 12 ms query embedding into 250–500 ms when the cores are shared (the generator, the ingest worker,
# other requests, other processes): bench/profile_query.py and bench/query.py. It must be set before
# torch loads OpenMP, and every entry point imports this package first (spaCy also imports torch).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
