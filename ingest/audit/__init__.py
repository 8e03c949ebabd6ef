"""The tamper-evident audit trail: an HMAC hash chain in the relational store."""
