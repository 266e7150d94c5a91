"""Strings from outside (feed titles, URLs, a server's error text, page bodies) made harmless
where they meet a terminal, a markup renderer or XML. Pure functions, one per destination.

* `terminal`: control characters (C0 but tab, DEL, C1), which start ANSI/OSC sequences that can
  forge lines, move the cursor or retitle the window, and the bidirectional overrides and
  isolates that reorder what is shown ("Trojan Source"), become visible escapes (`\\x1b`,
  `\\u202e`). Newlines too, unless the text is a multi-line block (`lines=True`).
* `markup`: `terminal`, then Rich's markup escaped, so `[/]` or `[bold]` is shown as written
  instead of raising `MarkupError` or styling the screen.
* `xml_text`: the characters XML 1.0 cannot hold at all (C0 but tab/newline/CR, lone
  surrogates, U+FFFE/U+FFFF) dropped, so lxml accepts the text.
* `json_line`: a JSON document we print (already escaped for C0 by `json.dumps`) with DEL, C1
  and the bidi controls turned into `\\uXXXX` escapes: the same JSON value, no raw controls.
"""

from __future__ import annotations

import re

from rich.markup import escape as _rich_escape

# C0 except tab and newline, DEL, C1; bidi embeddings/overrides (U+202A-E) and isolates
# (U+2066-9); lone surrogates (from JSON escapes), which no terminal encoding can write
_UNSAFE = "\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff"
_UNSAFE_LINE = re.compile(f"[{_UNSAFE}\t\n]")
_UNSAFE_BLOCK = re.compile(f"[{_UNSAFE}]")
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_JSON_RAW = re.compile("[\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def _visible(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def terminal(text: object, lines: bool = False) -> str:
    """`text` as it may be written to a terminal: control characters shown, not obeyed."""
    return (_UNSAFE_BLOCK if lines else _UNSAFE_LINE).sub(_visible, str(text))


def markup(text: object) -> str:
    """`text` for a Rich renderer: terminal-safe and with its markup escaped."""
    return _rich_escape(terminal(text))


def xml_text(text: str) -> str:
    """`text` with the characters XML 1.0 forbids removed (lxml refuses them)."""
    return _NOT_XML.sub("", text)


def json_line(doc: str) -> str:
    """A JSON text with its raw DEL, C1 and bidi control characters written as escapes."""
    return _JSON_RAW.sub(lambda m: f"\\u{ord(m.group()):04x}", doc)
