"""Bytes to text the way browsers choose a charset, with a guard against wrong declarations.

Order: BOM, then the HTTP `charset`, then `<meta charset>` / `http-equiv` anywhere in the first
64 KB (not only the first 1024 bytes: many CMSs put it later), then detection. A declared
charset is distrusted when the bytes do not decode with it, or when it claims a single-byte
Latin charset but the bytes are valid multi-byte UTF-8 (the common CMS mistake). Latin-1 is read
as windows-1252, as browsers do, so curly quotes never turn into C1 control characters.
"""

from __future__ import annotations

import codecs
import re

from charset_normalizer import from_bytes

BOMS = (
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
_HEADER_CHARSET = re.compile(r"charset\s*=\s*[\"']?([\w.:-]+)", re.I)
_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([\w.:-]+)""", re.I)
_XML_ENCODING = re.compile(rb"""^\s*<\?xml[^>]+encoding\s*=\s*["']([\w.:-]+)""", re.I)
SINGLE_BYTE_LATIN = {"iso8859-1", "cp1252", "ascii", "iso8859-15"}
ALIASES = {"iso8859-1": "cp1252", "ascii": "cp1252"}  # WHATWG: these labels mean windows-1252


def _norm(label: str | None) -> str | None:
    if not label:
        return None
    try:
        name = codecs.lookup(label.strip().strip("\"'")).name
    except LookupError:
        return None
    if name in ("gb2312", "gbk"):
        return "gb18030"  # its superset; real pages labelled gb2312 use gbk characters
    return name


def declared(body: bytes, content_type: str = "") -> str | None:
    match = _HEADER_CHARSET.search(content_type or "")
    found = _norm(match.group(1)) if match else None
    if found:
        return found
    head = body[:65536]
    for rx in (_XML_ENCODING, _META_CHARSET):
        m = rx.search(head)
        if m and (label := _norm(m.group(1).decode("ascii", "ignore"))):
            # a page that is not utf-16 cannot declare it in ASCII bytes
            return "utf-8" if label.startswith("utf-16") else label
    return None


def _is_multibyte_utf8(body: bytes) -> bool:
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return any(b >= 0x80 for b in body)


def decode(body: bytes, content_type: str = "") -> tuple[str, str]:
    """Return (text, charset used)."""
    for bom, name in BOMS:
        if body.startswith(bom):
            return body[len(bom) :].decode(name, errors="replace"), name
    label = declared(body, content_type)
    if label in SINGLE_BYTE_LATIN and _is_multibyte_utf8(body):
        label = "utf-8"  # declared Latin-1 but really UTF-8
    if label:
        label = ALIASES.get(label, label)
        try:
            return body.decode(label), label
        except (UnicodeDecodeError, LookupError):
            pass  # the declaration is wrong: detect instead
    try:
        return body.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    best = from_bytes(body[:200_000]).best()
    if best is not None and best.encoding:
        name = ALIASES.get(_norm(best.encoding) or "", _norm(best.encoding) or "cp1252")
        return body.decode(name, errors="replace"), name
    return body.decode("cp1252", errors="replace"), "cp1252"
