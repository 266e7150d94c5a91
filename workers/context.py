"""What the article path runs with, built once per worker process (workers/jobs.py): the
settings, the Redis client and its key names, the dedup memory, the publisher, the lexicon and
topic models, and the sites' learned templates. Every stage takes it as its first argument."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import redis

from ingest.core.keys import Keys
from ingest.core.seen import SeenStore
from ingest.core.settings import Settings
from workers import classify, learn
from workers.publish import Publisher
from workers.template import SiteTemplates


@dataclass
class Context:
    settings: Settings
    r: redis.Redis
    keys: Keys
    seen: SeenStore
    publisher: Publisher
    lexicon: classify.Lexicon
    templates: SiteTemplates  # the sites' learned template lines
    model: Any = None  # a workers.topic_model.TopicModel when classify.model is set
    learned: learn.LearnedModels | None = None  # models learnt from the stream (classify.learn)

    @classmethod
    def build(cls, settings: Settings, r: redis.Redis) -> Context:
        keys = Keys(settings.redis.prefix)
        seen = SeenStore(r, keys, settings.dedup.window_days, settings.dedup.shards)
        return cls(
            settings=settings,
            r=r,
            keys=keys,
            seen=seen,
            publisher=Publisher(r, keys, seen, settings.stream.maxlen),
            lexicon=classify.cached_lexicon(settings.classify.taxonomy),
            model=_model(settings.classify.model),
            templates=SiteTemplates(r, keys, settings.template),
            learned=learn.LearnedModels(keys) if settings.classify.learn else None,
        )


def warm(settings: Settings) -> None:
    """Load the lexicon and topic model a Context will use (a parent does this before forking
    its workers)."""
    classify.cached_lexicon(settings.classify.taxonomy)
    _model(settings.classify.model)


@lru_cache(maxsize=2)
def _model(path: str) -> Any:
    if not path:
        return None
    from workers.topic_model import TopicModel

    return TopicModel.load(path)
