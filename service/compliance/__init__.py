"""The compliance core's HTTP side: audit context per request, auditor and erasure routes, answer redaction."""
