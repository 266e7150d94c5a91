"""Bylines, credits, signatures and promotions: the lines around a story that are about who
wrote it or what to do next, in English, French and German.

Structure first, phrases second. Every rule needs a short line (at most EDGE_WORDS words,
except promotions) and, for most, a position: bylines and credits sit in the first HEAD lines
or the last TAIL lines of the body, signatures and promotions in the last TAIL lines. Inside
those places a line is recognised by its shape (a byline verb and a name, a name next to a
date, an e-mail address, a social handle or profile URL, a link-only line) and only then by a
phrase list. A line in the middle of the story is never judged by these rules, except a photo
credit and a "see also" link, whose shapes do not occur in prose.

`judge(lines, links, title)` returns, for each line, the rule that removes it ("" to keep).
"""

from __future__ import annotations

import re

HEAD = 2  # bylines, datelines and the headline repeated sit in the first lines of a body
TAIL = 3  # signatures, promotions and bylines at the end sit in the last lines
EDGE_WORDS = 14  # a byline, credit or signature line is short
PROMO_WORDS = 60  # a promotion may be a full sentence or two

_MONTHS = (
    r"jan(?:uary|vier|uar)?|feb(?:ruary|ruar)?|févr(?:ier)?|fevrier|mar(?:ch|s)?|märz|maerz"
    r"|apr(?:il)?|avr(?:il)?|may|mai|jun[ei]?|juin|jul[iy]?|juil(?:let)?|aug(?:ust)?|août|aout"
    r"|sep(?:t(?:ember|embre)?)?|oct(?:ober|obre)?|okt(?:ober)?|nov(?:ember|embre)?"
    r"|dec(?:ember)?|déc(?:embre)?|dez(?:ember)?"
)
_DATE = re.compile(
    rf"\b(?:\d{{1,2}}(?:st|nd|rd|th|er|\.)?\s+(?:{_MONTHS})\.?,?\s+\d{{4}}"
    rf"|(?:{_MONTHS})\.?\s+\d{{1,2}}(?:st|nd|rd|th)?,?\s+\d{{4}}"
    r"|\d{1,2}[./]\d{1,2}[./]\d{2,4}|\d{4}-\d{2}-\d{2})\b"
    r"(?:\s*(?:[,|·•–-]|at|à|um)?\s*\d{1,2}[:.h]\d{2}(?:\s*(?:am|pm|uhr|[A-Z]{2,4}))?)?",
    re.I,
)
_WEEKDAYS = re.compile(
    r"\b(?:mon|tue|wed|thu|fri|sat|sun)[a-z]*\.?,?|\b(?:lundi|mardi|mercredi|jeudi|vendredi"
    r"|samedi|dimanche|montag|dienstag|mittwoch|donnerstag|freitag|samstag|sonntag),?",
    re.I,
)
_NAME = r"(?:[A-ZÀ-ÖØ-Þ][\w'’.-]*|de|du|van|von|der|den|le|la|di|da|al|bin|el)"
_NAMES = rf"{_NAME}(?:\s+{_NAME}){{0,4}}(?:\s*(?:,|and|und|et|&)\s*{_NAME}(?:\s+{_NAME}){{0,4}})*"
_BYLINE = re.compile(  # names are case-sensitive: "By the end of May" is not a byline
    rf"^(?i:by|par|von|text(?:e)?\s*:|words\s*:|interview\s*:|reporting by)\s*:?\s+{_NAMES}"
    r"(?:\s*(?:[,|·•–—(-]|in|à|aus)\s*.{0,60})?$"
)
_CMS_CREDIT = re.compile(
    r"^(?:submitted|posted|written|published|updated|last updated)\s+(?:by\s+.{1,60}?\s+)?"
    r"(?:on|at|in)\s+.{2,60}$"
    r"|^(?:submitted|posted|written|published|contributed)\s+by\s+.{1,60}$"
    r"|^(?:publié|posté|écrit|mis à jour|modifié)\s+(?:par\s+.{1,60}?\s+)?(?:le|à)\s+.{2,60}$"
    r"|^(?:publié|posté|écrit)\s+par\s+.{1,60}$"
    r"|^(?:veröffentlicht|geschrieben|erstellt|aktualisiert|zuletzt aktualisiert)\s+"
    r"(?:von\s+.{1,60}?\s+)?(?:am|um)\s+.{2,60}$"
    r"|^(?:veröffentlicht|geschrieben|erstellt)\s+von\s+.{1,60}$",
    re.I,
)
_NAME_WORD = re.compile(rf"^{_NAME}$")
_GLUE = {"and", "und", "et", "by", "par", "von", "am", "le", "on", "at", "à", "um", "in",
         "updated", "aktualisiert", "mis", "jour", "uhr", "published", "publié", "veröffentlicht",
         "|", "·", "•", "-", "–", "—", ",", "/"}  # fmt: skip
_PHOTO_CREDIT = re.compile(
    r"^\(?(?:photo|foto|bild|image|picture|illustration|crédits?(?: photo)?|photo credit"
    r"|bildquelle|quelle|fotos?)\s*(?:[:©]|by\b|de\b|von\b)\s*.{1,80}\)?$"
    r"|^©\s*\S.{0,60}$|^\((?:photo|foto|bild)\s*:.{1,60}\)$",
    re.I,
)
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_HANDLE = re.compile(r"(?<![\w@/])@\w{2,30}\b")
_PROFILE = re.compile(
    r"\b(?:twitter\.com|x\.com|linkedin\.com/in|facebook\.com|instagram\.com|threads\.net"
    r"|bsky\.app/profile|mastodon\.\w+)/\S+", re.I
)  # fmt: skip
_CONTACT = re.compile(
    r"\b(?:follow|reach|contact|write to|tips?|suivez|joindre|contactez"
    r"|écrivez|folgen|erreichen|kontakt|schreiben sie)\b", re.I
)  # fmt: skip
_TWEET_EMBED = re.compile(r"^[—–-]\s*.{1,60}\(@\w+\)")  # "— Name (@handle) date": a quoted tweet
_SEE_ALSO = re.compile(
    r"^(?:also on\b|see also\b|read also\b|related\s*:|more\s*:|read more\s*:|lire aussi\b"
    r"|à lire aussi\b|a lire aussi\b|voir aussi\b|lesen sie auch\b|auch interessant\b"
    r"|mehr zum thema\b|siehe auch\b)", re.I
)  # fmt: skip
_PROMO = re.compile(
    # English
    r"\b(?:sign up|subscribe|register)\b.{0,60}\b(?:newsletter|inbox|briefing|updates|alerts|"
    r"digest)\b|\bnewsletter\b.{0,40}\b(?:sign up|subscribe)\b"
    r"|\bif you (?:enjoyed|liked|value|appreciate)d? (?:this|our|reading)\b"
    r"|\blike this (?:story|article)\?|\bshare (?:it|this) with a friend\b"
    r"|\bsupport (?:our|independent|quality|local) journalism\b"
    r"|\bbecome a (?:member|subscriber|supporter|patron)\b|\bjoin (?:us|today|now)\b.{0,40}member"
    r"|\b(?:download|get) (?:our|the) (?:free )?app\b"
    r"|\bthis copy is for your personal,? non-commercial use\b|^(?:order reprints|print article)$"
    # French
    r"|\b(?:abonnez-vous|inscrivez-vous)\b.{0,60}\b(?:newsletter|lettre|alertes|gratuitement"
    r"|notre (?:journal|site|média))|\brecevez (?:notre|nos|gratuitement)\b.{0,40}"
    r"(?:newsletter|lettre)|\bsoutenez (?:notre|le|un) (?:journalisme|média|rédaction)\b"
    r"|\bdevenez (?:membre|abonné)|\btéléchargez (?:notre|l'|l’)\s?app"
    r"|\bcet article vous a plu\b|\bpartagez cet article\b"
    # German
    r"|\bnewsletter (?:abonnieren|bestellen)\b|\bjetzt (?:abonnieren|anmelden|registrieren)\b"
    r"|\bmelden sie sich\b.{0,40}\bnewsletter\b|\bunterstützen sie (?:unseren|unabhängigen|uns)\b"
    r"|\bwerden sie (?:mitglied|abonnent)|\bladen sie (?:unsere|die) app\b"
    r"|\bhat ihnen (?:dieser|der) artikel gefallen\b|\bartikel teilen\b",
    re.I,
)


def _norm(text: str) -> str:
    return " ".join(text.replace("\u00a0", " ").split()).casefold()


_SITE_SUFFIX = re.compile(r"\s+[|–—-]\s+|\s+::\s+")
_BULLET = re.compile(r"^[-–•*·]\s+")
_BARE_URL = re.compile(r"^(?:https?://|www\.)\S+$", re.I)


def title_keys(title: str) -> set[str]:
    """The headline as a body might repeat it: whole, and without a " | Site" part."""
    if not title.strip():
        return set()
    parts = [p for p in _SITE_SUFFIX.split(title) if p.strip()]
    return {_norm(title), _norm(max(parts, key=len))} if parts else {_norm(title)}


def see_also(line: str, links: set[str]) -> bool:
    """"Also on site.com <headline>", "Lire aussi : <headline>": a prefix and a link text."""
    m = _SEE_ALSO.match(line)
    if not m:
        return False
    rest = " ".join(line[m.end():].split()).lstrip(":–—- ")
    collapsed = " ".join(line.split())
    return collapsed in links or rest in links or any(
        len(link) >= 12 and link in rest and len(link) >= 0.5 * len(rest) for link in links
    )


def name_and_date(line: str) -> bool:
    """A line that is a date and a few names (an author, an agency) and nothing else:
    "Jane Doe | 19 November 2019", "Maria Lopez, 12. März 2024, 10:32 Uhr"."""
    if not _DATE.search(line):
        return False
    rest = _WEEKDAYS.sub(" ", _DATE.sub(" ", line))
    words = re.findall(r"[\w'’.-]+|[|·•–—,/-]", rest)
    content = [w for w in words if w.casefold() not in _GLUE]
    if not content or len(content) > 6:
        return False
    return all(_NAME_WORD.match(w) for w in content)


def is_byline(line: str) -> bool:
    return bool(_BYLINE.match(line) or _CMS_CREDIT.match(line) or name_and_date(line))


def is_signature(line: str) -> bool:
    """An author's sign-off: an e-mail address, a handle or a profile URL on a short line or
    with a contact word ("may be reached at", "follow her on")."""
    if _EMAIL.search(line) or _PROFILE.search(line):
        return True
    return bool(_HANDLE.search(line)) and (
        len(line.split()) <= 6 or bool(_CONTACT.search(line))
    )


def judge(lines: list[str], links: set[str] | None = None, title: str = "") -> list[str]:
    """The rule that removes each line ("" keeps it)."""
    links = links or set()
    n = len(lines)
    # the edges of a short body are narrower: in four paragraphs only the first and the last
    head_n, tail_n = max(1, min(HEAD, n // 3)), max(1, min(TAIL, n // 3))
    titles = title_keys(title)
    out = []
    for i, full in enumerate(lines):
        line = _BULLET.sub("", full)  # a list item's dash is not part of what it says
        words = len(line.split())
        head, tail = i < head_n, i >= n - tail_n
        edge = head or tail
        short = words <= EDGE_WORDS
        collapsed = " ".join(line.split())
        verdict = ""
        if _TWEET_EMBED.match(line):
            pass  # an embedded tweet's attribution is part of the quote
        elif head and _norm(line) in titles:
            verdict = "title"
        elif short and _PHOTO_CREDIT.match(line):
            verdict = "credit"
        elif words <= 30 and see_also(line, links):
            verdict = "see_also"
        elif tail and _BARE_URL.match(collapsed):
            verdict = "bare_url"  # the page's own address printed under the story
        elif edge and short and is_byline(line):
            verdict = "byline"
        elif tail and words <= 40 and is_signature(line):
            verdict = "signature"
        elif (tail or words <= 12) and words <= PROMO_WORDS and _PROMO.search(line):
            verdict = "promotion"
        elif edge and short and collapsed in links and not line.rstrip().endswith((".", "?", "!")):
            verdict = "edge_link"  # a link alone at the edge: a kicker, a related headline
        out.append(verdict)
    return out
