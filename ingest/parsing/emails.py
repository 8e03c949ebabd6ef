"""E-mail (RFC 822 / MIME): headers, the readable body, and attachments as child documents.

The document's text is built here: the subject, then the sender, recipients, date and the names
of the attachments, then the body's paragraphs. Each body part is decoded by the charset it
declares (Latin-1, Windows-1252, ...), falling back to UTF-8 and then Windows-1252 when the
declaration is missing or wrong, as mail clients do. Attachments are returned, not parsed: each
becomes a document of its own, so it gets its own pages, format checks and citations.
"""

from __future__ import annotations

import email
import email.policy
import re
from collections.abc import Callable, Iterator
from email.message import Message

from ingest.parsing.port import Attachment

EML = "message/rfc822"
MAX_ATTACHMENTS = 100
_HEADER_LINE = re.compile(rb"^[!-9;-~]+:")  # RFC 5322 field name: printable ASCII except ":"
_MAIL_HEADERS = {
    b"from",
    b"to",
    b"cc",
    b"subject",
    b"date",
    b"received",
    b"return-path",
    b"message-id",
    b"mime-version",
    b"content-type",
    b"delivered-to",
    b"reply-to",
    b"sender",
    b"x-mailer",
}
_SHOWN_HEADERS = ("From", "To", "Cc", "Date")
_PARAGRAPH_BREAK = re.compile(r"\n[ \t]*\n")
_SNIFF_WINDOW = 16384

HtmlBlocks = Callable[[str], list[tuple[str, str]]]  # HTML → [(text, kind)] for HTML-only bodies


def looks_like_email(data: bytes) -> bool:
    """A header block first (an mbox ``From `` line may precede it) naming at least two mail headers."""
    lines = data[:_SNIFF_WINDOW].split(b"\n")
    if lines and lines[0].startswith(b"From "):
        lines = lines[1:]
    known = 0
    for line in lines:
        line = line.rstrip(b"\r")
        if not line:
            break
        if line[:1] in (b" ", b"\t"):
            continue  # a folded continuation of the previous header
        if not _HEADER_LINE.match(line):
            return False
        known += line.split(b":", 1)[0].lower() in _MAIL_HEADERS
    return known >= 2


def parse_email(data: bytes, html_blocks: HtmlBlocks) -> tuple[list[tuple[str, str]], str | None, list[Attachment]]:
    """Split a message into ``(text, kind)`` blocks in reading order, its subject and its attachments."""
    message = email.message_from_bytes(data, policy=email.policy.default)
    subject = _header(message, "Subject")
    attachments = list(_attachments(message))
    blocks: list[tuple[str, str]] = []
    if subject:
        blocks.append((f"Subject: {subject}", "title"))
    header_lines = [f"{name}: {value}" for name in _SHOWN_HEADERS if (value := _header(message, name))]
    if attachments:
        header_lines.append("Attachments: " + ", ".join(a.filename for a in attachments))
    if header_lines:
        blocks.append(("\n".join(header_lines), "header"))
    blocks.extend(_body_blocks(message, html_blocks))
    return blocks, subject, attachments


def _header(message: Message, name: str) -> str | None:
    try:
        value = message.get(name)
    except Exception:  # noqa: BLE001 - a malformed header the policy cannot parse is left out
        return None
    if value is None:
        return None
    text = " ".join(_clean(str(value)).split())
    return text or None


def _clean(text: str) -> str:
    """Raw 8-bit header bytes arrive as surrogate escapes; decode them as Windows-1252."""
    raw = text.encode("utf-8", errors="surrogateescape")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("cp1252", errors="replace")


def _body_blocks(message: Message, html_blocks: HtmlBlocks) -> list[tuple[str, str]]:
    """The plain-text body if there is one, else the HTML body converted to text."""
    plain = [part for part in _inline_parts(message) if part.get_content_type() == "text/plain"]
    if plain:
        return [(p, "text") for part in plain for p in _paragraphs(decoded_text(part))]
    html = [part for part in _inline_parts(message) if part.get_content_type() == "text/html"]
    return [block for part in html for block in html_blocks(decoded_text(part))]


def _inline_parts(message: Message) -> Iterator[Message]:
    for part in message.walk():
        if part.is_multipart() or _is_attachment(part):
            continue
        yield part


def _is_attachment(part: Message) -> bool:
    if part.get_content_disposition() == "attachment":
        return True
    return part.get_filename() is not None and part.get_content_maintype() != "text"


def _attachments(message: Message) -> Iterator[Attachment]:
    count = 0
    for part in message.walk():
        if part.is_multipart() or not _is_attachment(part) or count >= MAX_ATTACHMENTS:
            continue
        payload = part.get_payload(decode=True)
        if isinstance(payload, bytes) and payload:
            count += 1
            yield Attachment(_clean(part.get_filename() or f"attachment-{count}"), payload)


def decoded_text(part: Message) -> str:
    """A text part's body decoded by its declared charset (then UTF-8, then Windows-1252)."""
    payload = part.get_payload(decode=True)
    raw = payload if isinstance(payload, bytes) else str(payload or "").encode("utf-8", "surrogateescape")
    for charset in (part.get_content_charset(), "utf-8"):
        if charset:
            try:
                return raw.decode(charset)
            except (LookupError, UnicodeDecodeError):
                continue
    return raw.decode("cp1252", errors="replace")


def _paragraphs(text: str) -> list[str]:
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return [block.strip() for block in _PARAGRAPH_BREAK.split(text) if block.strip()]
