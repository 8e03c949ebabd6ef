"""Domain errors of the write path.

Every error a user can cause carries a ``code`` (stable, machine-readable) and a message that says
what to do. ``retryable`` tells the job runner whether trying again can help (transient failures)
or not (bad input). HTTP translation happens in exactly one place: ``service.errors``.
"""

from __future__ import annotations


class EnclaveError(Exception):
    """Base of every error Enclave raises on purpose."""

    code = "enclave_error"
    status = 500
    retryable = False

    def __init__(self, message: str, *, param: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param


class NotFound(EnclaveError):
    code = "not_found"
    status = 404


class InvalidRequest(EnclaveError):
    code = "invalid_request"
    status = 400


class ServiceUnavailable(EnclaveError):
    code = "service_unavailable"
    status = 503
    retryable = True


class IngestError(EnclaveError):
    """A document could not be ingested."""

    code = "ingest_error"
    status = 422


class UnsupportedFormat(IngestError):
    code = "unsupported_format"
    status = 415


class EmptyDocument(IngestError):
    code = "empty_document"


class CorruptDocument(IngestError):
    code = "corrupt_document"


class EncryptedDocument(IngestError):
    code = "encrypted_document"


class DocumentTooLarge(IngestError):
    code = "document_too_large"
    status = 413


class DecompressionBomb(IngestError):
    """An archive (DOCX, PPTX, XLSX) that would expand far beyond what a real document needs."""

    code = "decompression_bomb"


class OcrUnavailable(IngestError):
    """A page has no text layer and this server cannot OCR it (Tesseract is not installed)."""

    code = "ocr_unavailable"
    status = 503


class Conflict(EnclaveError):
    """The request clashes with work in progress (e.g. a new version while one is being ingested)."""

    code = "conflict"
    status = 409


class TransientIngestError(IngestError):
    """A failure that may succeed on retry (index or store briefly unavailable)."""

    code = "transient_ingest_error"
    status = 503
    retryable = True


class ConfigurationError(EnclaveError):
    """Settings that contradict each other or the deployment; the message names the variable to fix."""

    code = "configuration_error"
