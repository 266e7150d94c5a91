"""Post-extraction boilerplate cleaner: what trafilatura lets through, line by line.

Two kinds of rules, both on short lines only (a real paragraph that merely mentions "share" or
"cookies" is never touched):

* cut markers: a line that starts the page's tail (a comment form, a related-posts list, a
  newsletter box). It and everything after it go, when it sits in the last part of the text.
* drop lines: single boilerplate lines anywhere (share bars, "Advertisement", copyright lines,
  cookie notices, "Follow us on", "Click here to ...").
* bylines, credits, signatures and promotions (workers/credits.py): by structure and position
  first, phrases second.
"""

from __future__ import annotations

import re

from workers import credits

SHORT = 160  # characters: longer lines are content

_CUT = re.compile(
    r"^(?:leave a (?:reply|comment)|post a comment|add a comment|\d+ comments?|comments?"
    r"|(?:related|recommended|more|popular|trending) (?:posts?|articles?|stories|reading|news)"
    r"|you (?:may|might) also (?:like|be interested)|read (?:more|next|also)\b.{0,40}$"
    r"|(?:sign up|subscribe) (?:for|to) (?:our|the) .{0,30}newsletter"
    r"|your email address will not be published|about the author|share this(?: article| story)?:?"
    r"|tags?:|filed under:?)\b",
    re.I,
)
_DROP = re.compile(
    r"(?:^advertisement$|^advertisement\b.{0,20}$|^sponsored$|^share(?: on| via| this)?\b.{0,60}$"
    r"|^(?:facebook|twitter|linkedin|whatsapp|email|print|pinterest|reddit)"
    r"(?:\s*[|/·•,]\s*(?:facebook|twitter|x|linkedin|whatsapp|email|print|pinterest|reddit))*$"
    r"|all rights reserved|^(?:©|\(c\)|copyright\b)"
    r"|\b(?:we|this (?:site|website)) uses? cookies\b|\baccept (?:all )?cookies\b"
    r"|^follow us on\b|^click here\b|\brequired fields are marked\b"
    r"|^save my name, email|^notify me of (?:follow-up|new)"
    r"|^(?:log|sign) in to (?:post a )?comment|^comments are closed"
    r"|^(?:subscribe now|sign up now|subscribe to (?:our|the) newsletter)\b"
    # newsletter boxes
    r"|^(?:get|receive) (?:our|the) .{0,40}(?:newsletter|briefing|in your inbox)"
    r"|^enter your e-?mail|\bnewsletter sign[- ]?up\b|^thanks? for (?:signing up|subscribing)"
    # cookie notices
    r"|\bby continuing to (?:use|browse)\b|\bcookie (?:policy|settings|preferences)\b"
    # image captions and credits glued in as lines
    r"|^(?:image|photo|picture|video) (?:caption|copyright|credit)s?\b|^(?:photo|image|credit)s?:"
    r"|^\(?(?:photo|image|picture)s? (?:by|courtesy of)\b"
    r"|^[\w .'-]{2,40}/(?:reuters|ap|afp|getty images|epa|shutterstock|anadolu)\)?$)",
    re.I,
)


# Promotional sentences that close an article inside its last paragraph.
_PROMO = re.compile(
    r"\b(?:follow (?:us|him|her|them|@\w+) on|follow us\b|click here\b|subscribe (?:now|today|to)\b"
    r"|suivez-nous\b|folgen sie uns\b"
    r"|sign up (?:for|to)\b|tell us what you think|delivered (?:to|through) your (?:inbox|letterbox)"
    r"|download (?:our|the) app)",
    re.I,
)
_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z@\"'“])")


def _trim_promo(line: str) -> str:
    sentences = _SENTENCE.split(line)
    kept = [s for s in sentences if not (len(s) <= SHORT and _PROMO.search(s))]
    return " ".join(kept)


def clean(
    text: str, tail_from: float = 0.5, links: set[str] | None = None, title: str = ""
) -> tuple[str, list[str]]:
    """Return the cleaned text and the labels of what was removed. `links` (the page's link
    texts) and `title` (its headline) let the byline/credit/promotion rules (workers/credits.py)
    see a link-only line and the headline repeated at the top."""
    lines = [line.strip() for line in text.splitlines()]
    lines = [line for line in lines if line]
    removed: list[str] = []
    total = sum(len(line) for line in lines) or 1
    seen = 0
    for i, line in enumerate(lines):
        if seen / total >= tail_from and len(line) <= SHORT and _CUT.search(line):
            removed.append(f"tail:{line[:40]}")
            lines = lines[:i]
            break
        seen += len(line)
    kept = []
    for line in lines:
        if len(line) <= SHORT and _DROP.search(line):
            removed.append(f"line:{line[:40]}")
            continue
        kept.append(line)
    for i in range(max(0, len(kept) - 2), len(kept)):
        trimmed = _trim_promo(kept[i])
        if trimmed != kept[i]:
            removed.append(f"promo:{kept[i][:40]}")
            kept[i] = trimmed
    kept = [line for line in kept if line]
    verdicts = credits.judge(kept, links, title)
    removed += [f"{rule}:{line[:40]}" for line, rule in zip(kept, verdicts, strict=True) if rule]
    kept = [line for line, rule in zip(kept, verdicts, strict=True) if not rule]
    return "\n".join(kept), removed
