"""Request fields that accept exactly what their JSON Schema says.

Pydantic's lax mode reads ``"16"`` or ``true`` as the integer 16 or 1, which the documented schema
(and so a portal's generated client) calls invalid; its strict mode refuses ``16.0``, which JSON
Schema calls an integer. Numbers are therefore validated lax but must arrive as JSON numbers
(:func:`numbers_only`), and booleans must be JSON booleans (``StrictBool``). A decorator validator
is used because it leaves the generated schema's ``minimum``/``maximum`` intact.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from pydantic import StrictBool, field_validator

from ingest.errors import InvalidRequest
from ingest.store.compliance_models import iso_time

# JSON Schema's ``format: date`` (pydantic alone would also read "0" as 1970-01-01, a Unix time).
ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}", re.ASCII)
# RFC 3339 ``date-time``, what ``format: date-time`` names: a zone is required, seconds too.
RFC3339 = re.compile(r"(\d{4}-\d{2}-\d{2})[Tt](\d{2}:\d{2}):(\d{2})(\.\d+)?([Zz]|[+-]\d{2}:\d{2})", re.ASCII)


def _json_number(value: Any) -> Any:
    if isinstance(value, str | bool):
        raise ValueError("must be a JSON number, not a string or boolean")
    return value


def _iso_date(value: Any) -> Any:
    if value is not None and not (isinstance(value, str) and ISO_DATE.fullmatch(value)):
        raise ValueError("must be an ISO date string such as 2024-05-01")
    return value


def dates_only(*fields: str) -> Any:
    """A model validator: ``fields`` take ISO date strings only (no numbers, or digits, read as Unix times)."""
    return field_validator(*fields, mode="before")(_iso_date)


def numbers_only(*fields: str) -> Any:
    """A model validator: ``fields`` take JSON numbers only (no numeric strings, no booleans)."""
    return field_validator(*fields, mode="before")(_json_number)


def date_time(value: str) -> datetime:
    """An RFC 3339 ``date-time`` as an aware UTC time; exactly what ``format: date-time`` accepts.

    A leap second (``:60``) reads as ``:59``; a time whose UTC equivalent falls outside years 1-9999
    reads as the first or last representable moment (both only ever bound a search).

    :raises ValueError: not an RFC 3339 date-time, or not a real date.
    """
    match = RFC3339.fullmatch(value)
    if match is None:
        raise ValueError(f"{value!r} is not an RFC 3339 date-time")
    day, minutes, seconds, fraction, zone = match.groups()
    zone = "+00:00" if zone in ("Z", "z") else zone
    moment = datetime.fromisoformat(f"{day}T{minutes}:{min(seconds, '59')}{fraction or ''}{zone}")
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        return (datetime.min if moment.year == 1 else datetime.max).replace(tzinfo=UTC)


def audit_time(value: str | None, name: str) -> str | None:
    """A time bound given as parameter ``name`` (RFC 3339), in the audit trail's stored form; None stays None.

    :raises InvalidRequest: not an RFC 3339 date-time (400, naming the parameter).
    """
    if value is None:
        return None
    try:
        return iso_time(date_time(value))
    except ValueError as exc:
        raise InvalidRequest(f"{name} must be an RFC 3339 time such as 2024-05-01T00:00:00Z", param=name) from exc


JsonBool = StrictBool

__all__ = ["RFC3339", "JsonBool", "audit_time", "date_time", "dates_only", "numbers_only"]
