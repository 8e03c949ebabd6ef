"""A small typed Python client for Enclave's REST API (what the CLI's remote mode and the tests use).

>>> with EnclaveClient("http://127.0.0.1:8000", api_key="enc_…") as enclave:
...     answer = enclave.query("Which law governs the NDA?")

Every method names the operation it calls (``@operation``); ``tests/service/test_client.py`` checks
each against the live ``/openapi.json`` — method, path, request fields and response model — so the
client cannot drift from the server. Errors arrive as :class:`EnclaveAPIError` with the envelope's
fields.
"""

from service.client.api import EnclaveAPIError, EnclaveClient, Operation, operations, verify_signature

__all__ = ["EnclaveAPIError", "EnclaveClient", "Operation", "operations", "verify_signature"]
