"""Content gates for article pages: what came back is not something to extract from.

Pure functions of (content type, body), so they are tested without a server. The body is sniffed
as well as the header is read: servers label PDFs `text/html` and pages `application/octet-stream`.
"""

from __future__ import annotations

from ingest.core import outcomes

# Magic numbers of the things most often found at "article" URLs that are not pages.
SIGNATURES: tuple[tuple[int, bytes, str], ...] = (
    (0, b"%PDF-", "PDF"),
    (0, b"\x89PNG\r\n\x1a\n", "PNG image"),
    (0, b"\xff\xd8\xff", "JPEG image"),
    (0, b"GIF87a", "GIF image"),
    (0, b"GIF89a", "GIF image"),
    (0, b"PK\x03\x04", "zip archive"),
    (0, b"\x1f\x8b", "gzip data"),
    (0, b"ID3", "MP3 audio"),
    (4, b"ftyp", "MP4 video"),
    (8, b"WEBP", "WebP image"),
)
TEXT_TYPES = ("text/html", "application/xhtml+xml", "application/xml", "text/xml", "text/plain")


def sniff(body: bytes) -> str:
    """The binary format `body` starts with, or ''."""
    for offset, magic, name in SIGNATURES:
        if body[offset : offset + len(magic)] == magic:
            return name
    return ""


def check_article(content_type: str, body: bytes, url: str = "") -> None:
    """Raise the outcome that makes this response unusable as an article page."""
    if not body.strip():
        raise outcomes.EmptyBody("empty body", url=url)
    kind = sniff(body)
    if kind:
        raise outcomes.NotHTML(f"{kind} at an article URL", url=url)
    mime = content_type.split(";")[0].strip().lower()
    if mime and mime not in TEXT_TYPES and not mime.endswith("+xml"):
        head = body[:1024].lstrip().lower()
        if not head.startswith((b"<!doctype html", b"<html")):  # a page mislabelled is a page
            raise outcomes.NotHTML(f"content type {mime}", url=url)
