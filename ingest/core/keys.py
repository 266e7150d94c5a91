"""Every Redis key the service uses, in one place, under one prefix."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Keys:
    prefix: str = "news:"

    def k(self, *parts: str) -> str:
        return self.prefix + ":".join(parts)

    # feed registry
    @property
    def feeds(self) -> str:  # SET of feed ids
        return self.k("feeds")

    @property
    def due(self) -> str:  # ZSET feed id -> next poll (unix seconds)
        return self.k("feeds", "due")

    def feed(self, feed_id: str) -> str:  # HASH of one feed's config and state
        return self.k("feed", feed_id)

    def feed_deferred(self, feed_id: str) -> str:  # HASH link id -> item JSON, not fetched yet
        return self.k("feed", feed_id, "deferred")

    def host_next(self, host: str) -> str:  # earliest next request to a host
        return self.k("host", host, "next")

    def host_inflight(self, host: str) -> str:  # ZSET lease token -> expiry (ms)
        return self.k("host", host, "inflight")

    def robots(self, origin: str) -> str:  # a robots.txt, compressed, with its TTL
        return self.k("robots", origin)

    @property
    def feeds_seeded(self) -> str:  # set once config/feeds.yaml has seeded the registry
        return self.k("feeds", "seeded")

    @property
    def poller_heartbeat(self) -> str:  # unix seconds of the poller's last loop, 120 s TTL
        return self.k("poller", "heartbeat")

    # seen state (ingest/core/seen.py): one HASH per generation and shard
    def seen(self, gen: int, shard: int) -> str:
        return self.k("seen", str(gen), f"{shard:x}")

    def trace(self, article_id: str) -> str:  # HASH: what happened to one article (core/observe)
        return self.k("trace", article_id)

    def inflight(self, article_id: str) -> str:
        return self.k("inflight", article_id)

    def page(self, claim: str) -> str:  # a fetched page body (ingest.core.bodies) waiting for its job
        return self.k("page", claim)

    # site template learning: see workers/template.py
    @property
    def template_sites(self) -> str:  # ZSET site -> last time one of its articles was learned
        return self.k("tpl", "sites")

    def template_lines(self, site: str, gen: int) -> str:  # HASH line fingerprint -> articles
        return self.k("tpl", site, str(gen), "lines")

    def template_stories(self, site: str, gen: int) -> str:  # SET article ids already counted
        return self.k("tpl", site, str(gen), "stories")

    # outputs
    @property
    def articles(self) -> str:
        return self.k("articles")

    @property
    def deadletter(self) -> str:
        return self.k("deadletter")

    def topic_stream(self, code: str) -> str:  # the articles of one IPTC topic
        return self.k("articles", "topic", code)

    def language_stream(self, lang: str) -> str:  # the articles of one language
        return self.k("articles", "lang", lang)

    def counters(self, family: str) -> str:  # HASH outcome -> count
        return self.k("metrics", family)

    def stage_metrics(self, stage: str) -> str:  # HASH of one stage's timing histogram
        return self.k("metrics", "stage", stage)

    def site_metrics(self, day: int) -> str:  # HASH of per-site outcome counts for one day
        return self.k("metrics", "sites", str(day))

    def published_slot(self, slot: int) -> str:  # publications in one 10 s slot (throughput)
        return self.k("metrics", "published10s", str(slot))

    # self-training (workers/learn.py)
    def learn_archive(self, lang: str) -> str:  # LIST: recent published texts of a language
        return self.k("learn", "archive", lang)

    def learn_model(self, lang: str) -> str:  # the installed model file's bytes
        return self.k("learn", "model", lang)

    def learn(self, name: str) -> str:  # languages, models, lock, stamp, last, scheduled
        return self.k("learn", name)
