"""Encrypted, verifiable backups of one site, and restores that keep every erasure (README "Backup and restore")."""
