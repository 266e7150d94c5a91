"""All settings in one typed table.

Precedence: `config/settings.toml` (or `--config PATH`) < environment `NEWS_INGEST_<SECTION>_<NAME>`
< command-line flags (applied by the CLI through `Settings.with_overrides`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, field_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

PROJECT = Path(__file__).resolve().parent.parent  # the checkout: config/ and var/ live here
DEFAULT_CONFIG = Path("config/settings.toml")


def locate(path: str | Path, *, create: bool = False) -> Path:
    """A relative path from the settings, so that `news-ingest` works from any directory: as
    given when it exists from the working directory, else the project's own (config/,
    var/valkey). A path found in neither stays as given, unless it is one to `create`."""
    given = Path(path)
    if given.is_absolute() or given.exists():
        return given
    ours = PROJECT / given
    return ours if create or ours.exists() else given


def _split_commas(value: Any) -> Any:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


class RedisSettings(BaseModel):
    url: str = ""
    prefix: str = "news:"
    embedded_port: int = 6399
    data_dir: str = "var/valkey"

    @field_validator("data_dir")
    @classmethod
    def _data_dir(cls, value: str) -> str:
        return str(locate(value, create=True))


class HostLimit(BaseModel):
    rate: float = 1.0  # requests per second; 0 = no spacing
    inflight: int = 2  # requests in flight at once, across all pollers; 0 = no limit


class PollSettings(BaseModel):
    min_interval: float = 120
    max_interval: float = 21600
    default_interval: float = 900
    max_backoff: float = 86400
    concurrency: int = 50
    lease: float = 300
    max_items: int = 200
    queue_high_water: int = 5000
    lag_high_water: int = 100_000
    fetch_claim: int = 600  # an item claimed for fetching by a poller that died is free after this
    host_rate: float = 1.0
    host_inflight: int = 2
    host_limits: dict[str, HostLimit] = {}
    stale_factor: float = 4


class FetchSettings(BaseModel):
    allow: Annotated[list[str], NoDecode] = []
    max_bytes: int = 10_000_000
    timeout: float = 20
    connect_timeout: float = 10
    max_redirects: int = 5
    user_agent: str = "news-ingest/0.1"
    robots: bool = True  # obey robots.txt for article pages (feeds are exempt)
    robots_ttl: float = 86400

    _split = field_validator("allow", mode="before")(_split_commas)


class WorkerSettings(BaseModel):
    count: int = 2
    batch_size: int = 8
    job_timeout: int = 300


class ExtractSettings(BaseModel):
    min_chars: int = 250
    include_tables: bool = True


class DedupSettings(BaseModel):
    window_days: float = 30
    drop_near_duplicates: bool = True
    simhash_max_distance: int = 3  # corrections: a text that moved more bits than this changed
    near_min_bands: int = 2  # near-copies: MinHash bands shared ...
    near_max_distance: int = 14  # ... or one band and at most this many SimHash bits apart
    shards: int = 4096  # hashes per seen-state generation


class ClassifySettings(BaseModel):
    taxonomy: str = "config/taxonomy.yaml"
    max_topics: int = 3
    min_score: float = 0.15
    languages: Annotated[list[str], NoDecode] = []
    model: str = ""  # a model from `news-ingest classify train`; empty: the lexicon only
    model_trust: float = 0.5  # below this probability of its first topic, the lexicon decides
    # learning from the stream (workers/learn.py): a self-labelled model per language
    learn: bool = True
    learn_archive: int = 5000  # texts kept per language (Redis, ~1.3 KB each: bench/learn.py)
    learn_min_texts: int = 300  # a language's first model needs this many
    learn_every: float = 86400  # refit a language's model when it is this old (seconds)
    learn_check: float = 3600  # the poller enqueues a refit job at most this often
    learn_gate_size: int = 200  # held-back texts the lexicon is surest of, compared
    learn_min_agreement: float = 0.6  # a first model must agree with the lexicon this often
    learn_tolerance: float = 0.02  # a refit may agree this much less than the installed model
    local_labels: bool = True  # topics also carry label_local in the article's language

    _split = field_validator("languages", mode="before")(_split_commas)

    @field_validator("taxonomy", "model")
    @classmethod
    def _files(cls, value: str) -> str:
        return str(locate(value)) if value else value


class StreamSettings(BaseModel):
    maxlen: int = 1_000_000
    queue: str = "articles"
    route_topics: bool = False  # also to <prefix>articles:topic:<code>, per assigned topic
    route_languages: bool = False  # also to <prefix>articles:lang:<code>
    trace_days: float = 3.0  # per-article traces for `explain` (1-2 KB each); 0 keeps none

    @property
    def trace_ttl(self) -> int:
        """Seconds a trace is kept (0: none)."""
        return int(self.trace_days * 86400)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="NEWS_INGEST_",
        env_nested_delimiter="_",
        env_nested_max_split=1,
        extra="ignore",
    )

    redis: RedisSettings = RedisSettings()
    poll: PollSettings = PollSettings()
    fetch: FetchSettings = FetchSettings()
    worker: WorkerSettings = WorkerSettings()
    extract: ExtractSettings = ExtractSettings()
    dedup: DedupSettings = DedupSettings()
    classify: ClassifySettings = ClassifySettings()
    stream: StreamSettings = StreamSettings()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        given = os.environ.get("NEWS_INGEST_CONFIG", "")
        path = Path(given) if given else locate(DEFAULT_CONFIG)
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if path.is_file():
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=path))
        return tuple(sources)

    def redis_url(self) -> str:
        """The configured server, or "" for the embedded one."""
        return self.redis.url or os.environ.get("REDIS_URL", "")

    def with_overrides(self, **sections: dict[str, Any]) -> Settings:
        """A copy with some fields of some sections replaced (flags beat everything)."""
        update: dict[str, Any] = {}
        for name, fields in sections.items():
            clean = {k: v for k, v in fields.items() if v is not None}
            if clean:
                update[name] = getattr(self, name).model_copy(update=clean)
        return self.model_copy(update=update)


def load(config: str | None = None) -> Settings:
    if config:
        os.environ["NEWS_INGEST_CONFIG"] = config
    return Settings()
