"""Strings from outside (feed titles, URLs, a server's error text, page bodies) made harmless
where they meet a terminal, a markup renderer or XML. Pure functions, one per destination.

* `terminal`: control characters (C0 but tab, DEL, C1), which start ANSI/OSC sequences that can
  forge lines, move the cursor or retitle the window, and the format characters (Unicode
  category Cf): the bidirectional overrides and isolates that reorder what is shown ("Trojan
  Source"), and the invisible ones (U+200B zero-width space, U+2060 word joiner, U+FEFF, the
  tag characters) that make two different strings look the same, become visible escapes
  (`\\x1b`, `\\u202e`, `\\u200b`). Newlines too, unless the text is a multi-line block
  (`lines=True`). The price: a soft hyphen (U+00AD) or an emoji's zero-width joiner is shown as
  its escape too.
* `markup`: `terminal`, then Rich's markup escaped, so `[/]` or `[bold]` is shown as written
  instead of raising `MarkupError` or styling the screen.
* `xml_text`: the characters XML 1.0 cannot hold at all (C0 but tab/newline/CR, lone
  surrogates, U+FFFE/U+FFFF) dropped, so lxml accepts the text.
* `json_line`: a JSON document we print (already escaped for C0 by `json.dumps`) with DEL, C1
  and the format characters turned into `\\uXXXX` escapes: the same JSON value, no raw
  controls.
"""

from __future__ import annotations

import re

from rich.markup import escape as _rich_escape

# Unicode category Cf (format characters) as of Unicode 15: written out, since deriving it
# from unicodedata costs ~90 ms on every start; tests/test_found.py checks that it covers
# every Cf character of the running Python's Unicode version.
FORMAT_CHARS = (
    "\u00ad\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u180e\u200b-\u200f"
    "\u202a-\u202e\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb\U000110bd\U000110cd"
    "\U00013430-\U0001343f\U0001bca0-\U0001bca3\U0001d173-\U0001d17a\U000e0001"
    "\U000e0020-\U000e007f"
)
# C0 except tab and newline, DEL, C1; the format characters (bidi overrides and isolates,
# zero-width ones); lone surrogates (from JSON escapes), which no terminal encoding can write
_UNSAFE = "\x00-\x08\x0b-\x1f\x7f-\x9f" + FORMAT_CHARS + "\ud800-\udfff"
_UNSAFE_LINE = re.compile(f"[{_UNSAFE}\t\n]")
_UNSAFE_BLOCK = re.compile(f"[{_UNSAFE}]")
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_JSON_RAW = re.compile(f"[\x7f-\x9f{FORMAT_CHARS}]")


def _visible(match: re.Match[str]) -> str:
    code = ord(match.group())
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


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
    """A JSON text with its raw DEL, C1 and format characters written as escapes (a character
    beyond the BMP as its UTF-16 surrogate pair, as JSON spells it)."""
    return _JSON_RAW.sub(lambda m: _json_escape(m.group()), doc)


def _json_escape(char: str) -> str:
    code = ord(char)
    if code < 0x10000:
        return f"\\u{code:04x}"
    code -= 0x10000
    return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"
