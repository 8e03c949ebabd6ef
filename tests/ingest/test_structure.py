"""The structure reader finds real headings (numbered, ARTICLE, caps, title case, run-in, medical) and no false ones."""

from __future__ import annotations

import pytest

from ingest.parsing import sniff
from ingest.parsing.text import parse_text
from ingest.structure import MAX_LABEL_CHARS, MAX_PATH_CHARS, Structure, read_structure, render_path, with_heading
from tests.conftest import CUAD

CONTRACTS = CUAD / "contracts"


def _read(text: str) -> Structure:
    return read_structure(parse_text(text, sniff.TEXT))


def _at(text: str, phrase: str) -> str:
    """The heading path at the first occurrence of ``phrase``."""
    assert phrase in text
    return _read(text).heading_at(text.index(phrase))


BODY = "The parties agree that this provision applies to every order placed under this agreement."


def test_numbered_sections_and_run_in_clause_headings_nest() -> None:
    text = (
        f"11. CONFIDENTIALITY\n\n11.1 Scope. {BODY}\n\n12. MISCELLANEOUS\n\n12.1 Notices. {BODY}\n\n"
        f"12.2 Waiver. {BODY}\n\n12.3 Governing Law. This Agreement is governed by the laws of Delaware.\n\n"
        f"12.3.1 Venue. {BODY}\n"
    )
    assert _at(text, "laws of Delaware") == "12. MISCELLANEOUS > 12.3 Governing Law"
    assert _at(text, "12.3.1") == "12. MISCELLANEOUS > 12.3 Governing Law > 12.3.1 Venue"
    assert _at(text, "11.1 Scope") == "11. CONFIDENTIALITY > 11.1 Scope"


def test_article_with_its_title_on_the_next_line_and_sections_under_it() -> None:
    text = f"ARTICLE IV\nDEFINITIONS\n\nSection 4.1 Affiliates. {BODY}\n\nARTICLE V\nTERM\n\nSection 5.1 Term. {BODY}\n"
    assert _at(text, "Section 4.1") == "ARTICLE IV DEFINITIONS > Section 4.1 Affiliates"
    assert _at(text, "Section 5.1") == "ARTICLE V TERM > Section 5.1 Term"


def test_roman_numeral_caps_and_title_case_headings() -> None:
    text = (
        f"RECITALS\n\n{BODY}\n\nLimited Warranty\n\n{BODY}\n\nI. DEFINITIONS\n\n{BODY}\n\nII. PAYMENT TERMS\n\n{BODY}\n"
    )
    assert _at(text, "II. PAYMENT") == "II. PAYMENT TERMS"
    assert _at(text, "I. DEFINITIONS") == "I. DEFINITIONS"
    assert _at(text, "RECITALS") == "RECITALS"
    assert _at(text, "Limited Warranty") == "Limited Warranty"


def test_definitions_sit_under_their_section() -> None:
    text = '1. DEFINITIONS\n\n“Affiliate” means any entity that controls a party.\n\n"Territory" shall mean the U.S.\n'
    assert _at(text, "any entity") == '1. DEFINITIONS > "Affiliate"'
    assert _at(text, "the U.S.") == '1. DEFINITIONS > "Territory"'


def test_medical_section_headings() -> None:
    text = (
        "Patient seen in clinic today for follow-up.\n\nMedications:\nLisinopril 10 mg daily and metformin 500 mg.\n\n"
        "ASSESSMENT AND PLAN\nHypertension is controlled on the current regimen; continue, recheck in a month.\n\n"
        "Allergies: penicillin (rash).\n"
    )
    assert _at(text, "Lisinopril") == "Medications"
    assert _at(text, "Hypertension") == "ASSESSMENT AND PLAN"
    assert _at(text, "penicillin") == "Allergies"
    assert _at(text, "Patient seen") == ""


@pytest.mark.parametrize(
    "line",
    [
        "1.5 million dollars were paid to the Supplier in the first year.",
        "Page 3 of 10",
        "- 7 -",
        "ACME CORPORATION",
        "Section 2.1 of this Agreement shall survive any termination.",
        "Article 5 of the Convention applies to the sale of goods.",
    ],
)
def test_sentences_page_furniture_and_party_names_are_not_headings(line: str) -> None:
    text = f"3. PAYMENT\n\n3.1 Fees. {BODY}\n\n{line}\n\n{BODY} And then the clause continues here.\n"
    assert _at(text, "And then") == "3. PAYMENT > 3.1 Fees"


def test_a_numbered_list_inside_a_clause_is_not_a_new_section() -> None:
    text = (
        "5. PRICING\n\n5.2 Economic Terms. The terms are:\n\n1. Maximum Cost: $14,500,000\n\n2. Rate Factor: agreed\n"
    )
    assert _at(text, "Rate Factor") == "5. PRICING > 5.2 Economic Terms"


def test_a_repeated_running_header_is_not_a_heading() -> None:
    text = f"CONFIDENTIAL TREATMENT REQUESTED\n\n{BODY}\n\nCONFIDENTIAL TREATMENT REQUESTED\n\n{BODY} Last.\n"
    assert _at(text, "Last.") == ""


def test_paths_keep_three_levels_and_short_labels() -> None:
    path = ("ARTICLE I", "1. " + "VERY LONG HEADING " * 8, "1.1 Scope", "1.1.1 Detail")
    rendered = render_path(path)
    assert rendered.split(" > ")[-1] == "1.1.1 Detail" and "ARTICLE I" not in rendered
    assert all(len(label) <= MAX_LABEL_CHARS for label in rendered.split(" > "))
    assert len(rendered) <= MAX_PATH_CHARS


def test_with_heading_prefixes_only_a_non_empty_path() -> None:
    assert with_heading("Body text.", "") == "Body text."
    assert with_heading("Body text.", "12. MISC > 12.3 Governing Law") == "12. MISC > 12.3 Governing Law\nBody text."


@pytest.mark.parametrize(
    ("contract", "phrase", "expected"),
    [
        (
            "ACCURAYINC_09_01_2010-EX-10.31-DISTRIBUTOR AGREEMENT.txt",
            "12.1. Governing Law.",
            "12. MISCELLANEOUS PROVISIONS > 12.1. Governing Law",
        ),
        (
            "2ThemartComInc_19990826_10-12G_EX-10.10_6700288_EX-10.10_Co-Branding Agreement_ Agency Agreement.txt",
            "12.1 GOVERNING LAW.",
            "12. GENERAL PROVISIONS > 12.1 GOVERNING LAW",
        ),
        (
            "ALCOSTORESINC_12_14_2005-EX-10.26-AGENCY AGREEMENT.txt",
            "Section 1.01 Appointment.",
            "ARTICLE I GENERAL UNDERTAKING > Section 1.01 Appointment",
        ),
        (
            "HYPERIONSOFTWARECORP_09_28_1994-EX-10.47-EXCLUSIVE DISTRIBUTOR AGREEMENT.txt",
            "10.2  Jurisdiction and Venue.",
            "10. GENERAL > 10.2 Jurisdiction and Venue",
        ),
        (
            "BELLICUMPHARMACEUTICALS,INC_05_07_2019-EX-10.1-Supply Agreement.txt",
            '"Affiliate" means',
            'Article 1 DEFINITIONS AND INTERPRETATION > 1.1 Definitions > "Affiliate"',
        ),
    ],
)
def test_real_contracts_heading_paths(contract: str, phrase: str, expected: str) -> None:
    text = (CONTRACTS / contract).read_text(encoding="utf-8")
    assert _at(text, phrase) == expected
