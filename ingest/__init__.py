"""Enclave's write path: parse → chunk → embed → index, plus the shared building blocks."""
