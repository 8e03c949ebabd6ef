"""Titles are redacted like text and sealed at rest like it (issue 15, finding 2).

A name and an SSN in a document's title (the ``title`` field, an HTML ``<title>``, a Markdown heading,
an e-mail subject) never come back in clear from a live server (uvicorn on 127.0.0.1, keys of a
tenant): not in ``/v1/documents``, search and query citations, the chat ``Sources:`` list or passages.
They are never embedded (the header every chunk is embedded with carries the redacted title), and
not one byte of them is stored in clear anywhere under the data directory (SQLite and its WAL, the
index, originals).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ingest.runtime import Components, build_components
from service.app import create_app
from service.auth.api_keys import create_key
from service.generation.openai_generator import OpenAICompatibleGenerator
from service.state import AppState, build_state
from tests.conftest import make_settings
from tests.security.test_erasure_canary import hits
from tests.service.portal.live import LiveServer

TENANT = "clinic"
NAMES = ["John Smith", "Maria Gonzalez", "Robert Chen", "Emily Johnson", "David Miller", "Sarah Williams"]
TEMPLATES = ["Discharge summary for {name}, SSN {ssn}", "{name} SSN {ssn}", "Lab results of {name} (SSN {ssn})"]
BODY = "Ward note {tag}.\n\nThe patient was discharged on March 3 after treatment for pneumonia.\n"
QUESTION = "When was the patient discharged after the pneumonia treatment?"


class RecordingEmbedder:
    """The real embedder, remembering every passage text it embeds (what the index's vectors are made of)."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self.passages: list[str] = []

    def embed_passages(self, texts: Sequence[str]) -> list[list[float]]:
        self.passages.extend(texts)
        result: list[list[float]] = self._inner.embed_passages(texts)
        return result

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


@dataclass
class Clinic:
    url: str
    data: Path
    state: AppState
    embedder: RecordingEmbedder
    admin: dict[str, str]
    reader: dict[str, str]
    secrets: list[str] = field(default_factory=list)  # every name and SSN put into a title

    @property
    def components(self) -> Components:
        return self.state.components

    def http(self, headers: dict[str, str]) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers=headers, timeout=120, trust_env=False)


def _bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture(scope="module")
def clinic(tmp_path_factory: pytest.TempPathFactory, embedder, parser) -> Iterator[Clinic]:  # type: ignore[no-untyped-def]
    """A live server with an admin key and a reader key (group ``phi-access``) of tenant ``clinic``."""
    data = tmp_path_factory.mktemp("titles") / "data"
    recording = RecordingEmbedder(embedder)
    settings_ = make_settings(data)
    components = build_components(settings_, embedder=recording, parser=parser)
    generator = OpenAICompatibleGenerator("http://127.0.0.1:9", "none")  # extractive answers: never called
    state = build_state(settings_, components=components, generator=generator)
    server = LiveServer(create_app(settings_, state))
    url = server.start()
    engine = components.engine
    admin = _bearer(create_key(engine, TENANT, ["admin"]).key)
    reader = _bearer(create_key(engine, TENANT, ["reader"], groups=["phi-access"]).key)
    yield Clinic(url, data, state, recording, admin, reader)
    server.stop()
    for task in (state.worker, state.retention):
        if task is not None:
            task.stop()
    components.close()


def _upload(http: httpx.Client, source: str, title: str, body: str, collection: str) -> str:
    """A phi document whose title is ``title``, given the way ``source`` says."""
    form = {"collection": collection, "classification": "phi"}
    if source == "field":
        form["title"] = title
        file = ("note.txt", body.encode())
    elif source == "html":
        file = ("note.html", f"<html><head><title>{title}</title></head><body><p>{body}</p></body></html>".encode())
    elif source == "markdown":
        file = ("note.md", f"# {title}\n\n{body}".encode())
    else:
        message = EmailMessage()
        message["From"], message["To"], message["Subject"] = "ward7@clinic.example", "records@clinic.example", title
        message.set_content(body)
        file = ("note.eml", message.as_bytes())
    accepted = http.post("/v1/documents", files={"file": file}, data=form)
    assert accepted.status_code == 202, accepted.text
    return str(accepted.json()["document_id"])


def _ready(http: httpx.Client, document_id: str, timeout: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body: dict[str, Any] = http.get(f"/v1/documents/{document_id}").json()
        if body["status"] in ("ready", "failed"):
            assert body["status"] == "ready", body
            return body
        time.sleep(0.1)
    raise AssertionError(f"document {document_id} not ready")


def _shown(reader: httpx.Client, document_id: str, collection: str) -> dict[str, str]:
    """Every response that shows the document's title, as the reader gets it."""
    shown = {
        "document": reader.get(f"/v1/documents/{document_id}").text,
        "listing": reader.get("/v1/documents", params={"collection": collection}).text,
        "search": reader.post("/v1/search", json={"query": QUESTION, "collections": [collection]}).text,
    }
    answer = reader.post("/v1/query", json={"query": QUESTION, "collections": [collection]})
    citation = answer.json()["citations"][0]
    shown["query"] = answer.text
    shown["passage"] = reader.get(
        f"/v1/documents/{document_id}/passage", params={"start": citation["start"], "end": citation["end"]}
    ).text
    chat = reader.post(
        "/v1/chat/completions",
        json={"model": f"enclave:{collection}", "messages": [{"role": "user", "content": QUESTION}]},
    )
    shown["chat"] = chat.text
    assert "Sources:" in chat.json()["choices"][0]["message"]["content"], chat.text
    return shown


ssns = st.builds(
    lambda a, g, s: f"{a:03d}-{g:02d}-{s:04d}", st.integers(1, 665), st.integers(1, 99), st.integers(1, 9999)
).filter(lambda ssn: len(set(ssn.replace("-", ""))) > 1)


@settings(max_examples=8, deadline=None, database=None)
@given(
    name=st.sampled_from(NAMES),
    ssn=ssns,
    template=st.sampled_from(TEMPLATES),
    source=st.sampled_from(["field", "html", "markdown", "email"]),
)
def test_a_title_with_a_name_and_an_ssn_is_shown_only_redacted(
    clinic: Clinic, name: str, ssn: str, template: str, source: str
) -> None:
    clinic.secrets += [name, ssn]
    collection, tag = f"c{uuid.uuid4().hex[:8]}", uuid.uuid4().hex[:8]
    before = len(clinic.embedder.passages)  # this document's passages follow
    with clinic.http(clinic.admin) as admin, clinic.http(clinic.reader) as reader:
        document_id = _upload(admin, source, template.format(name=name, ssn=ssn), BODY.format(tag=tag), collection)
        title = _ready(admin, document_id)["title"]
        # not picked by the tag: a phi rule may redact it (spaCy reads about 3% of 8-hex-digit tags as a name or place)
        embedded = clinic.embedder.passages[before:]
        assert "[US_SSN]" in title and "[PERSON-" in title, title  # the phi rule: SSN masked, name pseudonymised
        for where, text in _shown(reader, document_id, collection).items():
            assert ssn not in text and name not in text, (where, text)
            assert title in text, (where, title, text)
    assert embedded and all(ssn not in t and name not in t for t in embedded), embedded
    # the header every chunk is embedded with starts with the title as shown ("_" read as a space)
    assert all(t.startswith(title.replace("_", " ") + "\n") for t in embedded), (title, embedded)


def test_titles_are_stored_only_sealed_and_a_new_versions_title_is_redacted(clinic: Clinic) -> None:
    name, ssn, newer, canary = "Maria Gonzalez", "212-45-6788", "318-22-4410", f"qx{uuid.uuid4().hex[:12]}zz"
    clinic.secrets += [name, ssn, newer, canary]
    collection = f"c{uuid.uuid4().hex[:8]}"
    with clinic.http(clinic.admin) as admin:
        plain = admin.post(
            "/v1/documents",
            files={"file": ("memo.txt", b"The board met on Monday.")},
            data={"collection": collection, "title": f"Board memo {canary}"},
        )
        assert plain.status_code == 202, plain.text
        # a title without PII is shown as given (here under a rule that keeps everything), yet stored sealed
        assert _ready(admin, plain.json()["document_id"])["title"] == f"Board memo {canary}"
        document_id = _upload(
            admin, "field", f"Discharge summary for {name}, SSN {ssn}", BODY.format(tag="v1"), collection
        )
        _ready(admin, document_id)
        put = admin.put(
            f"/v1/documents/{document_id}",
            files={"file": ("note.txt", BODY.format(tag="v2").encode())},
            data={"title": f"Corrected summary for {name}, SSN {newer}"},
        )
        assert put.status_code == 202, put.text
        deadline = time.monotonic() + 120
        while (shown := _ready(admin, document_id))["version"] != 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert shown["version"] == 2 and shown["title"].startswith("Corrected summary for [PERSON-"), shown
        assert shown["title"].endswith("SSN [US_SSN]"), shown
    clinic.components.index.flush()  # the SQLite WAL stays as it is: it is scanned too
    for secret in set(clinic.secrets):
        assert hits(clinic.data, secret.encode()) == [], secret
