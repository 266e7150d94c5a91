"""Publication is atomic and idempotent; corrections become `updated`."""

import copy
import json
import zlib

import redis

from ingest.core.settings import Settings
from tests import pages
from workers.context import Context
from workers.pipeline import process


def payload(url: str, paras: list[str], guid: str = "g1") -> dict:
    html = pages.article_page("A title", paras, boilerplate=False)
    from ingest.core.urls import article_id

    return {
        "feed": {"id": "f1", "url": "http://127.0.0.1/feed", "title": "F", "tags": [], "language": "en", "topic": ""},
        "item": {"guid": guid, "link": url, "title": "A title", "authors": [], "published_at": None,
                 "tags": [], "summary": "", "content": "", "image": ""},
        "link": url, "link_id": article_id(url), "guid_hash": guid,
        "page": {"url": url, "status": 200, "content_type": "text/html", "outcome": "ok",
                 "html_z": zlib.compress(html.encode()), "error": ""},
        "discovered_at": 0, "fetched_at": "2026-01-01T00:00:00Z",
    }  # fmt: skip


def test_rerun_is_a_duplicate_and_a_correction_is_updated(r: redis.Redis, redis_url: str) -> None:
    ctx = Context.build(Settings(), r)
    paras = pages.paragraphs(pages.BOLIVIA)
    first = payload("http://127.0.0.1/a?utm_source=x", paras)
    assert process(ctx, first) == "published"
    assert process(ctx, copy.deepcopy(first)) == "duplicate"  # an RQ re-run
    # same text under another URL on another site: an exact content duplicate
    assert process(ctx, payload("http://127.0.0.2/b", paras, guid="g2")) == "duplicate"
    # a material correction of the same URL
    changed = (
        paras[:2]
        + ["A new paragraph added in an update, with several new facts about it."] * 3
        + paras[2:]
    )
    assert process(ctx, payload("http://127.0.0.1/a", changed, guid="g3")) == "updated"
    entries = r.xrange("news:articles")
    assert [e[1][b"event"] for e in entries] == [b"created", b"updated"]
    assert json.loads(entries[0][1][b"data"])["id"] == json.loads(entries[1][1][b"data"])["id"]


def test_routing_streams_carry_the_record_too(r: redis.Redis, redis_url: str) -> None:
    settings = Settings().with_overrides(stream={"route_topics": True, "route_languages": True})
    ctx = Context.build(settings, r)
    assert (
        process(ctx, payload("http://127.0.0.1/war", pages.paragraphs(pages.WAR_REPORT)))
        == "published"
    )
    ((main_id, main),) = r.xrange("news:articles")
    record = json.loads(main[b"data"])
    assert record["topics"] and record["language"] == "en"
    for topic in record["topics"]:
        ((_id, routed),) = r.xrange(f"news:articles:topic:{topic['code']}")
        assert routed[b"main_id"] == main_id and json.loads(routed[b"data"])["id"] == record["id"]
    assert r.xlen("news:articles:lang:en") == 1
    plain = Context.build(Settings(), r)
    assert (
        process(plain, payload("http://127.0.0.1/b", pages.paragraphs(pages.BOLIVIA), "g9"))
        == "published"
    )
    assert r.xlen("news:articles:lang:en") == 1  # routing is off by default


def test_traces_keep_their_setting_and_can_be_switched_off(r: redis.Redis, redis_url: str) -> None:
    paras = pages.paragraphs(pages.BOLIVIA)
    ctx = Context.build(Settings().with_overrides(stream={"trace_days": 1}), r)
    assert process(ctx, payload("http://127.0.0.1/kept", paras)) == "published"
    (key,) = r.keys("news:trace:*")
    assert 0 < r.ttl(key) <= 86400

    r.flushall()
    quiet = Context.build(Settings().with_overrides(stream={"trace_days": 0}), r)
    assert process(quiet, payload("http://127.0.0.1/quiet", paras, guid="g2")) == "published"
    assert r.keys("news:trace:*") == []
    assert r.xlen("news:articles") == 1  # publication itself does not depend on traces


def _racing(ctx: Context, rival: Context, rivals: list[dict]) -> list[str]:
    """Before each of ctx's publish scripts, a rival worker publishes the next payload of
    `rivals` first: the URL mark ctx read is no longer the one it finds (a real interleaving on
    a real server, at the one point where it matters)."""
    real = ctx.publisher.publish
    outcomes: list[str] = []

    def publish(*args, **kwargs):  # type: ignore[no-untyped-def]
        if rivals:
            outcomes.append(process(rival, rivals.pop(0)))
        result = real(*args, **kwargs)
        outcomes.append(result.outcome)
        return result

    ctx.publisher.publish = publish  # type: ignore[method-assign]
    return outcomes


def test_a_publish_conflict_is_decided_again(r: redis.Redis, redis_url: str) -> None:
    """Two workers with the same URL: the loser's script finds the mark moved, decides again on
    what the winner wrote, and publishes its text as a correction (or nothing, when the texts
    are the same): never a second `created`."""
    paras = pages.paragraphs(pages.BOLIVIA)
    changed = paras[:2] + ["A new paragraph added in an update, with several new facts."] * 3
    ctx, rival = Context.build(Settings(), r), Context.build(Settings(), r)
    seen = _racing(ctx, rival, [payload("http://127.0.0.1/a", paras, guid="g2")])
    assert process(ctx, payload("http://127.0.0.1/a", changed + paras[2:])) == "updated"
    assert seen == ["published", "conflict", "published"]
    assert [e[1][b"event"] for e in r.xrange("news:articles")] == [b"created", b"updated"]

    r.flushdb()
    ctx, rival = Context.build(Settings(), r), Context.build(Settings(), r)
    seen = _racing(ctx, rival, [payload("http://127.0.0.1/b", paras, guid="g2")])
    assert process(ctx, payload("http://127.0.0.1/b", paras)) == "duplicate"
    assert seen == ["published", "conflict"]  # the second decision needs no script
    assert r.xlen("news:articles") == 1


def test_a_conflict_every_time_ends_as_a_named_failure(r: redis.Redis, redis_url: str) -> None:
    """A URL whose mark moves before each of our three attempts: `failed` ("publish conflict"),
    counted, with a dead letter holding the body for `replay`; no loop without end."""
    paras = pages.paragraphs(pages.BOLIVIA)
    versions = [
        paras[:i] + [f"Update {i}: a new paragraph with several new facts about it."] * 3
        for i in (1, 2, 3)
    ]  # each a material change of the one before
    ctx, rival = Context.build(Settings(), r), Context.build(Settings(), r)
    rivals = [payload("http://127.0.0.1/c", v, guid=f"r{i}") for i, v in enumerate(versions)]
    seen = _racing(ctx, rival, rivals)
    assert process(ctx, payload("http://127.0.0.1/c", paras)) == "failed"
    assert seen == ["published", "conflict", "updated", "conflict", "updated", "conflict"]
    assert r.hget("news:metrics:articles", "failed") == b"1"
    ((_id, letter),) = r.xrange("news:deadletter")
    assert letter[b"reason"] == b"failed" and letter[b"detail"] == b"publish conflict"


def test_an_unparseable_canonical_is_no_canonical(r: redis.Redis, redis_url: str) -> None:
    """`<link rel=canonical href="http://[oops/">` (not a URL): the page is its own canonical,
    for an article and for a page with too little text alike, never a crash."""
    ctx = Context.build(Settings(), r)
    job = payload("http://127.0.0.1/story", pages.paragraphs(pages.BOLIVIA))
    html = pages.article_page("A title", pages.paragraphs(pages.BOLIVIA), canonical="http://[oops/")
    job["page"]["html_z"] = zlib.compress(html.encode())
    assert process(ctx, job) == "published"
    ((_id, entry),) = r.xrange("news:articles")
    assert json.loads(entry[b"data"])["canonical_url"] == "http://127.0.0.1/story"
    short = payload("http://127.0.0.1/short", ["Too short."], guid="g2")
    empty = pages.article_page("Short", ["Too short."], canonical="http://[oops/")
    short["page"]["html_z"] = zlib.compress(empty.encode())
    assert process(ctx, short) in ("not_article", "page_too_short")
