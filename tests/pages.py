"""Builders for test pages and feeds: our own markup around our own texts (tests/data/articles.json,
written for these tests, so that a bare clone needs nothing beside it)."""

from __future__ import annotations

import html
import json
from pathlib import Path

ARTICLES = Path(__file__).resolve().parent / "data" / "articles.json"
WAR_REPORT = "a1fca19b884e"  # Taliban prisoners flown to Qatar for a hostage swap (nypost, 2019)
BOLIVIA = "4a44ab3e4c41"
AUSTRIA = "5a822960e9a2"

BOILERPLATE = """
<div class="share-bar"><span>Share this:</span> <a href="#">Facebook</a> <a href="#">Twitter</a>
 <a href="#">Email</a></div>
<div id="comments" class="comments-area">
 <div id="respond" class="comment-respond">
  <h3 id="reply-title" class="comment-reply-title">Leave a Reply</h3>
  <form action="/wp-comments-post.php" method="post" id="commentform" class="comment-form">
   <p class="comment-notes"><span id="email-notes">Your email address will not be published.</span>
    Required fields are marked <span class="required">*</span></p>
   <p class="comment-form-comment"><label for="comment">Comment</label>
    <textarea id="comment" name="comment"></textarea></p>
   <p class="comment-form-author"><label for="author">Name</label><input id="author" name="author"></p>
   <p class="comment-form-cookies-consent"><input id="wp-comment-cookies-consent" type="checkbox">
    <label>Save my name, email, and website in this browser for the next time I comment.</label></p>
   <p class="form-submit"><input name="submit" type="submit" value="Post Comment"></p>
  </form>
 </div>
</div>
<footer class="site-footer"><p>© 2019 Example Daily News. All rights reserved.</p>
 <p><a href="/privacy">Privacy Policy</a> | <a href="/terms">Terms of Use</a></p></footer>
"""


def ground_truth(doc_id: str) -> dict[str, str]:
    data = json.loads(ARTICLES.read_text("utf-8"))
    for key, value in data.items():
        if key.startswith(doc_id):
            return dict(value)
    raise KeyError(doc_id)


def paragraphs(doc_id: str) -> list[str]:
    return [p.strip() for p in ground_truth(doc_id)["articleBody"].split("\n") if p.strip()]


def article_page(
    title: str, paras: list[str], canonical: str = "", boilerplate: bool = True
) -> str:
    body = "\n".join(f"<p>{html.escape(p)}</p>" for p in paras)
    link = f'<link rel="canonical" href="{html.escape(canonical)}">' if canonical else ""
    return f"""<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">
<title>{html.escape(title)} | Example Daily News</title>{link}
<meta property="og:title" content="{html.escape(title)}"></head><body>
<header><nav><a href="/">Home</a> <a href="/world">World</a> <a href="/politics">Politics</a></nav></header>
<main><article><h1>{html.escape(title)}</h1><p class="byline">By Staff Reporter</p>
{body}
</article>{BOILERPLATE if boilerplate else ""}</main></body></html>"""


def rss(title: str, items: list[dict[str, str]]) -> str:
    out = []
    for it in items:
        guid = it.get("guid", it["link"])
        out.append(f"""<item><title>{html.escape(it["title"])}</title>
<link>{html.escape(it["link"])}</link><guid>{html.escape(guid)}</guid>
<pubDate>Tue, 19 Nov 2019 10:00:00 GMT</pubDate>
<description>{html.escape(it.get("summary", ""))}</description></item>""")
    return f"""<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0"><channel><title>{html.escape(title)}</title><link>http://127.0.0.1/</link>
<description>test feed</description><language>en</language>
{"".join(out)}</channel></rss>"""


def json_feed(title: str, items: list[dict[str, str]]) -> str:
    return json.dumps({
        "version": "https://jsonfeed.org/version/1.1",
        "title": title,
        "items": [{"id": it.get("guid", it["link"]), "url": it["link"], "title": it["title"],
                   "content_text": it.get("summary", ""),
                   "date_published": "2019-11-19T10:00:00Z"} for it in items],
    })  # fmt: skip


_PLACES = ["Arden", "Belmont", "Corvale", "Dunmore", "Elsworth", "Fairhaven", "Glenrock",
           "Harwick", "Islington", "Juniper Bay", "Kestrel Point", "Lowmoor"]  # fmt: skip
_SUBJECTS = ["the city council", "the regional water board", "a group of local farmers",
             "the transport authority", "the hospital trust", "the port operator",
             "a coalition of teachers", "the housing association", "the fire service"]  # fmt: skip
_VERBS = ["approved", "rejected", "postponed", "debated", "announced", "questioned", "defended"]
_THINGS = ["a plan to rebuild the old bridge", "new rules for night buses",
           "a budget for flood defences", "the closure of two libraries",
           "a scheme to plant ten thousand trees", "longer opening hours for clinics",
           "a levy on empty shops", "the sale of the market hall"]  # fmt: skip


def distinct_story(n: int, paras: int = 6) -> list[str]:
    """Paragraphs of a plain English local-news story of our own, different for every `n` (no
    two share enough wording to be near-copies), for tests that need many distinct articles."""
    import random

    rnd = random.Random(n)
    place = _PLACES[n % len(_PLACES)]
    out = []
    for p in range(paras):
        sentences = []
        for _ in range(3):
            count = rnd.randint(12, 9000)
            sentences.append(
                f"In {place}, {rnd.choice(_SUBJECTS)} {rnd.choice(_VERBS)} "
                f"{rnd.choice(_THINGS)} on day {rnd.randint(1, 28)} of story {n}, "
                f"after {count} residents signed letter {n}-{p}-{rnd.randint(100, 999)}."
            )
        out.append(" ".join(sentences))
    return out
