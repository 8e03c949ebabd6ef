"""Request fields that accept exactly what their JSON Schema says.

Pydantic's lax mode reads ``"16"`` or ``true`` as the integer 16 or 1, which the documented schema
(and so a portal's generated client) calls invalid; its strict mode refuses ``16.0``, which JSON
Schema calls an integer. Numbers are therefore validated lax but must arrive as JSON numbers
(:func:`numbers_only`), and booleans must be JSON booleans (``StrictBool``). A decorator validator
is used because it leaves the generated schema's ``minimum``/``maximum`` intact.
"""

from __future__ import annotations

from typing import Any

from pydantic import StrictBool, field_validator


def _json_number(value: Any) -> Any:
    if isinstance(value, str | bool):
        raise ValueError("must be a JSON number, not a string or boolean")
    return value


def numbers_only(*fields: str) -> Any:
    """A model validator: ``fields`` take JSON numbers only (no numeric strings, no booleans)."""
    return field_validator(*fields, mode="before")(_json_number)


JsonBool = StrictBool

__all__ = ["JsonBool", "numbers_only"]
