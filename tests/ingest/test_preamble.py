"""A document's opening read for its title, parties and date (ingest.preamble), on real contracts and
abstracts, sealed at rest under the document's key and gone with it."""

from __future__ import annotations

import json
import os
from itertools import islice
from pathlib import Path

import pytest

from ingest import documents as docs
from ingest import preamble
from ingest.errors import EnclaveError
from ingest.keys.crypto import is_sealed_text
from ingest.runtime import build_components
from ingest.store.db import create_schema, make_engine, session_scope
from ingest.store.models import Document
from ingest.worker import drain
from tests.conftest import DATA, make_settings

CONTRACTS = DATA / "cuad" / "contracts"


def _contract(prefix: str) -> str:
    (path,) = [p for p in CONTRACTS.iterdir() if p.name.startswith(prefix)]
    return path.read_text(errors="replace")


@pytest.mark.parametrize(
    ("prefix", "title", "parties", "aliases", "date", "kind"),
    [
        (
            "DeltathreeInc_19991102",
            "Co-Branding And Services Agreement",
            ["RSL COM PrimeCall, Inc.", "deltathree.com, Inc."],
            ["PrimeCall", "DeltaThree"],
            "1999-10-01",
            "effective",
        ),
        (
            "StampscomInc_20001114",
            "Manifest System Services And Co-Branding Agreement",
            ["iShip.com, Inc.", "Mail Boxes Etc. USA, Inc."],
            ["Company", "MBE"],
            "1999-04-27",
            "effective",  # "as of April 27, 1999 (the "Effective Date")"
        ),
        (
            "PANDIONTHERAPEUTICSHOLDCOLLC",  # "entered into by ... (the "Company"), and Alan Crane, an individual"
            "Consulting Agreement",
            ["Immunotolerance, Inc.", "Alan Crane"],
            ["Company", "Consultant"],
            None,  # "this 27t h day of March, 2017": a typo no date reader should guess through
            None,
        ),
    ],
)
def test_real_contract_openings(
    prefix: str, title: str, parties: list[str], aliases: list[str], date: str | None, kind: str | None
) -> None:
    found = preamble.extract(_contract(prefix))
    assert found.title == title
    assert found.parties == parties
    assert found.aliases == aliases
    assert (found.date, found.date_kind) == (date, kind)


def test_without_a_between_clause_the_described_legal_persons_are_the_parties() -> None:
    # "EXHIBIT 10.26 MICOA AGENCY AGREEMENT Mutual Insurance Corporation of America, a Michigan insurance
    # corporation (MICOA) and Stratton, Cheeseman & Walsh-Nevada, Inc., a Nevada corporation, ("Agency") ..."
    found = preamble.extract(_contract("AMERICANPHYSICIANSCAPITALINC"))
    assert found.parties == ["Mutual Insurance Corporation of America", "Stratton, Cheeseman & Walsh-Nevada, Inc."]
    assert preamble.extract(_contract("ADUROBIOTECH,INC_06_02_2020-EX-10.7-CONSULTING AGREEMENT(1)")).parties == [
        "Aduro Biotech, Inc.",
        "IREYA B.V",
    ]


def test_most_contracts_name_their_parties_and_abstracts_name_none() -> None:
    contracts = [preamble.extract(p.read_text(errors="replace")) for p in sorted(CONTRACTS.iterdir())]
    assert sum(bool(c.parties) for c in contracts) / len(contracts) > 0.85  # measured 459 of 510
    with (DATA / "scifact" / "corpus.jsonl").open() as corpus:
        abstracts = [json.loads(line) for line in islice(corpus, 500)]
    named = [a["_id"] for a in abstracts if preamble.extract(f"{a['title']}\n{a['text']}").parties]
    assert len(named) <= 3, named  # an abstract thanking a funder ("Wellcome Trust") may slip through; rarely


@pytest.mark.parametrize(
    "text",
    [
        "1.5 million dollars were paid between 2001 and 2003 to the vendor.",
        "Patient reports pain between meals and at night. Medications: ibuprofen.",
        "The difference between the groups was significant (p < 0.01).",
    ],
)
def test_no_parties_where_no_one_is_named(text: str) -> None:
    assert preamble.extract(text).parties == []


def test_sealed_round_trip_is_bound_to_its_document() -> None:
    key = os.urandom(32)
    opening = preamble.extract(_contract("DeltathreeInc_19991102"))
    stored = preamble.seal(key, "doc-a", opening)
    assert stored is not None and is_sealed_text(stored) and "PrimeCall" not in stored
    assert preamble.open_sealed(key, "doc-a", stored) == opening
    with pytest.raises(EnclaveError):  # moved onto another document's row
        preamble.open_sealed(key, "doc-b", stored)
    assert preamble.seal(key, "doc-a", preamble.Preamble()) is None  # nothing read: nothing stored


def test_ingest_seals_the_preamble_and_erasure_takes_it(tmp_path: Path, embedder, parser) -> None:  # type: ignore[no-untyped-def]
    components = build_components(make_settings(tmp_path), embedder=embedder, parser=parser)
    try:
        upload = docs.Upload(
            filename="cobranding.txt",
            data=_contract("DeltathreeInc_19991102").encode(),
            tenant="default",
            collection="default",
        )
        document_id = docs.submit(components, upload).document.id
        drain(components)
        with session_scope(components.engine) as session:
            row = session.get(Document, document_id)
            assert row is not None and row.preamble is not None
        assert is_sealed_text(row.preamble) and "PrimeCall" not in row.preamble
        keyring = components.compliance.keyring
        assert preamble.of_document(keyring, row).parties == ["RSL COM PrimeCall, Inc.", "deltathree.com, Inc."]
        names = docs.document_names(components, "default", [document_id])
        assert "PrimeCall" in names[document_id]
        assert docs.document_names(components, "other-tenant", [document_id]) == {}
        docs.delete_document(components, "default", document_id)
        assert preamble.of_document(keyring, row) == preamble.Preamble()  # the key is shredded with the document
    finally:
        components.close()


def test_document_names_looks_rows_up_by_key(tmp_path: Path) -> None:
    """Document focus runs this on every search that names a document: SQLite (no statistics) must find the
    asked rows by primary key, not walk every row of the tenant through its index."""
    engine = make_engine(f"sqlite:///{tmp_path / 'plan.db'}")
    create_schema(engine)
    ten = [f"{i:032x}" for i in range(10)]  # a search's documents: with a tenant term SQLite took its index from 10 on
    statement = docs.openings_by_id(ten).compile(engine, compile_kwargs={"literal_binds": True})
    with engine.connect() as connection:
        plan = " ".join(str(row[-1]) for row in connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}"))
    engine.dispose()
    assert "sqlite_autoindex_document_1" in plan or "PRIMARY KEY" in plan, plan
    assert "tenant" not in plan, plan
