"""Enclave's HTTP service: API, retrieval, generation and the command line."""
