"""PII/PHI redaction: own recognisers, the policy file, exact offsets after redaction, stable
pseudonyms, and redaction at ingest through the real parser, chunker, embedder and index."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ingest import documents as docs
from ingest.compliance import Compliance, build_compliance
from ingest.index.port import AccessFilter
from ingest.parsing.port import Element, ParsedDocument
from ingest.policy_data import PolicyError
from ingest.redaction.policy import RedactionPolicy
from ingest.redaction.presidio_detector import PresidioDetector
from ingest.redaction.recognizers import npi_check_digit_ok
from ingest.runtime import Components
from ingest.store.db import create_schema, make_engine
from ingest.worker import drain
from service.retrieval import retrieve
from tests.conftest import make_settings

NOTE = (
    "DISCHARGE SUMMARY\n\nPatient: Maria Gonzalez. MRN: 004512378. Attending: Dr. Robert Chen, NPI 1234567893.\n\n"
    "Ms. Gonzalez recovered well; call her daughter at 617-555-0142. Case No. 1:21-cv-04417-LGS is unrelated.\n"
)


@pytest.fixture
def compliance(tmp_path: Path) -> Compliance:
    """Keys, policy and redactor on an embedded store (the redaction logic does not depend on the store)."""
    settings = make_settings(tmp_path / "data")
    settings.ensure_dirs()
    engine = make_engine(settings.resolved_database_url)
    create_schema(engine)
    return build_compliance(settings, engine)


@pytest.fixture(scope="module")
def detector() -> PresidioDetector:
    found = PresidioDetector()
    found.warm_up()
    return found


def test_npi_check_digit() -> None:
    assert npi_check_digit_ok("1234567893") and npi_check_digit_ok("1467512343")
    assert not npi_check_digit_ok("1234567890") and not npi_check_digit_ok("3234567893")


def test_own_recognisers_report_the_value_not_its_label(detector: PresidioDetector) -> None:
    found = {
        (f.entity, NOTE[f.start : f.end])
        for f in detector.detect(NOTE, ["MEDICAL_RECORD_NUMBER", "US_NPI", "US_DOCKET_NUMBER"], 0.4)
    }
    assert found == {
        ("MEDICAL_RECORD_NUMBER", "004512378"),
        ("US_NPI", "1234567893"),
        ("US_DOCKET_NUMBER", "1:21-cv-04417-LGS"),
    }
    bare = "Invoice 1234567893 and lot 1000000004 are not providers."  # Luhn-valid but no "NPI": below every threshold
    assert detector.detect(bare, ["US_NPI"], 0.4) == []


def test_policy_validation_and_fail_closed_defaults() -> None:
    policy = RedactionPolicy.from_data(
        {
            "classifications": {
                "open": {"entities": {}},
                "phi": {"threshold": 0.4, "entities": {"PERSON": "pseudonymise", "US_NPI": "mask"}},
                "legal": {"entities": {"PERSON": "mask"}},
            }
        }
    )
    assert policy.rule_for("typo-classification").classification == "phi"  # unknown: the strictest, never "keep"
    merged = policy.rule_for_all(["phi", "legal", "open"])
    assert merged.entities["PERSON"].action == "mask" and merged.entities["PERSON"].threshold == 0.4
    with pytest.raises(PolicyError, match="phi.PERSON: action must be one of"):
        RedactionPolicy.from_data({"classifications": {"phi": {"entities": {"PERSON": "hide"}}}})


def _parsed(text: str) -> ParsedDocument:
    elements, start = [], 0
    for block in text.split("\n\n"):
        if block.strip():
            begin = text.index(block, start)
            elements.append(Element(block, begin, begin + len(block), 1, "text"))
            start = begin + len(block)
    return ParsedDocument(text, elements, 1, "text/plain", None)


def test_redacted_elements_stay_exact_slices_and_values_are_gone(compliance: Compliance) -> None:
    redacted, summary = compliance.redact(_parsed(NOTE), "t1", "phi")
    assert all(e.text == redacted.text[e.start : e.end] for e in redacted.elements)
    assert len(redacted.elements) == 3 and redacted.elements[0].text == "DISCHARGE SUMMARY"
    for value in ("Maria Gonzalez", "004512378", "1234567893", "617-555-0142"):
        assert value not in redacted.text
    assert "[MEDICAL_RECORD_NUMBER]" in redacted.text and "[US_NPI]" in redacted.text
    assert "1:21-cv-04417-LGS" in redacted.text  # phi does not redact case numbers
    assert summary.counts["MEDICAL_RECORD_NUMBER:mask"] == 1 and "Maria" not in json.dumps(summary.as_dict())
    kept, nothing = compliance.redact(_parsed(NOTE), "t1", "internal")
    assert kept.text == NOTE and nothing.total == 0


def test_pseudonyms_are_stable_within_a_tenant_and_differ_across_tenants(compliance: Compliance) -> None:
    first, _ = compliance.redact(_parsed("Robert Chen signed the consent form."), "t1", "privileged")
    second, _ = compliance.redact(_parsed("The call with Robert Chen lasted an hour."), "t1", "privileged")
    other, _ = compliance.redact(_parsed("Robert Chen signed the consent form."), "t2", "privileged")
    token = first.text.split(" signed")[0]
    assert token.startswith("[PERSON-") and token in second.text and token not in other.text


def test_answer_scan_redacts_what_the_model_reintroduces_and_keeps_placeholders(compliance: Compliance) -> None:
    rule = compliance.redactor.policy.rule_for("phi")
    answer = "[1] says [PERSON-1a2b3c4d] saw Dr. Robert Chen; reach him at robert.chen@example.org."
    text, summary = compliance.redactor.redact_text(answer, "t1", rule)
    assert "Robert Chen" not in text and "robert.chen@example.org" not in text
    assert "[PERSON-1a2b3c4d]" in text and text.startswith("[1] says") and summary.total == 2


def test_a_phi_upload_is_indexed_and_cited_redacted(components: Components) -> None:
    sub = docs.submit(
        components,
        docs.Upload(filename="note.txt", data=NOTE.encode(), tenant="t1", collection="c", classification="phi"),
    )
    assert drain(components) == 1
    chunks = retrieve(components, "patient discharge summary recovered", AccessFilter(tenant="t1"), 5).chunks
    text = "\n".join(c.record.text for c in chunks)
    assert chunks and "Maria Gonzalez" not in text and "004512378" not in text and "[PERSON-" in text
    assert all(c.record.end - c.record.start == len(c.record.text) for c in chunks)  # offsets index the redacted text
    assert components.blobs.get(sub.document.id) == NOTE.encode()  # the original is kept whole, encrypted
