"""What FastAPI's generated OpenAPI schema cannot say by itself, added once when the schema is built.

- **Links** from the operations that create a resource to the ones that use its id, so generated
  clients and stateful testers (schemathesis) can follow a new document, key or webhook.
- **JSON form parts**: upload fields that carry JSON (``acl``, ``metadata``) are typed as objects in
  the schema; their part ``encoding`` says they travel as ``application/json`` text.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI

Operation = tuple[str, str]  # (path, method)
DOCUMENT = "/v1/documents/{document_id}"
NEW_DOCUMENT = {"document_id": "$response.body#/document_id"}
NEW_ID = "$response.body#/id"

# (source operation, response status) -> link name -> (target operation, its parameters from the response)
LINKS: dict[tuple[Operation, str], dict[str, tuple[Operation, dict[str, str]]]] = {
    (("/v1/documents", "post"), "202"): {
        "GetDocument": ((DOCUMENT, "get"), NEW_DOCUMENT),
        "UploadVersion": ((DOCUMENT, "put"), NEW_DOCUMENT),
        "GetPassage": ((DOCUMENT + "/passage", "get"), NEW_DOCUMENT),
        "DeleteDocument": ((DOCUMENT, "delete"), NEW_DOCUMENT),
    },
    ((DOCUMENT, "put"), "202"): {
        "GetDocument": ((DOCUMENT, "get"), NEW_DOCUMENT),
        "DeleteDocument": ((DOCUMENT, "delete"), NEW_DOCUMENT),
    },
    (("/v1/keys", "post"), "201"): {
        "RevokeKey": (("/v1/keys/{key_id}", "delete"), {"key_id": NEW_ID}),
    },
    (("/v1/webhooks", "post"), "201"): {
        "GetWebhook": (("/v1/webhooks/{webhook_id}", "get"), {"webhook_id": NEW_ID}),
        "ListDeliveries": (("/v1/webhooks/{webhook_id}/deliveries", "get"), {"webhook_id": NEW_ID}),
        "DeleteWebhook": (("/v1/webhooks/{webhook_id}", "delete"), {"webhook_id": NEW_ID}),
    },
}
JSON_PARTS: dict[Operation, tuple[str, ...]] = {
    ("/v1/documents", "post"): ("acl", "metadata"),
    (DOCUMENT, "put"): ("acl", "metadata"),
}


def complete(schema: dict[str, Any]) -> dict[str, Any]:
    """Add the links and part encodings to a generated schema (in place; returned for convenience).

    :raises KeyError: an operation named above is missing from the schema (a route was renamed).
    """
    paths = schema["paths"]
    for ((path, method), code), links in LINKS.items():
        response = paths[path][method]["responses"][code]
        response["links"] = {
            name: {"operationId": paths[target][verb]["operationId"], "parameters": parameters}
            for name, ((target, verb), parameters) in links.items()
        }
    for (path, method), fields in JSON_PARTS.items():
        form = paths[path][method]["requestBody"]["content"]["multipart/form-data"]
        form["encoding"] = {field: {"contentType": "application/json"} for field in fields}
    return schema


def install_openapi(app: FastAPI) -> None:
    """Make ``app.openapi()`` (and so ``/openapi.json`` and the docs) return the completed schema."""
    generate: Callable[[], dict[str, Any]] = app.openapi

    def openapi() -> dict[str, Any]:
        fresh = app.openapi_schema is None
        schema = generate()
        return complete(schema) if fresh else schema

    app.openapi = openapi  # type: ignore[method-assign]
