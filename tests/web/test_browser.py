"""The web page in Debian's Chromium against a real `enclave serve`: sign in (API key; OIDC code +
PKCE against a loopback provider), upload with progress, a streamed answer whose citation opens the
source with exactly the cited span marked, "not found" shown plainly, the auditor's view closed to a
reader and working for an auditor, deletion with its receipt, and /docs rendering air-gapped."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import DEV_HEADERS, DEV_KEY, REPO
from tests.web.conftest import Enclave, Watched, needs_chromium
from tests.web.fake_idp import FakeIdP, s256

pytestmark = [needs_chromium, pytest.mark.slow]

NDA = REPO / "samples" / "mutual-nda-acme-globex.txt"
QUESTION = "Which state's law governs the non-disclosure agreement?"
TIMEOUT_MS = 120_000
# Chromium's devtools cannot hand back a streamed fetch body, so the test tees /v1/query's stream in the page.
TEE_QUERY_STREAM = """
const original = window.fetch;
window.__queryStreams = [];
window.fetch = async (...args) => {
  const response = await original(...args);
  if (!String(args[0]).endsWith("/v1/query") || !response.body) return response;
  const [page, copy] = response.body.tee();
  new Response(copy).text().then((text) => window.__queryStreams.push(text));
  return new Response(page, {status: response.status, statusText: response.statusText, headers: response.headers});
};
"""


def sign_in_with_key(page: Any, url: str, key: str) -> None:
    page.goto(url)
    page.get_by_label("API key").fill(key)
    page.get_by_role("button", name="Sign in with key").click()
    page.locator("#views").wait_for(state="visible")


def stored_anywhere(page: Any) -> str:
    """Everything the page left in web storage and cookies, as one string."""
    return page.evaluate("() => JSON.stringify([{...localStorage}, {...sessionStorage}, document.cookie])")


def test_docs_render_offline_with_local_assets(page: Watched, enclave: Enclave) -> None:
    response = page.page.goto(f"{enclave.url}/docs")
    assert "default-src 'self'" in response.headers["content-security-policy"]
    page.page.locator(".swagger-ui .info .title").wait_for()
    assert "Enclave" in page.page.locator(".swagger-ui .info .title").inner_text()
    assert page.page.locator(".opblock-tag", has_text="documents").count() == 1
    assert page.external == []


def test_page_headers_are_strict(enclave: Enclave) -> None:
    for path in ("/", "/static/js/app.js", "/static/app.css"):
        csp = httpx.get(enclave.url + path).headers["content-security-policy"]
        assert "script-src 'self';" in csp and "unsafe-inline" not in csp and "default-src 'none'" in csp, (path, csp)
    page_html = httpx.get(enclave.url + "/").text
    assert "<script>" not in page_html and " style=" not in page_html and "http" not in page_html.split("</head>")[0]


def test_upload_then_ask_then_open_the_cited_span(page: Watched, enclave: Enclave, tmp_path: Path) -> None:
    p = page.page
    p.add_init_script(TEE_QUERY_STREAM)
    sign_in_with_key(p, enclave.url, DEV_KEY)
    assert DEV_KEY not in stored_anywhere(p)  # the key lives in memory only

    p.locator(".tab[data-view=documents]").click()
    broken = tmp_path / "broken-scan.pdf"
    broken.write_bytes(b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\n%% truncated, no xref, no pages")
    p.get_by_label("Files to upload").set_input_files([str(NDA), str(broken)])
    p.get_by_role("button", name="Upload", exact=True).click()
    upload = p.locator(".upload[data-state=ready]", has_text=NDA.name)
    upload.wait_for(timeout=TIMEOUT_MS)
    assert upload.locator("progress").evaluate("el => el.value") == 1
    assert "ready" in upload.locator(".status").inner_text()
    failed = p.locator(".upload[data-state=failed]", has_text=broken.name)
    failed.wait_for(timeout=TIMEOUT_MS)
    reason = failed.locator(".status").inner_text()
    assert reason.startswith("failed: ") and len(reason) > len("failed: unknown reason"), reason
    nda_row = p.locator("#doc-rows tr", has_text=NDA.stem)
    nda_row.wait_for()
    # what the contract's opening states, read at ingest and shown beside its title
    assert (
        nda_row.locator("td").nth(1).inner_text()
        == "Acme Health Systems, Inc.; Globex Analytics LLC · effective 2025-03-03"
    )

    p.locator(".tab[data-view=ask]").click()
    p.get_by_label("Question").fill(QUESTION)
    p.locator("#ask-button").click()
    chip = p.locator("#citations .chip").first
    chip.wait_for(timeout=TIMEOUT_MS)
    p.wait_for_function("window.__queryStreams.length === 1")
    events = p.evaluate("window.__queryStreams[0]")
    answer = json.loads(events.split("event: answer\n")[1].splitlines()[0].removeprefix("data: "))
    assert events.count("event: token") >= 2 and answer["found"] is True
    assert p.locator("#answer").inner_text().strip() == answer["answer"].strip()

    cited = next(c for c in answer["citations"] if str(c["marker"]) == chip.get_attribute("data-marker"))
    chip.focus()
    p.keyboard.press("Enter")  # keyboard, not the mouse: chips are buttons
    mark = p.locator("#passage mark#cited-span")
    mark.wait_for()
    text = NDA.read_text(encoding="utf-8")
    assert mark.inner_text() == text[cited["start"] : cited["end"]]
    # the highlight is the supporting sentence itself, and every answer sentence stands on a quoted source sentence
    supports = [s for sentence in answer["sentences"] for s in sentence["sources"] if s["marker"] == cited["marker"]]
    assert supports and mark.inner_text() == supports[0]["quote"] and cited["end"] - cited["start"] < 400
    assert answer["sentences"] and answer["grounding"] in ("quoted", "verified")
    quotes = [s for sentence in answer["sentences"] for s in sentence["sources"]]
    assert all(text[s["start"] : s["end"]] == s["quote"] for s in quotes)
    assert "Federal Trade Commission" not in answer["answer"]
    assert p.evaluate("document.activeElement.id") == "passage"
    assert cited["title"] in p.locator("#passage-title").inner_text()
    assert (f"page {cited['page']}" if cited["page"] else "no page numbers") in p.locator("#passage-meta").inner_text()
    assert p.evaluate("document.documentElement.scrollWidth") <= 1366  # no sideways scrolling at 1366×768
    assert page.external == [] and not [e for e in page.errors if "Content Security Policy" in e]


def test_not_found_is_shown_plainly(page: Watched, enclave: Enclave) -> None:
    p = page.page
    sign_in_with_key(p, enclave.url, DEV_KEY)
    p.get_by_label("Question").fill("What was the lunar tide table for Reykjavik harbour in 1887?")
    p.locator("#ask-button").click()
    p.locator("#not-found").wait_for(timeout=TIMEOUT_MS)
    assert p.locator("#not-found").inner_text() == "Not found in your documents."
    assert p.locator("#citations .chip").count() == 0


def test_a_reader_cannot_open_the_auditor_view(page: Watched, enclave: Enclave) -> None:
    created = httpx.post(
        f"{enclave.url}/v1/keys", json={"roles": ["reader"], "name": "web-reader"}, headers=DEV_HEADERS
    )
    assert created.status_code == 201, created.text
    reader = created.json()["key"]
    p = page.page
    sign_in_with_key(p, enclave.url, reader)
    assert "reader" in p.locator("#who").inner_text()
    assert p.locator(".tab[data-view=audit]").is_hidden()
    p.evaluate("location.hash = '#audit'")
    assert p.locator("#view-audit").is_hidden() and p.locator("#view-ask").is_visible()
    status = p.evaluate(
        "key => fetch('/v1/audit', {headers: {Authorization: `Bearer ${key}`}}).then(r => r.status)", reader
    )
    assert status == 403
    p.locator(".tab[data-view=documents]").click()
    p.locator("#doc-rows tr", has_text=NDA.stem).wait_for()  # a reader sees the tenant's open documents...
    assert p.locator("#upload-form").is_hidden()  # ...but cannot change them
    assert p.locator("#doc-rows button").count() == 0
    revoked = httpx.delete(f"{enclave.url}/v1/keys/{created.json()['id']}", headers=DEV_HEADERS)
    assert revoked.status_code == 200
    p.locator(".tab[data-view=ask]").click()
    p.locator(".tab[data-view=documents]").click()  # the next call gets 401: back to the sign-in form
    p.locator("#signin").wait_for(state="visible")
    assert "sign in again" in p.locator("#signin-error").inner_text() and p.locator("#view-documents").is_hidden()


def test_oidc_sign_in_with_pkce_opens_the_auditor_view(page: Watched, enclave: Enclave, idp: FakeIdP) -> None:
    p = page.page
    p.goto(enclave.url)
    p.get_by_role("button", name="Sign in with single sign-on").click()
    p.locator("#views").wait_for(state="visible")
    asked, exchanged = idp.authorize_requests[-1], idp.token_requests[-1]
    assert asked["code_challenge_method"] == "S256" and s256(exchanged["code_verifier"]) == asked["code_challenge"]
    assert len(exchanged["code_verifier"]) >= 43 and asked["state"] != exchanged["code_verifier"]
    assert "code=" not in p.url and "alice" in p.locator("#who").inner_text()
    assert stored_anywhere(p) == '[{},{},""]'  # no token, no verifier left behind

    p.locator(".tab[data-view=audit]").click()
    p.locator("#chain[data-ok=true]").wait_for()
    assert "Chain verified" in p.locator("#chain").inner_text()
    assert "matches the anchor of" in p.locator("#chain").inner_text()  # held against the head kept outside
    p.get_by_label("Action").fill("passage.read")
    p.get_by_role("button", name="Search").click()
    p.wait_for_function(  # the filtered search replaces the unfiltered first page
        "() => { const rows = [...document.querySelectorAll('#audit-rows tr')];"
        " return rows.length > 0 && rows.every((r) => r.cells[3].textContent === 'passage.read'); }"
    )
    assert p.locator("#audit-rows tr").count() == p.locator("#audit-rows tr", has_text="passage.read").count()
    with p.expect_download() as download:
        p.get_by_role("button", name="Export JSON").click()
    records = json.loads(Path(download.value.path()).read_text(encoding="utf-8"))
    assert records and {r["action"] for r in records} == {"passage.read"} and records[0]["chunk_ids"]


def test_pkce_challenge_is_the_s256_of_a_fresh_verifier(page: Watched, enclave: Enclave) -> None:
    p = page.page
    p.goto(enclave.url)
    verifier, challenge = p.evaluate("""async () => {
        const pkce = await import('/static/js/pkce.js');
        const verifier = pkce.randomString(32);
        return [verifier, await pkce.challengeOf(verifier)];
    }""")
    assert len(verifier) == 43 and set(verifier) <= set(
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    )
    assert challenge == s256(verifier) and "=" not in challenge


def test_delete_asks_first_and_shows_the_erasure_receipt(page: Watched, enclave: Enclave) -> None:
    p = page.page
    sign_in_with_key(p, enclave.url, DEV_KEY)
    p.locator(".tab[data-view=documents]").click()
    row = p.locator("#doc-rows tr", has_text=NDA.stem)
    row.get_by_role("button", name="Delete").click()
    dialog = p.locator("#confirm-delete")
    assert dialog.is_visible() and NDA.stem in dialog.inner_text()
    dialog.get_by_role("button", name="Cancel").click()
    assert row.count() == 1
    row.get_by_role("button", name="Delete").click()
    dialog.get_by_role("button", name="Delete for good").click()
    p.locator("#receipt").wait_for()
    receipt = json.loads(p.locator("#receipt-text").inner_text())
    assert receipt["scope"] == "document" and len(receipt["receipt_sha256"]) == 64
    p.locator("#receipt").get_by_role("button", name="Close").click()
    p.locator("#doc-rows tr", has_text=NDA.stem).wait_for(state="detached")
    left = httpx.get(f"{enclave.url}/v1/documents", headers=DEV_HEADERS).json()["documents"]
    assert NDA.name not in [d["title"] for d in left]
