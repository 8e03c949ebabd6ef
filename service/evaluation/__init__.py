"""Retrieval evaluation: data sets, an isolated reusable index, metrics, and the ``enclave eval`` runner."""
