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


def pack_linears(model: torch.nn.Module, rows: int) -> int:
    """Replace every bf16 ``nn.Linear`` of ``model`` (in place) by a :class:`PackedLinear`; how many were."""
    replaced = 0
    for module in list(model.modules()):
        for name, child in list(module.named_children()):
            if type(child) is torch.nn.Linear and child.weight.dtype == torch.bfloat16:
                setattr(module, name, PackedLinear(child, rows))
                replaced += 1
    return replaced
