"""The article record of the stream (schema 1, docs/article.schema.json): built from the job,
the extraction, the fingerprints and the classification, and the extra streams it is routed to.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ingest.core.job import ArticleJob
from ingest.core.timefmt import iso_utc
from ingest.core.urls import host_of
from workers import classify, extract, language, learn, metadata
from workers.dedup import Fingerprints

if TYPE_CHECKING:
    from workers.context import Context

SCHEMA = 1


def summary_text(summary: str) -> str:
    """The feed's summary as text: HTML parsed (which decodes its entities), or, when it has no
    tags, its entities decoded here; either way once."""
    return metadata.text_field(extract.html_to_text(summary), decode="<" not in summary)[:2000]


def routes_for(ctx: Context, record: dict[str, Any]) -> list[str]:
    """The extra streams this record also goes to (settings stream.route_*)."""
    routes = []
    if ctx.settings.stream.route_topics:
        routes += [ctx.keys.topic_stream(t["code"]) for t in record["topics"]]
    if ctx.settings.stream.route_languages and record["language"] != "und":
        routes.append(ctx.keys.language_stream(record["language"]))
    return routes


def build_record(
    ctx: Context, payload: ArticleJob, ex: extract.Extracted, canonical: str, aid: str,
    fp: Fingerprints, duplicate_of: str | None, cluster_id: str | None,
) -> dict[str, Any]:  # fmt: skip
    feed, item, page = payload["feed"], payload["item"], payload["page"]
    title = metadata.text_field(item.get("title")) or ex.title  # entities decoded once
    cfg = ctx.settings.classify
    lang = language.detect(ex.text, declared=feed.get("language", ""),
                             allowed=tuple(cfg.languages))  # fmt: skip
    learned = ctx.learned.get(lang) if ctx.learned is not None and ctx.model is None else None
    model = ctx.model if ctx.model is not None else learned
    if model is not None:
        from workers.topic_model import assign

        topics = assign(
            model, ctx.lexicon, title, ex.text, tags=item.get("tags") or [],
            prior=feed.get("topic", ""), max_topics=cfg.max_topics, min_score=cfg.min_score,
            trust=cfg.model_trust, lang=lang, source=learn.SOURCE if learned else "",
        )  # fmt: skip
        if learned is not None:
            for topic in topics:
                topic["model"] = learned.meta.get("version", "")
    else:
        topics = classify.topics(
            ctx.lexicon, title, ex.text, tags=item.get("tags") or [], prior=feed.get("topic", ""),
            max_topics=cfg.max_topics, min_score=cfg.min_score, lang=lang,
        )  # fmt: skip
    if cfg.local_labels:
        classify.localise(ctx.lexicon, topics, lang)
    published = item.get("published_at") or iso_utc(ex.date)
    return {
        "schema": SCHEMA,
        "id": aid,
        "url": page["url"],
        "canonical_url": canonical,
        "feed": {"id": feed["id"], "url": feed["url"], "title": feed.get("title", "")},
        "guid": item.get("guid", ""),
        "title": title,
        "authors": item.get("authors") or ex.authors,
        "published_at": published,
        "fetched_at": payload["fetched_at"],
        "language": lang,
        "topics": topics,
        "text": ex.text,
        "summary": summary_text(item.get("summary") or ""),
        "site_name": ex.site_name or host_of(page["url"]),
        "image": item.get("image") or ex.image,
        "tags": item.get("tags") or [],
        "word_count": fp.words,
        "content_hash": fp.content_hash,
        "simhash": f"{fp.simhash:016x}",
        "duplicate_of": duplicate_of,
        "cluster_id": cluster_id or aid,
        "extraction": {
            "method": ex.method,
            # Feed and page both describe the story; the feed wins where it says something
            # (it is what the publisher meant to syndicate), the page fills the gaps.
            "title_source": "feed" if item.get("title") else "page",
            "authors_source": "feed" if item.get("authors") else "page",
            "date_source": "feed" if item.get("published_at") else "page",
            **ex.quality,
        },
    }
