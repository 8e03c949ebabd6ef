"""PII/PHI detection and policy-driven redaction (keep, mask, pseudonymise)."""
