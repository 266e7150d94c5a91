"""Property tests for the pure parsers and URL functions: arbitrary input gives a value or a named
error (MalformedFeed, FeedListError), never another exception. Example counts are kept modest so
that `make test` stays fast; docs/security.md records them (EXAMPLES below)."""

from __future__ import annotations

import contextlib
import json
import string
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingest.core import urls
from ingest.core.outcomes import MalformedFeed
from ingest.feeds import feedlist, feedparse
from workers.decode import decode

EXAMPLES = 300  # per property; 7 properties: 2,100 inputs per run of the suite
PROFILE = settings(
    max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)

URL_CHARS = string.ascii_letters + string.digits + "-._~:/?#[]@!$&'()*+,;=% \t\n\\^`{|}\"<>"
url_text = st.one_of(
    st.text(),
    st.text(alphabet=URL_CHARS),
    st.builds(
        lambda s, rest: s + rest,
        st.sampled_from(["http://", "https://", "x://", "//", "HTTP://", "http://[", ""]),
        st.text(alphabet=URL_CHARS),
    ),
)
host = st.from_regex(r"[a-z][a-z0-9-]{0,20}(\.[a-z]{2,6}){1,2}", fullmatch=True)
path = st.from_regex(r"(/[A-Za-z0-9._~-]{0,12}){0,4}", fullmatch=True)


@PROFILE
@given(url_text)
def test_canonical_url_and_article_id_are_total(url: str) -> None:
    assert isinstance(urls.canonicalize(url), str)
    aid = urls.article_id(url)
    assert len(aid) == 16 and all(c in "0123456789abcdef" for c in aid)
    assert isinstance(feedparse.page_url("http://127.0.0.1/feed", url), str)


@PROFILE
@given(host, path, st.sampled_from(["x", "ftp", "file", "javascript", "data"]))
def test_only_http_and_https_share_an_id(h: str, p: str, scheme: str) -> None:
    rest = f"{h}{p or '/'}"
    assert urls.article_id(f"http://{rest}") == urls.article_id(f"https://{rest}")
    assert urls.article_id(f"{scheme}://{rest}") != urls.article_id(f"http://{rest}")
    assert feedparse.page_url("", f"{scheme}://{rest}") == ""


json_value = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)
ITEM_KEYS = [
    "id",
    "url",
    "external_url",
    "title",
    "content_html",
    "content_text",
    "summary",
    "image",
    "banner_image",
    "date_published",
    "date_modified",
    "author",
    "authors",
    "tags",
    "language",
]
json_item = st.dictionaries(st.sampled_from(ITEM_KEYS), json_value | url_text, max_size=8)
json_feed = st.fixed_dictionaries(
    {
        "version": st.sampled_from(
            ["https://jsonfeed.org/version/1.1", "https://jsonfeed.org/version/1"]
        )
    },
    optional={
        "title": json_value,
        "home_page_url": json_value | url_text,
        "language": json_value,
        "items": st.lists(json_item | json_value, max_size=5),
    },
)


@PROFILE
@given(json_feed)
def test_json_feed_adapter_gives_items_or_malformed_feed(doc: dict[str, Any]) -> None:
    try:
        parsed = feedparse.parse(json.dumps(doc).encode(), url="http://127.0.0.1/feed.json")
    except MalformedFeed:
        return
    for item in parsed.items:
        assert item.link == "" or item.link.startswith(("http://", "https://"))
        assert all(isinstance(t, str) for t in item.tags + item.authors)


@PROFILE
@given(st.binary(max_size=400))
def test_any_bytes_are_a_feed_or_malformed_feed(body: bytes) -> None:
    with contextlib.suppress(MalformedFeed):
        feedparse.parse(body, url="http://127.0.0.1/feed")


yaml_entry = st.one_of(
    url_text,
    json_value,
    st.dictionaries(
        st.sampled_from(["url", "title", "tags", "language", "topic"]), json_value | url_text
    ),
)


@PROFILE
@given(
    st.one_of(
        st.binary(max_size=200),
        st.lists(yaml_entry, max_size=5).map(lambda v: json.dumps({"feeds": v}).encode()),
    )
)
def test_yaml_feed_lists_are_specs_or_feed_list_error(data: bytes) -> None:
    try:
        specs = feedlist.load_yaml(data)
    except feedlist.FeedListError:
        return
    assert all(s.url.lower().startswith(("http://", "https://")) for s in specs)


attr = st.text(alphabet=URL_CHARS, max_size=30).map(
    lambda s: s.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;")
)


@PROFILE
@given(
    st.one_of(
        st.binary(max_size=200),
        st.lists(attr, max_size=5).map(
            lambda xs: (
                '<?xml version="1.0"?><opml version="2.0"><body>'
                + "".join(f'<outline text="t" xmlUrl="{x}"/>' for x in xs)
                + "</body></opml>"
            ).encode()
        ),
    )
)
def test_opml_feed_lists_are_specs_or_feed_list_error(data: bytes) -> None:
    try:
        specs = feedlist.load_opml(data)
    except feedlist.FeedListError:
        return
    assert all(s.url.lower().startswith(("http://", "https://")) for s in specs)


charsets = st.sampled_from(
    [
        "",
        "text/html",
        "text/html; charset=utf-8",
        "text/html; charset=bogus",
        "text/html; charset=utf-16",
        "text/html; charset=gb18030",
        "text/html; charset=windows-1252",
        "text/html; charset=",
    ]
)
meta = st.sampled_from(
    [
        b"",
        b'<meta charset="utf-8">',
        b'<meta charset="nope">',
        b'<?xml version="1.0" encoding="x-zz"?>',
        b"\xef\xbb\xbf",
        b"\xff\xfe",
    ]
)


@PROFILE
@given(meta, st.binary(max_size=300), charsets)
def test_charset_decoding_always_gives_text(head: bytes, body: bytes, ctype: str) -> None:
    text, charset = decode(head + body, ctype)
    assert isinstance(text, str) and isinstance(charset, str)
