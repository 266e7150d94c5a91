"""A line's identity whatever its typography: the key both sides agree on for feed furniture.

The poller lists the keys of lines that recur across a feed's items (ingest/feeds/identity.py,
`furniture`); the worker drops the lines of its text with those keys before fingerprinting
(workers/dedup.py). Both must compute the key the same way, so it lives here, once.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata

_TOKENS = re.compile(r"\w+")


def line_key(line: str) -> str:
    """8 hex digits of the line's casefolded words ("" for a line of fewer than 2 words)."""
    toks = _TOKENS.findall(unicodedata.normalize("NFKC", line).casefold())
    if len(toks) < 2:
        return ""
    return hashlib.blake2b(" ".join(toks).encode(), digest_size=4).hexdigest()
