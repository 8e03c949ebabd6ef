"""The client: one method per REST operation, typed with the server's own request and response models."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar

import httpx
from pydantic import BaseModel

from ingest.erasure import ErasureReceipt
from ingest.webhooks import verify as verify_signature
from service.chat.schemas import ChatCompletion, ChatCompletionRequest, ModelList
from service.schemas import (
    DocumentList,
    DocumentPublic,
    Health,
    QueryRequest,
    QueryResponse,
    SearchRequest,
    SearchResponse,
    UploadAccepted,
)
from service.webhook_schemas import DeliveryList, WebhookCreate, WebhookCreated, WebhookList, WebhookPublic

__all__ = ["EnclaveAPIError", "EnclaveClient", "Operation", "operations", "verify_signature"]

Mode = Literal["hybrid", "dense", "bm25"]
M = TypeVar("M", bound=BaseModel)
F = TypeVar("F", bound=Callable[..., Any])
FINAL_STATUSES = ("ready", "failed")


@dataclass(frozen=True)
class Operation:
    """The REST operation a client method calls, as ``/openapi.json`` must describe it."""

    method: str
    path: str
    response: type[BaseModel]
    body: type[BaseModel] | None = None
    form: tuple[str, ...] = ()
    query: tuple[str, ...] = ()


def operation(
    method: str,
    path: str,
    response: type[BaseModel],
    *,
    body: type[BaseModel] | None = None,
    form: tuple[str, ...] = (),
    query: tuple[str, ...] = (),
) -> Callable[[F], F]:
    def mark(method_fn: F) -> F:
        method_fn.__enclave_operation__ = Operation(method, path, response, body, form, query)  # type: ignore[attr-defined]
        return method_fn

    return mark


def operations() -> dict[str, Operation]:
    """Every client method that calls the API, by name."""
    return {
        name: fn.__enclave_operation__
        for name, fn in vars(EnclaveClient).items()
        if hasattr(fn, "__enclave_operation__")
    }


class EnclaveAPIError(Exception):
    """An error response, with the envelope's fields (``retry_after`` on 429)."""

    def __init__(
        self,
        status: int,
        message: str,
        code: str,
        type_: str,
        param: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status, self.message, self.code, self.type, self.param = status, message, code, type_, param
        self.retry_after = retry_after

    @classmethod
    def of(cls, response: httpx.Response) -> EnclaveAPIError:
        try:
            error = response.json()["error"]
        except (ValueError, KeyError, TypeError):
            error = {"message": response.text[:200] or response.reason_phrase, "code": "http_error", "type": "unknown"}
        retry = response.headers.get("retry-after")
        return cls(
            response.status_code,
            str(error.get("message")),
            str(error.get("code")),
            str(error.get("type")),
            error.get("param"),
            float(retry) if retry and retry.isdigit() else None,
        )


class EnclaveClient:
    """A session with one Enclave server; ``api_key`` is sent as ``Authorization: Bearer``.

    ``http`` may be any ``httpx.Client`` with the server as its base URL (FastAPI's ``TestClient``
    too); 429 answers are retried up to ``max_retries`` times after their ``Retry-After``.
    """

    def __init__(
        self,
        base_url: str = "http://127.0.0.1:8000",
        api_key: str | None = None,
        *,
        timeout: float = 180.0,
        http: httpx.Client | None = None,
        max_retries: int = 2,
    ) -> None:
        self._owned = http is None
        self._http = http or httpx.Client(base_url=base_url.rstrip("/"), timeout=timeout, trust_env=False)
        self._headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._max_retries = max_retries

    def close(self) -> None:
        if self._owned:
            self._http.close()

    def __enter__(self) -> EnclaveClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        for attempt in range(self._max_retries + 1):
            response = self._http.request(method, path, headers=self._headers, **kwargs)
            if response.status_code != 429 or attempt == self._max_retries:
                break
            time.sleep(min(float(response.headers.get("retry-after", "1")), 30.0))
        if response.status_code >= 400:
            raise EnclaveAPIError.of(response)
        return response

    def _call(self, model: type[M], method: str, path: str, **kwargs: Any) -> M:
        return model.model_validate(self._send(method, path, **kwargs).json())

    # -- health ---------------------------------------------------------------------------------
    @operation("GET", "/healthz", Health)
    def health(self) -> Health:
        return self._call(Health, "GET", "/healthz")

    @operation("GET", "/readyz", Health)
    def readiness(self) -> Health:
        """Ready, or which components are not (a 503 answer is returned, not raised)."""
        response = self._http.get("/readyz", headers=self._headers)
        return Health.model_validate(response.json())

    # -- documents ------------------------------------------------------------------------------
    @operation(
        "POST",
        "/v1/documents",
        UploadAccepted,
        form=("file", "collection", "acl", "classification", "metadata", "title"),
    )
    def upload(
        self,
        file: Path | bytes,
        *,
        filename: str | None = None,
        collection: str | None = None,
        acl: dict[str, list[str]] | None = None,
        classification: str = "internal",
        metadata: dict[str, Any] | None = None,
        title: str | None = None,
    ) -> UploadAccepted:
        """Queue a document for ingestion; poll :meth:`wait_for_document` for the outcome."""
        data = file.read_bytes() if isinstance(file, Path) else file
        name = filename or (file.name if isinstance(file, Path) else "upload")
        form = {
            "collection": collection,
            "classification": classification,
            "title": title,
            "acl": json.dumps(acl) if acl is not None else None,
            "metadata": json.dumps(metadata) if metadata is not None else None,
        }
        fields = {k: v for k, v in form.items() if v is not None}
        return self._call(UploadAccepted, "POST", "/v1/documents", files={"file": (name, data)}, data=fields)

    @operation("GET", "/v1/documents", DocumentList, query=("collection", "status", "limit", "offset"))
    def list_documents(
        self, *, collection: str | None = None, status: str | None = None, limit: int = 100, offset: int = 0
    ) -> DocumentList:
        params = {"collection": collection, "status": status, "limit": limit, "offset": offset}
        present = {k: v for k, v in params.items() if v is not None}
        return self._call(DocumentList, "GET", "/v1/documents", params=present)

    def iter_documents(
        self, *, collection: str | None = None, status: str | None = None, page_size: int = 100
    ) -> Iterator[DocumentPublic]:
        """Every matching document, page after page (following ``next``)."""
        offset = 0
        while True:
            page = self.list_documents(collection=collection, status=status, limit=page_size, offset=offset)
            yield from page.documents
            if page.next is None:
                return
            offset += page_size

    @operation("GET", "/v1/documents/{document_id}", DocumentPublic)
    def get_document(self, document_id: str) -> DocumentPublic:
        return self._call(DocumentPublic, "GET", f"/v1/documents/{document_id}")

    def wait_for_document(self, document_id: str, timeout_s: float = 300.0, poll_s: float = 0.5) -> DocumentPublic:
        """Poll until the document is ``ready`` or ``failed``. :raises TimeoutError:"""
        deadline = time.monotonic() + timeout_s
        while True:
            document = self.get_document(document_id)
            if document.status in FINAL_STATUSES:
                return document
            if time.monotonic() > deadline:
                raise TimeoutError(f"document {document_id} is still {document.status} after {timeout_s:.0f} s")
            time.sleep(poll_s)

    @operation("DELETE", "/v1/documents/{document_id}", ErasureReceipt)
    def delete_document(self, document_id: str) -> ErasureReceipt:
        return self._call(ErasureReceipt, "DELETE", f"/v1/documents/{document_id}")

    # -- answers --------------------------------------------------------------------------------
    @operation("POST", "/v1/query", QueryResponse, body=QueryRequest)
    def query(
        self, query: str, *, k: int | None = None, collections: list[str] | None = None, mode: Mode = "hybrid"
    ) -> QueryResponse:
        body = QueryRequest(query=query, k=k, collections=collections, mode=mode)
        return self._call(QueryResponse, "POST", "/v1/query", json=body.model_dump(exclude_none=True))

    @operation("POST", "/v1/search", SearchResponse, body=SearchRequest)
    def search(
        self, query: str, *, k: int = 10, collections: list[str] | None = None, mode: Mode = "hybrid"
    ) -> SearchResponse:
        body = SearchRequest(query=query, k=k, collections=collections, mode=mode)
        return self._call(SearchResponse, "POST", "/v1/search", json=body.model_dump(exclude_none=True))

    @operation("POST", "/v1/chat/completions", ChatCompletion, body=ChatCompletionRequest)
    def chat(self, messages: list[dict[str, str]], *, model: str = "enclave") -> ChatCompletion:
        """A non-streamed chat completion (for streaming, point the ``openai`` client at ``<url>/v1``)."""
        body = ChatCompletionRequest.model_validate({"model": model, "messages": messages})
        return self._call(ChatCompletion, "POST", "/v1/chat/completions", json=body.model_dump(exclude_none=True))

    @operation("GET", "/v1/models", ModelList)
    def models(self) -> ModelList:
        return self._call(ModelList, "GET", "/v1/models")

    # -- webhooks (admin) -----------------------------------------------------------------------
    @operation("POST", "/v1/webhooks", WebhookCreated, body=WebhookCreate)
    def create_webhook(
        self, url: str, *, events: list[str] | None = None, description: str | None = None
    ) -> WebhookCreated:
        """Register ``url``; keep the returned ``secret``, it is not shown again."""
        chosen = {"events": events} if events else {}
        body = WebhookCreate.model_validate({"url": url, "description": description, **chosen})
        return self._call(WebhookCreated, "POST", "/v1/webhooks", json=body.model_dump(exclude_none=True))

    @operation("GET", "/v1/webhooks", WebhookList, query=("limit", "offset"))
    def list_webhooks(self, *, limit: int = 100, offset: int = 0) -> WebhookList:
        return self._call(WebhookList, "GET", "/v1/webhooks", params={"limit": limit, "offset": offset})

    @operation("GET", "/v1/webhooks/{webhook_id}", WebhookPublic)
    def get_webhook(self, webhook_id: str) -> WebhookPublic:
        return self._call(WebhookPublic, "GET", f"/v1/webhooks/{webhook_id}")

    @operation("DELETE", "/v1/webhooks/{webhook_id}", WebhookPublic)
    def delete_webhook(self, webhook_id: str) -> WebhookPublic:
        return self._call(WebhookPublic, "DELETE", f"/v1/webhooks/{webhook_id}")

    @operation("GET", "/v1/webhooks/{webhook_id}/deliveries", DeliveryList, query=("status", "limit", "offset"))
    def list_deliveries(
        self, webhook_id: str, *, status: str | None = None, limit: int = 100, offset: int = 0
    ) -> DeliveryList:
        params = {"status": status, "limit": limit, "offset": offset}
        return self._call(
            DeliveryList,
            "GET",
            f"/v1/webhooks/{webhook_id}/deliveries",
            params={k: v for k, v in params.items() if v is not None},
        )
