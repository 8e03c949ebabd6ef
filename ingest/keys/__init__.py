"""Key management: envelope encryption under a key-encryption port (local key file, KMS, Vault)."""
