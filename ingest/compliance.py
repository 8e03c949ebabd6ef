"""The compliance core as one object the write and read paths share: keys, audit, redaction.

Built once per process by :func:`build_compliance` (called from ``ingest.runtime``). Anything that
caches derived data (answers, previews) registers an erasure hook so erasure can purge it too.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy.engine import Engine

from ingest.audit.anchor import anchor_log
from ingest.audit.trail import AuditTrail
from ingest.config import Settings
from ingest.keys.keyring import KeyRing
from ingest.keys.local_keyfile import LocalKeyFile
from ingest.keys.port import KeyEncryptionKey
from ingest.parsing.port import ParsedDocument
from ingest.placement import check_placement
from ingest.policy_data import load_policy_file
from ingest.redaction.policy import RedactionPolicy
from ingest.redaction.port import PiiDetector
from ingest.redaction.presidio_detector import PresidioDetector
from ingest.redaction.redactor import RedactionSummary, Redactor
from ingest.retention import RetentionPolicy

log = logging.getLogger(__name__)

ErasureHook = Callable[[str, list[str]], None]
"""Called with (tenant, erased document ids) after an erasure commits; must remove derived copies."""


@dataclass
class Compliance:
    settings: Settings
    keyring: KeyRing
    audit: AuditTrail
    redactor: Redactor
    erasure_hooks: list[ErasureHook] = field(default_factory=list)

    def warm_up(self) -> None:
        """Open the master key and the audit key now: no key, no start (fail closed)."""
        self.keyring.warm_up()

    def warm_up_detector_in_background(self) -> threading.Thread:
        """Load the PII models off the request path (the service calls this at start-up)."""
        thread = threading.Thread(target=self.redactor.warm_up, name="enclave-pii-warm-up", daemon=True)
        thread.start()
        return thread

    def redact(
        self, parsed: ParsedDocument, tenant: str, classification: str
    ) -> tuple[ParsedDocument, RedactionSummary]:
        """Redact a parsed document per policy (between parsing and chunking)."""
        if not self.settings.compliance.redaction_enabled:
            return parsed, RedactionSummary(classification)
        return self.redactor.redact_document(parsed, tenant, classification)

    def redact_title(self, title: str, tenant: str, classification: str) -> str:
        """A document's title under the same rule as its text: it is shown, cited and embedded like it."""
        if not self.settings.compliance.redaction_enabled:
            return title
        return self.redactor.redact_text(title, tenant, self.redactor.policy.rule_for(classification))[0]


def make_kek(settings: Settings) -> KeyEncryptionKey:
    """The configured master-key adapter (the one place a KMS or Vault adapter would be chosen)."""
    if settings.compliance.key_backend == "local":
        return LocalKeyFile(settings.master_key_file)
    raise NotImplementedError(f"key backend {settings.compliance.key_backend!r} is not part of this build")


def build_compliance(settings: Settings, engine: Engine, detector: PiiDetector | None = None) -> Compliance:
    """Keys, audit trail and redactor from settings and ``policies/``; the master key is opened now.

    :raises PolicyError: a policy file is missing or invalid.
    :raises KeyUnavailable: the master key file cannot be created or read.
    :raises ConfigurationError: production mode with the master key inside the data directory.
    """
    check_placement(settings)
    if detector is None:
        detector = PresidioDetector()
    keyring = KeyRing(engine, make_kek(settings))
    policy = RedactionPolicy.from_data(load_policy_file(settings, "redaction.json"))
    RetentionPolicy.from_data(load_policy_file(settings, "retention.json"))  # refuse to start on a broken one
    audit = AuditTrail(engine, keyring, anchor_log(settings))
    compliance = Compliance(settings, keyring, audit, Redactor(policy, detector, keyring))
    compliance.warm_up()
    return compliance
