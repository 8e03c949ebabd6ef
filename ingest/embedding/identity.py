"""One embedder per index: the site records which model made its dense vectors and refuses any other.

Vectors of two embedders (PyTorch MiniLM and its int8 ONNX export, say) are close but not the same
space; mixed in one index, a query would rank one kind of chunk above the other for no reason a
user could see. The record is the ``embedder`` site setting in the relational store, which every
process and replica reads at start. An index written before the record existed was made by the only
embedder there was then, the PyTorch MiniLM.
"""

from __future__ import annotations

import json

from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import select

from ingest.embedding.port import DenseEmbedder
from ingest.embedding.sentence_transformers_embedder import MODEL_NAME
from ingest.errors import ConfigurationError
from ingest.store.db import session_scope
from ingest.store.models import Chunk, SiteSetting, utcnow

KEY = "embedder"
BACKENDS = {MODEL_NAME: "torch", f"{MODEL_NAME}+onnx-int8": "onnx (int8)", f"{MODEL_NAME}+onnx-fp32": "onnx (fp32)"}


class EmbedderMismatch(ConfigurationError):
    """The configured embedder is not the one that made the index's vectors."""

    code = "embedder_mismatch"


def recorded_embedder(engine: Engine) -> dict[str, object] | None:
    """The embedder recorded for this site, or None before the first start of this build."""
    with session_scope(engine) as session:
        row = session.get(SiteSetting, KEY)
        return json.loads(row.value_json) if row is not None else None


def record_embedder(engine: Engine, embedder: DenseEmbedder) -> None:
    """Record ``embedder`` as the one that made every vector in the index (after a rebuild)."""
    value = json.dumps({"model": embedder.model_name, "dim": embedder.dim}, sort_keys=True)
    with session_scope(engine) as session:
        row = session.get(SiteSetting, KEY)
        if row is None:
            session.add(SiteSetting(key=KEY, value_json=value))
        else:
            row.value_json, row.updated_at = value, utcnow()
            session.add(row)


def check_embedder(engine: Engine, embedder: DenseEmbedder) -> None:
    """Record the embedder on a site's first start; afterwards refuse a different one.

    :raises EmbedderMismatch: the index holds vectors of another embedder.
    """
    current = {"model": embedder.model_name, "dim": embedder.dim}
    recorded = recorded_embedder(engine)
    if recorded is None:
        with session_scope(engine) as session:
            indexed = session.exec(select(Chunk.id).limit(1)).first() is not None
        recorded = {"model": MODEL_NAME, "dim": 384} if indexed else current
        try:
            with session_scope(engine) as session:
                session.add(SiteSetting(key=KEY, value_json=json.dumps(recorded, sort_keys=True)))
        except IntegrityError:  # another process recorded it first: hold to what it recorded
            recorded = recorded_embedder(engine) or recorded
    if recorded.get("model") != current["model"] or recorded.get("dim") != current["dim"]:
        was, now = str(recorded.get("model")), str(current["model"])
        raise EmbedderMismatch(
            f"this site's index holds vectors made by {was} (ENCLAVE_EMBEDDER__BACKEND={BACKENDS.get(was, was)}), "
            f"but the configured embedder is {now}: vectors of two embedders cannot be mixed in one index. Set "
            "ENCLAVE_EMBEDDER__BACKEND (and ENCLAVE_EMBEDDER__ONNX_PRECISION) back, or run `enclave index "
            "rebuild` with the new setting to re-embed every chunk"
        )
