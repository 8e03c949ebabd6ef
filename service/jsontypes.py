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


def _iso_date(value: Any) -> Any:
    if value is not None and not isinstance(value, str):
        raise ValueError("must be an ISO date string such as 2024-05-01")
    return value


def dates_only(*fields: str) -> Any:
    """A model validator: ``fields`` take ISO date strings only (no numbers read as Unix times)."""
    return field_validator(*fields, mode="before")(_iso_date)


def numbers_only(*fields: str) -> Any:
    """A model validator: ``fields`` take JSON numbers only (no numeric strings, no booleans)."""
    return field_validator(*fields, mode="before")(_json_number)


JsonBool = StrictBool

__all__ = ["JsonBool", "dates_only", "numbers_only"]
