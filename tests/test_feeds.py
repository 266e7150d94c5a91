"""Parsing real-world feeds (../shared/data/feeds) and our own nasty cases."""

import json

import pytest

from ingest.core import outcomes
from ingest.feeds import feedlist, feedparse
from tests.conftest import DATA, SHARED, corpus_present

FEEDS = SHARED / "feeds"
MANIFEST = [
    e
    for e in (json.loads((FEEDS / "manifest.json").read_text())["feeds"] if corpus_present() else [])
    if not e["file"].endswith(".opml")
] or [{"file": "absent"}]  # one placeholder, skipped with the corpus marker's reason


@pytest.mark.corpus
@pytest.mark.parametrize("entry", MANIFEST, ids=[e["file"] for e in MANIFEST])
def test_every_shared_feed_parses_with_all_its_items(entry: dict) -> None:
    parsed = feedparse.parse((FEEDS / entry["file"]).read_bytes(), url="https://example.org/feed")
    assert len(parsed.items) == entry["items"]
    assert all(it.link.startswith(("http://", "https://")) for it in parsed.items if it.link)
    assert any(it.title for it in parsed.items)


@pytest.mark.corpus
def test_json_feed_items_carry_content_and_dates() -> None:
    parsed = feedparse.parse((FEEDS / "netnewswire__curt.json").read_bytes())
    assert parsed.format == "json1"
    first = parsed.items[0]
    assert first.published_at and first.published_at.endswith("Z")
    assert first.content


@pytest.mark.corpus
def test_relative_links_are_resolved_against_the_feed() -> None:
    parsed = feedparse.parse((FEEDS / "node-feedparser__rss-with-relative-urls.xml").read_bytes(),
                             url="https://www.arcgames.com/en/feed")  # fmt: skip
    assert all(it.link.startswith("https://") for it in parsed.items)


def test_json_feed_items_carry_content_and_dates_own_fixture() -> None:
    parsed = feedparse.parse((DATA / "json-feed.json").read_bytes())
    assert parsed.format == "json1.1"
    assert [it.published_at for it in parsed.items] == ["2024-03-01T08:30:00Z",
                                                        "2024-03-02T10:00:00Z"]  # fmt: skip
    assert all(it.content for it in parsed.items)


def test_relative_links_are_resolved_against_the_feed_own_fixture() -> None:
    parsed = feedparse.parse((DATA / "relative-links.xml").read_bytes(),
                             url="https://www.example.com/en/feed")  # fmt: skip
    assert [it.link for it in parsed.items] == [
        "https://www.example.com/en/news/one",
        "https://www.example.com/en/news/two?x=1",
        "https://www.example.com/archive/three",
    ]


def test_html_page_instead_of_a_feed_is_malformed_feed() -> None:
    with pytest.raises(outcomes.MalformedFeed, match="HTML page"):
        feedparse.parse(b"<!DOCTYPE html><html><body><p>hello</p></body></html>")


def test_billion_laughs_is_not_expanded() -> None:
    lol = b"""<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">
<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
<!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
<!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
<!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
<!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
<!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
<!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">]>
<rss version="2.0"><channel><title>&lol9;</title><item><title>x</title>
<link>https://example.org/a</link></item></channel></rss>"""
    with pytest.raises(outcomes.MalformedFeed, match="entities"):
        feedparse.parse(lol)


def test_xxe_is_not_resolved(tmp_path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-VALUE")
    doc = f"""<?xml version="1.0"?><!DOCTYPE r [<!ENTITY xxe SYSTEM "file://{secret}">]>
<rss version="2.0"><channel><title>t &xxe;</title><item><title>&xxe;</title>
<link>https://example.org/a</link></item></channel></rss>""".encode()
    with pytest.raises(outcomes.MalformedFeed, match="entities"):
        feedparse.parse(doc)


@pytest.mark.corpus
def test_opml_nested_outlines_become_tags() -> None:
    specs = feedlist.load(FEEDS / "netnewswire__Subs.opml")
    assert len(specs) > 100
    assert all(s.url.startswith("http") for s in specs)


def test_opml_nested_outlines_become_tags_own_fixture() -> None:
    assert feedlist.load(DATA / "nested.opml") == [
        feedlist.FeedSpec("https://example.org/world.xml", "Example World", ["News", "World"]),
        feedlist.FeedSpec("https://example.org/front.xml", "Example Front", ["News"]),
        feedlist.FeedSpec("https://example.net/loose.rss", "Loose", []),
    ]


def test_opml_roundtrip(tmp_path) -> None:
    specs = [feedlist.FeedSpec("https://a.org/rss", "A", ["news", "world"])]
    path = tmp_path / "out.opml"
    path.write_text(feedlist.dump_opml(specs))
    assert feedlist.load(path) == [feedlist.FeedSpec("https://a.org/rss", "A", ["news", "world"])]


def test_bad_yaml_feed_list_is_a_clear_error(tmp_path) -> None:
    path = tmp_path / "f.yaml"
    path.write_text("feeds:\n  - url: ftp://x.org/feed\n")
    with pytest.raises(feedlist.FeedListError, match="not an http"):
        feedlist.load(path)


def test_items_per_feed_read_are_capped() -> None:
    items = "".join(f"<item><title>t{i}</title><link>https://example.org/{i}</link></item>"
                    for i in range(500))  # fmt: skip
    doc = f'<rss version="2.0"><channel><title>big</title>{items}</channel></rss>'.encode()
    assert len(feedparse.parse(doc, max_items=200).items) == 200


def test_entity_expansion_costs_no_memory() -> None:
    import tracemalloc

    lol = (
        b'<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "'
        + b"A" * 1000
        + b'">'
        + b"".join(
            b'<!ENTITY %s "%s">' % (bytes([98 + i]), (b"&" + bytes([97 + i]) + b";") * 10)
            for i in range(7)
        )
        + b']><rss version="2.0"><channel><title>&h;</title></channel></rss>'
    )
    tracemalloc.start()
    try:
        parsed = feedparse.parse(lol)
        title = parsed.title
    except outcomes.MalformedFeed:
        title = ""
    _current, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert len(title) < 10_000  # 10^7 * 1000 characters were it expanded
    assert peak < 50_000_000
