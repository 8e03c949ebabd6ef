"""Listings for portals: limit/offset pages with a ``next`` link, and ETags for cheap polling.

A portal that polls ``GET /v1/documents`` sends back the ``ETag`` it got as ``If-None-Match``; while
nothing in the page changed the answer is ``304 Not Modified`` with no body. The tag is a hash of
the exact JSON body, so any change a caller could see changes it.
"""

from __future__ import annotations

import hashlib
from typing import Annotated, Any

from fastapi import Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

MAX_LIMIT = 500

LimitQuery = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="page size")]
OffsetQuery = Annotated[int, Query(ge=0, le=10_000_000, description="items to skip")]

NOT_MODIFIED: dict[int | str, dict[str, Any]] = {
    304: {"description": "Not Modified: the listing is unchanged since the `ETag` sent as `If-None-Match`"},
}


class Page(BaseModel):
    """Where this page sits: the total that matched, and the URL of the next page (null on the last)."""

    total: int = Field(description="items matching the filters, over all pages")
    limit: int
    offset: int
    next: str | None = Field(description="relative URL (path and query) of the next page, or null on the last")


def page_of(request: Request, total: int, limit: int, offset: int) -> Page:
    """The page's position; ``next`` is relative (path and query only): the ``Host`` a caller sends is never echoed."""
    following = offset + limit
    if following >= total:
        return Page(total=total, limit=limit, offset=offset, next=None)
    url = request.url.include_query_params(offset=following, limit=limit)
    return Page(total=total, limit=limit, offset=offset, next=f"{url.path}?{url.query}")


def etag_of(body: bytes) -> str:
    return '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


def _matches(if_none_match: str | None, tag: str) -> bool:
    if not if_none_match:
        return False
    candidates = {t.strip().removeprefix("W/") for t in if_none_match.split(",")}
    return "*" in candidates or tag in candidates


def conditional_json(request: Request, model: BaseModel) -> Response:
    """The model as JSON with an ``ETag``; ``304`` when the caller's ``If-None-Match`` already names it."""
    body = JSONResponse(model.model_dump(mode="json")).body
    tag = etag_of(bytes(body))
    headers = {"ETag": tag, "Cache-Control": "private, no-cache"}
    if _matches(request.headers.get("if-none-match"), tag):
        return Response(status_code=304, headers=headers)
    return Response(content=body, media_type="application/json", headers=headers)
