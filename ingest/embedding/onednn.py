"""Linear layers on oneDNN's prepacked bf16 weights: what Inductor's weight freezing does for a CPU model, no compile.

``torch.compile`` of MiniLM with frozen weights replaces every ``addmm`` with oneDNN's linear on a weight
reordered once into the blocked layout its AMX kernels read (``mkldnn._reorder_linear_weight``, then
``mkldnn._linear_pointwise``), which a plain bf16 ``nn.Linear`` re-lays out on every call. Compiling
costs 17-19 s per process on this machine (the frozen graph is not served from Inductor's cache), more
than ``enclave ingest`` of a few contracts takes; packing the same weights in eager mode costs
milliseconds and gives most of it: 1.11-1.14x the bf16 forward pass (README "Performance").

These are the operators Inductor itself emits on CPU; torch is pinned (``scripts/install.sh``), and
:func:`packable` says whether this build has them.
"""

from __future__ import annotations

from typing import Any

import torch


def packable() -> bool:
    """Whether this torch build runs oneDNN linear layers on prepacked weights."""
    mkldnn = torch.ops.mkldnn
    return bool(
        torch.backends.mkldnn.is_available()  # type: ignore[no-untyped-call]
        and hasattr(mkldnn, "_reorder_linear_weight")
        and hasattr(mkldnn, "_linear_pointwise")
    )


class PackedLinear(torch.nn.Module):
    """``nn.Linear`` in bf16 on a weight reordered once for oneDNN (``rows``: the rows a call usually multiplies)."""

    def __init__(self, linear: torch.nn.Linear, rows: int) -> None:
        super().__init__()
        self.in_features, self.out_features = linear.in_features, linear.out_features
        with torch.no_grad():
            self.packed = torch.ops.mkldnn._reorder_linear_weight(linear.weight.detach(), rows)
            self.bias = None if linear.bias is None else linear.bias.detach()

    def forward(self, x: torch.Tensor) -> Any:
        y = torch.ops.mkldnn._linear_pointwise(x.reshape(-1, self.in_features), self.packed, self.bias, "none", [], "")
        return y.reshape(*x.shape[:-1], self.out_features)

    def gelu(self, rows: torch.Tensor) -> Any:
        """``gelu(self(rows))`` (the exact, erf form) for 2-d ``rows``, the activation applied by oneDNN to the
        product before it is stored: one pass over the output instead of two."""
        return torch.ops.mkldnn._linear_pointwise(rows, self.packed, self.bias, "gelu", [], "none")

    def plus(self, rows: torch.Tensor, residual: torch.Tensor) -> Any:
        """``self(rows) + residual`` for 2-d ``rows``, the sum taken by oneDNN before the product is stored."""
        return torch.ops.mkldnn._linear_pointwise.binary(rows, residual, self.packed, self.bias, "add")


def pack_linears(model: torch.nn.Module, rows: int) -> int:
    """Replace every bf16 ``nn.Linear`` of ``model`` (in place) by a :class:`PackedLinear`; how many were."""
    replaced = 0
    for module in list(model.modules()):
        for name, child in list(module.named_children()):
            if type(child) is torch.nn.Linear and child.weight.dtype == torch.bfloat16:
                setattr(module, name, PackedLinear(child, rows))
                replaced += 1
    return replaced


class FusedBertForward:
    """A BERT encoder's forward pass (MiniLM is one) on its :class:`PackedLinear` layers, with what eager mode
    runs as separate passes over memory fused into the products, as Inductor's CPU lowering does:

    - the feed-forward GELU and both residual additions are applied by oneDNN to each product before it is
      stored (:meth:`PackedLinear.gelu`, :meth:`PackedLinear.plus`);
    - attention is one ``scaled_dot_product_attention`` per layer on a padding mask of one row per text
      (``transformers`` expands it to a square mask per text, which the CPU kernel converts on every layer).

    The same weights and operations as ``BertModel`` in eval mode; only where a sum is rounded to bf16 differs,
    so the last hidden state equals it to bf16 rounding (``tests/ingest/test_embedder_precision.py``).
    1.04-1.06x the pass it replaces on real chunks in batches of 16 (README "Performance"). Built only for
    models :func:`fusable` accepts.
    """

    def __init__(self, bert: Any) -> None:
        self.embeddings = bert.embeddings
        self.layers = list(bert.encoder.layer)
        self.heads = int(bert.config.num_attention_heads)

    def __call__(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, token_type_ids: Any = None) -> Any:
        """The last hidden state, (texts, tokens, hidden), of a padded batch."""
        texts, tokens = input_ids.shape
        emb = self.embeddings
        types = torch.zeros_like(input_ids) if token_type_ids is None else token_type_ids
        hidden = emb.word_embeddings(input_ids) + emb.token_type_embeddings(types)
        hidden = emb.LayerNorm(hidden + emb.position_embeddings.weight[:tokens]).reshape(texts * tokens, -1)
        keys = attention_mask.bool()[:, None, None, :]  # which tokens each query may attend to: the text's own
        width = hidden.shape[-1]
        for layer in self.layers:
            attention = layer.attention
            query, key, value = (
                linear(hidden).view(texts, tokens, self.heads, -1).transpose(1, 2)
                for linear in (attention.self.query, attention.self.key, attention.self.value)
            )
            context = torch.nn.functional.scaled_dot_product_attention(query, key, value, attn_mask=keys)
            context = context.transpose(1, 2).reshape(texts * tokens, width)
            attended = attention.output.LayerNorm(attention.output.dense.plus(context, hidden))
            inner = layer.intermediate.dense.gelu(attended)
            hidden = layer.output.LayerNorm(layer.output.dense.plus(inner, attended))
        return hidden.view(texts, tokens, width)


def fusable(model: Any) -> bool:
    """Whether :class:`FusedBertForward` computes ``model``'s forward pass: an encoder-only BERT with absolute
    positions, the exact GELU, no feed-forward chunking, and every linear layer packed (:func:`pack_linears`)."""
    config = getattr(model, "config", None)
    if (
        config is None
        or getattr(config, "model_type", None) != "bert"
        or getattr(config, "hidden_act", None) != "gelu"
        or getattr(config, "position_embedding_type", "absolute") != "absolute"
        or getattr(config, "is_decoder", False)
        or getattr(config, "add_cross_attention", False)
        or getattr(config, "chunk_size_feed_forward", 0)
    ):
        return False
    try:
        layers = list(model.encoder.layer)
        linears = [
            linear
            for layer in layers
            for linear in (
                layer.attention.self.query,
                layer.attention.self.key,
                layer.attention.self.value,
                layer.attention.output.dense,
                layer.intermediate.dense,
                layer.output.dense,
            )
        ]
    except AttributeError:
        return False
    return bool(layers) and all(isinstance(linear, PackedLinear) for linear in linears)
